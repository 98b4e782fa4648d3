"""Analogy-file evaluation in the `questions-words` format (Mikolov et al., 2013).

The format: `: section` lines open a section; every other non-blank line holds four words
`a b c d`, read "a is to b as c is to d". A question is right when the best word token for
b - a + c (unit vectors, inputs excluded, candidates as in `interp.embeddings.vectors`) is d.
Questions with a word that is not a single known token are skipped, counted and listed.

Baselines (Linzen 2016, "Issues in evaluating semantic spaces using word analogies"): a right
answer from b - a + c may only say that d is c's nearest neighbour. `method` scores the same
questions with the offset left out: "only-c" (nearest word to c), "only-b" (nearest word to b)
and "ignore-a" (nearest word to b + c); vector arithmetic tells something only where "add" beats
them. The three inputs are excluded from every method's answers.

The standard 19,544-question file ships with gensim (`pip install 'interp[analogies]'`);
`questions_words_path()` finds it without importing gensim.

Example:
    >>> import interp
    >>> from interp.embeddings import evaluate_analogies, parse_questions
    >>> model = interp.load("zoo-2l")
    >>> qs = parse_questions(": gender\\nman woman king queen\\nman woman xyzzy queen\\n")
    >>> scores = evaluate_analogies(model, qs)
    >>> scores.sections[["section", "n_questions", "n_skipped", "accuracy"]].to_dict("records")
    [{'section': 'gender', 'n_questions': 2, 'n_skipped': 1, 'accuracy': 1.0}, {'section': 'overall', 'n_questions': 2, 'n_skipped': 1, 'accuracy': 1.0}]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from interp.embeddings.vectors import Candidates, Space, token_word, unit, vectors, why_not_word, word_mask
from interp.errors import InterpError

Method = Literal["add", "only-b", "only-c", "ignore-a"]
METHODS: tuple[str, ...] = ("add", "only-b", "only-c", "ignore-a")


@dataclass(frozen=True)
class Question:
    """One line of an analogy file: a is to b as c is to d."""

    section: str
    a: str
    b: str
    c: str
    d: str
    line: int


@dataclass
class AnalogyScores:
    """`sections`: section, n_questions, n_evaluated, n_skipped, n_correct, accuracy (over the
    evaluated questions; NaN when none), with an "overall" row last. `questions`: one row per
    question with the prediction, or the reason it was skipped."""

    sections: "pandas.DataFrame"
    questions: "pandas.DataFrame"

    @property
    def skipped(self) -> "pandas.DataFrame":
        return self.questions[self.questions["skipped"] != ""]


def questions_words_path() -> Path:
    """Path of the standard questions-words.txt that gensim ships in its test data.

    Raises:
        InterpError: gensim is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "test" / "test_data" / "questions-words.txt"
        if path.exists():
            return path
    raise InterpError("questions-words.txt ships with gensim, which is not installed: "
                      "pip install 'interp[analogies]' (or pass your own analogy file)")


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of a user's file, or a one-line InterpError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InterpError(f"{what} {str(path)!r} does not exist or is not a file: check the path")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InterpError(f"{what} {str(path)!r} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None


def parse_questions(text: str, source: str = "analogy file") -> list[Question]:
    """Questions of a questions-words text; lines before any `: section` go to section "default".

    Raises:
        InterpError: a line without exactly four words (naming the line), or no question at all.
    """
    questions, section = [], "default"
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            section = line[1:].strip() or section
            continue
        words = line.split()
        if len(words) != 4:
            raise InterpError(f"{source} line {n} has {len(words)} words ({line[:60]!r}): "
                              "write four words 'a b c d' (a is to b as c is to d)")
        questions.append(Question(section, *words, line=n))
    if not questions:
        raise InterpError(f"{source} has no questions: write ': section' lines and lines of four words")
    return questions


def read_questions(path: str | Path) -> list[Question]:
    """Parse the analogy file at `path` (see `parse_questions`)."""
    return parse_questions(read_text(path, "analogy file"), source=f"analogy file {str(path)!r}")


