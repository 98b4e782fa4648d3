"""Word analogies in a model's input embedding (default all-MiniLM-L6-v2, zoo-4l for contrast) on
the standard questions-words file (Mikolov et al. 2013, "Efficient Estimation of Word
Representations in Vector Space"), against the baselines of Linzen (2016), "Issues in evaluating
semantic spaces using word analogies" (the nearest word to c alone; b + c, ignoring a), with
WordSim-353 and SimLex-999 correlations. The matrix is the checkpoint's raw input embedding;
the row-centred copy TransformerLens' compatibility mode keeps is scored beside it.

Run: python -m experiments.analogies [--model smollm2-135m --contrast ""]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, fmt, pct

REAL_MODEL_CONFIG = {"contrast": ""}  # `python -m experiments --models NAME`: that model alone
BASELINES = ("only-c", "only-b", "ignore-a")

@dataclass
class Config:
    model: str = "all-MiniLM-L6-v2"
    contrast: str = "zoo-4l"  # a second model on the same questions ("" = none)
    questions: str = ""  # path to a questions-words file ("" = the copy gensim ships)
    max_per_section: int = 0  # 0 = every question; >0 = the first n of each section (tests)
    n_examples: int = 3  # wrong answers shown per section
    similarity: bool = True  # WordSim-353 and SimLex-999 (gensim's copies), when gensim is installed
    seed: int = 0  # unused: the evaluation is deterministic (kept for config.json)
    out: str = "reports/analogies"


def load_questions(cfg: Config):
    """The questions, optionally the first `max_per_section` of each section, and their source."""
    from interp.embeddings import questions_words_path, read_questions

    path = cfg.questions or str(questions_words_path())
    qs = read_questions(path)
    if cfg.max_per_section:
        seen: dict[str, int] = {}
        keep = []
        for q in qs:
            seen[q.section] = seen.get(q.section, 0) + 1
            if seen[q.section] <= cfg.max_per_section:
                keep.append(q)
        qs = keep
    return qs, path


def skip_reasons(questions: pd.DataFrame) -> pd.DataFrame:
    """Skipped questions counted per section and kind of reason (the word itself removed)."""
    sk = questions[questions.skipped != ""]
    kind = [re.sub(r"^'[^']*' ", "", r).split(" [")[0].split(":")[0] for r in sk.skipped]
    kind = [re.sub(r"\d+ tokens", "several tokens", k) for k in kind]
    return sk.assign(reason=kind).groupby(["section", "reason"], as_index=False).size().rename(columns={"size": "n"})


def method_runs(model, qs, add) -> dict:
    """method -> AnalogyScores: add (given), each baseline, and add on the row-centred copy."""
    from interp.embeddings import evaluate_analogies

    return {"add": add, **{m: evaluate_analogies(model, qs, method=m) for m in BASELINES},
            "add-centred": evaluate_analogies(model, qs, centre=True)}


def method_table(name: str, runs: dict) -> pd.DataFrame:
    """Per section and method: accuracy with its binomial standard error, over the questions
    every method evaluates (the same ones: skips depend on the words only)."""
    import numpy as np

    frames = [r.sections.assign(method=m, order=i) for i, (m, r) in enumerate(runs.items())]
    df = pd.concat(frames)[["method", "order", "section", "n_evaluated", "n_correct", "accuracy"]]
    df["se"] = np.sqrt(df.accuracy * (1 - df.accuracy) / df.n_evaluated.clip(lower=1))
    return df.assign(model=name)


def paired(add, base) -> dict:
    """Questions right under "add" only, and under the baseline only (a paired comparison)."""
    a, b = add.questions, base.questions
    done = a.skipped == ""
    return {"add_only": int((a.correct & ~b.correct & done).sum()), "baseline_only": int((~a.correct & b.correct & done).sum())}


def similarity_rows(name: str, model) -> pd.DataFrame:
    """Spearman rho of cosines with human ratings, raw and centred embedding, per benchmark."""
    from interp.embeddings import evaluate_similarity, read_word_pairs, similarity_path

    rows = []
    for bench in ("wordsim353", "simlex999"):
        pairs = read_word_pairs(similarity_path(bench))
        for emb, centre in (("raw", False), ("centred", True)):
            r = evaluate_similarity(model, pairs, centre=centre)
            rows.append({"model": name, "benchmark": bench, "embedding": emb, "spearman": r.spearman,
                         "n_pairs": r.n_pairs, "n_evaluated": r.n_evaluated, "n_skipped": r.n_skipped})
    return pd.DataFrame(rows)


def matrix_rows(name: str, model) -> dict:
    """Which matrix was analysed, and how far the bridge's W_E is from it."""
    from interp.embeddings import raw_embedding

    raw, W_E = raw_embedding(model), model.W_E.detach()
    return {"model": name, "max_abs_raw_minus_bridge_W_E": float((raw - W_E).abs().max()),
            "mean_abs_row_mean": float(raw.mean(-1).abs().mean()), "d_vocab": int(raw.shape[0])}


