"""Word analogies in all-MiniLM-L6-v2's input embeddings on the standard questions-words file
(Mikolov et al. 2013, "Efficient Estimation of Word Representations in Vector Space"), with
zoo-4l's embedding on the same file for contrast.

Run: python -m experiments.analogies
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from experiments.common import Report, cli, config_dict, pct


@dataclass
class Config:
    model: str = "all-MiniLM-L6-v2"
    contrast: str = "zoo-4l"  # a second model on the same questions ("" = none)
    questions: str = ""  # path to a questions-words file ("" = the copy gensim ships)
    max_per_section: int = 0  # 0 = every question; >0 = the first n of each section (tests)
    n_examples: int = 3  # wrong answers shown per section
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


def main(cfg: Config) -> dict:
    import interp
    from interp.embeddings import evaluate_analogies

    qs, path = load_questions(cfg)
    names = [cfg.model] + ([cfg.contrast] if cfg.contrast else [])
    runs = {name: evaluate_analogies(interp.load(name), qs) for name in names}
    scores = runs[cfg.model]
    rep = Report("analogies", f"Analogies in {cfg.model}'s input embeddings",
                 "How many questions-words analogies (a : b :: c : ?) does vector arithmetic b − a + c solve in "
                 "the static input embedding of a small real sentence encoder, per section, and how many questions "
                 "cannot be asked at all because a word is not one token?", _method(cfg, path, len(qs)))
    secs = pd.concat([r.sections.assign(model=n, order=range(len(r.sections))) for n, r in runs.items()])
    secs = rep.table("sections", secs[["model", "order", *runs[cfg.model].sections.columns]], ["model", "order"])
    reasons = pd.concat([skip_reasons(r.questions).assign(model=n) for n, r in runs.items()])
    reasons = rep.table("skip_reasons", reasons[["model", "section", "reason", "n"]], ["model", "section", "reason"])
    wrong = scores.questions[(scores.questions.skipped == "") & ~scores.questions.correct]
    ex = wrong.groupby("section", sort=False).head(cfg.n_examples)[["section", "line", "a", "b", "c", "expected", "predicted"]]
    ex = rep.table("wrong_examples", ex, ["section", "line"])
    headline = _findings(rep, cfg, secs, reasons, ex)
    rep.write(cfg.out, config_dict(cfg, names), headline)
    return headline


def _method(cfg: Config, path: str, n: int) -> str:
    src = "the standard questions-words.txt shipped in gensim's test data (found by " \
          "`interp.embeddings.questions_words_path`, installed with the `analogies` extra)" if not cfg.questions else path
    sub = f" (first {cfg.max_per_section} per section)" if cfg.max_per_section else ""
    return (f"Questions: {n}{sub} from {src}.\n\n"
            "`interp.embeddings.evaluate_analogies`: for a b c d, the prediction is the word token (WordPiece "
            "tokens that are whole lower-case words, not '##' pieces) whose input-embedding row has the highest "
            "cosine with unit(b) − unit(a) + unit(c), the three inputs excluded; right when it is d. MiniLM is "
            "uncased, so capitalised words are lower-cased by its tokenizer. A question with any word that is "
            "not one token is skipped and counted; accuracy is over the evaluated questions. That subset favours "
            "frequent words, so the numbers are not comparable with results on all 19,544 questions.")


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


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.analogies --max-per-section 0")
