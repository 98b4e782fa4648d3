"""Word-similarity benchmarks: Spearman correlation of embedding cosines with human ratings.

WordSim-353 (Finkelstein et al. 2002, "Placing search in context") rates relatedness, SimLex-999
(Hill et al. 2015, "SimLex-999: Evaluating semantic models with (genuine) similarity
estimation") rates similarity proper. Both ship with gensim's test data (the `analogies` extra);
`similarity_path` finds them without importing gensim. The file format: tab-separated
`word1 word2 score` lines, `#` comments. A pair with a word that is not one known token is
skipped and counted; the correlation is over the evaluated pairs (Spearman: Pearson of average
ranks).

Example:
    >>> import interp
    >>> from interp.embeddings import evaluate_similarity, parse_word_pairs
    >>> model = interp.load("zoo-4l")
    >>> pairs = parse_word_pairs("king\\tqueen\\t8\\nking\\tdog\\t1\\nman\\twoman\\t8\\nman\\txyzzy\\t5\\n")
    >>> result = evaluate_similarity(model, pairs)
    >>> result.n_evaluated, result.n_skipped
    (3, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interp.embeddings.analogies import read_text
from interp.embeddings.vectors import Space, unit, vectors, why_not_word
from interp.errors import InterpError

FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


@dataclass
class Similarity:
    """`spearman` over the evaluated pairs (NaN below 3); `pairs`: word1, word2, human, cosine, skipped."""

    spearman: float
    n_pairs: int
    n_evaluated: int
    n_skipped: int
    pairs: "pandas.DataFrame"


def similarity_path(name: str) -> Path:
    """Path of a benchmark file ("wordsim353" or "simlex999") in gensim's test data.

    Raises:
        InterpError: unknown name, or gensim is not installed.
    """
    import importlib.util

    if name not in FILES:
        raise InterpError(f"unknown similarity benchmark {name!r}: use one of {', '.join(FILES)}")
    spec = importlib.util.find_spec("gensim")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "test" / "test_data" / FILES[name]
        if path.exists():
            return path
    raise InterpError(f"{FILES[name]} ships with gensim, which is not installed: pip install 'interp[analogies]'")


def parse_word_pairs(text: str, source: str = "word-pair file") -> list[tuple[str, str, float]]:
    """(word1, word2, score) per line of tab- or space-separated text; `#` lines are comments.

    Raises:
        InterpError: a line that is not two words and a number (naming the line), or no pair at all.
    """
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if len(parts) != 3:
                raise ValueError
            out.append((parts[0], parts[1], float(parts[2])))
        except ValueError:
            raise InterpError(f"{source} line {n} ({line[:60]!r}) is not 'word1 word2 score': "
                              "write two words and a number") from None
    if not out:
        raise InterpError(f"{source} has no word pairs: write lines 'word1 word2 score'")
    return out


def read_word_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """Parse the word-pair file at `path` (see `parse_word_pairs`)."""
    return parse_word_pairs(read_text(path, "word-pair file"), source=f"word-pair file {str(path)!r}")


def spearman(x, y) -> float:
    """Spearman's rho: Pearson correlation of average ranks (ties share their mean rank)."""
    import pandas as pd

    rx, ry = pd.Series(list(x), dtype=float).rank(), pd.Series(list(y), dtype=float).rank()
    return float(rx.corr(ry)) if len(rx) >= 3 else float("nan")


def evaluate_similarity(model, pairs: list[tuple[str, str, float]] | str | Path, space: Space = "embed",
                        centre: bool = False, allow_untrained: bool = False) -> Similarity:
    """Spearman correlation between human scores and the cosine of the two words' vectors.

    Words are looked up case-sensitively as in `interp.embeddings.word_token` (an uncased
    tokenizer lower-cases them itself).
    """
    import pandas as pd

    if isinstance(pairs, (str, Path)):
        pairs = read_word_pairs(pairs)
    U = unit(vectors(model, space, allow_untrained, centre).float())
    rows = []
    for w1, w2, score in pairs:
        (i, r1), (j, r2) = why_not_word(model, w1), why_not_word(model, w2)
        ok = i is not None and j is not None
        rows.append({"word1": w1, "word2": w2, "human": score,
                     "cosine": float(U[i] @ U[j]) if ok else float("nan"), "skipped": "" if ok else r1 or r2})
    table = pd.DataFrame(rows)
    done = table[table.skipped == ""]
    return Similarity(spearman(done.human, done.cosine), len(table), len(done), len(table) - len(done), table)
