"""The heads that write the indirect object in zoo-4l, and how much of the IO − S logit
difference they carry (Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect
Object Identification in GPT-2 small").

Method: on selection prompts ("train" IOI structures) rank heads by direct logit attribution
(`interp.attribution.attribute`, IO − S) and by a single-head ablation sweep
(`interp.ablation.sweep`, mean and zero ablation); take the top k heads of the mean-ablation
sweep; on a disjoint evaluation set ("heldout_structures": sentence structures never seen in
training) ablate them together (`interp.ablation.ablate`) and compare with many draws of k
random heads taken from the same layers (`interp.ablation.ablate_sets`).

Run: python -m experiments.ioi_circuit [--n-eval 100 --n-random 200 --seed 0]
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, histogram, is_zoo, pct


# `python -m experiments --models M` runs a real model with these instead of the zoo defaults:
# more evaluation prompts (all 6 held-out templates x ABBA/BABA), fewer random draws (each costs
# n_eval forwards of a 135M-parameter model).
REAL_MODEL_CONFIG = dict(n_select=24, n_eval=216, n_random=30, sweep_modes=["mean"])


@dataclass
class Config:
    model: str = "zoo-4l"
    select_split: str = "auto"  # zoo: "train"; a real model: "select" (interp.tasks.ioi templates)
    n_select: int = 40
    eval_split: str = "auto"  # zoo: "heldout_structures"; a real model: "eval"
    n_eval: int = 100
    k: int = 3
    n_random: int = 200
    mode: str = "mean"  # headline ablation; "zero" is reported alongside
    sweep_modes: list[str] = field(default_factory=lambda: ["zero", "mean"])  # single-head sweeps run
    sweep_layers: str = "all"  # or "28,29": the layers whose heads are swept (and may be chosen)
    path_layers: int = 0  # path-patching senders: heads of this many layers below the receivers (0: all)
    n_patch: int = 16  # selection prompts used for activation, attribution and path patching
    n_movers: int = 3  # name-mover candidates (top DLA heads) that receive in path patching
    seed: int = 0
    out: str = "reports/ioi_circuit"



def prompt_rows(model, model_name: str, split: str, n: int, seed: int) -> list[dict]:
    """IOI prompts with prompt, io, s, corrupted (ABC: the second mention of S replaced by a third
    name), order and template. The zoo speaks its own corpus (`interp.zoo.corpus.ioi_prompts`,
    splits "train" / "heldout_structures"); a real model gets natural sentences from
    `interp.tasks.ioi` (template sets "select" / "eval")."""
    if not is_zoo(model_name):
        from interp.tasks.ioi import ioi_prompts

        return ioi_prompts(model.tokenizer, split, n, seed)
    from interp.zoo.corpus import ioi_prompts as zoo_prompts
    from interp.zoo.lexicon import ioi_names

    rng, names = random.Random(seed + 1000), ioi_names("train")
    rows = []
    for r in zoo_prompts(split, n, seed):
        c = " " + rng.choice([x for x in names if " " + x not in (r["io"], r["s"])])
        # whole words only ("Ben" is not in "Benjamin"); a sentence may start with a name
        mentions = lambda name: [m.start() for m in re.finditer(rf"\b{name.strip()}\b", r["prompt"])]
        s2 = mentions(r["s"])[-1]  # the sentence's last mention of S is S2
        order = "ABBA" if mentions(r["io"])[0] < mentions(r["s"])[0] else "BABA"
        corrupted = r["prompt"][:s2] + c.strip() + r["prompt"][s2 + len(r["s"].strip()):]
        rows.append({**r, "corrupted": corrupted, "c": c, "order": order, "template": r["structure"]})
    return rows


def splits(model_name: str, cfg) -> tuple[str, str]:
    """The selection and evaluation splits ("auto": the model's natural pair)."""
    auto = ("train", "heldout_structures") if is_zoo(model_name) else ("select", "eval")
    return (auto[0] if cfg.select_split == "auto" else cfg.select_split,
            auto[1] if cfg.eval_split == "auto" else cfg.eval_split)


def columns(rows: list[dict]):
    return [r["prompt"] for r in rows], [r["io"] for r in rows], [r["s"] for r in rows]


def prompt_table(model, rows: list[dict]) -> pd.DataFrame:
    """Per prompt: logit(IO) − logit(S) on the clean and the ABC-corrupted sentence, whether IO
    beats S and whether IO is the top-1 token (one plain forward per batch)."""
    import torch

    from interp.activations import to_tokens
    from interp.tokens import token_id

    out = []
    for key in ("prompt", "corrupted"):
        tokens, strs = to_tokens(model, [r[key] for r in rows])
        with torch.no_grad():
            logits = model(tokens)
        last = torch.tensor([len(t) - 1 for t in strs])
        final = logits[torch.arange(len(rows)), last]
        io = torch.tensor([token_id(model, r["io"]) for r in rows])
        s = torch.tensor([token_id(model, r["s"]) for r in rows])
        ar = torch.arange(len(rows))
        out.append((final[ar, io] - final[ar, s], final.argmax(-1) == io))
    (clean, top1), (corrupt, _) = out
    return pd.DataFrame({"prompt_id": range(len(rows)), "template": [r["template"] for r in rows],
                         "order": [r["order"] for r in rows], "logit_diff": clean.tolist(),
                         "corrupted_logit_diff": corrupt.tolist(), "io_beats_s": (clean > 0).tolist(),
                         "io_top1": top1.tolist()})


def spread(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, std and quantiles of `value` per group (one row per group; by=[] for all prompts)."""
    groups = df.groupby(by) if by else [((), df)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        v = g[value]
        rows.append({**dict(zip(by, key)), "n": len(v), "mean": v.mean(), "std": v.std(ddof=0),
                     "q05": v.quantile(0.05), "median": v.median(), "q95": v.quantile(0.95),
                     **({"accuracy": g.io_beats_s.mean(), "top1": g.io_top1.mean()} if "io_beats_s" in g else {})})
    return pd.DataFrame(rows)


def name_positions(model, tokens, strs, row: dict) -> dict[str, int]:
    """Token positions of IO, S1 (first S) and S2 (second S) and the final query in one prompt."""
    names = {"io": row["io"].strip(), "s": row["s"].strip()}
    found: dict[str, list[int]] = {"io": [], "s": []}
    for p, t in enumerate(strs):
        for k, name in names.items():
            if t.strip() == name:
                found[k].append(p)
    if len(found["io"]) != 1 or len(found["s"]) != 2:
        raise ValueError(f"IOI prompt {row['prompt']!r}: names not found as single tokens ({found})")
    return {"io": found["io"][0], "s1": found["s"][0], "s2": found["s"][1], "end": len(strs) - 1}


def attention_to_names(model, rows: list[dict], heads: list[tuple[int, int]]) -> pd.DataFrame:
    """Per prompt and named head: attention from the final position to IO, S1 and S2."""
    import torch

    from interp.activations import to_tokens

    tokens, strs = to_tokens(model, [r["prompt"] for r in rows])
    layers = sorted({l for l, _ in heads})
    names = [f"blocks.{l}.attn.hook_pattern" for l in layers]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    out = []
    for i, r in enumerate(rows):
        pos = name_positions(model, tokens[i], strs[i], r)
        for l, h in heads:
            att = cache[f"blocks.{l}.attn.hook_pattern"][i, h, pos["end"]]
            out.append({"prompt_id": i, "head": f"L{l}H{h}", "layer": l, "head_index": h,
                        **{f"to_{k}": att[pos[k]].item() for k in ("io", "s1", "s2")}})
    return pd.DataFrame(out)


def dla_table(model, P, io, s) -> pd.DataFrame:
    """Mean direct logit attribution (IO − S) of every head over the prompts."""
    from interp.attribution import attribute

    df = attribute(model, P, io, s)
    heads = df[df.kind == "head"]
    out = heads.groupby(["layer", "head"], as_index=False).value.mean().rename(columns={"value": "dla"})
    out[["layer", "head"]] = out[["layer", "head"]].astype(int)
    return out


def layer_list(spec: str) -> list[int] | None:
    """"all" -> None (every layer), "28,29" -> [28, 29]."""
    return None if spec == "all" else [int(x) for x in spec.split(",")]


def sweep_table(model, P, io, s, seed: int, modes=("zero", "mean"), layers=None) -> pd.DataFrame:
    from interp.ablation import sweep

    frames = [sweep(model, P, io, s, mode=mode, seed=seed, layers=layers).assign(mode=mode) for mode in modes]
    return pd.concat(frames)[["mode", "layer", "head", "clean", "ablated", "delta", "relative"]]


def top_heads(sw: pd.DataFrame, mode: str, k: int) -> list[tuple[int, int]]:
    """The k heads whose ablation lowers IO − S the most (ties broken by layer, head)."""
    m = sw[sw["mode"] == mode].sort_values(["delta", "layer", "head"])
    return [(int(a), int(b)) for a, b in zip(m.layer.head(k), m["head"].head(k))]


def set_ablations(model, P, io, s, top, top_dla, draws, mode: str) -> pd.DataFrame:
    """IO − S per prompt with head sets ablated together: the top sweep heads (zero and mean
    ablation), the top DLA heads and each random draw (`mode`). One batched
    `interp.ablation.ablate_sets` call per ablation mode, so each mode's clean run and mean
    replacement are computed once. Columns: set, mode, heads, prompt_id, clean, ablated."""
    from interp.ablation import ablate_sets

    frames = []
    for m in dict.fromkeys(["zero", "mean", mode]):
        sets = {"top (sweep)": top}
        if m == mode:
            sets.update({"top (DLA)": top_dla, **{f"random {i}": d for i, d in enumerate(draws)}})
        df = ablate_sets(model, P, list(sets.values()), io, s, mode=m, per_prompt=True)
        frames.append(df.assign(set=[name for name in sets for _ in P], mode=m).rename(columns={"prompt": "prompt_id"}))
    return pd.concat(frames)[["set", "mode", "heads", "prompt_id", "clean", "ablated"]]


def summary_rows(per_set: pd.DataFrame) -> pd.DataFrame:
    """One row per (set, mode): heads, mean clean and ablated IO − S over prompts, and the cut
    (the fraction of the mean difference the ablation removes)."""
    out = per_set.groupby(["set", "mode"], as_index=False, sort=False).agg(
        heads=("heads", "first"), clean=("clean", "mean"), ablated=("ablated", "mean"))
    return out.assign(cut=(out.clean - out.ablated) / out.clean)


QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def quantiles(cut: pd.Series) -> pd.DataFrame:
    """The mean and quantiles of the random draws' cut, one labelled row each (`order` keeps them in order)."""
    rows = [{"stat": "mean", "cut": float(cut.mean())}]
    rows += [{"stat": _qname(q), "cut": float(cut.quantile(q))} for q in QUANTILES]
    return pd.DataFrame(rows).assign(order=range(len(rows)))[["order", "stat", "cut"]]


def random_draws(top, n_heads: int, n: int, seed: int) -> list[list[tuple[int, int]]]:
    """n sets with one random non-top head from each top head's layer (seeded)."""
    rng = random.Random(seed)
    draws = []
    for _ in range(n):
        chosen: list[tuple[int, int]] = []
        for layer, _h in top:
            pool = [(layer, h) for h in range(n_heads) if (layer, h) not in top and (layer, h) not in chosen]
            chosen.append(rng.choice(pool))
        draws.append(chosen)
    return draws


def main(cfg: Config) -> dict:
    import interp

    model = interp.load(cfg.model)
    sel_split, ev_split = splits(cfg.model, cfg)
    sel_rows = prompt_rows(model, cfg.model, sel_split, cfg.n_select, cfg.seed + 1)
    ev_rows = prompt_rows(model, cfg.model, ev_split, cfg.n_eval, cfg.seed + 2)
    sel, ev = columns(sel_rows), columns(ev_rows)
    rep = Report("ioi_circuit", f"Indirect-object heads in {cfg.model}",
                 "Which attention heads write the indirect object (IO) in IOI sentences such as "
                 "\"When Mary and John went to the store, John gave a drink to\" → \" Mary\", and is the "
                 "IO − S logit difference carried by a few heads rather than spread over the model?",
                 _method(cfg, sel_split, ev_split))
    per_prompt = rep.table("prompts", prompt_table(model, ev_rows), ["prompt_id"])  # behaviour on held-out prompts
    acc = rep.table("accuracy", pd.concat([spread(per_prompt, [], "logit_diff").assign(group="all"),
                                           spread(per_prompt, ["order"], "logit_diff").rename(columns={"order": "group"}),
                                           spread(per_prompt, ["template"], "logit_diff")
                                           .rename(columns={"template": "group"})]), ["group"])
    dla = rep.table("dla", dla_table(model, *sel), ["layer", "head"])
    sw = rep.table("sweep", sweep_table(model, *sel, cfg.seed, dict.fromkeys([cfg.mode, *cfg.sweep_modes]),
                                      layer_list(cfg.sweep_layers)), ["mode", "layer", "head"])
    top = top_heads(sw, cfg.mode, cfg.k)
    top_dla = [(int(a), int(b)) for a, b in dla.sort_values(["dla", "layer", "head"], ascending=[False, True, True])
               [["layer", "head"]].head(cfg.k).itertuples(index=False)]
    draws = random_draws(top, model.cfg.n_heads, cfg.n_random, cfg.seed)
    per_set = set_ablations(model, *ev, top, top_dla, draws, cfg.mode)
    main_rows = rep.table("top_ablation", summary_rows(per_set[~per_set.set.str.startswith("random")]),
                          ["set", "mode"])
    top_rows = per_set[(per_set.set == "top (sweep)") & (per_set["mode"] == cfg.mode)]
    cuts = rep.table("top_ablation_per_prompt", top_rows[["prompt_id", "clean", "ablated"]]
                     .assign(cut=lambda d: (d.clean - d.ablated) / d.clean), ["prompt_id"])
    rnd = summary_rows(per_set[per_set.set.str.startswith("random")])
    rnd = rnd.assign(draw=rnd.set.str.split().str[1].astype(int))[["draw", "heads", "clean", "ablated"]]
    rnd["cut"] = (rnd.clean - rnd.ablated) / rnd.clean
    rnd = rep.table("random_ablation", rnd, ["draw"])
    quant = rep.table("random_quantiles", quantiles(rnd.cut), ["order"])
    pat = sel_rows[:cfg.n_patch]
    patch = rep.table("patch_heads", patch_table(model, pat), ["method", "direction", "layer", "head"])
    movers = [(int(l), int(h)) for l, h in dla.sort_values(["dla", "layer", "head"], ascending=[False, True, True])
              [["layer", "head"]].head(cfg.n_movers).itertuples(index=False)]
    paths = rep.table("path_patch", path_table(model, pat, movers, cfg.path_layers), ["receivers", "layer", "head"])
    named = _named(dla, top, cfg.k)
    att = rep.table("attention_to_names", attention_to_names(model, ev_rows, [h for h, _ in named]), ["prompt_id", "head"])
    att_sum = rep.table("attention_summary", attention_summary(att, named), ["layer", "head_index"])
    headline = _findings(rep, cfg, dla, sw, main_rows, rnd, top, top_dla, quant)
    headline.update(_prompt_findings(rep, cfg, acc, per_prompt, cuts, att_sum))
    headline.update(_patch_findings(rep, cfg, patch, paths, movers))
    view = ev_rows[:4]
    rep.findings.append(rep.attention("attention_named_heads", model, [r["prompt"] for r in view],
                                      [h for h, _ in named], "the heads this report names, on evaluation prompts"))
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def patch_table(model, rows: list[dict]) -> pd.DataFrame:
    """Every head's output patched between each prompt and its ABC corruption: activation
    patching in both directions and attribution patching (denoising), normalised metric."""
    from interp.patching import activation_patch

    P, X = [r["prompt"] for r in rows], [r["corrupted"] for r in rows]
    io, s = [r["io"] for r in rows], [r["s"] for r in rows]
    frames = [activation_patch(model, P, X, io, s, what="heads", direction=d, method=m)
              for d, m in (("denoising", "activation"), ("noising", "activation"), ("denoising", "attribution"))]
    df = pd.concat(frames)
    return df[["method", "direction", "layer", "head", "clean", "corrupted", "patched", "normalised"]]


def path_table(model, rows: list[dict], movers: list[tuple[int, int]], path_layers: int = 0) -> pd.DataFrame:
    """Path patching (noising, ABC corruption) from every earlier head (or those of the
    `path_layers` layers below) to the name-mover candidates' queries, and from those heads
    straight to the logits."""
    from interp.path_patching import path_patch

    P, X = [r["prompt"] for r in rows], [r["corrupted"] for r in rows]
    io, s = [r["io"] for r in rows], [r["s"] for r in rows]
    first = min(l for l, _ in movers)
    senders = [(l, h) for l in range(first - path_layers if path_layers else 0, first) for h in range(model.cfg.n_heads)]
    to_logits = senders + [(l, h) for l in range(first, model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    frames = [path_patch(model, P, X, io, s, receivers=movers, component="q", senders=senders),
              path_patch(model, P, X, io, s, receivers="logits", senders=to_logits)]
    df = pd.concat(frames)
    return df[["receivers", "component", "layer", "head", "clean", "corrupted", "patched", "normalised"]]


def _patch_findings(rep, cfg, patch, paths, movers) -> dict:
    import numpy as np

    from interp.report import plots

    lab = lambda l, h: f"L{int(l)}H{int(h)}"  # noqa: E731
    den = patch[(patch.method == "activation") & (patch.direction == "denoising")].set_index(["layer", "head"])
    noi = patch[(patch.method == "activation") & (patch.direction == "noising")].set_index(["layer", "head"])
    att = patch[patch.method == "attribution"].set_index(["layer", "head"])
    r = float(np.corrcoef(den.normalised, att.reindex(den.index).normalised)[0, 1])
    top_den = den.normalised.sort_values(ascending=False).head(5)
    top_noi = noi.normalised.sort_values().head(5)
    q = paths[paths.receivers != "logits"].sort_values("normalised")
    direct = paths[paths.receivers == "logits"].sort_values("normalised")
    movers_lab = " ".join(lab(*h) for h in movers)
    rep.findings += [
        f"**Activation patching of head outputs** ({cfg.n_patch} selection prompts and their ABC corruptions; "
        f"normalised 1 = clean behaviour, 0 = corrupted). Denoising (a clean head output into the corrupted run) "
        "restores the most with " + ", ".join(f"{lab(*k)} {fmt(v)}" for k, v in top_den.items()) +
        "; noising (a corrupted head output into the clean run) hurts the most with " +
        ", ".join(f"{lab(*k)} {fmt(v)}" for k, v in top_noi.items()) + " (normalised: 1 = unchanged). " +
        ("No single head restores most of the difference: the behaviour is spread over several heads."
         if top_den.iloc[0] < 0.5 else f"{lab(*top_den.index[0])} alone restores most of it."),
        f"**Attribution patching** (one backward pass) against activation patching, denoising, over all "
        f"{len(den)} heads: Pearson r = **{fmt(r)}**.",
        f"**Path patching** to the queries of the top DLA heads ({movers_lab}, the name-mover candidates): the "
        "earlier heads whose corrupted output, reaching those queries only through the residual stream, lowers "
        "IO − S the most are " + ", ".join(f"{lab(x.layer, x.head)} {fmt(x.normalised)}" for x in q.head(5).itertuples()) +
        " (normalised; 1 = no effect, lower = the path matters): the S-inhibition candidates. Straight to the "
        "logits, the heads with the largest direct effect are " +
        ", ".join(f"{lab(x.layer, x.head)} {fmt(x.normalised)}" for x in direct.head(5).itertuples()) + ".",
    ]
    rep.findings.append(rep.figure("patch_denoising", plots.heatmap(den.reset_index(), "layer", "head", "normalised",
                                                                    "denoising: clean head output into the ABC run",
                                                                    cbar="normalised metric"),
                                   "Activation patching per head (denoising), normalised IO − S."))
    comp = den[["normalised"]].join(att[["normalised"]].rename(columns={"normalised": "normalised_attr"})).reset_index()
    shown = set(comp.normalised.abs().sort_values(ascending=False).head(8).index)
    comp["label"] = [lab(a, b) if i in shown else "" for i, (a, b) in enumerate(zip(comp.layer, comp["head"]))]
    rep.findings.append(rep.figure("attribution_vs_activation",
                                   plots.scatter(comp, "normalised", "normalised_attr", "label",
                                                 f"attribution vs activation patching (r = {r:.2f})"),
                                   "Each point a head: activation patching (x) against its gradient estimate (y)."))
    return {"attribution_r": r, "s_inhibition_candidates": " ".join(lab(x.layer, x.head) for x in q.head(3).itertuples()),
            "name_mover_candidates": movers_lab}


def _named(dla: pd.DataFrame, top, k: int) -> list[tuple[tuple[int, int], str]]:
    """Heads the report names: the top sweep heads, the top DLA writers and the most negative one."""
    d = dla.sort_values(["dla", "layer", "head"], ascending=[False, True, True])
    out: list[tuple[tuple[int, int], str]] = [(h, "top (sweep)") for h in top]
    for l, h in d[["layer", "head"]].head(k).itertuples(index=False):
        if (l, h) not in [x for x, _ in out]:
            out.append(((int(l), int(h)), "top DLA"))
    l, h = int(d.layer.iloc[-1]), int(d["head"].iloc[-1])
    if (l, h) not in [x for x, _ in out]:
        out.append(((l, h), "most negative DLA"))
    return out


def attention_summary(att: pd.DataFrame, named) -> pd.DataFrame:
    """Per named head: mean attention from the end to IO, S1, S2, and the share of prompts in which
    it attends more to IO than to either S."""
    roles = {f"L{l}H{h}": role for (l, h), role in named}
    att = att.assign(io_over_s=(att.to_io > att[["to_s1", "to_s2"]].max(axis=1)).astype(float))
    g = att.groupby(["head", "layer", "head_index"], as_index=False)
    out = g.agg(to_io=("to_io", "mean"), to_io_std=("to_io", "std"), to_s1=("to_s1", "mean"),
                to_s2=("to_s2", "mean"), io_over_s=("io_over_s", "mean"))
    return out.assign(role=out["head"].map(roles))


def _prompt_findings(rep, cfg, acc, per_prompt, cuts, att_sum) -> dict:
    from interp.report import plots

    a = acc.set_index("group")
    worst = acc[acc.group.str.contains("-")].sort_values("accuracy").iloc[0] if acc.group.str.contains("-").any() else None
    rep.findings.insert(0, (
        f"**Behaviour on the {int(a.loc['all', 'n'])} evaluation prompts**: IO beats S in **{pct(a.loc['all', 'accuracy'])}**, "
        f"IO is the top-1 token in {pct(a.loc['all', 'top1'])}; logit(IO) − logit(S) = {fmt(a.loc['all', 'mean'])} "
        f"± {fmt(a.loc['all', 'std'])} (5–95%: {fmt(a.loc['all', 'q05'])} to {fmt(a.loc['all', 'q95'])}). "
        + " ".join(f"{o}: {pct(a.loc[o, 'accuracy'])}, mean {fmt(a.loc[o, 'mean'])}." for o in ("ABBA", "BABA") if o in a.index)
        + (f" Weakest template {worst.group}: {pct(worst.accuracy)} (mean {fmt(worst['mean'])})." if worst is not None else "")
        + f" On the ABC-corrupted sentences (S2 replaced by a third name) the difference is {fmt(per_prompt.corrupted_logit_diff.mean())}."))
    c = cuts.cut
    rep.findings.append(
        f"Spread of the top heads' ablation over the {len(cuts)} evaluation prompts: cut median {pct(c.median())}, "
        f"5–95% {pct(c.quantile(0.05))} to {pct(c.quantile(0.95))}; {pct((c > 0).mean())} of prompts lose some IO − S "
        "(prompts whose clean difference is near 0 give extreme ratios).")
    rep.findings.append(
        "**Attention from the final position** (the token before the answer) of the named heads: " +
        "; ".join(f"{r.head} ({r.role}) IO {fmt(r.to_io)}, S1 {fmt(r.to_s1)}, S2 {fmt(r.to_s2)}, IO > S in {pct(r.io_over_s)}"
                  for r in att_sum.itertuples()) + ".")
    long = att_sum.melt(id_vars=["head"], value_vars=["to_io", "to_s1", "to_s2"], var_name="to", value_name="weight")
    rep.findings.append(rep.figure("attention_to_names", plots.heatmap(long, "head", "to", "weight",
                                                                       "attention from the final position (mean over prompts)",
                                                                       cbar="attention weight"),
                                   "Mean attention of each named head from the last token to IO, S1 and S2."))
    rep.show("Behaviour on the evaluation prompts", acc)
    rep.show("Attention of the named heads", att_sum)
    return {"accuracy": float(a.loc["all", "accuracy"]), "top1": float(a.loc["all", "top1"]),
            "eval_logit_diff_std": float(a.loc["all", "std"]), "cut_median": float(c.median())}


def _method(cfg: Config, sel_split: str, ev_split: str) -> str:
    source = ("`interp.zoo.corpus.ioi_prompts` (the grammar of `interp.zoo.grammar`), whose evaluation split's "
              "sentence structures (frame x intro) are disjoint from the selection split's and never occur in "
              "training" if is_zoo(cfg.model) else
              "`interp.tasks.ioi.ioi_prompts`: six selection and six evaluation templates of different sentence "
              "structure, ABBA and BABA in equal numbers, names, places and objects that are one token each")
    return (f"Selection set: {cfg.n_select} prompts (\"{sel_split}\", seed {cfg.seed + 1}). "
            f"Evaluation set: {cfg.n_eval} prompts (\"{ev_split}\", seed {cfg.seed + 2}). Source: {source}; "
            "the heads are picked on one set of prompts and measured on another. Each prompt has an ABC "
            "corruption: the second mention of S replaced by a third name.\n\n"
            "Metric: logit(IO) − logit(S) at the last position, averaged over prompts; *cut* = (clean − "
            "ablated) / clean.\n\n"
            "Ranking: `interp.attribution.attribute` (direct logit attribution of each head to IO − S) and "
            f"`interp.ablation.sweep` (each head alone, {' and '.join(dict.fromkeys([cfg.mode, *cfg.sweep_modes]))} "
            "ablation of hook_z). The top "
            f"{cfg.k} heads are those whose {cfg.mode}-ablation lowers IO − S the most on the selection set.\n\n"
            f"Control: {cfg.n_random} seeded draws of {cfg.k} random heads, one from the layer of each top head "
            "(never a top head), ablated together on the evaluation set.\n\n"
            "Ablation: **mean ablation** (a head's hook_z replaced by its mean over the evaluation prompts and "
            "positions: the prompts differ in length) is the headline. Zero ablation is shown too: it puts "
            "an output the model never produces into the residual stream, so heads that write a large "
            "constant (e.g. attending to BOS) look important under it although they carry no IOI information.")


def _findings(rep, cfg, dla, sw, main_rows, rnd, top, top_dla, quant) -> dict:
    from interp.report import plots

    lab = lambda hs: "+".join(f"L{a}H{b}" for a, b in hs)  # noqa: E731
    r = main_rows.set_index(["set", "mode"])
    head_cut = float(r.loc[("top (sweep)", cfg.mode), "cut"])
    zero_cut = float(r.loc[("top (sweep)", "zero"), "cut"])
    dla_cut = float(r.loc[("top (DLA)", cfg.mode), "cut"])
    clean = float(r.loc[("top (sweep)", cfg.mode), "clean"])
    m = sw[sw["mode"] == cfg.mode].sort_values(["delta", "layer", "head"])
    z = sw[sw["mode"] == "zero"].sort_values(["delta", "layer", "head"])
    d = dla.sort_values(["dla", "layer", "head"], ascending=[False, True, True])
    mean_r, p95, above = rnd.cut.mean(), rnd.cut.quantile(0.95), (rnd.cut >= head_cut).mean()
    rep.findings += [
        f"**Top {cfg.k} heads ({cfg.mode}-ablation sweep on the selection set): {lab(top)}.** "
        f"Their single-head effects: " + ", ".join(f"L{a}H{b} −{fmt(-row.delta)}" for a, b, row in
                                                   zip(m.layer.head(cfg.k), m['head'].head(cfg.k), m.head(cfg.k).itertuples())) +
        f" (clean IO − S {fmt(m.clean.iloc[0])}). By direct logit attribution the heads that write IO − S most are "
        + ", ".join(f"L{a}H{b} (+{fmt(v)})" for a, b, v in zip(d.layer.head(cfg.k), d['head'].head(cfg.k), d.dla.head(cfg.k)))
        + "; the strongest negative writer is " + f"L{int(d.layer.iloc[-1])}H{int(d['head'].iloc[-1])} ({fmt(d.dla.iloc[-1])}).",
        f"On the held-out evaluation set (clean IO − S = {fmt(clean)}), ablating {lab(top)} together cuts the "
        f"difference by **{pct(head_cut)}** ({cfg.mode} ablation; {pct(zero_cut)} with zero ablation). "
        f"The top {cfg.k} by DLA alone ({lab(top_dla)}) cut {pct(dla_cut)}: the DLA ranking names the final writer "
        "but not the earlier heads it depends on.",
        f"**{cfg.n_random} random draws** of {cfg.k} heads from the same layers cut **{pct(mean_r)} on average** "
        "(quantiles: " + ", ".join(f"{q} {pct(v)}" for q, v in zip(quant.stat, quant.cut) if q != "mean")
        + "); "
        f"{pct(above)} of draws cut as much as the top heads.",
    ]
    if len(z):
        rep.findings.append("Zero-ablation sweep, for comparison: its top heads are " + ", ".join(
            f"L{a}H{b} ({v:+.3g})" for a, b, v in zip(z.layer.head(cfg.k), z['head'].head(cfg.k), z.delta.head(cfg.k)))
            + ". " + _zero_only(z, m, cfg.k))
    rep.findings.append(rep.figure("random_cuts", histogram(rnd.cut, f"{cfg.n_random} random {cfg.k}-head ablations",
                                                            "fraction of IO − S removed",
                                                            {f"top {cfg.k} ({lab(top)})": head_cut,
                                                             "random mean": mean_r}),
                                   "Cut of IO − S by random same-layer head sets (held-out prompts); dashed: the top heads and the random mean."))
    rep.findings.append(rep.figure("sweep_mean", plots.heatmap(sw[sw["mode"] == cfg.mode], "layer", "head", "delta",
                                                               f"IO − S change, one head {cfg.mode}-ablated"),
                                   "Single-head ablation sweep on the selection prompts."))
    rep.findings.append(rep.figure("dla", plots.heatmap(dla, "layer", "head", "dla", "direct logit attribution to IO − S"),
                                   "Mean direct logit attribution per head on the selection prompts."))
    rep.show("Top heads ablated on the evaluation set", main_rows)
    rep.show(f"Quantiles of the cut over {len(rnd)} random same-layer draws", quant)
    return {"top_heads": lab(top), "clean_logit_diff": clean, "top_cut": head_cut, "top_cut_zero": zero_cut,
            "dla_top_cut": dla_cut, "random_mean_cut": float(mean_r), "random_p95_cut": float(p95),
            "n_random": int(len(rnd)), "meets_50_and_10": bool(head_cut >= 0.5 and mean_r < 0.1),
            "summary": (f"ablating {lab(top)} ({cfg.mode}) cuts IO − S by {pct(head_cut)} on held-out prompts; "
                        f"{len(rnd)} random same-layer triples cut {pct(mean_r)} on average")}


def _qname(q: float) -> str:
    return {0.0: "min", 0.5: "median", 1.0: "max"}.get(float(q), f"{100 * q:g}%")


def _zero_only(z, m, k: int) -> str:
    zero = {(int(a), int(b)) for a, b in zip(z.layer.head(k), z["head"].head(k))}
    mean = {(int(a), int(b)) for a, b in zip(m.layer.head(k), m["head"].head(k))}
    only = sorted(zero - mean)
    if not only:
        return "Zero and mean ablation name the same heads."
    names = ", ".join(f"L{a}H{b}" for a, b in only)
    effect = ", ".join(f"L{a}H{b} {float(m[(m.layer == a) & (m['head'] == b)].delta.iloc[0]):+.3g}" for a, b in only)
    return (f"{names} matter(s) only under zero ablation (mean-ablation effect: {effect}): most likely a head whose "
            "average output the rest of the model relies on, rather than one that carries which name is the IO.")


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.ioi_circuit --n-eval 100 --n-random 200",
        choices={"mode": ("zero", "mean")})
