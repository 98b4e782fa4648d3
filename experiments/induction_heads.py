"""Induction and previous-token heads, found from attention and confirmed by ablation (zoo-2l by
default; any model with --model).

Question: which heads implement induction (Olsson et al. 2022, "In-context Learning and
Induction Heads"), and are they what makes a repeated random sequence easy the second time?

Method: random sequences of distinct tokens drawn uniformly from the model's whole vocabulary
(`vocab_sequences`; special tokens excluded), each repeated once. Heads are scored with `interp.heads.head_scores` (mean attention on the
induction / previous-token / duplicate / BOS targets). The in-context effect is the ratio
(mean loss on the repeat) / (mean loss on the first copy); `interp.ablation.sweep` ablates each
head alone and `interp.ablation.ablate` ablates chosen sets, with that ratio as a custom metric.

Run: python -m experiments.induction_heads [--n-seqs 20 --n-tokens 30 --seed 0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt


@dataclass
class Config:
    model: str = "zoo-2l"
    n_tokens: int = 30  # words per copy
    n_seqs: int = 20  # random sequences (each repeated once)
    n_view: int = 12  # words per copy in the attention figure
    mode: str = "mean"  # ablation used for the headline ("zero" is reported too)
    min_score: float = 0.5  # a head whose mean score is at least this belongs to the class
    sweep_modes: list[str] = field(default_factory=lambda: ["zero", "mean"])  # single-head sweeps run
    sweep_layers: str = "all"  # or "0,1": the layers whose heads are swept
    seed: int = 0
    out: str = "reports/induction_heads"


# `python -m experiments --models M` on a real model: tokens drawn from its whole vocabulary. The
# loss-ratio metric reads every position's full logits, so a sweep costs heads x tokens x vocabulary:
# 16 x 80 tokens of smollm2-135m had not finished its 270-head sweep after 30 min on the loaded
# 2-core machine; 8 x 60 tokens is 2.7x less.
REAL_MODEL_CONFIG = dict(n_tokens=30, n_seqs=8, n_view=12, sweep_modes=["mean"])



def start_ids(model) -> list[int]:
    """The token the model's prompts start with (BOS) when it prepends one, else nothing."""
    bos = model.tokenizer.bos_token_id
    return [bos] if model.cfg.default_prepend_bos and bos is not None else []


def vocab_sequences(model, n_tokens: int, n_seqs: int, seed: int, start: list[int] | None = None):
    """[n_seqs, len(start) + 2 n_tokens] token ids: n distinct tokens drawn uniformly from the whole
    vocabulary (special tokens excluded), repeated once, after `start` (default: `start_ids`)."""
    import torch

    tok = model.tokenizer
    special = set(tok.all_special_ids)
    pool = torch.tensor([i for i in range(min(len(tok), model.cfg.d_vocab)) if i not in special])
    gen = torch.Generator().manual_seed(seed)
    start = start_ids(model) if start is None else start
    rows = []
    for _ in range(n_seqs):
        r = pool[torch.randperm(len(pool), generator=gen)[:n_tokens]]
        rows.append(torch.cat([torch.tensor(start, dtype=torch.long), r, r]))
    return torch.stack(rows).to(model.cfg.device)


def inputs(model, cfg, n_tokens: int, n_seqs: int, seed: int):
    """Token tensors of repeated random sequences over the model's whole vocabulary."""
    return vocab_sequences(model, n_tokens, n_seqs, seed)


def token_losses(logits, tokens):
    """Next-token loss [batch pos-1] (prediction at p of token p+1)."""
    logp = logits[:, :-1].log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0]


def copy_slices(n: int, start: int = 1) -> tuple[slice, slice]:
    """Loss columns of the first copy and of the repeat, for `start` tokens (BOS) + n words + n words.

    The first word of each copy is left out: nothing predicts it, and the repeat's first word
    follows a word seen only once, so neither can be copied in context.
    """
    return slice(start, start + n - 1), slice(start + n, start + 2 * n - 1)


