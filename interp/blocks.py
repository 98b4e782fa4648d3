"""Downstream-only head sweeps on any architecture, driving the model's own decoder blocks.

`block_sweep` gives the same numbers as the hooked loop (`interp.sweep.naive_sweep`: one
`run_with_hooks` per head) at the cost of recomputing only the layers a head can change. One
clean forward records what every block received (hidden states, the attention mask, rotary
cos/sin, position ids: whatever that architecture's blocks take), then for each layer l the
copies of the batch, one per head, are stacked along the batch and run through blocks
l..L-1 with the head's `hook_z` slice replaced, then the final norm and unembedding. The
blocks are the bridge's own (the Hugging Face decoder layers with their hook points), so
rotary embeddings, grouped kv heads, parallel attention/MLP, post-norms, soft caps and
sliding windows are computed by the model's code, not re-implemented. The final-logit soft
cap (Gemma 2) is applied from `interp.arch`.

Cost: 1 + H * sum_l (L - l) / L forward-equivalents against the loop's 1 + H * L, stacked
into batched matmuls. Before returning, the clean metric is recomputed by replaying the last
block from its recorded input; a disagreement with the bridge's own logits raises.

Example:
    >>> import interp, torch
    >>> from interp.blocks import block_sweep
    >>> from interp.sweep import naive_sweep, logit_diff, zero_replacement
    >>> model = interp.load("zoo-2l")
    >>> tokens = model.to_tokens(["When Mary and John went to the store, John gave a drink to"])
    >>> metric = logit_diff(model, " Mary", " John", 1)
    >>> clean, fast = block_sweep(model, tokens, zero_replacement(model, tokens), metric)
    >>> _, slow = naive_sweep(model, tokens, zero_replacement(model, tokens), metric)
    >>> bool((fast - slow).abs().max() < 1e-4)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interp.arch import facts, softcap, uncached
from interp.progress import bar

_CHUNK_BYTES = 64 * 2**20  # bound on one stacked chunk's largest activation (the MLP hidden layer)


def record_inputs(model, tokens: Tensor) -> tuple[list[tuple[tuple, dict]], Tensor, Tensor]:
    """One clean forward: every block's (args, kwargs), every layer's hook_z
    [layer batch pos head d_head], and the logits."""
    inputs: list = [None] * model.cfg.n_layers
    handles = [block.register_forward_pre_hook(_keep(inputs, l), with_kwargs=True)
               for l, block in enumerate(model.blocks)]
    names = {f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)}
    try:
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    finally:
        for h in handles:
            h.remove()
    z = torch.stack([cache[f"blocks.{l}.attn.hook_z"] for l in range(model.cfg.n_layers)])
    return inputs, z, logits


def _keep(inputs: list, layer: int):
    def hook(module, args, kwargs):
        inputs[layer] = (args, uncached(kwargs))

    return hook


def _stack(value, n: int, batch: int):
    """`value` (a tensor, or tuples/lists/dicts of them) with its batch rows repeated n times."""
    if isinstance(value, Tensor):
        if value.dim() and value.shape[0] == batch:  # batch-first: hidden states, masks, cos/sin, ids
            return value.repeat(n, *[1] * (value.dim() - 1))
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_stack(v, n, batch) for v in value)
    if isinstance(value, dict):
        return {k: _stack(v, n, batch) for k, v in value.items()}
    return value


def hidden(args: tuple, kwargs: dict) -> Tensor:
    """The hidden states among a block's recorded (args, kwargs)."""
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def _with_hidden(args: tuple, kwargs: dict, x: Tensor) -> tuple[tuple, dict]:
    if "hidden_states" in kwargs:
        return args, {**kwargs, "hidden_states": x}
    return (x, *args[1:]), kwargs


def run_blocks(model, inputs, first: int, x: Tensor, n: int, batch: int) -> Tensor:
    """Hidden states after the last block, starting from block `first` with input `x`
    ([n * batch, pos, d_model]); the other inputs of each block are the recorded ones, stacked."""
    for l in range(first, model.cfg.n_layers):
        args, kwargs = inputs[l]
        args, kwargs = _with_hidden(_stack(args, n, batch), _stack(kwargs, n, batch), x)
        out = model.blocks[l](*args, **kwargs)
        x = out[0] if isinstance(out, tuple) else out
    return x


