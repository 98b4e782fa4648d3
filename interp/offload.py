"""Weights off the compute device: a loaded model whose layers live on disk (or in CPU memory
beside an accelerator) and come onto the device one block at a time (accelerate moves them).

`interp.load(name, device_map="auto", max_memory={"cpu": "1MB"}, offload_folder=DIR)` loads the
model once in CPU memory, lets TransformerLens process its weights (fold LayerNorm, centre the
writing weights) exactly as for an in-memory model, and only then moves each module's processed
weights to its tier: the compute device while its `max_memory` budget lasts, then CPU memory
(beside an accelerator), then `offload_folder`. So the offloaded model computes with the very
numbers of the in-memory one, and every hooked analysis gives the same results.

The weights move in units: the embeddings, each block whole, the final norm and the
unembedding (TransformerLens' components read their weights inside a block's forward, not
only through the modules that own them). Each offloaded unit gets a forward pre-hook that
loads its weights (with accelerate's tools) and a forward hook that drops them again, so they
are meta tensors except while it runs. Analyses that read weights directly (direct logit
attribution reads W_U and W_O, the embedding analyses W_E) ask for them with
`resident(model, *parts)`, which brings only those parts onto the device for the time of a
`with` block; on a model that is not offloaded it does nothing. The plain-torch engines, which
read every weight at once, do not run on an offloaded model (`interp.engine.supports` and
`interp.rotary_engine.supports` say no), and the analyses take the bridge's path.

Peak CPU memory while loading is one copy of the model (it is processed in memory first);
after that, what stays resident is what `max_memory` allows.

Example:
    >>> import tempfile, interp
    >>> from interp.offload import placement
    >>> model = interp.load("zoo-2l", device_map="auto", max_memory={"cpu": "1MB"},
    ...                     offload_folder=tempfile.mkdtemp())
    >>> sorted(set(placement(model).values()))
    ['cpu', 'disk']
"""

from __future__ import annotations

import contextlib
import re
import weakref
from pathlib import Path

from interp.errors import InterpError

_PLACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # bridge -> {module path: tier}
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def offloaded(model) -> bool:
    """Whether some of `model`'s weights are off the compute device (see module docstring)."""
    return any(tier != "device" for tier in _PLACED.get(model, {}).values())


def placement(model) -> dict[str, str]:
    """Each unit ("embed", "blocks.0", ..., "ln_final", "unembed") -> "cpu" / "cuda:0" (resident
    on the compute device), "cpu-offload" (in CPU memory beside an accelerator) or "disk"."""
    placed, device = _PLACED.get(model, {}), str(_device(model))
    return {name: device if tier == "device" else tier for name, tier in placed.items()}


def to_bytes(size, key: str = "cpu") -> int:
    """A `max_memory` budget ("1MB", "2GiB", 10**9) in bytes; one line for a malformed one."""
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*", str(size).upper())
    if not m:
        raise InterpError(f"max_memory[{key!r}] = {size!r} is not a size: write bytes (10**9) or a string like "
                          "'500MB' or '2GiB'")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def offload(model, max_memory: dict, folder, execution_device: str = "cpu") -> dict[str, str]:
    """Move the processed weights of bridge `model` to their tiers (module docstring) and hook
    each unit (embedding, every block, final norm, unembedding) to bring its weights back while
    it runs. Returns `placement(model)`."""
    import torch
    from accelerate.utils import OffloadedWeightsLoader, PrefixedDataset, offload_state_dict

    device = torch.device(execution_device)
    budgets = _budgets(max_memory, device)
    units = _units(model)
    tiers, to_disk = {}, {}
    for name, unit, params in units:
        tiers[name] = _tier(budgets, sum(p.numel() * p.element_size() for p in params.values()))
        if tiers[name] == "disk":
            to_disk.update({f"{name}.{k}": v.detach().cpu() for k, v in params.items()})
    folder = Path(folder)
    if to_disk:
        _write(folder, to_disk, offload_state_dict)
    disk = OffloadedWeightsLoader(save_folder=str(folder)) if to_disk else None
    for module in model.original_model.modules():  # buffers (rotary frequencies, masks) stay resident
        for k, buf in list(module.named_buffers(recurse=False)):
            module._buffers[k] = buf.to(device)
    for name, unit, params in units:
        if tiers[name] == "device":
            for p in params.values():
                p.data = p.data.to(device)
            continue
        store = PrefixedDataset(disk, name + ".") if tiers[name] == "disk" else {
            k: v.detach().cpu() for k, v in params.items()}
        _Offloaded(unit, store, list(params), device)
    _PLACED[model] = tiers
    model.cfg.device = device
    return placement(model)


def _units(model) -> list[tuple[str, object, dict]]:
    """(name, module, {relative name: parameter}) of the units weights move in: the bridge's
    components (embeddings, final norm, unembedding) and each block whole, since components
    read their weights inside a block's forward without calling the modules that own them.
    Each parameter belongs to the first unit that holds it."""
    modules = []
    for name, child in model.named_children():
        modules += [(f"blocks.{i}", block) for i, block in enumerate(child)] if name == "blocks" else [(name, child)]
    modules.append(("rest", model.original_model))  # anything the components do not hold
    seen, units = set(), []
    for name, module in modules:
        params = {k: v for k, v in module.named_parameters() if id(v) not in seen}
        seen.update(id(v) for v in params.values())
        if params:
            units.append((name, module, params))
    return units