class RepeatRatio:
    """Metric: loss on the repeat / loss on the first copy, per prompt; keeps the per-position
    losses of its latest calls (a helper for the per-position figure)."""

    def __init__(self, n: int, start: int = 1):
        self.first, self.repeat = copy_slices(n, start)
        self.calls: list = []

    def __call__(self, logits, tokens):
        losses = token_losses(logits, tokens)
        self.calls.append(losses.detach().cpu())
        return losses[:, self.repeat].mean(-1) / losses[:, self.first].mean(-1)


def score_table(model, prompts: list[str]) -> pd.DataFrame:
    """Head scores (interp.heads.head_scores), mean and min over the sequences."""
    from interp.activations import to_tokens
    from interp.heads import head_scores

    frames = []
    for i, p in enumerate(prompts):
        tokens = p[None] if not isinstance(p, str) else to_tokens(model, p)[0]
        frames.append(head_scores(model, tokens=tokens[0]).assign(seq=i))
    df = pd.concat(frames)
    return df.groupby(["kind", "layer", "head"], as_index=False).score.agg(score="mean", score_min="min")


def ranked(scores: pd.DataFrame, kind: str, min_score: float) -> list[tuple[int, int]]:
    """Heads of `kind`, best first: those scoring at least `min_score`, or the single best."""
    rows = scores[scores.kind == kind].sort_values(["score", "layer", "head"], ascending=[False, True, True])
    heads = [(int(r.layer), int(r.head)) for r in rows.itertuples() if r.score >= min_score]
    return heads or [(int(rows.layer.iloc[0]), int(rows["head"].iloc[0]))]


def label(heads) -> str:
    return "+".join(f"L{L}H{H}" for L, H in heads)


def short_label(heads, most: int = 12) -> str:
    """`label`, or "the N heads" when there are more than `most` (the CSV lists them)."""
    return label(heads) if len(heads) <= most else f"{len(heads)} heads, listed in joint_ablation.csv"


def gain_removed(clean: float, ablated: float) -> str:
    """How much of the in-context gain (1 - ratio) an ablation removes, in words."""
    share = (ablated - clean) / (1 - clean)
    return "the in-context gain is gone" if share >= 0.9 else f"{share:.0%} of the in-context gain, 1 − ratio, removed"


def sweeps(model, prompts, n: int, seed: int, start: int = 1, modes=("zero", "mean"), layers=None) -> pd.DataFrame:
    """Every head ablated alone (zero and/or mean ablation), metric = repeat/first loss ratio."""
    from interp.ablation import sweep

    frames = [sweep(model, prompts, metric=RepeatRatio(n, start), mode=mode, seed=seed, layers=layers).assign(mode=mode)
              for mode in modes]
    df = pd.concat(frames)
    return df[["mode", "layer", "head", "clean", "ablated", "delta"]]


def joint(model, prompts, n: int, sets: dict[str, list], mode: str, start: int = 1):
    """Ablate each named set together; per-condition ratio and per-position losses."""
    from interp.ablation import ablate

    rows, curves = [], []
    for label, heads in sets.items():
        metric = RepeatRatio(n, start)
        r = ablate(model, prompts, heads, metric=metric, mode=mode)
        rows.append({"condition": label, "heads": r.heads.iloc[0], "clean": r.clean.iloc[0], "ablated": r.ablated.iloc[0]})
        if not curves:
            curves.append(_curve(metric.calls[0], "clean", n, start))
        curves.append(_curve(metric.calls[1], label, n, start))
    return pd.DataFrame(rows), pd.concat(curves)


def _curve(losses, label: str, n: int, start: int = 1) -> pd.DataFrame:
    mean = losses.mean(0).tolist()  # column p predicts token p + 1
    pos = range(1, len(mean) + 1)  # the position of the predicted token
    return pd.DataFrame({"condition": label, "pos": pos, "loss": mean,
                         "copy": ["first" if p < start + n else "repeat" for p in pos]})


