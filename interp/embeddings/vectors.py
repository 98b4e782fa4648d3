"""Word vectors of a model: single-token words, candidate words, nearest neighbours, analogies.

A word is looked up as the token a model sees in the middle of a sentence: for GPT-2 style
byte-level vocabularies that is the leading-space token (" king"), for BERT wordpiece the plain
word ("king"). A word that is not exactly one known token is an `InterpError` that says how it
tokenizes.

Which matrix: "embed" is the checkpoint's own input embedding, read from its weights file
(`raw_embedding`), not the bridge's `W_E`: TransformerLens' compatibility mode subtracts each
row's mean from W_E on LayerNorm models (GPT-2, BERT), which leaves the forward pass unchanged
but moves cosines (it flips 4 of all-MiniLM-L6-v2's analogy answers). `centre=True` analyses that
centred copy instead. RMSNorm models (Llama, SmolLM2) are not centred, so both are the same there.
"unembed" is the bridge's W_U, the matrix the logits are computed with.

Candidates: neighbours and analogy answers are drawn from the model's *word tokens* only: the
leading-space tokens made of letters (GPT-2 style), or, for wordpiece vocabularies, the tokens made
of letters (so `[unused*]`, `[CLS]`-style special tokens, `##` pieces, digits and punctuation are
never answers). Pass `candidates="all"` to search every token.

Example:
    >>> import interp
    >>> from interp.embeddings import analogy, neighbors
    >>> model = interp.load("zoo-2l")
    >>> analogy(model, "king", "man", "woman", k=3)["word"].tolist()[0]
    'queen'
    >>> neighbors(model, "king", k=3).columns.tolist()
    ['rank', 'word', 'token_id', 'cosine']
"""

from __future__ import annotations

from typing import Literal

from interp.errors import InterpError
from interp.offload import resident
from interp.tokens import token_texts

Space = Literal["embed", "unembed"]
Candidates = Literal["words", "all"]
_MARKERS = ("Ġ", "▁")  # leading-space markers of byte-level BPE and sentencepiece vocabularies


def vectors(model, space: Space = "embed", allow_untrained: bool = False, centre: bool = False):
    """One vector per token, `Float[Tensor, "d_vocab d_model"]`, detached.

    Args:
        model: a model from `interp.load`.
        space: "embed" (rows of the checkpoint's input embedding, `raw_embedding`) or "unembed"
            (columns of W_U).
        allow_untrained: run an unembedding analysis on a model whose unembedding is untrained.
        centre: "embed" only: subtract each row's mean (the copy compatibility mode keeps as W_E on
            LayerNorm models).

    Raises:
        InterpError: unknown space, or space="unembed" on a model with an untrained unembedding.
    """
    if space == "embed":
        E = raw_embedding(model)
        return E - E.mean(-1, keepdim=True) if centre else E
    if space == "unembed":
        from interp.models import require_trained

        require_trained(model, "an unembedding-space analysis (--space unembed)", allow_untrained)
        with resident(model, "unembed"):
            return model.W_U.detach().T
    raise InterpError(f"unknown space {space!r}: use 'embed' (input embedding) or 'unembed' (unembedding)")


def raw_embedding(model):
    """The checkpoint's input embedding `Float[Tensor, "d_vocab d_model"]`, as trained.

    Read from the model directory's safetensors file (`model.info.path`) under the key of the
    Hugging Face model's input-embedding module, so compatibility mode's row centring is undone.
    A model with no such file (a booted object, a PyTorch .bin checkpoint) falls back to the
    bridge's W_E, which equals the checkpoint on RMSNorm models only.
    """
    with resident(model, "embed"):
        W_E = model.W_E.detach()
    found = _checkpoint_tensor(model, _input_embedding_keys(model))
    if found is None or tuple(found.shape) != tuple(W_E.shape):
        return W_E
    return found.to(device=W_E.device, dtype=W_E.dtype)


def _input_embedding_keys(model) -> list[str]:
    """Candidate checkpoint keys of the input embedding: its module path, then shorter suffixes
    (a base-model checkpoint lacks the task model's prefix, e.g. 'bert.')."""
    hf = getattr(model, "original_model", None)
    if hf is None or not hasattr(hf, "get_input_embeddings"):
        return []
    target = hf.get_input_embeddings()
    name = next((n for n, m in hf.named_modules() if m is target), None)
    parts = name.split(".") if name else []
    return [".".join(parts[i:]) + ".weight" for i in range(len(parts))]


def _checkpoint_tensor(model, keys: list[str]):
    """The first of `keys` found in the model directory's safetensors files, else None."""
    from pathlib import Path

    info = getattr(model, "info", None)
    folder = Path(info.path) if info is not None and info.path else None
    if not keys or folder is None or not folder.is_dir():
        return None
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            names = set(f.keys())
            key = next((k for k in keys if k in names), None)
            if key is not None:
                return f.get_tensor(key)
    return None


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
