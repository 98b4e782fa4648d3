"""Tokens given by the user: one resolver for every analysis and command.

A target such as "Mary" or " Mary" means one token. For GPT-2-style vocabularies the spaced
form (" Mary", the form a word takes after a space) is preferred when it is one known token;
otherwise the text is used as given. Anything that is not exactly one known token is a one-line
`InterpError` that shows how it tokenizes.

Example:
    >>> import interp
    >>> from interp.tokens import token_id
    >>> model = interp.load("zoo-2l")
    >>> token_id(model, "Mary") == token_id(model, " Mary")
    True
"""

from __future__ import annotations

from collections.abc import Sequence

from interp.errors import InterpError, check_range

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
        return check_range(f"{what} token id", token, model.cfg.d_vocab, model.info.name)
    if not isinstance(token, str) or not token.strip():
        raise InterpError(f"{what} {token!r} is empty: give one token, e.g. ' Mary'")
    tok = model.tokenizer
    spaced = _single(tok, " " + token) if not token.startswith(" ") else None
    found = spaced if spaced is not None else _single(tok, token)
    if found is not None:
        return found
    pieces = tok.convert_ids_to_tokens(_encode(tok, token))
    shown = [p.replace("Ġ", " ") for p in pieces]
    if len(pieces) == 1 or tok.unk_token in pieces:
        raise InterpError(f"{what} {token!r} is not in {model.info.name}'s vocabulary (it tokenizes as "
                          f"{shown}); pick a word the model knows")
    raise InterpError(f"{what} {token!r} is not a single token: it tokenizes as {shown} "
                      f"({len(pieces)} tokens); give one token, e.g. {shown[0]!r}")


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