def final_logits(model, x: Tensor) -> Tensor:
    """Logits from the last block's hidden states: final norm, unembedding, final soft cap."""
    return softcap(model.unembed(model.ln_final(x)), facts(model).final_softcap)


def metric_of(model, metric, x: Tensor, tokens: Tensor, last: Tensor, prompt: Tensor) -> Tensor:
    """The metric [n] from the last block's hidden states x [n pos d_model] (a last-position
    metric unembeds row i at last[i] only and reads prompt[i]'s target and foil)."""
    if metric.last_only:
        rows = torch.arange(len(x), device=x.device)
        return metric.at_last(final_logits(model, x[rows, last]), prompt)
    return metric(final_logits(model, x), tokens, last)


def block_sweep(model, tokens: Tensor, replacement: Tensor, metric, lengths=None, positions=None,
                layers: Sequence[int] | None = None, chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """Clean metric [batch] and swept metric [layer head batch], as `naive_sweep` returns them.

    Hooks of the user's on hook points run as in the loop: the replayed blocks are the model's own.
    """
    from interp.sweep import _check_replacement, _last, position_mask, where_hook

    _check_replacement(model, tokens, replacement)
    B, S = tokens.shape
    L, H = model.cfg.n_layers, model.cfg.n_heads
    last, mask = _last(tokens, lengths), position_mask(positions, S, tokens.device)
    inputs, z, logits = record_inputs(model, tokens)
    prompt = torch.arange(B, device=tokens.device)
    with torch.no_grad():
        clean = metric(logits, tokens, last)
        replay = metric_of(model, metric, run_blocks(model, inputs, L - 1, hidden(*inputs[L - 1]), 1, B),
                            tokens, last, prompt)
        _check_replay(clean, replay)
        d_mlp = getattr(model.cfg, "d_mlp", None) or 4 * model.cfg.d_model
        chunk = chunk or max(1, _CHUNK_BYTES // (B * S * d_mlp * 4))
        out = torch.full((L, H, B), float("nan"))
        chosen = list(range(L) if layers is None else layers)
        with bar(len(chosen) * H, "head sweep") as progress:
            for l in chosen:
                x0 = hidden(*inputs[l])
                for h0 in range(0, H, chunk):
                    heads = list(range(h0, min(H, h0 + chunk)))
                    out[l, heads] = _chunk(model, inputs, l, heads, x0, z[l], replacement[l], mask, metric,
                                           tokens, last, prompt, where_hook).reshape(len(heads), B).cpu()
                    progress.update(len(heads))
    return clean, out


def _chunk(model, inputs, l, heads, x0, z, value, mask, metric, tokens, last, prompt, where_hook) -> Tensor:
    """Metric [n * batch] of n stacked copies, copy i with head heads[i] of layer l replaced."""
    n, B = len(heads), x0.shape[0]
    H = z.shape[-2]
    chosen = torch.zeros(n, 1, 1, H, 1, dtype=torch.bool, device=z.device)
    chosen[torch.arange(n), 0, 0, torch.tensor(heads)] = True
    where = (chosen & mask[None, None, :, None, None]).expand(n, B, *z.shape[1:-1], 1).reshape(n * B, *z.shape[1:-1], 1)
    stacked_value = value.repeat(n, 1, 1, 1)
    with model.hooks(fwd_hooks=[(f"blocks.{l}.attn.hook_z", where_hook(where, stacked_value))]):
        x = run_blocks(model, inputs, l, x0.repeat(n, 1, 1), n, B)
    return metric_of(model, metric, x, tokens.repeat(n, 1), last.repeat(n), prompt.repeat(n))


def _check_replay(clean: Tensor, replay: Tensor) -> None:
    err = (clean - replay).abs().max().item()
    if not err <= 1e-3 * max(1.0, clean.abs().max().item()):
        raise RuntimeError(f"replaying the last block disagrees with the bridge by {err:.2g}; use engine='naive' "
                           "and report this as a bug")
