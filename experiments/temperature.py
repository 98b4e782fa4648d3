"""Temperature on zoo-4l: the entropy of the next-token distribution and what samples look like,
from greedy (T = 0) to flat (T = 4).

Run: python -m experiments.temperature [--n-samples 5 --seed 0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt

PROMPTS = {
    "ioi": "When Mary and John went to the store, John gave a drink to",
    "gender": "The king said that",
    "filler": "The dog saw the",
    "capital": "The capital of",
}


@dataclass
class Config:
    model: str = "zoo-4l"
    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 4.0])
    sample_temperatures: list[float] = field(default_factory=lambda: [0.0, 0.7, 1.0, 1.5])
    n_samples: int = 5
    max_new_tokens: int = 12
    seed: int = 0
    out: str = "reports/temperature"


def entropy_rows(model, temps) -> pd.DataFrame:
    from interp.sampling import entropy_by_temperature

    return pd.concat([entropy_by_temperature(model, p, temps).assign(prompt_name=n, prompt=p)
                      for n, p in PROMPTS.items()])


def sample_rows(model, cfg: Config) -> pd.DataFrame:
    from interp.sampling import sample

    frames = [sample(model, p, n=cfg.n_samples, max_new_tokens=cfg.max_new_tokens, temperature=t, seed=cfg.seed)
              .assign(prompt_name=n, temperature=t) for n, p in PROMPTS.items() for t in cfg.sample_temperatures]
    return pd.concat(frames)


def main(cfg: Config) -> dict:
    import interp

    model = interp.load(cfg.model)
    rep = Report("temperature", f"Temperature and sampling on {cfg.model}",
                 "How does temperature reshape the next-token distribution (its entropy and the top token's "
                 "probability), and how varied are sampled continuations at each temperature?", _method(cfg))
    ent = rep.table("entropy", entropy_rows(model, cfg.temperatures)[
        ["prompt_name", "temperature", "entropy_nats", "top_token", "top_prob", "prompt"]], ["prompt_name", "temperature"])
    samples = rep.table("samples", sample_rows(model, cfg)[["prompt_name", "temperature", "sample", "text",
                                                            "n_new_tokens", "stop"]],
                        ["prompt_name", "temperature", "sample"])
    first = samples.assign(first_word=[t.split()[0] if t.split() else "" for t in samples.text])
    div = first.groupby(["prompt_name", "temperature"], as_index=False).agg(
        n_samples=("text", "size"), n_distinct=("text", "nunique"), n_distinct_first=("first_word", "nunique"))
    div = rep.table("diversity", div, ["prompt_name", "temperature"])
    headline = _findings(rep, cfg, ent, samples, div)
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config) -> str:
    return ("Prompts: " + "; ".join(f"{n}: {p!r}" for n, p in PROMPTS.items()) + ".\n\n"
            "`interp.sampling.entropy_by_temperature` gives the entropy (nats) of softmax(logits / T) for the "
            f"next token at T in {cfg.temperatures} (T = 0 is the greedy one-hot, entropy 0). "
            f"`interp.sampling.sample` draws {cfg.n_samples} continuations of up to {cfg.max_new_tokens} tokens at T in "
            f"{cfg.sample_temperatures} with a seeded generator (seed {cfg.seed}); diversity = number of distinct "
            "continuations among them. The zoo vocabulary has 1000 tokens, so the maximum entropy is ln 1000 ≈ 6.91 nats.")


def _findings(rep, cfg, ent, samples, div) -> dict:
    from interp.report import plots

    e = ent.set_index(["prompt_name", "temperature"])
    d = div.set_index(["prompt_name", "temperature"]).n_distinct
    f1 = div.set_index(["prompt_name", "temperature"]).n_distinct_first
    lines = []
    for name in PROMPTS:
        lines.append(f"- **{name}**: entropy " + ", ".join(f"T={fmt(t)}: {fmt(e.entropy_nats[name, t])}"
                                                         for t in cfg.temperatures) +
                     f" nats; top token {e.top_token[name, 1.0]!r} with p = {fmt(e.top_prob[name, 1.0])} at T = 1; "
                     "distinct first words among the samples " +
                     ", ".join(f"T={fmt(t)}: {f1[name, t]}/{cfg.n_samples}" for t in cfg.sample_temperatures) +
                     " (distinct whole continuations " +
                     ", ".join(f"{d[name, t]}" for t in cfg.sample_temperatures) + ").")
    monotone = all((g.sort_values("temperature").entropy_nats.diff().dropna() >= -1e-6).all()
                   for _, g in ent.groupby("prompt_name"))
    rep.findings.append("\n".join(lines))
    sure = [n for n in PROMPTS if e.entropy_nats[n, 1.0] < 0.1]
    rep.findings.append(f"Entropy is {'non-decreasing' if monotone else 'NOT monotone'} in T for every prompt. "
                        f"Prompts the model is sure about at T = 1 ({', '.join(sure) or 'none'}: entropy < 0.1 nats) "
                        "stay nearly deterministic until T grows well above 1; the others are spread already at T = 1, "
                        "and every prompt approaches the uniform ln 1000 ≈ 6.91 nats as T grows.")
    ex = samples[(samples.prompt_name == "gender") & (samples["sample"] == 0)]
    rep.findings.append("Example continuations of " + repr(PROMPTS["gender"]) + " (sample 0): " +
                        "; ".join(f"T={fmt(r.temperature)}: {r.text!r}" for r in ex.itertuples()) + ".")
    rep.findings.append(rep.figure("entropy", plots.lines(ent, "temperature", "entropy_nats",
                                                          "next-token entropy vs temperature", hue="prompt_name"),
                                   "Entropy (nats) of the next-token distribution per prompt and temperature."))
    rep.show("Entropy", ent.drop(columns="prompt"))
    rep.show("Samples", samples)
    at1 = {n: float(e.entropy_nats[n, 1.0]) for n in PROMPTS}
    return {"entropy_at_T1": at1, "monotone": bool(monotone),
            "summary": "entropy at T=1: " + ", ".join(f"{n} {v:.2f}" for n, v in at1.items()) +
                       f" nats, rising to {float(ent.entropy_nats.max()):.2f} at T={max(cfg.temperatures):g}"}


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.temperature --n-samples 5 --seed 0")
