"""Directions in embedding space: diff of means over word pairs, and projections onto them.

`pair_direction` averages the offsets second - first of word pairs (man -> woman, king -> queen)
into a unit direction, the "gender direction" of Bolukbasi et al. (2016), "Man is to Computer
Programmer as Woman is to Homemaker?". How well the pairs agree is reported per pair: the cosine
of each offset with the mean of the *other* offsets (leave-one-out, so a pair never votes for
itself). The decision threshold is the midpoint between the two groups' mean projections.

Example:
    >>> import interp
    >>> from interp.embeddings import pair_direction, project
    >>> model = interp.load("zoo-4l")
    >>> d = pair_direction(model, [("man", "woman"), ("king", "queen"), ("father", "mother")],
    ...                    labels=("male", "female"))
    >>> project(model, ["husband", "wife"], d)["side"].tolist()
    ['male', 'female']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from interp.embeddings.vectors import Space, unit, vectors, word_token
from interp.errors import InterpError


@dataclass
class Direction:
    """A unit direction `vector` (`Float[Tensor, "d_model"]`) in a model's `space`.

    Projections above `threshold` fall on `labels[1]`'s side, below it on `labels[0]`'s.
    `pairs` (pair-fitted directions only): first, second, offset_norm, cos_to_direction, cos_to_others.
    """

    vector: object
    threshold: float
    labels: tuple[str, str]
    space: str
    pairs: "pandas.DataFrame | None" = None

    @property
    def consistency(self) -> float:
        """Mean leave-one-out cosine of the pair offsets (1 = all pairs agree; ~0 = no shared direction)."""
        return float("nan") if self.pairs is None else float(self.pairs["cos_to_others"].mean())


def check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs as a list of 2-tuples of strings; at least two pairs.

    Raises:
        InterpError: fewer than two pairs, or an entry that is not two words.
    """
    pairs = [tuple(p) if isinstance(p, (tuple, list)) else (p,) for p in pairs]
    bad = next((p for p in pairs if len(p) != 2 or not all(isinstance(w, str) for w in p)), None)
    if bad is not None:
        raise InterpError(f"bad pair {bad!r}: each pair is two words, e.g. ('man', 'woman')")
    if len(pairs) < 2:
        raise InterpError(f"need at least 2 word pairs for a direction, got {len(pairs)}: add more pairs")
    return pairs


def pair_direction(model, pairs: Sequence[tuple[str, str]], space: Space = "embed",
                   labels: tuple[str, str] = ("first", "second"), allow_untrained: bool = False) -> Direction:
    """Diff-of-means direction from the first word of each pair to the second.

    Args:
        model: a model from `interp.load`.
        pairs: (first, second) single-token words, e.g. [("man", "woman"), ("king", "queen")].
        space: "embed" (W_E rows) or "unembed" (W_U columns).
        labels: names of the first and second groups, used by `project`'s `side` column.
        allow_untrained: allow space="unembed" on a model with an untrained unembedding.

    Returns:
        A `Direction` whose `pairs` table says how consistent the pair offsets are.
    """
    import pandas as pd

    pairs = check_pairs(pairs)
    E = vectors(model, space, allow_untrained).float()
    first = E[[word_token(model, a) for a, _ in pairs]]
    second = E[[word_token(model, b) for _, b in pairs]]
    offsets = second - first  # [pair d_model]
    vector = unit(offsets.mean(0))
    others = unit((offsets.sum(0, keepdim=True) - offsets) / (len(pairs) - 1))
    threshold = ((first @ vector).mean() + (second @ vector).mean()) / 2
    table = pd.DataFrame({"first": [a for a, _ in pairs], "second": [b for _, b in pairs],
                          "offset_norm": offsets.norm(dim=-1).tolist(),
                          "cos_to_direction": (unit(offsets) @ vector).tolist(),
                          "cos_to_others": (unit(offsets) * others).sum(-1).tolist()})
    return Direction(vector, float(threshold), tuple(labels), space, table)


def project(model, words: Sequence[str], direction: Direction, allow_untrained: bool = False) -> "pandas.DataFrame":
    """Each word's projection onto `direction`, in the direction's space.

    Returns:
        DataFrame with columns word, projection (dot product with the unit direction), cosine,
        side (the label on whose side of the threshold the word falls).
    """
    import pandas as pd

    if isinstance(words, str) or not words:
        raise InterpError(f"words must be a non-empty list of words, got {words!r}: e.g. ['king', 'queen']")
    E = vectors(model, direction.space, allow_untrained).float()
    rows = E[[word_token(model, w) for w in words]]
    proj = rows @ direction.vector
    side = [direction.labels[int(p > direction.threshold)] for p in proj.tolist()]
    return pd.DataFrame({"word": list(words), "projection": proj.tolist(),
                         "cosine": (unit(rows) @ direction.vector).tolist(), "side": side})
