"""How a model's prediction forms layer by layer (the logit lens, nostalgebraist 2020): on zoo-4l,
IOI prompts and induction prompts (a random word sequence, then its repeat cut short); on a real
model, IOI prompts (`interp.tasks.ioi`) and factual recall ("The capital of France is" → " Paris",
`interp.tasks.facts`).

Run: python -m experiments.logit_lens [--n-prompts 50 --seed 0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, is_zoo, pct


# `python -m experiments --models M`: a real model gets these instead of the zoo defaults
REAL_MODEL_CONFIG = dict(n_prompts=120)



@dataclass
class Config:
    model: str = "zoo-4l"
    n_prompts: int = 50
    ioi_split: str = "auto"  # zoo: "heldout_structures"; a real model: "eval" (interp.tasks.ioi)
    n_words: int = 20  # length of the random block in induction prompts
    seed: int = 0
    out: str = "reports/logit_lens"


def ioi(n: int, split: str, seed: int, model=None):
    """IOI prompts and their IO / S targets: the zoo's own (model None) or `interp.tasks.ioi`'s."""
    if model is None:
        from interp.zoo.corpus import ioi_prompts

        rows = ioi_prompts("heldout_structures" if split == "auto" else split, n, seed)
    else:
        from interp.tasks.ioi import ioi_prompts

        rows = ioi_prompts(model.tokenizer, "eval" if split == "auto" else split, n, seed)
    return [r["prompt"] for r in rows], {"IO": [r["io"] for r in rows], "S": [r["s"] for r in rows]}


def facts(model):
    """Factual-recall prompts whose answer is one token (`interp.tasks.facts`)."""
    from interp.tasks.facts import fact_prompts

    rows = fact_prompts(model.tokenizer)
    return [r["prompt"] for r in rows], {"answer": [r["answer"] for r in rows]}


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
    zoo = is_zoo(cfg.model)
    second = ("induction", *induction(cfg.n_prompts, cfg.n_words, cfg.seed)) if zoo else ("facts", *facts(model))
    rows = pd.concat([lens_rows(model, "ioi", *ioi(cfg.n_prompts, cfg.ioi_split, cfg.seed, None if zoo else model)),
                      lens_rows(model, *second)])
    rep = Report("logit_lens", f"The logit lens on {cfg.model}: IOI and {'induction' if zoo else 'factual recall'}",
                 "After which layer does the residual stream already predict the right next token? On IOI "
                 "prompts the answer is the indirect object (IO), not the repeated subject (S); " +
                 ("on induction prompts it is the word that followed the current word earlier in the sequence."
                  if zoo else "on factual prompts it is the fact (\"The capital of France is\" → \" Paris\")."),
                 _method(cfg))
    per = rep.table("per_prompt", rows[["task", "role", "prompt", "layer", "target", "target_rank", "target_prob",
                                        "top_token"]], ["task", "role", "prompt", "layer"])
    summ = rep.table("by_layer", summary(rows), ["task", "role", "layer"])
    headline = _findings(rep, cfg, summ, per)
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config) -> str:
    if is_zoo(cfg.model):
        data = (f"IOI: {cfg.n_prompts} prompts from `interp.zoo.corpus.ioi_prompts` (sentence structures held out of training, seed {cfg.seed}); "
                "we follow both IO (the answer) and S (the tempting wrong name). Induction: "
                f"{cfg.n_prompts} prompts of {cfg.n_words} distinct random pool words followed by the first m of them "
                "again (m drawn from 2..n−1); the target is word m+1, which only in-context copying can predict.")
    else:
        data = (f"IOI: {cfg.n_prompts} prompts from `interp.tasks.ioi.ioi_prompts` (the six evaluation templates, "
                f"ABBA and BABA, seed {cfg.seed}); we follow both IO (the answer) and S (the tempting wrong name). "
                "Factual recall: every fact of `interp.tasks.facts` (capitals, official languages, currencies, "
                "continents) whose answer is one token; the target is the answer.")
    return (data + "\n\n`interp.attribution.logit_lens` reads the residual stream at the last position after the "
            "embeddings (layer 0) and after each block L (layer L+1) through the model's final norm and "
            "unembedding; its last layer is the model's output. Per layer: the target's mean probability, "
            "median rank (1 = top) and the share of prompts where it is the top token. Per prompt: the first "
            "layer from which the target stays the top token to the output (*settles*).")


def settle_table(per: pd.DataFrame) -> pd.DataFrame:
    """Per task, role and prompt: the first layer from which the target is top-1 through the output
    (NaN if it is not top-1 at the output)."""
    rows = []
    for (task, role, prompt), g in per.groupby(["task", "role", "prompt"]):
        top = (g.sort_values("layer").target_rank == 1).tolist()
        layer = None
        for i in range(len(top) - 1, -1, -1):
            if not top[i]:
                break
            layer = i
        rows.append({"task": task, "role": role, "prompt": prompt, "settles": layer})
    return pd.DataFrame(rows)


def _shown(values: list, n_layers: int) -> str:
    """Every layer's value for small models; every 5th layer and the last four for deep ones."""
    keep = range(len(values)) if n_layers <= 8 else sorted({*range(0, n_layers + 1, 5), *range(n_layers - 3, n_layers + 1)})
    return ", ".join(f"{i}: {fmt(values[i])}" for i in keep)