class _Offloaded:
    """The offload state of one unit: its weights are meta tensors except while it runs (torch
    forward pre- and post-hooks), or while `resident` pins them."""

    def __init__(self, unit, store, names: list[str], device):
        self.unit, self.store, self.names, self.device, self.pinned = unit, store, names, device, set()
        self.unload(names)
        self.handles = [unit.register_forward_pre_hook(self._before), unit.register_forward_hook(self._after)]
        object.__setattr__(unit, "_interp_offload", self)  # not through the bridge's attribute proxy

    def load(self, names) -> None:
        from accelerate.utils import set_module_tensor_to_device

        for name in names:
            set_module_tensor_to_device(self.unit, name, self.device, value=self.store[name])

    def unload(self, names) -> None:
        from accelerate.utils import set_module_tensor_to_device

        for name in names:
            set_module_tensor_to_device(self.unit, name, "meta")

    def _before(self, module, args):
        self.load([n for n in self.names if n not in self.pinned])

    def _after(self, module, args, output):
        self.unload([n for n in self.names if n not in self.pinned])


def _write(folder: Path, state: dict, offload_state_dict) -> None:
    """The weights to `folder` (accelerate's memory-mapped format); one line if it cannot be
    written, and no partial files left behind."""
    existed = folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.glob("*.dat")) or (folder / "index.json").exists():
            raise InterpError(f"offload_folder {str(folder)!r} already holds offloaded weights: give an empty "
                              "or new folder (weights of two models must not mix)")
        offload_state_dict(str(folder), state)
    except OSError as e:
        with contextlib.suppress(OSError):
            for name in [*(f"{k}.dat" for k in state), "index.json"]:
                (folder / name).unlink(missing_ok=True)
            if not existed:
                folder.rmdir()
        raise InterpError(f"cannot write offloaded weights to {str(folder)!r}: {e.strerror or e}; "
                          "give a writable folder with room for the model") from None


def _budgets(max_memory: dict, device) -> list[list]:
    """[tier, bytes left] in the order modules fill them: device, CPU memory beside an
    accelerator, disk (unbounded)."""
    if not isinstance(max_memory, dict) or not max_memory:
        raise InterpError(f"max_memory = {max_memory!r}: give a dict of budgets, e.g. {{'cpu': '1GB'}}")
    key = "cpu" if device.type == "cpu" else (device.index or 0)
    budgets = [["device", to_bytes(max_memory.get(key, max_memory.get(str(device), 0)), str(key))]]
    if device.type != "cpu":
        budgets.append(["cpu-offload", to_bytes(max_memory.get("cpu", 0), "cpu")])
    return budgets + [["disk", float("inf")]]


def _tier(budgets: list[list], size: int) -> str:
    for budget in budgets:
        if size <= budget[1]:
            budget[1] -= size
            return budget[0]
    return "disk"


def _device(model):
    import torch

    return torch.device(getattr(model.cfg, "device", None) or "cpu")


@contextlib.contextmanager
def resident(model, *parts: str):
    """Bring the weights of `parts` of an offloaded bridge onto its device for a `with` block
    (bridge paths, `*` for any layer: "unembed", "ln_final", "embed", "blocks.*.attn.o");
    nothing happens on a model that is not offloaded. Forwards inside leave them in place."""
    if not offloaded(model):
        yield
        return
    pinned = []
    try:
        for unit, hook, names in _pins(model, parts):
            hook.load(names)
            hook.pinned.update(names)
            pinned.append((unit, hook, names))
        yield
    finally:
        for unit, hook, names in pinned:
            hook.pinned.difference_update(names)
            hook.unload(names)


def _pins(model, parts: tuple[str, ...]) -> list[tuple]:
    """(unit, its hook, the unit-relative names of the parameters under `parts` not yet pinned)."""
    owner = {}  # (id of the module that holds a parameter, its name) -> (unit, hook, relative name)
    for unit in model.modules():
        hook = unit.__dict__.get("_interp_offload")
        if hook is not None:
            for name in hook.names:
                path, _, leaf = name.rpartition(".")
                owner[(id(unit.get_submodule(path)), leaf)] = (unit, hook, name)
    wanted = {}
    for part in parts:
        for component in _resolve(model, part):
            for module in component.modules():
                for leaf in module._parameters:
                    if (id(module), leaf) in owner:
                        unit, hook, name = owner[(id(module), leaf)]
                        if name not in hook.pinned:
                            wanted.setdefault(id(unit), (unit, hook, set()))[2].add(name)
    return [(unit, hook, sorted(names)) for unit, hook, names in wanted.values()]


def _resolve(model, part: str) -> list:
    """The modules at bridge path `part`: "blocks.*.attn.o" is every layer's attention output."""
    found = [model]
    for piece in part.split("."):
        try:
            found = [m for o in found for m in (list(o) if piece == "*" else
                                                [o[int(piece)] if piece.isdigit() else getattr(o, piece)])]
        except (AttributeError, IndexError, TypeError):
            raise ValueError(f"the model has no module {part!r}") from None
    return found
