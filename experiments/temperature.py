"""Temperature: the entropy of the next-token distribution and what seeded samples look like, from
greedy (T = 0) to flat (T = 4). The default studies zoo-4l on prompts in its own language;
`--model smollm2-135m --prompts english` studies a real model on natural English prompts.

Run: python -m experiments.temperature [--model smollm2-135m --prompts english] [--n-samples 5 --seed 0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, pct

PROMPT_SETS = {
    "zoo": {  # the zoo corpus's own constructions
        "ioi": "When Mary and John went to the store, John gave a drink to",
        "gender": "The king said that",
        "filler": "The dog saw the",
        "capital": "The capital of",
    },
    "english": {  # natural English: some with one obvious answer, some open-ended
        "capital": "The capital of France is",
        "story": "Once upon a time, there was a little",
        "moon": "The first person to walk on the moon was",
        "boil": "Water boils at a temperature of",
        "cat": "The cat sat on the",
        "morning": "In the morning, I usually",
        "door": "She opened the door and saw",
        "math": "Two plus two equals",
        "learn": "The best way to learn a new language is to",
        "weather": "The weather today is",
        "health": "If you want to stay healthy, you should",
        "food": "My favourite food is",
    },
}
REAL_MODEL_CONFIG = {"prompts": "english", "n_sample_prompts": 2, "max_new_tokens": 10}  # sampling dominates the time


@dataclass
class Config:
    model: str = "zoo-4l"
    prompts: str = "zoo"  # a PROMPT_SETS key: "zoo" (the zoo's language) or "english"
    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 4.0])
    sample_temperatures: list[float] = field(default_factory=lambda: [0.0, 0.7, 1.0, 1.5])
    n_sample_prompts: int = 4  # samples are drawn for the first n prompts of the set
    n_samples: int = 5
    max_new_tokens: int = 12
    seed: int = 0
    out: str = "reports/temperature"


def prompt_set(cfg: Config) -> dict[str, str]:
    from interp.errors import InterpError

    if cfg.prompts not in PROMPT_SETS:
        raise InterpError(f"unknown prompt set {cfg.prompts!r}: use one of {', '.join(PROMPT_SETS)}")
    return PROMPT_SETS[cfg.prompts]


def entropy_rows(model, prompts: dict[str, str], temps) -> pd.DataFrame:
    from interp.sampling import entropy_by_temperature

    return pd.concat([entropy_by_temperature(model, p, temps).assign(prompt_name=n, prompt=p)
                      for n, p in prompts.items()])


def entropy_spread(ent: pd.DataFrame) -> pd.DataFrame:
    """Per temperature: mean, std and 10/50/90th percentiles of the entropy over prompts."""
    g = ent.groupby("temperature").entropy_nats
    return pd.DataFrame({"mean": g.mean(), "std": g.std(), "p10": g.quantile(0.1), "median": g.median(),
                         "p90": g.quantile(0.9), "n_prompts": g.size()}).reset_index()


def sample_rows(model, prompts: dict[str, str], cfg: Config) -> pd.DataFrame:
    from interp.sampling import sample

    chosen = list(prompts.items())[:cfg.n_sample_prompts]
    frames = [sample(model, p, n=cfg.n_samples, max_new_tokens=cfg.max_new_tokens, temperature=t, seed=cfg.seed)
              .assign(prompt_name=n, temperature=t) for n, p in chosen for t in cfg.sample_temperatures]
    return pd.concat(frames)


def main(cfg: Config) -> dict:
    import interp

    prompts = prompt_set(cfg)
    model = interp.load(cfg.model)
    rep = Report("temperature", f"Temperature and sampling on {cfg.model}",
                 "How does temperature reshape the next-token distribution (its entropy and the top token's "
                 "probability), how much does that vary between prompts, and how varied are seeded sampled "
                 "continuations at each temperature?", _method(cfg, prompts, model))
    ent = rep.table("entropy", entropy_rows(model, prompts, cfg.temperatures)[
        ["prompt_name", "temperature", "entropy_nats", "top_token", "top_prob", "prompt"]], ["prompt_name", "temperature"])
    spread = rep.table("entropy_spread", entropy_spread(ent), ["temperature"])
    samples = rep.table("samples", sample_rows(model, prompts, cfg)[["prompt_name", "temperature", "sample", "text",
                                                                     "n_new_tokens", "stop"]],
                        ["prompt_name", "temperature", "sample"])
    first = samples.assign(first_word=[t.split()[0] if t.split() else "" for t in samples.text])
    div = first.groupby(["prompt_name", "temperature"], as_index=False).agg(
        n_samples=("text", "size"), n_distinct=("text", "nunique"), n_distinct_first=("first_word", "nunique"))
    div = rep.table("diversity", div, ["prompt_name", "temperature"])
    headline = _findings(rep, cfg, prompts, model, ent, spread, samples, div)
    rep.findings.append(_caveats(cfg, model))
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config, prompts: dict[str, str], model) -> str:
    V = model.cfg.d_vocab
    return (f"Prompts ({cfg.prompts} set, {len(prompts)}): " + "; ".join(f"{n}: {p!r}" for n, p in prompts.items())
            + ".\n\n"
            "`interp.sampling.entropy_by_temperature` gives the entropy (nats) of softmax(logits / T) for the "
            f"next token at T in {cfg.temperatures} (T = 0 is the greedy one-hot, entropy 0), one forward per prompt; "
            "`entropy_spread.csv` gives its mean, std and 10/50/90th percentiles over prompts at each T. "
            f"`interp.sampling.sample` draws {cfg.n_samples} continuations of up to {cfg.max_new_tokens} tokens for "
            f"the first {min(cfg.n_sample_prompts, len(prompts))} prompts at T in {cfg.sample_temperatures} with a "
            f"seeded CPU generator (seed {cfg.seed}: the same seed gives the same samples); diversity = the number of "
            f"distinct continuations and first words among them. The vocabulary has {V} tokens, so the maximum "
            f"entropy is ln {V} ≈ {math.log(V):.2f} nats.")


def _findings(rep, cfg, prompts, model, ent, spread, samples, div) -> dict:
    from interp.report import plots

    e = ent.set_index(["prompt_name", "temperature"])
    d = div.set_index(["prompt_name", "temperature"]).n_distinct
    f1 = div.set_index(["prompt_name", "temperature"]).n_distinct_first
    sampled = list(prompts)[:cfg.n_sample_prompts]
    lines = []
    for name in prompts:
        line = (f"- **{name}**: entropy " + ", ".join(f"T={fmt(t)}: {fmt(e.entropy_nats[name, t])}"
                                                    for t in cfg.temperatures)
                + f" nats; top token {e.top_token[name, 1.0]!r} with p = {fmt(e.top_prob[name, 1.0])} at T = 1")
        if name in sampled:
            line += ("; distinct first words among the samples " +
                     ", ".join(f"T={fmt(t)}: {f1[name, t]}/{cfg.n_samples}" for t in cfg.sample_temperatures) +
                     " (distinct whole continuations " + ", ".join(f"{d[name, t]}" for t in cfg.sample_temperatures) + ")")
        lines.append(line + ".")
    monotone = all((g.sort_values("temperature").entropy_nats.diff().dropna() >= -1e-6).all()
                   for _, g in ent.groupby("prompt_name"))
    sp = spread.set_index("temperature")
    V = model.cfg.d_vocab
    rep.findings.append("Across prompts (mean ± std; 10th / 50th / 90th percentile), entropy " + "; ".join(
        f"T={fmt(t)}: {fmt(sp['mean'][t])} ± {fmt(sp['std'][t])} ({fmt(sp.p10[t])} / {fmt(sp['median'][t])} / "
        f"{fmt(sp.p90[t])})" for t in cfg.temperatures if t > 0) + " nats.")
    rep.findings.append("\n".join(lines))
    sure = [n for n in prompts if e.entropy_nats[n, 1.0] < 0.5]
    sure_text = (f"Prompts the model is sure of at T = 1 ({', '.join(sure)}: entropy < 0.5 nats) stay nearly "
                 "deterministic until T grows above 1; the others are spread already at T = 1." if sure else
                 "No prompt has an entropy below 0.5 nats at T = 1: every next-token distribution is spread already.")
    rep.findings.append(f"Entropy is {'non-decreasing' if monotone else 'NOT monotone'} in T for every prompt. "
                        + sure_text + f" The uniform distribution has ln {V} ≈ {math.log(V):.2f} nats; at T = "
                        f"{fmt(max(cfg.temperatures))} the mean entropy is {fmt(sp['mean'][max(cfg.temperatures)])} nats.")
    ex_name = sampled[min(1, len(sampled) - 1)]
    ex = samples[(samples.prompt_name == ex_name) & (samples["sample"] == 0)]
    rep.findings.append(f"Example continuations of {prompts[ex_name]!r} (sample 0): " +
                        "; ".join(f"T={fmt(r.temperature)}: {r.text!r}" for r in ex.itertuples()) + ".")
    long = spread.melt(id_vars="temperature", value_vars=["p10", "median", "p90"], var_name="statistic",
                       value_name="entropy_nats")
    rep.findings.append(rep.figure("entropy", plots.lines(ent, "temperature", "entropy_nats",
                                                          "next-token entropy vs temperature", hue="prompt_name"),
                                   "Entropy (nats) of the next-token distribution per prompt and temperature."))
    rep.findings.append(rep.figure("entropy_spread", plots.lines(long, "temperature", "entropy_nats",
                                                                 "entropy over prompts: percentiles", hue="statistic"),
                                   "10th, 50th and 90th percentile of the entropy over prompts per temperature."))
    rep.show("Entropy spread over prompts", spread)
    rep.show("Entropy", ent.drop(columns="prompt"))
    rep.show("Samples", samples)
    at1 = {n: float(e.entropy_nats[n, 1.0]) for n in prompts}
    return {"entropy_at_T1": at1, "monotone": bool(monotone),
            "entropy_at_T1_mean": float(sp["mean"][1.0]) if 1.0 in sp.index else None,
            "summary": (f"entropy at T=1 over {len(prompts)} prompts: median {fmt(sp['median'][1.0])} nats "
                        f"(10th–90th percentile {fmt(sp.p10[1.0])}–{fmt(sp.p90[1.0])}), rising to a mean of "
                        f"{fmt(sp['mean'][max(cfg.temperatures)])} at T={max(cfg.temperatures):g} "
                        f"(uniform: {math.log(V):.2f})" if 1.0 in sp.index else
                        f"entropy over {len(prompts)} prompts, T in {cfg.temperatures}")}


def _caveats(cfg, model) -> str:
    notes = ["**Caveats.** Entropy is of the next token only, after one prompt; a continuation's diversity also "
             "depends on how the distribution changes as it is sampled. Greedy (T = 0) takes the first of tied top "
             "tokens. Samples are few (a handful per prompt and temperature), so the diversity counts are coarse."]
    info = model.info
    if getattr(info, "quantization", "none") != "none":
        notes.append(f"Weights: {info.weights}.")
    if "instruct" in f"{info.weights} {getattr(info, 'origin', '')}".lower():
        notes.append("The checkpoint is an instruct (chat) model, run here on plain text without its chat template: "
                     "how a base LM is prompted, not how it was tuned.")
    return " ".join(notes)


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.temperature --model smollm2-135m --prompts english",
        choices={"prompts": list(PROMPT_SETS)})
