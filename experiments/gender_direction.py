"""A gender direction in a model's input embedding and residual stream: does a direction fitted on
some word pairs classify the words of held-out pairs, solve analogies (against the nearest-word
baselines), and where in the residual stream is gender linearly decodable on held-out pairs?
(Bolukbasi et al. 2016; Alain & Bengio 2016 for probes.)

`--model zoo` (the default) studies zoo-4l (its lexicon's pairs) beside all-MiniLM-L6-v2 (common
English pairs); any other name studies that one model (`--model smollm2-135m`).

Run: python -m experiments.gender_direction [--model smollm2-135m] [--seed 0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, pct

ZOO = "zoo"
# Common English (male, female) pairs for real models; pairs that are not one token each are
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
    ("husbands", "wives"), ("uncles", "aunts"), ("princes", "princesses"), ("himself", "herself"),
    ("his", "hers"), ("grandpa", "grandma"), ("daddy", "mommy"), ("papa", "mama"), ("widower", "widow"),
    ("schoolboy", "schoolgirl"), ("policeman", "policewoman"), ("brotherhood", "sisterhood"),
    ("nephews", "nieces"), ("gentlemen", "ladies"), ("males", "females"), ("dads", "moms"),
    ("bachelor", "spinster"), ("masculinity", "femininity"), ("boyhood", "girlhood"),
]
REAL_MODEL_CONFIG: dict = {}  # `python -m experiments --models NAME` sets model=NAME; nothing else changes


@dataclass
class Config:
    model: str = ZOO  # the model studied; "zoo" = zoo_model beside real_model (the default run)
    zoo_model: str = "zoo-4l"
    real_model: str = "all-MiniLM-L6-v2"
    heldout_fraction: float = 0.3  # English pairs held out per split (the zoo's main split is its lexicon's)
    n_splits: int = 5  # seeded pair splits behind the spread of held-out accuracies (static and per layer)
    template: str = "The {word}"
    seed: int = 0
    out: str = "reports/gender_direction"


def studied(cfg: Config) -> list[str]:
    return [cfg.zoo_model, cfg.real_model] if cfg.model == ZOO else [cfg.model]


def single_token_pairs(model, pairs) -> tuple[list, list]:
    """(pairs whose two words are single tokens, dropped pairs)."""
    from interp.embeddings.vectors import why_not_word

    keep, drop = [], []
    for p in pairs:
        (keep if all(why_not_word(model, w)[0] is not None for w in p) else drop).append(p)
    return keep, drop


def split_pairs(pairs, fraction: float, seed: int):
    """A seeded split of pairs into (train, held_out): both words of a pair stay together."""
    pairs = sorted(set(pairs))
    random.Random(seed).shuffle(pairs)
    k = max(2, round(fraction * len(pairs)))
    return sorted(pairs[k:]), sorted(pairs[:k])


def word_pairs(model, cfg: Config) -> tuple[list, list, list, str]:
    """(train, held_out, dropped, source): a zoo model's lexicon split, else the English pairs' seeded split."""
    if model.info.source == "zoo":
        from interp.zoo.lexicon import gender_pairs

        return gender_pairs("train"), gender_pairs("held_out"), [], "lexicon"
    keep, drop = single_token_pairs(model, ENGLISH_PAIRS)
    return (*split_pairs(keep, cfg.heldout_fraction, cfg.seed), drop, "english")


def groups(pairs) -> dict:
    return {"male": [m for m, _ in pairs], "female": [f for _, f in pairs]}


def words_of(pairs) -> tuple[list[str], list[str]]:
    return [w for p in pairs for w in p], [lab for _ in pairs for lab in ("male", "female")]


def directions(model, train) -> dict:
    """The diff-of-means direction of the train pairs and a probe direction fitted on their words."""
    from interp.embeddings import pair_direction, probe_words

    return {"diff_of_means": pair_direction(model, train, labels=("male", "female")),
            "probe": probe_words(model, groups(train), test_fraction=0.25, seed=0).direction}


def accuracy_rows(model, name: str, train, held) -> tuple[list[dict], pd.DataFrame]:
    """Classification accuracy of the diff-of-means and probe directions on train and held-out words."""
    from interp.embeddings import project

    rows, proj = [], []
    dirs = directions(model, train)
    for method, direction in dirs.items():
        for split, pairs in (("train", train), ("held_out", held)):
            words, truth = words_of(pairs)
            p = project(model, words, direction).assign(label=truth)
            rows.append({"model": name, "method": method, "split": split, "n_words": len(words),
                         "accuracy": float((p.side == p.label).mean())})
            if split == "held_out":
                proj.append(p.assign(model=name, method=method))
    rows.append({"model": name, "method": "pair_consistency", "split": "train", "n_words": 2 * len(train),
                 "accuracy": dirs["diff_of_means"].consistency})
    return rows, pd.concat(proj)


def shuffled(pairs, seed: int) -> list[tuple[str, str]]:
    """A control labelling (Hewitt & Liang 2019): each pair's order flipped at random, so each
    label still gets one word of every pair but no longer means male or female."""
    rng = random.Random(10_000 + seed)
    return [p if rng.random() < 0.5 else (p[1], p[0]) for p in pairs]


def split_rows(model, name: str, pairs, cfg: Config) -> pd.DataFrame:
    """Held-out accuracy of both static directions and of the residual probe at every stage, over
    `n_splits` seeded pair splits (whole pairs held out, so no held-out word's partner trains),
    for the gender labels and for the shuffled control labels."""
    from interp.embeddings import probe_residual, project

    tmpl = cfg.template.lower() if _uncased(model) else cfg.template
    rows = []
    for s in range(cfg.n_splits):
        train0, held0 = split_pairs(pairs, cfg.heldout_fraction, s)
        for labels in ("gender", "control"):
            train, held = (train0, held0) if labels == "gender" else (shuffled(train0, s), shuffled(held0, s))
            words, truth = words_of(held)
            base = {"model": name, "split_seed": s, "labels": labels, "n_test": len(words)}
            for method, direction in directions(model, train).items():
                side = project(model, words, direction).side
                rows.append({**base, "where": f"embedding:{method}", "stage": -1,
                             "heldout_accuracy": float((side == pd.Series(truth)).mean())})
            layers = probe_residual(model, groups(train + held), template=tmpl, heldout=words)
            rows += [{**base, "where": r.hook, "stage": stage, "heldout_accuracy": r.heldout_accuracy}
                     for stage, r in enumerate(layers.itertuples())]
    return pd.DataFrame(rows)


def _uncased(model) -> bool:
    return bool(getattr(model.tokenizer, "do_lower_case", False))


def analogy_rows(model, name: str, train, held) -> pd.DataFrame:
    """a:b :: c:? with (a, b) a training pair and (c, d) a held-out pair, both directions, by
    b − a + c and by the baselines that leave the offset out (Linzen 2016)."""
    from interp.embeddings import evaluate_analogies, parse_questions

    lines = [": male-to-female"] + [f"{a} {b} {c} {d}" for a, b in train for c, d in held]
    lines += [": female-to-male"] + [f"{b} {a} {d} {c}" for a, b in train for c, d in held]
    qs = parse_questions("\n".join(lines) + "\n", "gender pairs")
    return pd.concat([evaluate_analogies(model, qs, method=m).sections.assign(method=m)
                      for m in ("add", "only-c", "ignore-a")]).assign(model=name)


CLASSIC = [("man", "woman", "king", "queen"), ("man", "woman", "prince", "princess"), ("man", "woman", "uncle", "aunt"),
           ("man", "woman", "son", "daughter"), ("woman", "man", "queen", "king"), ("woman", "man", "girl", "boy")]


def classic_rows(model, name: str) -> pd.DataFrame:
    """The textbook questions (c − a + b, e.g. king − man + woman), one row each: prediction or skip reason."""
    from interp.embeddings import evaluate_analogies, parse_questions

    lines = [": classic"] + [" ".join(q) for q in CLASSIC]
    q = evaluate_analogies(model, parse_questions("\n".join(lines) + "\n", "classic gender analogies")).questions
    return q.assign(model=name)


def main(cfg: Config) -> dict:
    import interp

    names = studied(cfg)
    models = {n: interp.load(n) for n in names}
    splits = {n: word_pairs(m, cfg) for n, m in models.items()}
    acc, proj, ana, classic, spread = [], [], [], [], []
    for name, model in models.items():
        train, held, _, _ = splits[name]
        rows, p = accuracy_rows(model, name, train, held)
        acc += rows
        proj.append(p)
        ana.append(analogy_rows(model, name, train, held))
        classic.append(classic_rows(model, name))
        spread.append(split_rows(model, name, train + held, cfg))
    title = " vs ".join(names)
    rep = Report("gender_direction", f"A gender direction: {title}",
                 "Is there one direction in the input embedding that separates male from female words, so that a "
                 "direction fitted on some word pairs classifies the words of other, held-out pairs, and completes "
                 "analogies better than the nearest-word baselines? Where in the residual stream is gender linearly "
                 "decodable on held-out pairs?", _method(cfg, names, splits))
    acc = rep.table("accuracy", pd.DataFrame(acc), ["model", "method", "split"])
    proj = rep.table("heldout_projections", pd.concat(proj)[["model", "method", "word", "label", "projection", "side"]],
                     ["model", "method", "label", "word"])
    ana = rep.table("analogies", pd.concat(ana)[["model", "method", "section", "n_questions", "n_evaluated",
                                                 "n_skipped", "n_correct", "accuracy"]], ["model", "method", "section"])
    spread = rep.table("heldout_by_split", pd.concat(spread), ["model", "labels", "split_seed", "stage", "where"])
    layers = rep.table("probe_by_layer", _layer_summary(spread), ["model", "labels", "stage"])
    classic = rep.table("classic_analogies", pd.concat(classic)[["model", "line", "a", "b", "c", "expected", "predicted",
                                                                 "correct", "skipped"]], ["model", "line"])
    rep.table("pairs", pd.DataFrame([{"model": n, "male": m, "female": f, "split": s}
                                     for n, (tr, he, _, _) in splits.items()
                                     for s, ps in (("train", tr), ("held_out", he)) for m, f in ps]),
              ["model", "split", "male"])
    headline = _findings(rep, cfg, names, acc, proj, ana, layers, spread)
    rep.findings.insert(len(names), _classic_text(classic))  # after the per-model paragraphs
    rep.findings.append(_caveats(models))
    rep.show("Classic analogies", classic)
    rep.write(cfg.out, config_dict(cfg, names if len(names) > 1 else names[0]), headline)
    return headline


def _layer_summary(spread: pd.DataFrame) -> pd.DataFrame:
    """Per model and residual stage: mean, std and min held-out accuracy over the pair splits."""
    res = spread[spread.stage >= 0]
    return res.groupby(["model", "labels", "stage", "where"], as_index=False).agg(
        heldout_accuracy=("heldout_accuracy", "mean"), heldout_std=("heldout_accuracy", "std"),
        heldout_min=("heldout_accuracy", "min"), n_splits=("split_seed", "nunique"),
        n_test=("n_test", "first")).rename(columns={"where": "hook"})


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


def _method(cfg, names, splits) -> str:
    parts = []
    for n in names:
        tr, he, drop, source = splits[n]
        if source == "english":
            src = (f"{len(tr) + len(he)} common English pairs written for this experiment ({len(tr)} train, {len(he)} "
                   f"held out, seeded split {cfg.seed}; {len(drop)} dropped as not single tokens: "
                   + (", ".join(f"{m}/{f}" for m, f in drop) or "none") + ")")
        else:
            src = f"`interp.zoo.lexicon.gender_pairs` ({len(tr)} train, {len(he)} held-out pairs)"
        parts.append(f"{n} uses {src}")
    return ("Word pairs: " + "; ".join(parts) + ". Pairs are split whole, so no held-out word has its partner in "
            "training. A word is one mid-sentence token (a leading-space token in a byte-level BPE vocabulary).\n\n"
            "Directions, in the checkpoint's raw input embedding (`interp.embeddings.raw_embedding`, not the bridge's "
            "row-centred W_E): the diff of means of the train pairs' offsets (`interp.embeddings.pair_direction`) and a "
            "logistic-regression probe on the train words (`interp.embeddings.probe_words`, its weight vector as a "
            "direction). Each classifies a word by the side of its threshold the word's projection falls "
            "(`interp.embeddings.project`).\n\n"
            "Analogies: `interp.embeddings.evaluate_analogies` on questions a:b :: c:? with (a, b) a train pair and "
            "(c, d) a held-out pair, male→female and female→male, by b − a + c (`add`) and by two baselines of Linzen "
            "(2016): `only-c` (the nearest word to c) and `ignore-a` (nearest to b + c); plus six textbook questions.\n\n"
            f"Spread and residual stream: {cfg.n_splits} seeded pair splits (seeds 0–{cfg.n_splits - 1}, "
            f"{pct(cfg.heldout_fraction)} of pairs held out). In each, both static directions are refitted on the "
            "train pairs and scored on the held-out pairs' words, and `interp.embeddings.probe_residual` (template "
            f"{cfg.template!r}, lower-cased for an uncased tokenizer) fits a probe at the word's position after the "
            "embedding (stage 0, the bridge's hook_embed) and after each block on the train pairs' words "
            "(`heldout=` the held-out pairs' words). Tables give the mean, std and min over splits. A control task "
            "(Hewitt & Liang 2019) repeats all of it with each pair's two labels flipped by a seeded coin, which "
            "keeps one word of each pair per label but removes gender: its held-out accuracy should be near 50%.")


def _stats(spread, name, where, labels: str = "gender") -> tuple[float, float, float]:
    v = spread[(spread.model == name) & (spread["where"] == where) & (spread.labels == labels)].heldout_accuracy
    return float(v.mean()), float(v.std()) if len(v) > 1 else 0.0, float(v.min())


def _findings(rep, cfg, names, acc, proj, ana, layers, spread) -> dict:
    from interp.report import plots

    a = acc.set_index(["model", "method", "split"]).accuracy
    an = ana.set_index(["model", "method", "section"]).accuracy
    head = {}
    gender = layers[layers.labels == "gender"]
    for name in names:
        lay = gender[gender.model == name]
        ctl = layers[(layers.model == name) & (layers.labels == "control")]
        first = lay[lay.heldout_accuracy >= 0.9]
        where = (f"first reaches ≥ 90% at stage {int(first.stage.iloc[0])} ({first.hook.iloc[0]})" if len(first)
                 else f"never reaches 90% (best {pct(lay.heldout_accuracy.max())})")
        worst = lay.sort_values(["heldout_accuracy", "stage"]).iloc[0]
        dom, prb = _stats(spread, name, "embedding:diff_of_means"), _stats(spread, name, "embedding:probe")
        rep.findings.append(
            f"**{name}**: on the main split the diff-of-means direction classifies "
            f"**{pct(a[name, 'diff_of_means', 'held_out'])}** of held-out pairs' words "
            f"({pct(a[name, 'diff_of_means', 'train'])} of train words), the probe direction "
            f"{pct(a[name, 'probe', 'held_out'])}. Over {cfg.n_splits} pair splits: diff of means {pct(dom[0])} ± "
            f"{pct(dom[1])} (min {pct(dom[2])}), probe {pct(prb[0])} ± {pct(prb[1])} (min {pct(prb[2])}). Pair offsets "
            f"agree with each other (mean leave-one-out cosine) {fmt(a[name, 'pair_consistency', 'train'])}. "
            f"Analogies train pair → held-out pair, male→female / female→male: add "
            f"{pct(an[name, 'add', 'male-to-female'])} / {pct(an[name, 'add', 'female-to-male'])}; baselines only-c "
            f"{pct(an[name, 'only-c', 'male-to-female'])} / {pct(an[name, 'only-c', 'female-to-male'])}, ignore-a "
            f"{pct(an[name, 'ignore-a', 'male-to-female'])} / {pct(an[name, 'ignore-a', 'female-to-male'])}. "
            f"Residual probe on held-out pairs (mean over splits): {pct(lay.heldout_accuracy.iloc[0])} at the embedding, "
            + ", ".join(pct(v) for v in lay.heldout_accuracy.iloc[1:]) + f" after blocks 0–{len(lay) - 2}; {where}; "
            f"lowest {pct(worst.heldout_accuracy)} ± {pct(worst.heldout_std if pd.notna(worst.heldout_std) else 0)} at "
            f"stage {int(worst.stage)}. **Control** (each pair's labels flipped at random, Hewitt & Liang 2019): "
            f"diff of means {pct(_stats(spread, name, 'embedding:diff_of_means', 'control')[0])}, probe "
            f"{pct(_stats(spread, name, 'embedding:probe', 'control')[0])} on the embedding; residual probe "
            f"{pct(ctl.heldout_accuracy.min())}–{pct(ctl.heldout_accuracy.max())} over stages (chance 50%).")
        head[name] = {"dom_heldout": float(a[name, "diff_of_means", "held_out"]),
                      "probe_heldout": float(a[name, "probe", "held_out"]),
                      "dom_heldout_splits_mean": dom[0], "dom_heldout_splits_std": dom[1],
                      "analogy_m2f": float(an[name, "add", "male-to-female"]),
                      "analogy_f2m": float(an[name, "add", "female-to-male"]),
                      "analogy_m2f_only_c": float(an[name, "only-c", "male-to-female"]),
                      "layer_probe": [float(v) for v in lay.heldout_accuracy],
                      "layer_probe_control_mean": float(ctl.heldout_accuracy.mean())}
    shown = layers.assign(series=[f"{m} ({lab})" for m, lab in zip(layers.model, layers.labels)])
    rep.findings.append(rep.figure("probe_by_layer", plots.lines(shown, "stage", "heldout_accuracy",
                                                                 "gender probe, held-out pairs", hue="series"),
                                   "Held-out-pair probe accuracy per residual stage (0 = embedding), mean over splits; gender and control labels."))
    for name in names:
        p = proj[(proj.model == name) & (proj.method == "diff_of_means")].sort_values(["projection", "word"])
        p = p.assign(word_label=[f"{w} ({lab[0]})" for w, lab in zip(p.word, p.label)])
        rep.findings.append(rep.figure(f"projections_{name}", plots.bars(p, "word_label", "projection",
                                                                         f"{name}: held-out words on the gender direction"),
                                       f"{name}: held-out words projected on the diff-of-means direction (m/f = true label)."))
    rep.show("Accuracy", acc)
    rep.show("Analogies", ana)
    rep.show("Probe by layer", layers)
    summary = "; ".join(f"{n}: held-out pairs' words classified by the diff-of-means direction {pct(h['dom_heldout'])} "
                        f"(over splits {pct(h['dom_heldout_splits_mean'])} ± {pct(h['dom_heldout_splits_std'])}), "
                        f"analogies to held-out pairs {pct(h['analogy_m2f'])} male→female (only-c baseline "
                        f"{pct(h['analogy_m2f_only_c'])})" for n, h in head.items())
    return {"models": head, "summary": summary}


def _caveats(models) -> str:
    notes = ["**Caveats.** The English pair list is small (tens of pairs) and hand-written; accuracies near 100% sit at "
             "the ceiling of a coarse test, and a few held-out words move each percentage point. A linear probe with "
             "d_model features and tens of words can separate almost any labelling of the training words; only its "
             "held-out accuracy means anything. Gendered words also differ in frequency and in other features the "
             "direction may pick up."]
    for name, m in models.items():
        if getattr(m.info, "quantization", "none") != "none":
            notes.append(f"{name}'s weights are {m.info.weights}: its embedding carries the quantization error, "
                         "not the original checkpoint's values.")
    return " ".join(notes)


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.gender_direction --model smollm2-135m --seed 0")
