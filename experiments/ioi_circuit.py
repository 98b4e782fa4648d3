"""The heads that write the indirect object in zoo-4l, and how much of the IO − S logit
difference they carry (Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect
Object Identification in GPT-2 small").

Method: on selection prompts ("train" IOI templates) rank heads by direct logit attribution
(`interp.attribution.attribute`, IO − S) and by a single-head ablation sweep
(`interp.ablation.sweep`, mean and zero ablation); take the top k heads of the mean-ablation
sweep; on a disjoint evaluation set ("heldout_both": openings and actions never seen in
training) ablate them together (`interp.ablation.ablate`) and compare with many draws of k
random heads taken from the same layers (`interp.ablation.ablate_sets`).

Run: python -m experiments.ioi_circuit [--n-eval 100 --n-random 200 --seed 0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, histogram, pct


@dataclass
class Config:
    model: str = "zoo-4l"
    select_split: str = "train"
    n_select: int = 40
    eval_split: str = "heldout_both"
    n_eval: int = 100
    k: int = 3
    n_random: int = 200
    mode: str = "mean"  # headline ablation; "zero" is reported alongside
    seed: int = 0
    out: str = "reports/ioi_circuit"


def prompts(split: str, n: int, seed: int):
    from interp.zoo.corpus import ioi_prompts

    rows = ioi_prompts(split, n, seed)
    return [r["prompt"] for r in rows], [r["io"] for r in rows], [r["s"] for r in rows]


def dla_table(model, P, io, s) -> pd.DataFrame:
    """Mean direct logit attribution (IO − S) of every head over the prompts."""
    from interp.attribution import attribute

    df = attribute(model, P, io, s)
    heads = df[df.kind == "head"]
    out = heads.groupby(["layer", "head"], as_index=False).value.mean().rename(columns={"value": "dla"})
    out[["layer", "head"]] = out[["layer", "head"]].astype(int)
    return out


def sweep_table(model, P, io, s, seed: int) -> pd.DataFrame:
    from interp.ablation import sweep

    frames = [sweep(model, P, io, s, mode=mode, seed=seed).assign(mode=mode) for mode in ("zero", "mean")]
    return pd.concat(frames)[["mode", "layer", "head", "clean", "ablated", "delta", "relative"]]


def top_heads(sw: pd.DataFrame, mode: str, k: int) -> list[tuple[int, int]]:
    """The k heads whose ablation lowers IO − S the most (ties broken by layer, head)."""
    m = sw[sw["mode"] == mode].sort_values(["delta", "layer", "head"])
    return [(int(a), int(b)) for a, b in zip(m.layer.head(k), m["head"].head(k))]


def cut(model, P, io, s, heads, mode: str) -> dict:
    """Fraction of the mean IO − S difference removed by ablating `heads` together."""
    from interp.ablation import ablate

    r = ablate(model, P, heads, io, s, mode=mode).iloc[0]
    return {"heads": r.heads, "clean": r.clean, "ablated": r.ablated, "cut": (r.clean - r.ablated) / r.clean}


QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def quantiles(cut: pd.Series) -> pd.DataFrame:
    """Quantiles (and the mean, as quantile -1) of the random draws' cut."""
    rows = [{"quantile": q, "cut": float(cut.quantile(q))} for q in QUANTILES]
    return pd.DataFrame([{"quantile": -1.0, "cut": float(cut.mean())}] + rows)


