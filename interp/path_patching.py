"""Path patching (Wang et al. 2022, "Interpretability in the Wild", section 3.1 and appendix B):
how much of a sender head's effect travels through the receivers' queries, keys or values.

Activation patching a head measures every path out of it at once. Path patching keeps one
route: sender -> residual stream -> the receivers' q (or k, or v) input, and, with the receiver
"logits" (the final resid_post), sender -> residual -> unembedding. Noising (Wang's setting):
1. clean and corrupted runs; every head's output z is cached from both;
2. a clean run in which the senders' z is the corrupted run's while every other attention
   head's z is frozen at its clean value, so the change reaches later layers only through the
   residual stream and the MLPs. MLPs (and norms) are recomputed, not frozen (Wang et al.'s
   convention): a sender's effect through an MLP into a receiver counts as part of the path.
   The receivers' q/k/v (`hook_q`/`hook_k`/`hook_v`, the per-head projections of their
   input) are recorded;
3. a clean run with only the receivers' q/k/v replaced by those recorded values; the metric
   is read there. For the receiver "logits", the metric of run 2 is the answer.
Denoising swaps the roles: the corrupted run, the senders' clean z in, other heads frozen at
their corrupted values. Keys and values are per key/value head (grouped-query attention): a
k/v receiver's head index is a kv head.

The patched copies (one per sender set) are stacked along the batch, two forwards per chunk.
TransformerLens' `get_act_patch_direct_path` differs: it adds only a source head's direct write
(z @ W_O) to one destination's input, with no MLP in between, one forward per pair, and refuses
k/v on grouped-query models; this is the path patching of the IOI paper.

Example:
    >>> import interp
    >>> from interp.path_patching import path_patch
    >>> model = interp.load("zoo-2l")
    >>> clean = ["When Mary and John went to the store, John gave a drink to"]
    >>> corrupt = ["When Alice and Bob went to the store, Bob gave a drink to"]
    >>> df = path_patch(model, clean, corrupt, " Mary", " John", receivers=[(1, 0)], component="q")
    >>> list(df[["layer", "head"]].itertuples(index=False, name=None)) == [(0, h) for h in range(4)]
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Literal

import torch
from torch import Tensor

from interp.errors import InterpError, check_range, model_name
from interp.patching import Pair, cache, check_replay, check_target, downstream, n_heads_of, prepare, read
from interp.progress import bar

Component = Literal["q", "k", "v", "logits"]
_TOKENS_PER_FORWARD = 512


def path_patch(model, clean, corrupted, target=None, foil=None, receivers="logits", component: Component = "q",
               senders: Sequence | None = None, direction: Literal["denoising", "noising"] = "noising",
               metric=None):
    """Path-patch each sender set to the receivers; one table row per sender set.

    Args:
        model, clean, corrupted, target, foil, metric: as for `interp.patching.activation_patch`.
        receivers: "logits" (the residual at the end), or [(layer, head), ...] whose `component`
            is patched (for k/v, head is a kv head).
        component: "q", "k" or "v" for head receivers ("logits" with receivers="logits").
        senders: a list of heads (layer, head), each patched alone, or of lists of heads, each
            patched together (default: every head below the last receiver layer, each alone).
        direction: "noising" (clean run, corrupted senders; Wang et al.) or "denoising".

    Returns:
        DataFrame: senders, layer, head (of a single sender; <NA> for sets), receivers,
        component, direction, clean, corrupted, patched, normalised.
    """
    check_target(model, "heads", direction)
    receivers, component = _check_receivers(model, receivers, component)
    sets = _sender_sets(model, senders, receivers)
    pair = prepare(model, clean, corrupted, target, foil, metric)
    L = model.cfg.n_layers
    z_names = [f"blocks.{l}.attn.hook_z" for l in range(L)]
    runs = {"clean": cache(model, pair.clean, z_names), "corrupted": cache(model, pair.corrupted, z_names)}
    base_name, src_name = ("corrupted", "clean") if direction == "denoising" else ("clean", "corrupted")
    base = getattr(pair, base_name)
    values = _sweep(model, base, runs[base_name], runs[src_name], pair, sets, receivers, component)
    ends = {k: read(pair.metric, r["logits"], getattr(pair, k), pair.last, len(pair.last)).mean().item()
            for k, r in runs.items()}
    return _table(sets, values, receivers, component, direction, ends)


def _check_receivers(model, receivers, component):
    if isinstance(receivers, str):
        if receivers not in ("logits", "resid_post final"):
            raise InterpError(f"unknown receiver {receivers!r}; give 'logits' or a list of (layer, head)")
        return "logits", "logits"
    if component not in ("q", "k", "v"):
        raise InterpError(f"unknown receiver component {component!r}; choose q, k or v")
    receivers = [tuple(r) for r in receivers]
    if not receivers:
        raise InterpError("no receivers: give at least one (layer, head)")
    kind = "kv head" if component in "kv" and n_heads_of(model, component) != model.cfg.n_heads else "head"
    for layer, head in receivers:
        check_range("layer", layer, model.cfg.n_layers, model_name(model))
        check_range(kind, head, n_heads_of(model, component), model_name(model))
    return receivers, component


def _sender_sets(model, senders, receivers) -> list[list[tuple[int, int]]]:
    top = model.cfg.n_layers if receivers == "logits" else max(l for l, _ in receivers)
    if senders is None:
        return [[(l, h)] for l in range(top) for h in range(model.cfg.n_heads)]
    sets = [[tuple(s)] if isinstance(s[0], int) else [tuple(x) for x in s] for s in senders]
    for heads in sets:
        for layer, head in heads:
            check_range("layer", layer, model.cfg.n_layers, model_name(model))
            check_range("head", head, model.cfg.n_heads, model_name(model))
    return sets


def _sweep(model, base: Tensor, base_run: dict, src_run: dict, pair: Pair, sets: list, receivers,
           component: str) -> Tensor:
    """Metric [set batch]. Downstream only: one base forward records every block's inputs, and
    the sets whose lowest sender is in layer l replay blocks l..L-1 (run 2) and, for q/k/v
    receivers, blocks r..L-1 from the lowest receiver layer r (run 3), copies stacked."""
    from interp.blocks import record_tails
    from interp.kv import attending

    B = base.shape[0]
    inputs, tails, prefix, _, logits = record_tails(model, base, pair.replay_start())
    check_replay(model, inputs, pair, base, logits)
    start = 0 if prefix is None else prefix.length  # positions before it: the same in both runs
    if start:
        inputs = tails
        base_run, src_run = ({n: v[:, start:] for n, v in run.items() if n != "logits"} for run in (base_run, src_run))
    per = max(1, _TOKENS_PER_FORWARD // base.numel())
    out = torch.empty(len(sets), B)
    with (attending(model, prefix) if start else nullcontext(), torch.no_grad(),
          bar(len(sets), f"path patching to {component}", unit="sender") as progress):
        for first in sorted({min(l for l, _ in heads) for heads in sets}):
            rows = [i for i, heads in enumerate(sets) if min(l for l, _ in heads) == first]
            for i in range(0, len(rows), per):
                chunk = rows[i:i + per]
                out[chunk] = _chunk(model, inputs, first, base, base_run, src_run, pair, [sets[i] for i in chunk],
                                    receivers, component, start).reshape(len(chunk), B).cpu()
                progress.update(len(chunk))
    return out


def _chunk(model, inputs, first: int, base: Tensor, base_run: dict, src_run: dict, pair: Pair, sets: list,
           receivers, component: str, start: int = 0) -> Tensor:
    """Metric [n * batch] for n sender sets whose lowest sender is in layer `first` (`inputs`
    and the runs' z cut to positions start.. when start > 0)."""
    n = len(sets)
    freeze = [(f"blocks.{l}.attn.hook_z", _frozen(l, sets, base_run, src_run, base.shape[0]))
              for l in range(first, model.cfg.n_layers)]
    if receivers == "logits":
        with model.hooks(fwd_hooks=freeze):
            return downstream(model, inputs, first, n, base, pair, start)
    names = sorted({f"blocks.{l}.attn.hook_{component}" for l, _ in receivers if l > first})
    if not names:  # every receiver reads the residual before the senders write to it
        return downstream(model, inputs, model.cfg.n_layers - 1, n, base, pair, start)
    recorded: dict = {}
    with model.hooks(fwd_hooks=freeze + [(name, _recorder(recorded, name)) for name in names]):
        downstream(model, inputs, first, n, base, pair, start)
    low = min(int(name.split(".")[1]) for name in names)
    with model.hooks(fwd_hooks=[(name, _receiver(recorded[name], name, receivers)) for name in names]):
        return downstream(model, inputs, low, n, base, pair, start)


def _frozen(layer: int, sets: list, base_run: dict, src_run: dict, B: int):
    """hook_z of `layer`: every head at the base run's value, the senders of copy i at the source's."""
    name = f"blocks.{layer}.attn.hook_z"
    value = base_run[name].repeat(len(sets), 1, 1, 1).clone()
    for i, heads in enumerate(sets):
        for l, h in heads:
            if l == layer:
                value[i * B:(i + 1) * B, :, h] = src_run[name][:, :, h]

    def hook(z, hook=None):
        return value.to(z.dtype)

    return hook


def _recorder(store: dict, name: str):
    def hook(act, hook=None):
        store[name] = act.detach().clone()
        return act

    return hook


def _receiver(recorded: Tensor, name: str, receivers):
    """hook_q/k/v of one layer: the receivers of that layer take the values recorded in run 2."""
    layer = int(name.split(".")[1])
    heads = [h for l, h in receivers if l == layer]

    def hook(act, hook=None):
        act = act.clone()
        act[:, :, heads] = recorded[:, :, heads].to(act.dtype)
        return act

    return hook


def _table(sets, values: Tensor, receivers, component, direction, ends: dict):
    import pandas as pd

    clean, corrupted = ends["clean"], ends["corrupted"]
    shown = "logits" if receivers == "logits" else " ".join(f"L{l}H{h}" for l, h in receivers)
    rows = [{"senders": " ".join(f"L{l}H{h}" for l, h in heads), "layer": heads[0][0] if len(heads) == 1 else None,
             "head": heads[0][1] if len(heads) == 1 else None, "receivers": shown, "component": component,
             "direction": direction, "clean": clean, "corrupted": corrupted, "patched": v}
            for heads, v in zip(sets, values.mean(-1).tolist())]
    df = pd.DataFrame(rows)
    for col in ("layer", "head"):
        df[col] = df[col].astype("Int64")
    gap = clean - corrupted
    df["normalised"] = (df["patched"] - corrupted) / gap if gap != 0 else float("nan")
    return df