def has_similarity_data() -> bool:
    from interp.embeddings import similarity_path
    from interp.errors import InterpError

    try:
        similarity_path("wordsim353")
        return True
    except InterpError:
        return False


def main(cfg: Config) -> dict:
    import interp
    from interp.embeddings import evaluate_analogies

    qs, path = load_questions(cfg)
    names = [cfg.model] + ([cfg.contrast] if cfg.contrast else [])
    models = {name: interp.load(name) for name in names}
    runs = {name: evaluate_analogies(m, qs) for name, m in models.items()}
    scores = runs[cfg.model]
    sim_ok = cfg.similarity and has_similarity_data()
    rep = Report("analogies", f"Analogies in {cfg.model}'s input embedding",
                 "How many questions-words analogies (a : b :: c : ?) does vector arithmetic b − a + c solve in "
                 f"the static input embedding of {cfg.model}, per section — and does it beat the baselines that "
                 "leave the offset out (the nearest word to c alone; b + c, ignoring a)? How many questions cannot "
                 "be asked because a word is not one token, and how well do embedding cosines track human "
                 "similarity ratings?", _method(cfg, path, len(qs), sim_ok))
    secs = pd.concat([r.sections.assign(model=n, order=range(len(r.sections))) for n, r in runs.items()])
    secs = rep.table("sections", secs[["model", "order", *runs[cfg.model].sections.columns]], ["model", "order"])
    reasons = pd.concat([skip_reasons(r.questions).assign(model=n) for n, r in runs.items()])
    reasons = rep.table("skip_reasons", reasons[["model", "section", "reason", "n"]], ["model", "section", "reason"])
    by_method = {n: method_runs(models[n], qs, runs[n]) for n in names}
    base = pd.concat([method_table(n, r) for n, r in by_method.items()])
    base = rep.table("baselines", base[["model", "order", "method", "section", "n_evaluated", "n_correct", "accuracy",
                                        "se"]], ["model", "order", "section"])
    pairs = {n: {m: paired(r["add"], r[m]) for m in (*BASELINES, "add-centred")} for n, r in by_method.items()}
    matrix = rep.table("matrix", pd.DataFrame([matrix_rows(n, models[n]) for n in names]), ["model"])
    sim = rep.table("similarity", pd.concat([similarity_rows(n, models[n]) for n in names]),
                    ["model", "benchmark", "embedding"]) if sim_ok else None
    wrong = scores.questions[(scores.questions.skipped == "") & ~scores.questions.correct]
    wrong = wrong.drop_duplicates(["a", "b", "c"])  # the capital sections repeat some questions
    ex = wrong.groupby("section", sort=False).head(cfg.n_examples)[["section", "line", "a", "b", "c", "expected", "predicted"]]
    ex = rep.table("wrong_examples", ex, ["section", "line"])
    headline = _findings(rep, cfg, secs, reasons, ex)
    extra = _baseline_findings(rep, cfg, base, pairs, matrix, sim)
    rep.findings.append(_caveats(models))
    headline["summary"] += "; " + extra.pop("summary_baselines")
    headline.update(extra)
    rep.write(cfg.out, config_dict(cfg, names if len(names) > 1 else names[0]), headline)
    return headline


