"""How zoo-4l's prediction forms layer by layer (the logit lens, nostalgebraist 2020), on IOI
prompts and on induction prompts (a random word sequence, then its repeat cut short).

Run: python -m experiments.logit_lens [--n-prompts 50 --seed 0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, pct


@dataclass
class Config:
    model: str = "zoo-4l"
    n_prompts: int = 50
    ioi_split: str = "heldout_both"
    n_words: int = 20  # length of the random block in induction prompts
    seed: int = 0
    out: str = "reports/logit_lens"


def ioi(n: int, split: str, seed: int):
    from interp.zoo.corpus import ioi_prompts

    rows = ioi_prompts(split, n, seed)
    return [r["prompt"] for r in rows], {"IO": [r["io"] for r in rows], "S": [r["s"] for r in rows]}


def induction(n: int, n_words: int, seed: int):
    """' w1 .. wn w1 .. wm' with 2 <= m < n; the target is w(m+1) (it can only be copied)."""
    from interp.zoo.corpus import random_pool

    rng, pool = random.Random(seed), random_pool()
    prompts, targets = [], []
    for _ in range(n):
        words = rng.sample(pool, n_words)
        m = rng.randint(2, n_words - 1)
        prompts.append(" " + " ".join(words + words[:m]))
        targets.append(" " + words[m])
    return prompts, {"next": targets}


def lens_rows(model, task: str, prompts, targets: dict) -> pd.DataFrame:
    """Per prompt, layer and target role: the target's rank and probability (interp.attribution.logit_lens)."""
    from interp.attribution import logit_lens

    frames = []
    for role, tgt in targets.items():
        df = logit_lens(model, prompts, target=tgt, k=1)
        frames.append(df[["prompt", "layer", "hook", "target", "target_rank", "target_prob", "token"]]
                      .rename(columns={"token": "top_token"}).assign(task=task, role=role))
    return pd.concat(frames)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    g = rows.assign(top1=rows.target_rank == 1).groupby(["task", "role", "layer", "hook"], as_index=False)
    return g.agg(mean_prob=("target_prob", "mean"), median_rank=("target_rank", "median"),
                 mean_rank=("target_rank", "mean"), top1=("top1", "mean"), n_prompts=("prompt", "count"))


def main(cfg: Config) -> dict:
    import interp

    model = interp.load(cfg.model)
    rows = pd.concat([lens_rows(model, "ioi", *ioi(cfg.n_prompts, cfg.ioi_split, cfg.seed)),
                      lens_rows(model, "induction", *induction(cfg.n_prompts, cfg.n_words, cfg.seed))])
    rep = Report("logit_lens", f"The logit lens on {cfg.model}: IOI and induction",
                 "After which layer does the residual stream already predict the right next token? On IOI "
                 "prompts the answer is the indirect object (IO), not the repeated subject (S); on induction "
                 "prompts it is the word that followed the current word earlier in the sequence.", _method(cfg))
    per = rep.table("per_prompt", rows[["task", "role", "prompt", "layer", "target", "target_rank", "target_prob",
                                        "top_token"]], ["task", "role", "prompt", "layer"])
    summ = rep.table("by_layer", summary(rows), ["task", "role", "layer"])
    headline = _findings(rep, cfg, summ, per)
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config) -> str:
    return (f"IOI: {cfg.n_prompts} prompts from `ioi_prompts(\"{cfg.ioi_split}\", seed={cfg.seed})` (clauses never "
            "seen in training); we follow both IO (the answer) and S (the tempting wrong name). Induction: "
            f"{cfg.n_prompts} prompts of {cfg.n_words} distinct random pool words followed by the first m of them "
            "again (m drawn from 2..n−1); the target is word m+1, which only in-context copying can predict.\n\n"
            "`interp.attribution.logit_lens` reads the residual stream at the last position after the "
            "embeddings (layer 0) and after each block L (layer L+1) through the model's final LayerNorm and "
            "unembedding; its last layer is the model's output. Per layer: the target's mean probability, "
            "median rank (1 = top) and the share of prompts where it is the top token.")


def _findings(rep, cfg, summ, per) -> dict:
    from interp.report import plots

    def series(task, role, col):
        s = summ[(summ.task == task) & (summ.role == role)].sort_values("layer")
        return s[col].tolist()

    def first_top(task, role):
        t = series(task, role, "top1")
        hit = [i for i, v in enumerate(t) if v >= 0.5]
        return f"layer {hit[0]}" if hit else "never"

    n_layers = len(series("ioi", "IO", "layer")) - 1
    io_p, s_p, nx_p = series("ioi", "IO", "mean_prob"), series("ioi", "S", "mean_prob"), series("induction", "next", "mean_prob")
    rep.findings += [
        f"**IOI**: P(IO) per layer (0 = embeddings … {n_layers} = output): " + ", ".join(fmt(v) for v in io_p) +
        "; P(S): " + ", ".join(fmt(v) for v in s_p) + ". Median rank of IO: " +
        ", ".join(fmt(v) for v in series("ioi", "IO", "median_rank")) +
        f". IO is the top token for most prompts from {first_top('ioi', 'IO')} on "
        f"(share top-1 at the output: {pct(series('ioi', 'IO', 'top1')[-1])}).",
        "**Induction**: P(next) per layer: " + ", ".join(fmt(v) for v in nx_p) + "; median rank " +
        ", ".join(fmt(v) for v in series("induction", "next", "median_rank")) +
        f". The copied word becomes the top token for most prompts from {first_top('induction', 'next')} on "
        f"(top-1 at the output: {pct(series('induction', 'next', 'top1')[-1])}).",
    ]
    s = summ.assign(curve=summ.task + " " + summ.role)
    rep.findings.append(rep.figure("prob_by_layer", plots.lines(s, "layer", "mean_prob", "target probability by layer",
                                                                hue="curve"),
                                   "Mean probability of the target per logit-lens layer (0 = embeddings)."))
    rep.findings.append(rep.figure("rank_by_layer", plots.lines(s, "layer", "median_rank", "target median rank by layer",
                                                                hue="curve"),
                                   "Median rank of the target per layer (1 = top)."))
    rep.show("By layer", summ)
    return {"ioi_io_prob_by_layer": io_p, "ioi_s_prob_by_layer": s_p, "induction_prob_by_layer": nx_p,
            "ioi_first_top_layer": first_top("ioi", "IO"), "induction_first_top_layer": first_top("induction", "next"),
            "summary": (f"P(IO) by layer {' → '.join(f'{v:.2f}' for v in io_p)}; P(copied word) on induction "
                        f"prompts {' → '.join(f'{v:.2f}' for v in nx_p)}")}


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.logit_lens --n-prompts 50")