def _findings(rep, cfg, summ, per) -> dict:
    from interp.report import plots

    def series(task, role, col):
        s = summ[(summ.task == task) & (summ.role == role)].sort_values("layer")
        return s[col].tolist()

    def first_top(task, role):
        t = series(task, role, "top1")
        hit = [i for i, v in enumerate(t) if v >= 0.5]
        return f"layer {hit[0]}" if hit else "never"

    settle = rep.table("settles", settle_table(per), ["task", "role", "prompt"])
    n_layers = len(series("ioi", "IO", "layer")) - 1
    second, role2 = ("induction", "next") if is_zoo(cfg.model) else ("facts", "answer")
    io_p, s_p, nx_p = series("ioi", "IO", "mean_prob"), series("ioi", "S", "mean_prob"), series(second, role2, "mean_prob")

    def settles(task, role):
        v = settle[(settle.task == task) & (settle.role == role)].settles
        if v.notna().sum() == 0:
            return "it is never the top token at the output"
        return (f"per prompt it settles as the top token at layer {fmt(v.median())} (median; 5–95% "
                f"{fmt(v.quantile(0.05))}–{fmt(v.quantile(0.95))}; {pct(v.isna().mean())} never top-1 at the output)")

    what = "the copied word" if second == "induction" else "the answer"
    rep.findings += [
        f"**IOI**: P(IO) by layer (0 = embeddings … {n_layers} = output): " + _shown(io_p, n_layers) +
        "; P(S): " + _shown(s_p, n_layers) + ". Median rank of IO: " +
        _shown(series("ioi", "IO", "median_rank"), n_layers) +
        f". IO is the top token for most prompts from {first_top('ioi', 'IO')} on "
        f"(share top-1 at the output: {pct(series('ioi', 'IO', 'top1')[-1])}); {settles('ioi', 'IO')}.",
        f"**{'Induction' if second == 'induction' else 'Factual recall'}**: P({what}) by layer: " +
        _shown(nx_p, n_layers) + "; median rank " + _shown(series(second, role2, "median_rank"), n_layers) +
        f". It becomes the top token for most prompts from {first_top(second, role2)} on "
        f"(top-1 at the output: {pct(series(second, role2, 'top1')[-1])}); {settles(second, role2)}.",
    ]
    rep.findings.append("Caveat: the logit lens decodes every intermediate residual with the output's own final "
                        "norm and unembedding, which only the last layer was trained for; a late first appearance "
                        "may partly be the lens failing to read an earlier representation (a tuned lens, trained "
                        "per layer, would tell them apart; interp does not have one yet).")
    s = summ.assign(curve=summ.task + " " + summ.role)
    rep.findings.append(rep.figure("prob_by_layer", plots.lines(s, "layer", "mean_prob", "target probability by layer",
                                                                hue="curve"),
                                   "Mean probability of the target per logit-lens layer (0 = embeddings)."))
    rep.findings.append(rep.figure("rank_by_layer", plots.lines(s, "layer", "median_rank", "target median rank by layer",
                                                                hue="curve"),
                                   "Median rank of the target per layer (1 = top)."))
    rep.show("By layer", summ)
    keep = range(n_layers + 1) if n_layers <= 8 else sorted({*range(0, n_layers + 1, 5), *range(n_layers - 3, n_layers + 1)})
    short = lambda v: " → ".join(f"{v[i]:.2f}" for i in keep)  # noqa: E731
    return {"ioi_io_prob_by_layer": io_p, "ioi_s_prob_by_layer": s_p, f"{second}_prob_by_layer": nx_p,
            "ioi_first_top_layer": first_top("ioi", "IO"), f"{second}_first_top_layer": first_top(second, role2),
            "summary": (f"P(IO) by layer {short(io_p)}; P({'copied word' if second == 'induction' else 'fact'}) "
                        f"{'on induction prompts ' if second == 'induction' else ''}{short(nx_p)}"
                        + ("" if n_layers <= 8 else f" (layers {', '.join(map(str, keep))} of {n_layers})"))}


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.logit_lens --n-prompts 50")