def _method(cfg: Config, path: str, n: int, sim_ok: bool) -> str:
    src = "the standard questions-words.txt shipped in gensim's test data (found by " \
          "`interp.embeddings.questions_words_path`, installed with the `analogies` extra)" if not cfg.questions else path
    sub = f" (first {cfg.max_per_section} per section)" if cfg.max_per_section else ""
    sim = ("WordSim-353 (relatedness) and SimLex-999 (similarity) from gensim's test data "
           "(`interp.embeddings.evaluate_similarity`): Spearman's rho between the human score and the cosine of "
           "the two words' embedding rows, over the pairs whose two words are single tokens (case as in the file)."
           if sim_ok else "WordSim-353 and SimLex-999: not scored (gensim, which ships them, is not installed, or "
           "--similarity was off); no other offline copy was found.")
    return (f"Questions: {n}{sub} from {src}.\n\n"
            "**Matrix.** The checkpoint's own input embedding, read from its safetensors file "
            "(`interp.embeddings.raw_embedding`), not the bridge's W_E: TransformerLens' compatibility mode subtracts "
            "each row's mean from W_E on LayerNorm models (BERT, GPT-2), which moves cosines. `matrix.csv` gives the "
            "largest |raw − bridge W_E| per model (0 means the bridge did not centre it), and the method "
            "`add-centred` scores b − a + c on the row-centred copy to show what centring changes.\n\n"
            "**Vector arithmetic** (`interp.embeddings.evaluate_analogies`): for a b c d, the prediction is the "
            "candidate word token whose embedding row has the highest cosine with unit(b) − unit(a) + unit(c), the "
            "three inputs excluded; right when it is d. Candidates are whole-word tokens (leading-space alphabetic "
            "tokens in a byte-level BPE vocabulary; alphabetic non-'##' WordPieces in an uncased one). A question "
            "with any word that is not one candidate token is skipped and counted; accuracy is over the evaluated "
            "questions, with its binomial standard error. That subset favours frequent words, so the numbers are "
            "not comparable with results on all 19,544 questions.\n\n"
            "**Baselines** (Linzen 2016), on exactly the same evaluated questions and candidates, inputs excluded: "
            "`only-c` (the nearest word to c), `only-b` (the nearest word to b), `ignore-a` (nearest to "
            "unit(b) + unit(c)). Where `add` does no better than `only-c`, the 'analogy' is c's nearest neighbour; "
            "where it does no better than `ignore-a`, subtracting a adds nothing. `add` vs each baseline is also "
            "counted question by question (right under one method only).\n\n" + sim)


def _findings(rep, cfg, all_secs, all_reasons, ex) -> dict:
    from interp.report import plots

    secs = all_secs[all_secs.model == cfg.model].drop(columns="model")
    reasons = all_reasons[all_reasons.model == cfg.model].drop(columns="model")
    s = secs.set_index("section")
    ov = s.loc["overall"]
    body = secs[secs.section != "overall"]
    best, worst = body.sort_values("accuracy", ascending=False).iloc[0], body.sort_values("accuracy").iloc[0]
    rep.findings += [
        f"Overall: **{pct(ov.accuracy)}** of {int(ov.n_evaluated)} evaluated questions right; "
        f"**{int(ov.n_skipped)} of {int(ov.n_questions)} skipped** ({pct(ov.n_skipped / ov.n_questions)}) because a word "
        f"is not a single token. Best section: {best.section} ({pct(best.accuracy)}); worst: {worst.section} "
        f"({pct(worst.accuracy)}).",
        "Per section (accuracy, evaluated / questions): " + "; ".join(
            f"{r.section} {pct(r.accuracy) if r.n_evaluated else 'n/a'} ({int(r.n_evaluated)}/{int(r.n_questions)})"
            for r in body.itertuples()) + ".",
    ]
    if len(reasons):
        top = reasons.groupby("reason", as_index=False).n.sum().sort_values(["n", "reason"], ascending=[False, True])
        rep.findings.append("Skip reasons: " + "; ".join(f"{r.reason}: {int(r.n)}" for r in top.itertuples()) + ".")
    if len(ex):
        rep.findings.append("Some wrong answers: " + "; ".join(
            f"{r.a}:{r.b} :: {r.c}:? → {r.predicted} (expected {r.expected})" for r in ex.head(6).itertuples()) + ".")
    rep.findings.append(rep.figure("accuracy", plots.bars(body, "section", "accuracy", "analogy accuracy per section"),
                                   "Accuracy per section over evaluated (non-skipped) questions."))
    contrast = _contrast(rep, cfg, all_secs, all_reasons, ov) if cfg.contrast else {}
    rep.show("Sections", all_secs.drop(columns="order"))
    rep.show("Skip reasons", all_reasons)
    return {**contrast, "overall_accuracy": float(ov.accuracy), "n_questions": int(ov.n_questions),
            "n_evaluated": int(ov.n_evaluated), "n_skipped": int(ov.n_skipped),
            "by_section": {r.section: float(r.accuracy) for r in body.itertuples() if r.n_evaluated},
            "summary": (f"{pct(ov.accuracy)} of {int(ov.n_evaluated)} questions-words analogies right in the input "
                        f"embedding ({int(ov.n_skipped)} of {int(ov.n_questions)} skipped: a word is not one token); "
                        f"best {best.section} {pct(best.accuracy)}, worst {worst.section} {pct(worst.accuracy)}"
                        + _contrast_note(contrast))}


