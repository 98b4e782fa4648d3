"""Word vectors of a model: single-token words, candidate words, nearest neighbours, analogies.

A word is looked up as the token a model sees in the middle of a sentence: for GPT-2 style
byte-level vocabularies that is the leading-space token (" king"), for BERT wordpiece the plain
word ("king"). A word that is not exactly one known token is an `InterpError` that says how it
tokenizes.

Candidates: neighbours and analogy answers are drawn from the model's *word tokens* only: the
leading-space tokens made of letters (GPT-2 style), or, for wordpiece vocabularies, the tokens made
of letters (so `[unused*]`, `[CLS]`-style special tokens, `##` pieces, digits and punctuation are
never answers). Pass `candidates="all"` to search every token.

Example:
    >>> import interp
    >>> from interp.embeddings import analogy, neighbors
    >>> model = interp.load("zoo-4l")
    >>> analogy(model, "king", "man", "woman", k=3)["word"].tolist()[0]
    'queen'
    >>> neighbors(model, "king", k=3).columns.tolist()
    ['rank', 'word', 'token_id', 'cosine']
"""

from __future__ import annotations

from typing import Literal

from interp.errors import InterpError
from interp.tokens import token_texts

Space = Literal["embed", "unembed"]
Candidates = Literal["words", "all"]
_MARKERS = ("Ġ", "▁")  # leading-space markers of byte-level BPE and sentencepiece vocabularies


def vectors(model, space: Space = "embed", allow_untrained: bool = False):
    """One vector per token, `Float[Tensor, "d_vocab d_model"]`, detached.

    Args:
        model: a model from `interp.load`.
        space: "embed" (rows of W_E, the input embedding) or "unembed" (columns of W_U).
        allow_untrained: run an unembedding analysis on a model whose unembedding is untrained.

    Raises:
        InterpError: unknown space, or space="unembed" on a model with an untrained unembedding.
    """
    if space == "embed":
        return model.W_E.detach()
    if space == "unembed":
        from interp.models import require_trained

        require_trained(model, "an unembedding-space analysis (--space unembed)", allow_untrained)
        return model.W_U.detach().T
    raise InterpError(f"unknown space {space!r}: use 'embed' (input embedding) or 'unembed' (unembedding)")


def _pieces(model, ids: list[int]) -> list[str]:
    return token_texts(model.tokenizer, ids)


def why_not_word(model, word: str) -> tuple[int | None, str]:
    """(token id, "") when `word` is one known mid-sentence token, else (None, the reason)."""
    if not isinstance(word, str) or not word.strip() or word != word.strip():
        return None, f"bad word {word!r}: give one word without surrounding spaces, e.g. 'king'"
    tok = model.tokenizer
    ids = tok.encode(" " + word, add_special_tokens=False)  # wordpiece drops the space itself
    if len(ids) != 1:
        return None, f"{word!r} is {len(ids)} tokens {_pieces(model, ids)}: use a single-token word"
    if ids[0] == tok.unk_token_id:
        return None, f"{word!r} is not in the vocabulary (it tokenizes to {tok.unk_token!r}): use a known word"
    return ids[0], ""


def word_token(model, word: str) -> int:
    """The id of `word` as a single mid-sentence token.

    Raises:
        InterpError: `word` is empty, several tokens, or unknown to the vocabulary.
    """
    i, reason = why_not_word(model, word)
    if i is None:
        raise InterpError(f"{model.info.name}: {reason}")
    return i


def token_word(model, token_id: int) -> str:
    """The text of a token without its leading-space marker (' queen' -> 'queen')."""
    return _pieces(model, [int(token_id)])[0].strip()


def word_mask(model, candidates: Candidates = "words"):
    """`Bool[Tensor, "d_vocab"]`: which tokens may be an answer (see the module docstring)."""
    import torch

    n = model.W_E.shape[0]
    if candidates == "all":
        return torch.ones(n, dtype=torch.bool)
    if candidates != "words":
        raise InterpError(f"unknown candidates {candidates!r}: use 'words' or 'all'")
    tok = model.tokenizer
    pieces = tok.convert_ids_to_tokens(list(range(min(n, len(tok)))))
    spaced = any(p.startswith(_MARKERS) for p in pieces if p)
    special = set(tok.all_special_ids)
    keep = [i not in special and bool(p) and _is_word(p, spaced) for i, p in enumerate(pieces)]
    return torch.tensor(keep + [False] * (n - len(keep)), dtype=torch.bool)


def _is_word(piece: str, spaced: bool) -> bool:
    if spaced:
        return piece.startswith(_MARKERS) and piece[1:].isalpha()
    return piece.isalpha()


def unit(x):
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def top_cosine(E, target, mask, k: int):
    """(cosines, ids) of the k rows of `E` closest to `target` among rows where `mask` holds.

    Args:
        E: `Float[Tensor, "d_vocab d_model"]`.
        target: `Float[Tensor, "d_model"]` or `Float[Tensor, "batch d_model"]`.
        mask: `Bool[Tensor, "d_vocab"]` or `Bool[Tensor, "batch d_vocab"]`.
    """
    cos = unit(target.float()) @ unit(E.float()).T
    cos = cos.masked_fill(~mask.to(cos.device), float("-inf"))
    return cos.topk(min(k, int(mask.sum(-1).min())), dim=-1)


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InterpError(f"k must be a positive integer, got {k!r}: e.g. k=5")
    return k


def _table(model, scores, ids):
    import pandas as pd

    ids = ids.tolist()
    return pd.DataFrame({"rank": range(1, len(ids) + 1), "word": [token_word(model, i) for i in ids],
                         "token_id": ids, "cosine": scores.tolist()})


def neighbors(model, word: str, k: int = 10, space: Space = "embed", candidates: Candidates = "words",
              allow_untrained: bool = False) -> "pandas.DataFrame":
    """The k tokens closest to `word` by cosine, the word itself excluded.

    Returns:
        DataFrame with columns rank, word, token_id, cosine (best first).
    """
    _check_k(k)
    E = vectors(model, space, allow_untrained)
    i = word_token(model, word)
    mask = word_mask(model, candidates)
    mask[i] = False
    scores, ids = top_cosine(E, E[i], mask, k)
    return _table(model, scores, ids)


def analogy(model, a: str, b: str, c: str, k: int = 5, space: Space = "embed",
            candidates: Candidates = "words", allow_untrained: bool = False) -> "pandas.DataFrame":
    """Words closest to a - b + c ("king" - "man" + "woman"), the three inputs excluded.

    The inputs are unit-normalised before the sum (3CosAdd; Mikolov et al., 2013, "Linguistic
    Regularities in Continuous Space Word Representations").

    Returns:
        DataFrame with columns rank, word, token_id, cosine (best first).
    """
    _check_k(k)
    E = vectors(model, space, allow_untrained)
    ids = [word_token(model, w) for w in (a, b, c)]
    U = unit(E[ids].float())
    mask = word_mask(model, candidates)
    mask[ids] = False
    scores, top = top_cosine(E, U[0] - U[1] + U[2], mask, k)
    return _table(model, scores, top)