def attention_view(model, cfg: Config, heads: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """The named heads' patterns on one short repeated sequence (interp.attention.patterns)."""
    from interp.attention import pattern_table, patterns

    pats = patterns(model, vocab_sequences(model, cfg.n_view, 1, cfg.seed + 1)[0])
    frames = [pattern_table(pats, L, H).assign(role=role, head_label=f"L{L}H{H}") for role, (L, H) in heads.items()]
    df = pd.concat(frames)
    return df[["role", "head_label", "query", "key", "masked"]].rename(columns={"masked": "weight"})


def main(cfg: Config) -> dict:
    import interp

    model = interp.load(cfg.model)
    prompts = inputs(model, cfg, cfg.n_tokens, cfg.n_seqs, cfg.seed)
    start = len(start_ids(model))
    rep = Report("induction_heads", f"Induction heads in {cfg.model}",
                 "Which attention heads implement induction (attend from a repeated token to the token "
                 "that followed its earlier copy, and copy it), which heads supply the previous-token "
                 "information they need, and does ablating them remove the model's in-context gain on a "
                 "repeated random sequence?", _method(cfg))
    scores = rep.table("head_scores", score_table(model, prompts), ["kind", "layer", "head"])
    inds, prevs = ranked(scores, "induction", cfg.min_score), ranked(scores, "previous_token", cfg.min_score)
    ind = inds[0]
    sw = rep.table("sweep", sweeps(model, prompts, cfg.n_tokens, cfg.seed, start,
                                       dict.fromkeys([cfg.mode, *cfg.sweep_modes]),
                                       None if cfg.sweep_layers == "all" else [int(x) for x in cfg.sweep_layers.split(",")]), ["mode", "layer", "head"])
    others = [(L, H) for L in range(model.cfg.n_layers) for H in range(model.cfg.n_heads)
              if (L, H) not in inds + prevs]
    sets = {"top induction head": [ind], "all induction heads": inds, "previous-token heads": prevs,
            "every other head": others}
    jt, curve = joint(model, prompts, cfg.n_tokens, sets, cfg.mode, start)
    jt = rep.table("joint_ablation", jt.assign(mode=cfg.mode), ["condition"])
    curve = rep.table("position_loss", curve, ["condition", "pos"])
    view = rep.table("attention_view", attention_view(model, cfg, {"induction": inds[0], "previous_token": prevs[0]}),
                     ["role", "query", "key"])
    headline = _findings(rep, cfg, scores, sw, jt, curve, view, inds, prevs, model.cfg.d_vocab)
    shown = inputs(model, cfg, cfg.n_view, 1, cfg.seed + 1)
    rep.findings.append(rep.attention("attention_named_heads", model, shown,
                                      list(dict.fromkeys(inds + prevs)),
                                      f"induction and previous-token heads on a {cfg.n_view}-token sequence repeated once"))
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config) -> str:
    source = ("the model's whole vocabulary, uniformly (special tokens excluded; seed {s}), each repeated once, "
              "after BOS only if the model prepends one (the zoo does, SmolLM2 does not)")
    return (f"{cfg.n_seqs} sequences of {cfg.n_tokens} distinct random tokens drawn from {source}. "
            "Head classes: `interp.heads.head_scores` on every sequence (score = mean attention mass "
            "on the kind's target keys over the queries that have one), averaged.\n\n"
            "In-context effect: ratio = mean next-token loss on the repeat / on the first copy (the first "
            "word of each copy left out: it cannot be predicted in context). A ratio near 0 means the "
            "repeat is almost free; near 1 means no in-context gain.\n\n"
            "Causal test: `interp.ablation.sweep` ablates each head alone (zero and mean ablation of its "
            "`hook_z`; mean = per-position mean over these sequences), and `interp.ablation.ablate` ablates "
            f"sets together ({cfg.mode} ablation, the headline: it replaces a head's output by what it "
            "writes on average rather than by an off-distribution zero).").replace("{s}", str(cfg.seed))