def _contrast_note(c: dict) -> str:
    if not c:
        return ""
    acc = "n/a" if c["contrast_accuracy"] is None else pct(c["contrast_accuracy"])
    return f"; {c['contrast_model']} for contrast: {acc} of the {c['contrast_n_evaluated']} it can ask"


def _contrast(rep, cfg, all_secs, all_reasons, main_overall) -> dict:
    """The contrast model's paragraph and figure; its headline numbers."""
    from interp.report import plots

    c = all_secs[all_secs.model == cfg.contrast]
    ov = c.set_index("section").loc["overall"]
    done = c[(c.section != "overall") & (c.n_evaluated > 0)]
    why = all_reasons[all_reasons.model == cfg.contrast].groupby("reason", as_index=False).n.sum()
    why = why.sort_values(["n", "reason"], ascending=[False, True])
    acc = pct(ov.accuracy) if ov.n_evaluated else "n/a"
    rep.findings.append(
        f"**Contrast, {cfg.contrast}** (same file, same method): {acc} of {int(ov.n_evaluated)} evaluated questions "
        f"right; {int(ov.n_skipped)} of {int(ov.n_questions)} skipped ("
        + "; ".join(f"{r.reason}: {int(r.n)}" for r in why.itertuples()) + "). Only "
        + f"{len(done)} section(s) can be asked at all: "
        + "; ".join(f"{r.section} {pct(r.accuracy)} ({int(r.n_evaluated)}/{int(r.n_questions)})" for r in done.itertuples())
        + f". Its small synthetic vocabulary covers few of the file's words, so the two overall numbers "
        f"({pct(main_overall.accuracy)} for {cfg.model}) are over different question subsets and are not comparable "
        "head to head; compare section by section where both are evaluated.")
    if len(done):
        rep.findings.append(rep.figure("accuracy_contrast", plots.bars(done, "section", "accuracy",
                                                                       f"{cfg.contrast}: accuracy per evaluated section"),
                                       f"{cfg.contrast}: accuracy per section it can evaluate."))
    return {"contrast_model": cfg.contrast, "contrast_accuracy": float(ov.accuracy) if ov.n_evaluated else None,
            "contrast_n_evaluated": int(ov.n_evaluated)}


