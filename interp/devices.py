"""One check for a user-given torch device, used by `interp.load` (and so by every command).

A device is accepted when torch can parse it and this machine has it: "cpu", "cuda" / "cuda:N"
with a CUDA build and at least N + 1 GPUs, "mps" on Apple silicon. Anything else is one
`InterpError` line naming the value and what this machine offers. The meta device holds no
data, so analyses cannot run on it and it is refused too.

Example:
    >>> from interp.devices import check_device
    >>> check_device("cpu")
    'cpu'
    >>> try:
    ...     check_device("cuda:99")
    ... except Exception as e:
    ...     print(type(e).__name__)
    InterpError
"""

from __future__ import annotations

from interp.errors import InterpError


def available() -> list[str]:
    """The devices this machine can run on ("cpu", then "cuda:0".. and "mps" when present)."""
    import torch

    out = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else ["cpu"]
    mps = getattr(torch.backends, "mps", None)
    return out + (["mps"] if mps is not None and mps.is_available() else [])


def check_device(device) -> str:
    """`device` as a string torch accepts, or one line saying why this machine cannot use it."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not device.strip():
        raise InterpError(f"device {device!r} is not a device name; use one of {', '.join(available())}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise InterpError(f"device {device!r} is not a torch device; use one of {', '.join(available())}") from None
    if parsed.type == "cpu":
        return device
    if parsed.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise InterpError(f"device {device!r}: this torch build or machine has no CUDA GPU; use 'cpu' "
                              "(or install a CUDA build of torch: make install TORCH_SPEC=torch)")
        if parsed.index is not None and parsed.index >= n:
            raise InterpError(f"device {device!r}: this machine has {n} CUDA GPU(s), cuda:0-cuda:{n - 1}")
        return device
    if parsed.type == "mps" and "mps" in available():
        return device
    raise InterpError(f"device {device!r} cannot run interp's analyses here; use one of {', '.join(available())}")