def _findings(rep, cfg, scores, sw, jt, curve, view, inds, prevs, vocab: int) -> dict:
    import math

    from interp.report import plots

    L, H = inds[0]
    s = scores.set_index(["kind", "layer", "head"]).score
    j = jt.set_index("condition")
    clean = float(j.clean.iloc[0])
    m = sw[sw["mode"] == cfg.mode].copy()
    m["label"] = [f"L{a}H{b}" for a, b in zip(m.layer, m["head"])]
    rest = m[~m.label.isin([label([h]) for h in inds + prevs])]
    first = curve[(curve.condition == "clean") & (curve["copy"] == "first")].loss.mean()
    ind_scores = ", ".join(f"{label([h])} {fmt(s['induction', h[0], h[1]])}" for h in inds)
    prev_scores = ", ".join(f"{label([h])} {fmt(s['previous_token', h[0], h[1]])}" for h in prevs)
    rep.findings += [
        f"**Induction heads** (mean induction score ≥ {cfg.min_score} over {cfg.n_seqs} sequences): {ind_scores}. "
        f"**Previous-token heads**: {prev_scores}. Every other head scores below {cfg.min_score} on both.",
        f"Clean model: loss on the repeat / loss on the first copy = **{fmt(clean)}** "
        f"(first copy {fmt(first)} nats per token; " + (
            f"a uniform guess over the vocabulary is ln {vocab} = {fmt(math.log(vocab))})."),
        f"Ablating ({cfg.mode}) the top induction head {label(inds[:1])} alone raises the ratio only to "
        f"{fmt(j.ablated['top induction head'])}: the other induction head(s) back it up. Ablating **all induction "
        f"heads ({label(inds)}) gives {fmt(j.ablated['all induction heads'])}** "
        f"({gain_removed(clean, j.ablated['all induction heads'])}), and the previous-token head(s) "
        f"({label(prevs)}) {fmt(j.ablated['previous-token heads'])} "
        f"({gain_removed(clean, j.ablated['previous-token heads'])}). Ablating "
        f"**every other head at once** ({short_label([h for h in _all(m) if h not in inds + prevs])}) gives "
        f"{fmt(j.ablated['every other head'])}; alone, the other heads give ratios "
        f"{fmt(rest.ablated.min())}–{fmt(rest.ablated.max())} (clean {fmt(clean)}).",
    ]
    hs = scores.assign(label=[f"L{a}H{b}" for a, b in zip(scores.layer, scores["head"])])
    rep.findings.append(rep.figure("head_scores", plots.heatmap(hs, "kind", "label", "score", "head scores (mean over sequences)"),
                                   "Head scores per kind (rows) and head (columns)."))
    worst = m.sort_values("ablated", ascending=False).head(20)  # every head of a small model; the top 20 of a large one
    rep.findings.append(rep.figure("sweep", plots.bars(worst, "label", "ablated",
                                                       f"repeat/first loss ratio, one head {cfg.mode}-ablated (clean {clean:.3f})",
                                                       "ratio"), f"Loss ratio with each head ablated alone "
                                                                 f"({'all heads' if len(m) <= 20 else f'the 20 of {len(m)} that raise it most'})."))
    rep.findings.append(rep.figure("position_loss", plots.lines(curve, "pos", "loss", "next-token loss per position",
                                                                hue="condition"),
                                   f"Mean loss per position; the repeat starts after position {cfg.n_tokens}."))
    for role in ("induction", "previous_token"):
        v = view[view.role == role]
        rep.findings.append(rep.figure(f"attention_{role}", plots.heatmap(v, "query", "key", "weight",
                                                                          f"{v.head_label.iloc[0]} ({role}) attention"),
                                       f"{v.head_label.iloc[0]}'s pattern on a {cfg.n_view}-token sequence repeated once."))
    rep.show("Joint ablations", jt)
    rep.show("Head scores (induction)", scores[scores.kind == "induction"])
    return {"induction_heads": label(inds), "previous_token_heads": label(prevs),
            "induction_score": float(s["induction", L, H]), "clean_ratio": clean,
            "ablated_ratio_top_induction": float(j.ablated["top induction head"]),
            "ablated_ratio_induction": float(j.ablated["all induction heads"]),
            "ablated_ratio_previous_token": float(j.ablated["previous-token heads"]),
            "ablated_ratio_all_others": float(j.ablated["every other head"]),
            "max_ratio_other_single": float(rest.ablated.max()),
            "summary": (f"induction heads {label(inds)} (previous-token {label(prevs)}): repeat/first loss ratio "
                        f"{clean:.3f} -> {float(j.ablated['all induction heads']):.3f} when they are {cfg.mode}-ablated; "
                        f"every other head ablated together: {float(j.ablated['every other head']):.3f}")}


def _all(m) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in zip(m.layer, m["head"])]


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.induction_heads --n-seqs 20 --seed 0",
        choices={"mode": ("zero", "mean")})