def _baseline_findings(rep, cfg, base, pairs, matrix, sim) -> dict:
    """Add vs the baselines (overall and per section), the matrix used, the similarity scores."""
    from interp.report import plots

    head = {}
    for name in base.model.unique():
        b = base[base.model == name]
        ov = b[b.section == "overall"].set_index("method")
        best = max(BASELINES, key=lambda m: (ov.accuracy[m], m))
        secs = b[(b.section != "overall") & (b.n_evaluated > 0)].pivot(index="section", columns="method", values="accuracy")
        beats = int((secs["add"] > secs[list(BASELINES)].max(axis=1)).sum())
        pr = pairs[name][best]
        rep.findings.append(
            f"**Baselines, {name}** (same {int(ov.n_evaluated['add'])} questions): add "
            f"**{pct(ov.accuracy['add'])}** ± {pct(ov.se['add'])}; " + "; ".join(
                f"{m} {pct(ov.accuracy[m])} ± {pct(ov.se[m])}" for m in BASELINES)
            + f"; add on the row-centred copy {pct(ov.accuracy['add-centred'])}. Against the best baseline ({best}), "
            f"{pr['add_only']} questions are right under add only and {pr['baseline_only']} under {best} only; add "
            f"beats every baseline in {beats} of {len(secs)} sections. "
            + _verdict(ov, best))
        head[name] = {"add": float(ov.accuracy["add"]), **{m: float(ov.accuracy[m]) for m in BASELINES},
                      "add_centred": float(ov.accuracy["add-centred"]), "best_baseline": best,
                      "sections_add_beats_all": beats}
    main_b = base[(base.model == cfg.model) & (base.section != "overall") & (base.method != "add-centred")]
    rep.findings.append(rep.figure("baselines", plots.heatmap(main_b, "section", "method", "accuracy",
                                                              f"{cfg.model}: add vs baselines"),
                                   "Accuracy per section: b − a + c (add) and the Linzen (2016) baselines."))
    m = matrix.set_index("model")
    ov = base[base.section == "overall"].set_index(["model", "method"])
    rep.findings.append("**Matrix analysed**: the checkpoint's raw input embedding for every model. Largest "
                        "|raw − bridge W_E| and mean |row mean| of the raw matrix: " + "; ".join(
                            f"{n} {fmt(r.max_abs_raw_minus_bridge_W_E)} and {fmt(r.mean_abs_row_mean)}"
                            for n, r in m.iterrows())
                        + " (0: the bridge's W_E is the raw matrix; RMSNorm models are not centred). Centring each "
                        "row (what compatibility mode does to W_E on LayerNorm models) moves add's accuracy " + "; ".join(
                            f"{n}: {pct(ov.accuracy[n, 'add'])} → {pct(ov.accuracy[n, 'add-centred'])}, flipping "
                            f"{pairs[n]['add-centred']['add_only'] + pairs[n]['add-centred']['baseline_only']} questions "
                            f"({pairs[n]['add-centred']['add_only']} right only raw, "
                            f"{pairs[n]['add-centred']['baseline_only']} right only centred)" for n in m.index) + ".")
    rep.show("Baselines", base.drop(columns="order"))
    out = {"baselines": head}
    if sim is not None:
        s = sim.set_index(["model", "benchmark", "embedding"])
        rep.findings.append("**Word similarity** (Spearman's rho, raw embedding; centred in brackets): " + "; ".join(
            f"{n} {bench} {fmt(s.spearman[n, bench, 'raw'])} ({fmt(s.spearman[n, bench, 'centred'])}) over "
            f"{int(s.n_evaluated[n, bench, 'raw'])}/{int(s.n_pairs[n, bench, 'raw'])} pairs"
            for n in sim.model.unique() for bench in ("wordsim353", "simlex999")) + ".")
        rep.show("Word similarity", sim)
        out["similarity"] = {f"{n}/{bench}": float(s.spearman[n, bench, "raw"])
                             for n in sim.model.unique() for bench in ("wordsim353", "simlex999")}
    else:
        rep.findings.append("**Word similarity**: WordSim-353 and SimLex-999 were not scored: no offline copy "
                            "(gensim is not installed).")
    h = head[cfg.model]
    out["summary_baselines"] = (f"add {pct(h['add'])} vs best baseline {h['best_baseline']} "
                                f"{pct(h[h['best_baseline']])}")
    return out


def _verdict(ov, best: str) -> str:
    """Whether add beats the best baseline by more than two standard errors, loses by as much, or ties."""
    gap, se = ov.accuracy["add"] - ov.accuracy[best], 2 * max(ov.se["add"], ov.se[best])
    if gap > se:
        return "Vector arithmetic **does** beat the baselines here."
    if gap < -se:
        return f"Vector arithmetic does **not** beat the baselines here: {best} alone is better."
    return "Vector arithmetic does **not** clearly beat the baselines here (within two standard errors)."


def _caveats(models) -> str:
    notes = ["**Caveats.** Only questions whose four words are single tokens are asked, a subset that favours "
             "frequent words; the ± are binomial standard errors, which treat questions as independent although "
             "they share words (the spread over sections is the more honest one). The answer must be a whole-word "
             "token, and the three inputs are excluded for every method alike, which helps the baselines as much as "
             "add."]
    for name, m in models.items():
        info = m.info
        if getattr(info, "quantization", "none") != "none":
            notes.append(f"{name}'s weights: {info.weights}; its embedding carries the quantization error.")
    return " ".join(notes)


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.analogies --model smollm2-135m --contrast ''")