def random_sets(model, P, io, s, draws, mode: str) -> list[float]:
    """Mean IO − S with each drawn set ablated together (batched: `interp.ablation.ablate_sets`)."""
    from interp.ablation import ablate_sets

    return ablate_sets(model, P, draws, io, s, mode=mode)["ablated"].tolist()


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
    sel = prompts(cfg.select_split, cfg.n_select, cfg.seed + 1)
    ev = prompts(cfg.eval_split, cfg.n_eval, cfg.seed + 2)
    rep = Report("ioi_circuit", f"Indirect-object heads in {cfg.model}",
                 "Which attention heads write the indirect object (IO) in IOI sentences such as "
                 "\"When Mary and John went to the store, John gave a drink to\" → \" Mary\", and is the "
                 "IO − S logit difference carried by a few heads rather than spread over the model?",
                 _method(cfg))
    dla = rep.table("dla", dla_table(model, *sel), ["layer", "head"])
    sw = rep.table("sweep", sweep_table(model, *sel, cfg.seed), ["mode", "layer", "head"])
    top = top_heads(sw, cfg.mode, cfg.k)
    top_dla = [(int(a), int(b)) for a, b in dla.sort_values(["dla", "layer", "head"], ascending=[False, True, True])
               [["layer", "head"]].head(cfg.k).itertuples(index=False)]
    rows = [{"set": "top (sweep)", "mode": m, **cut(model, *ev, top, m)} for m in ("zero", "mean")]
    rows += [{"set": "top (DLA)", "mode": cfg.mode, **cut(model, *ev, top_dla, cfg.mode)}]
    main_rows = rep.table("top_ablation", pd.DataFrame(rows), ["set", "mode"])
    draws = random_draws(top, model.cfg.n_heads, cfg.n_random, cfg.seed)
    values = random_sets(model, *ev, draws, cfg.mode)
    clean = float(main_rows.set_index(["set", "mode"]).loc[("top (sweep)", cfg.mode), "clean"])
    rnd = pd.DataFrame({"draw": range(len(draws)), "heads": ["+".join(f"L{a}H{b}" for a, b in d) for d in draws],
                        "clean": clean, "ablated": values})
    rnd["cut"] = (rnd.clean - rnd.ablated) / rnd.clean
    rnd = rep.table("random_ablation", rnd, ["draw"])
    quant = rep.table("random_quantiles", quantiles(rnd.cut), ["quantile"])
    headline = _findings(rep, cfg, dla, sw, main_rows, rnd, top, top_dla, quant)
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config) -> str:
    return (f"Selection set: {cfg.n_select} prompts from `ioi_prompts(\"{cfg.select_split}\", seed={cfg.seed + 1})`. "
            f"Evaluation set: {cfg.n_eval} prompts from `ioi_prompts(\"{cfg.eval_split}\", seed={cfg.seed + 2})`, "
            "whose opening and action clauses are disjoint from the selection set's (and from training), so "
            "the heads are picked on one set of prompts and measured on another.\n\n"
            "Metric: logit(IO) − logit(S) at the last position, averaged over prompts; *cut* = (clean − "
            "ablated) / clean.\n\n"
            "Ranking: `interp.attribution.attribute` (direct logit attribution of each head to IO − S) and "
            "`interp.ablation.sweep` (each head alone, zero and mean ablation of hook_z). The top "
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
        "(quantiles: " + ", ".join(f"{_qname(q)} {pct(v)}" for q, v in zip(quant["quantile"], quant.cut) if q >= 0)
        + "); "
        f"{pct(above)} of draws cut as much as the top heads.",
        "Zero-ablation sweep, for comparison: its top heads are " +
        ", ".join(f"L{a}H{b} (−{fmt(-v)})" for a, b, v in zip(z.layer.head(cfg.k), z['head'].head(cfg.k), z.delta.head(cfg.k))) +
        ". " + _zero_only(z, m, cfg.k),
    ]
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
    effect = ", ".join(f"L{a}H{b} −{fmt(-float(m[(m.layer == a) & (m['head'] == b)].delta.iloc[0]))}" for a, b in only)
    return (f"{names} matter(s) only under zero ablation (mean-ablation effect: {effect}): most likely a head whose "
            "average output the rest of the model relies on, rather than one that carries which name is the IO.")


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.ioi_circuit --n-eval 100 --n-random 200",
        choices={"mode": ("zero", "mean")})
