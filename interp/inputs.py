"""One check for what users pass to the Python API: prompts, token tensors, lengths and choices.

Every analysis takes prompts as a string or a list of strings, or token ids as an integer
tensor [batch pos] (a 1-D tensor is one prompt). Anything else (None, a number, an empty
string or list, a list holding a non-string; a 3-D, floating, boolean, empty or meta tensor;
ids outside the vocabulary; more positions than the context) is one `InterpError` line naming
the value and what to pass instead, before the model runs.

Example:
    >>> from interp.inputs import check_prompts
    >>> check_prompts("The king")
    ['The king']
    >>> try:
    ...     check_prompts(None)
    ... except Exception as e:
    ...     print(type(e).__name__)
    InterpError
"""

from __future__ import annotations

from collections.abc import Sequence

from interp.errors import InterpError, model_name


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def check_prompts(prompts, what: str = "prompt") -> list[str]:
    """A string or a sequence of strings as a list of non-empty strings."""
    if isinstance(prompts, str):
        prompts = [prompts]
    elif isinstance(prompts, (list, tuple)):
        prompts = list(prompts)
    else:
        raise InterpError(f"{what} {_shown(prompts)} is a {type(prompts).__name__}: give a string or a list of strings")
    if not prompts:
        raise InterpError(f"empty {what} list: give at least one non-empty string")
    for p in prompts:
        if not isinstance(p, str):
            raise InterpError(f"{what} {_shown(p)} in the list is a {type(p).__name__}, not a string: "
                              "give strings (or one token tensor)")
        if not p.strip():
            raise InterpError(f"empty {what}: give at least one non-empty string")
    return prompts


def count_prompts(prompts) -> int:
    """How many prompts `prompts` holds (strings checked; a token tensor counts its rows)."""
    if is_tokens(prompts):
        return 1 if prompts.ndim <= 1 else int(prompts.shape[0])
    return len(check_prompts(prompts))


def is_tokens(value) -> bool:
    """Whether `value` is a torch tensor (then it must pass `check_tokens`)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, torch.Tensor)


def check_tokens(model, tokens, what: str = "tokens"):
    """Token ids as a [batch pos] long tensor on the model's device (a 1-D tensor is one prompt)."""
    import torch

    shape = tuple(tokens.shape)
    if tokens.is_meta:
        raise InterpError(f"{what} tensor is on the meta device (no data): give real token ids")
    if tokens.dtype == torch.bool or tokens.is_floating_point() or tokens.is_complex():
        raise InterpError(f"{what} tensor has dtype {str(tokens.dtype).removeprefix('torch.')}: token ids must be "
                          "integers (e.g. model.to_tokens(text) or tensor.long())")
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2:
        raise InterpError(f"{what} tensor of shape {shape}: give token ids [batch pos] (or [pos] for one prompt)")
    n_ctx = model.cfg.n_ctx
    if tokens.numel() == 0 or tokens.shape[1] > n_ctx:
        raise InterpError(f"{what} tensor of shape {shape}: give [batch pos] ids with at least one prompt and "
                          f"1 <= pos <= {n_ctx} ({model_name(model)}'s context)")
    d_vocab = model.cfg.d_vocab
    bad = tokens[(tokens < 0) | (tokens >= d_vocab)]
    if bad.numel():
        raise InterpError(f"token id {int(bad[0])} is out of range for {model_name(model)} (0 to {d_vocab - 1})")
    return tokens.long().to(model.cfg.device)


def check_lengths(lengths, batch: int, n_pos: int) -> list[int]:
    """Each prompt's real length: `batch` integers, each in 1..n_pos (None: all of pos)."""
    if lengths is None:
        return [n_pos] * batch
    try:
        values = lengths.tolist() if hasattr(lengths, "tolist") else list(lengths)
    except TypeError:
        raise InterpError(f"lengths {_shown(lengths)} is not a list: give one length per prompt") from None
    if len(values) != batch:
        raise InterpError(f"lengths has {len(values)} entries for {batch} prompt(s): give one length per prompt")
    for n in values:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= n_pos:
            raise InterpError(f"length {_shown(n)} is invalid: each length is an integer in 1..{n_pos} "
                              "(the prompt's real tokens)")
    return values


def check_choice(value, choices: Sequence[str], what: str) -> str:
    """`value` when it is one of `choices` (a Literal argument), else one line listing them."""
    if not isinstance(value, str) or value not in choices:
        from interp.errors import closest

        hint = closest(value, choices) if isinstance(value, str) else ""
        raise InterpError(f"{what} {_shown(value)} is not one of {', '.join(map(repr, choices))}{hint}")
    return value
