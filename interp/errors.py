"""The one user-facing error type.

An `InterpError` is a user mistake or an environment problem the user can fix. Its message is
one line that names the bad value and says what to do; the CLI prints it and exits 2, without a
traceback. Anything else that escapes is a bug in interp.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InterpError(ValueError):
    """A mistake the user can fix: one line naming the value and the fix."""


def closest(value: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    match = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_range(what: str, value: int, n: int, model_name: str) -> int:
    """Raise unless 0 <= value < n, naming the valid range."""
    if not isinstance(value, int) or not 0 <= value < n:
        raise InterpError(f"{what} {value} out of range: {model_name} has {what}s 0-{n - 1}")
    return value


def model_name(model) -> str:
    """The model's name for messages ("zoo-4l"): its `.info` name, else its config's model name
    (a bridge booted without `interp.load`), else "the model"."""
    info = getattr(model, "info", None)
    name = getattr(info, "name", None) or getattr(getattr(model, "cfg", None), "model_name", None)
    return str(name) if name else "the model"
