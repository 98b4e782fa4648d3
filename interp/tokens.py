"""Tokens given by the user: one resolver for every analysis and command.

A target such as "Mary" or " Mary" means one token. For GPT-2-style vocabularies the spaced
form (" Mary", the form a word takes after a space) is preferred when it is one known token;
otherwise the text is used as given. Anything that is not exactly one known token is a one-line
`InterpError` that shows how it tokenizes.

`token_text(tokenizer, id)` shows a token as the text it stands for, decoded by the tokenizer's
own decoder: byte-level BPE's 'ĠcafÃ©' is ' café' (the leading space kept), SentencePiece's
'▁Paris' is ' Paris'. Every display of a token in interp goes through it.

Example:
    >>> import interp
    >>> from interp.tokens import token_id
    >>> model = interp.load("zoo-2l")
    >>> token_id(model, "Mary") == token_id(model, " Mary")
    True
    >>> token_text(model.tokenizer, token_id(model, "Mary"))
    ' Mary'
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from interp.errors import InterpError, check_range, model_name

Token = str | int


def token_id(model, token: Token, what: str = "target") -> int:
    """The id of one token given as a string or an id.

    A string without a leading space means the spaced form when that is one known token: "Mary"
    and " Mary" both give " Mary", the form a word takes after a space (what follows a prompt in
    a GPT-2-style vocabulary). A string whose spaced form is not one known token is used as given.

    Raises:
        InterpError: the string is empty, unknown (<unk>) or more than one token, or the id is
            out of range.
    """
    if isinstance(token, int) and not isinstance(token, bool):
        return check_range(f"{what} token id", token, model.cfg.d_vocab, model_name(model))
    if not isinstance(token, str) or not token.strip():
        raise InterpError(f"{what} {token!r} is empty: give one token, e.g. ' Mary'")
    tok = model.tokenizer
    spaced = _single(tok, " " + token) if not token.startswith(" ") else None
    found = spaced if spaced is not None else _single(tok, token)
    if found is not None:
        return found
    ids = _encode(tok, token)
    shown = token_texts(tok, ids)
    if len(ids) == 1 or (tok.unk_token_id is not None and tok.unk_token_id in ids):
        raise InterpError(f"{what} {token!r} is not in {model_name(model)}'s vocabulary (it tokenizes as "
                          f"{shown}); pick a word the model knows")
    raise InterpError(f"{what} {token!r} is not a single token: it tokenizes as {shown} "
                      f"({len(ids)} tokens); give one token, e.g. {shown[0]!r}")


def token_text(tokenizer, token_id: int) -> str:
    """One token as text, by the tokenizer's own decoder, with its leading space kept.

    ' café' for byte-level BPE's 'ĠcafÃ©', ' Paris' for SentencePiece's '▁Paris', '\n' for 'Ċ'. A
    token that is part of a multi-byte character shows its bytes ('\\xf0\\x9f').
    """
    token_id = int(token_id)
    text = tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
    piece = tokenizer.convert_ids_to_tokens(token_id)
    if "\ufffd" in text and isinstance(piece, str):
        text = _byte_text(piece) or text
    if isinstance(piece, str) and piece[:1] in _SPACE_MARKERS and not text.startswith(" "):
        text = " " + text  # SentencePiece decoders drop the space of a sequence's first piece
    return text


def token_texts(tokenizer, ids) -> list[str]:
    """`token_text` of each id (each distinct id decoded once)."""
    ids = [int(i) for i in ids]
    seen = {i: token_text(tokenizer, i) for i in set(ids)}
    return [seen[i] for i in ids]


_SPACE_MARKERS = ("Ġ", "▁")


def _byte_text(piece: str) -> str | None:
    """A byte-level BPE piece's bytes as text, undecodable bytes escaped; None if not byte-level."""
    table = _byte_decoder()
    if not all(c in table for c in piece):
        return None
    return bytes(table[c] for c in piece).decode("utf-8", errors="backslashreplace")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for the 256 byte values, inverted."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in keep]
    return {**{chr(b): b for b in keep}, **{chr(256 + n): b for n, b in enumerate(extra)}}


def _encode(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _single(tok, text: str) -> int | None:
    """The id when `text` is exactly one known token, else None."""
    ids = _encode(tok, text)
    return ids[0] if len(ids) == 1 and ids[0] != tok.unk_token_id else None


def token_ids(model, tokens: Token | Sequence[Token] | None, n: int, what: str = "target"):
    """One id per prompt: a single token is shared, a list must have one per prompt."""
    import torch

    if tokens is None:
        return None
    if isinstance(tokens, (str, int)):
        tokens = [tokens] * n
    tokens = list(tokens)
    if len(tokens) != n:
        raise InterpError(f"{len(tokens)} {what}s for {n} prompts: give one {what}, or one per prompt")
    return torch.tensor([token_id(model, t, what) for t in tokens], device=model.cfg.device)