def _resolve(model, questions: list[Question], mask) -> dict[str, int | str]:
    """word -> token id, or the reason it cannot be used."""
    found: dict[str, int | str] = {}
    for word in {w for q in questions for w in (q.a, q.b, q.c, q.d)}:
        i, reason = why_not_word(model, word)
        found[word] = reason if i is None else i if mask[i] else f"{word!r} is not a candidate word token"
    return found


def _target(U, rows, method: str):
    """The query vector of each question under `method` (rows: ids a, b, c)."""
    a, b, c = U[rows[:, 0]], U[rows[:, 1]], U[rows[:, 2]]
    return {"add": b - a + c, "only-b": b, "only-c": c, "ignore-a": b + c}[method]


def _predict(E, mask, abc, method: str = "add", batch: int = 512):
    """Best candidate id for each row of `abc` [n, 3] (ids a, b, c) under `method`, inputs excluded."""
    import torch

    U = unit(E.float())
    ids = mask.nonzero()[:, 0]  # score the candidate rows only
    where = torch.full((len(U),), -1, dtype=torch.long, device=U.device)
    where[ids] = torch.arange(len(ids), device=U.device)
    C = U[ids].T
    out = []
    for rows in abc.split(batch):
        scores = unit(_target(U, rows, method)) @ C
        cols = where[rows]  # the inputs' columns (-1: not a candidate)
        row = torch.arange(len(rows), device=U.device)[:, None].expand_as(cols)
        scores[row[cols >= 0], cols[cols >= 0]] = float("-inf")
        out.append(ids[scores.argmax(-1)])
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def evaluate_analogies(model, questions: list[Question] | str | Path, space: Space = "embed",
                       candidates: Candidates = "words", allow_untrained: bool = False, method: Method = "add",
                       centre: bool = False) -> AnalogyScores:
    """Accuracy of `model` on analogy questions (a list from `parse_questions`, or a file path).

    Args:
        method: "add" (b - a + c) or a baseline: "only-c", "only-b", "ignore-a" (module docstring).
        centre: use the row-centred input embedding (`interp.embeddings.vectors`).

    Returns:
        `AnalogyScores` with tidy `sections` and `questions` tables.

    Raises:
        InterpError: unknown method.
    """
    import torch

    if method not in METHODS:
        raise InterpError(f"unknown analogy method {method!r}: use one of {', '.join(METHODS)}")
    if isinstance(questions, (str, Path)):
        questions = read_questions(questions)
    E, mask = vectors(model, space, allow_untrained, centre), word_mask(model, candidates)
    ids = _resolve(model, questions, mask)
    usable = [q for q in questions if all(isinstance(ids[w], int) for w in (q.a, q.b, q.c, q.d))]
    abc = torch.tensor([[ids[q.a], ids[q.b], ids[q.c]] for q in usable], dtype=torch.long).reshape(-1, 3)
    predicted = dict(zip(usable, _predict(E, mask.to(E.device), abc.to(E.device), method).tolist()))
    return _scores(model, questions, ids, predicted)


def _scores(model, questions, ids, predicted) -> AnalogyScores:
    import pandas as pd

    rows = []
    for q in questions:
        bad = next((ids[w] for w in (q.a, q.b, q.c, q.d) if not isinstance(ids[w], int)), "")
        guess = token_word(model, predicted[q]) if q in predicted else ""
        rows.append({"section": q.section, "line": q.line, "a": q.a, "b": q.b, "c": q.c, "expected": q.d,
                     "predicted": guess, "correct": bool(q in predicted and predicted[q] == ids[q.d]),
                     "skipped": bad})
    table = pd.DataFrame(rows)
    return AnalogyScores(_summary(table), table)


def _summary(table) -> "pandas.DataFrame":
    import pandas as pd

    def row(name, t):
        done = t[t["skipped"] == ""]
        n_correct = int(done["correct"].sum())
        return {"section": name, "n_questions": len(t), "n_evaluated": len(done), "n_skipped": len(t) - len(done),
                "n_correct": n_correct, "accuracy": n_correct / len(done) if len(done) else float("nan")}

    sections = list(dict.fromkeys(table["section"]))
    return pd.DataFrame([row(s, table[table["section"] == s]) for s in sections] + [row("overall", table)])
