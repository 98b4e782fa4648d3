"""A gender direction in the zoo-4l embedding and in real all-MiniLM-L6-v2: does a direction fitted
on some word pairs classify held-out gendered words, solve analogies, and where in the residual
stream is gender linearly decodable? (Bolukbasi et al. 2016; Alain & Bengio 2016 for probes.)

Run: python -m experiments.gender_direction [--seed 0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, pct

# Common English (male, female) pairs for MiniLM; pairs that are not one WordPiece token each are
# dropped (and listed in the report).
ENGLISH_PAIRS = [
    ("man", "woman"), ("king", "queen"), ("boy", "girl"), ("father", "mother"), ("son", "daughter"),
    ("brother", "sister"), ("husband", "wife"), ("uncle", "aunt"), ("nephew", "niece"), ("he", "she"),
    ("him", "her"), ("mr", "mrs"), ("prince", "princess"), ("actor", "actress"), ("waiter", "waitress"),
    ("gentleman", "lady"), ("male", "female"), ("grandfather", "grandmother"), ("grandson", "granddaughter"),
    ("boyfriend", "girlfriend"), ("groom", "bride"), ("monk", "nun"), ("emperor", "empress"), ("duke", "duchess"),
    ("hero", "heroine"), ("host", "hostess"), ("sir", "madam"), ("dad", "mom"), ("men", "women"),
    ("boys", "girls"), ("kings", "queens"), ("fathers", "mothers"), ("sons", "daughters"),
    ("brothers", "sisters"), ("stepfather", "stepmother"), ("godfather", "godmother"), ("lad", "lass"),
    ("businessman", "businesswoman"), ("spokesman", "spokeswoman"), ("chairman", "chairwoman"),
    ("landlord", "landlady"), ("bull", "cow"), ("stallion", "mare"), ("wizard", "witch"), ("god", "goddess"),
    ("count", "countess"), ("masculine", "feminine"), ("fraternity", "sorority"), ("patriarch", "matriarch"),
    ("husbands", "wives"), ("uncles", "aunts"), ("princes", "princesses"),
]


@dataclass
class Config:
    zoo_model: str = "zoo-4l"
    real_model: str = "all-MiniLM-L6-v2"
    heldout_fraction: float = 0.3  # MiniLM pairs held out (the zoo uses its lexicon's split)
    n_probe_seeds: int = 5  # word splits averaged in the per-layer probe
    template: str = "The {word}"
    seed: int = 0
    out: str = "reports/gender_direction"


def single_token_pairs(model, pairs) -> tuple[list, list]:
    """(pairs whose two words are single tokens, dropped pairs)."""
    from interp.embeddings import word_token
    from interp.errors import InterpError

    keep, drop = [], []
    for p in pairs:
        try:
            [word_token(model, w) for w in p]
            keep.append(p)
        except InterpError:
            drop.append(p)
    return keep, drop


def split_pairs(pairs, fraction: float, seed: int):
    """A seeded split of pairs into (train, held_out): both words of a pair stay together."""
    pairs = sorted(set(pairs))
    random.Random(seed).shuffle(pairs)
    k = max(2, round(fraction * len(pairs)))
    return sorted(pairs[k:]), sorted(pairs[:k])


def groups(pairs) -> dict:
    return {"male": [m for m, _ in pairs], "female": [f for _, f in pairs]}


def accuracy_rows(model, name: str, train, held) -> tuple[list[dict], pd.DataFrame]:
    """Classification accuracy of the diff-of-means and probe directions on train and held-out words."""
    from interp.embeddings import pair_direction, probe_words, project

    dom = pair_direction(model, train, labels=("male", "female"))
    probe = probe_words(model, groups(train), test_fraction=0.25, seed=0)
    rows, proj = [], []
    for method, direction in (("diff_of_means", dom), ("probe", probe.direction)):
        for split, pairs in (("train", train), ("held_out", held)):
            words = [w for p in pairs for w in p]
            truth = [lab for _ in pairs for lab in ("male", "female")]
            p = project(model, words, direction).assign(label=truth)
            rows.append({"model": name, "method": method, "split": split, "n_words": len(words),
                         "accuracy": float((p.side == p.label).mean())})
            if split == "held_out":
                proj.append(p.assign(model=name, method=method))
    rows.append({"model": name, "method": "pair_consistency", "split": "train", "n_words": 2 * len(train),
                 "accuracy": dom.consistency})
    return rows, pd.concat(proj)


def analogy_rows(model, name: str, train, held) -> pd.DataFrame:
    """a:b :: c:? with (a, b) a training pair and (c, ?) a held-out pair, both directions."""
    from interp.embeddings import evaluate_analogies, parse_questions

    lines = [": male-to-female"] + [f"{a} {b} {c} {d}" for a, b in train for c, d in held]
    lines += [": female-to-male"] + [f"{b} {a} {d} {c}" for a, b in train for c, d in held]
    scores = evaluate_analogies(model, parse_questions("\n".join(lines) + "\n", "gender pairs"))
    return scores.sections.assign(model=name)


CLASSIC = [("man", "woman", "king", "queen"), ("man", "woman", "prince", "princess"), ("man", "woman", "uncle", "aunt"),
           ("man", "woman", "son", "daughter"), ("woman", "man", "queen", "king"), ("woman", "man", "girl", "boy")]


def classic_rows(model, name: str) -> pd.DataFrame:
    """The textbook questions (c − a + b, e.g. king − man + woman), one row each: prediction or skip reason."""
    from interp.embeddings import evaluate_analogies, parse_questions

    lines = [": classic"] + [" ".join(q) for q in CLASSIC]
    q = evaluate_analogies(model, parse_questions("\n".join(lines) + "\n", "classic gender analogies")).questions
    return q.assign(model=name)


def layer_rows(model, name: str, pairs, template: str, n_seeds: int) -> pd.DataFrame:
    """Held-out probe accuracy per residual stage, averaged over seeded word splits."""
    from interp.embeddings import probe_residual

    frames = [probe_residual(model, groups(pairs), template=template, seed=s).assign(split_seed=s)
              for s in range(n_seeds)]
    df = pd.concat(frames)
    df["stage"] = [0 if pd.isna(L) else int(L) + 1 for L in df.layer]
    out = df.groupby(["stage", "hook"], as_index=False).agg(
        heldout_accuracy=("heldout_accuracy", "mean"), heldout_min=("heldout_accuracy", "min"),
        chance=("chance", "mean"), n_test=("n_test", "first"))
    return out.assign(model=name)


def main(cfg: Config) -> dict:
    import interp
    from interp.zoo.lexicon import gender_pairs

    zoo, real = interp.load(cfg.zoo_model), interp.load(cfg.real_model)
    real_pairs, dropped = single_token_pairs(real, ENGLISH_PAIRS)
    splits = {cfg.zoo_model: (zoo, gender_pairs("train"), gender_pairs("held_out")),
              cfg.real_model: (real, *split_pairs(real_pairs, cfg.heldout_fraction, cfg.seed))}
    acc, proj, ana, layers, classic = [], [], [], [], []
    for name, (model, train, held) in splits.items():
        rows, p = accuracy_rows(model, name, train, held)
        acc += rows
        proj.append(p)
        ana.append(analogy_rows(model, name, train, held))
        classic.append(classic_rows(model, name))
        tmpl = cfg.template if name == cfg.zoo_model else cfg.template.lower()
        layers.append(layer_rows(model, name, train + held, tmpl, cfg.n_probe_seeds))
    rep = Report("gender_direction", "A gender direction: zoo-4l vs all-MiniLM-L6-v2",
                 "Is there one direction in the input embedding that separates male from female words, "
                 "so that a direction fitted on some word pairs classifies words from other pairs, and "
                 "completes analogies? Where in the residual stream is gender linearly decodable?",
                 _method(cfg, splits, dropped))
    acc = rep.table("accuracy", pd.DataFrame(acc), ["model", "method", "split"])
    proj = rep.table("heldout_projections", pd.concat(proj)[["model", "method", "word", "label", "projection", "side"]],
                     ["model", "method", "label", "word"])
    ana = rep.table("analogies", pd.concat(ana)[["model", "section", "n_questions", "n_evaluated", "n_skipped",
                                                 "n_correct", "accuracy"]], ["model", "section"])
    layers = rep.table("probe_by_layer", pd.concat(layers), ["model", "stage"])
    classic = rep.table("classic_analogies", pd.concat(classic)[["model", "line", "a", "b", "c", "expected", "predicted",
                                                                 "correct", "skipped"]], ["model", "line"])
    pairs = rep.table("pairs", pd.DataFrame([{"model": n, "male": m, "female": f, "split": s}
                                             for n, (_, tr, he) in splits.items()
                                             for s, ps in (("train", tr), ("held_out", he)) for m, f in ps]),
                      ["model", "split", "male"])
    headline = _findings(rep, cfg, acc, proj, ana, layers, pairs)
    rep.findings.insert(len(rep.findings) - 3, _classic_text(classic))
    rep.show("Classic analogies", classic)
    rep.write(cfg.out, config_dict(cfg, [cfg.zoo_model, cfg.real_model]), headline)
    return headline


def _classic_text(classic: pd.DataFrame) -> str:
    """One sentence per model: each textbook question and what the embedding answers."""
    parts = []
    for name, g in classic.groupby("model", sort=True):
        done = g[g.skipped.isna() | (g.skipped.astype(str) == "")]
        items = [f"{r.c} − {r.a} + {r.b} → {r.predicted} ({'right' if r.correct else 'expected ' + r.expected})"
                 for r in done.itertuples()]
        skip = f"; {len(g) - len(done)} skipped (a word is not one token)" if len(g) > len(done) else ""
        parts.append(f"{name}: {int(done.correct.sum())}/{len(done)} — " + "; ".join(items) + skip)
    return "Textbook analogies (nearest word to c − a + b, inputs excluded): " + ". ".join(parts) + "."


def _method(cfg, splits, dropped) -> str:
    z, r = splits[cfg.zoo_model], splits[cfg.real_model]
    drop = ", ".join(f"{m}/{f}" for m, f in dropped) or "none"
    return (f"Word pairs: {cfg.zoo_model} uses `interp.zoo.lexicon.gender_pairs` ({len(z[1])} train, {len(z[2])} "
            f"held-out pairs); {cfg.real_model} uses {len(r[1]) + len(r[2])} common English pairs written for this "
            f"experiment ({len(r[1])} train, {len(r[2])} held out, seeded split {cfg.seed}; dropped as not single "
            f"WordPiece tokens: {drop}). Pairs are split whole, so no held-out word has its partner in training.\n\n"
            "Directions (input embedding W_E): diff of means of the train pairs' offsets "
            "(`interp.embeddings.pair_direction`) and a logistic-regression probe on the train words "
            "(`interp.embeddings.probe_words`, its weight vector as a direction). Each classifies a word by the "
            "side of its threshold the word's projection falls (`interp.embeddings.project`); accuracy is "
            "reported on train and held-out words.\n\n"
            "Analogies: `interp.embeddings.evaluate_analogies` on questions a:b :: c:? with (a, b) a train pair "
            "and (c, d) a held-out pair, male→female and female→male; plus six textbook questions "
            "(king − man + woman etc.) shown one by one.\n\n"
            f"Residual stream: `interp.embeddings.probe_residual` with template {cfg.template!r} (lower-cased for "
            f"the uncased MiniLM) on all pairs' words, at the word's position after the embedding (stage 0) and "
            f"after each block; held-out accuracy averaged over {cfg.n_probe_seeds} seeded word splits (30% held out).")


def _findings(rep, cfg, acc, proj, ana, layers, pairs) -> dict:
    from interp.report import plots

    a = acc.set_index(["model", "method", "split"]).accuracy
    an = ana.set_index(["model", "section"]).accuracy
    head = {}
    for name in (cfg.zoo_model, cfg.real_model):
        lay = layers[layers.model == name]
        first = lay[lay.heldout_accuracy >= 0.9]
        where = (f"first reaches ≥ 90% at stage {int(first.stage.iloc[0])} ({first.hook.iloc[0]})" if len(first)
                 else f"never reaches 90% (best {pct(lay.heldout_accuracy.max())})")
        rep.findings.append(
            f"**{name}**: the diff-of-means direction classifies **{pct(a[name, 'diff_of_means', 'held_out'])}** of "
            f"held-out words ({pct(a[name, 'diff_of_means', 'train'])} of train words); the probe direction "
            f"{pct(a[name, 'probe', 'held_out'])} held out. Pair offsets agree with each other (mean leave-one-out "
            f"cosine) {fmt(a[name, 'pair_consistency', 'train'])}. Analogies train pair → held-out pair: "
            f"{pct(an[name, 'male-to-female'])} male→female, {pct(an[name, 'female-to-male'])} female→male. "
            f"Probe by layer: held-out accuracy {pct(lay.heldout_accuracy.iloc[0])} on the embedding, "
            + ", ".join(pct(v) for v in lay.heldout_accuracy.iloc[1:]) + f" after blocks 0–{len(lay) - 2}; {where}.")
        head[name] = {"dom_heldout": float(a[name, "diff_of_means", "held_out"]),
                      "probe_heldout": float(a[name, "probe", "held_out"]),
                      "analogy_m2f": float(an[name, "male-to-female"]), "analogy_f2m": float(an[name, "female-to-male"]),
                      "layer_probe": [float(v) for v in lay.heldout_accuracy]}
    rep.findings.append(rep.figure("probe_by_layer", plots.lines(layers, "stage", "heldout_accuracy",
                                                                 "gender probe, held-out accuracy", hue="model"),
                                   "Held-out probe accuracy per residual stage (0 = embedding)."))
    for name in (cfg.zoo_model, cfg.real_model):
        p = proj[(proj.model == name) & (proj.method == "diff_of_means")].sort_values(["projection", "word"])
        p = p.assign(word_label=[f"{w} ({lab[0]})" for w, lab in zip(p.word, p.label)])
        rep.findings.append(rep.figure(f"projections_{name}", plots.bars(p, "word_label", "projection",
                                                                         f"{name}: held-out words on the gender direction"),
                                       f"{name}: held-out words projected on the diff-of-means direction (m/f = true label)."))
    rep.show("Accuracy", acc)
    rep.show("Analogies", ana)
    rep.show("Probe by layer", layers)
    zoo, real = head[cfg.zoo_model], head[cfg.real_model]
    return {**{f"{k}_{m}": v for m, d in (("zoo", zoo), ("minilm", real)) for k, v in d.items()},
            "summary": (f"held-out gendered words classified by the diff-of-means direction: {cfg.zoo_model} "
                        f"{pct(zoo['dom_heldout'])}, {cfg.real_model} {pct(real['dom_heldout'])}; analogies to held-out "
                        f"pairs {pct(zoo['analogy_m2f'])} / {pct(real['analogy_m2f'])} (male→female)")}


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.gender_direction --seed 0")
