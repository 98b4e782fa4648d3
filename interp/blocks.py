"""Downstream-only head sweeps on any architecture, driving the model's own decoder blocks.

`block_sweep` gives the same numbers as the hooked loop (`interp.sweep.naive_sweep`: one
`run_with_hooks` per head) at the cost of recomputing only the layers a head can change. One
clean forward records what every block received (hidden states, the attention mask, rotary
cos/sin, position ids: whatever that architecture's blocks take), then the copies of the
batch, one per (layer, head), are stacked along the batch and run through blocks l..L-1 with
the head's `hook_z` slice replaced, then the final norm and unembedding (a logit difference
unembeds only its two tokens). Copies run in waves sorted by layer: layer l's copies join the
wave at block l, so one pass over the blocks serves several layers. The blocks are the bridge's own (the Hugging Face
decoder layers with their hook points), so rotary embeddings, grouped kv heads, parallel
attention/MLP, post-norms, soft caps and sliding windows are computed by the model's code, not
re-implemented. The final-logit soft cap (Gemma 2) is applied from `interp.arch`.

Cost: 1 + H * sum_l (L - l) / L forward-equivalents against the loop's 1 + H * L, stacked
into batched matmuls. Larger waves do not buy more on the CPU: on smollm2-135m (batch 4 x 15
tokens, one thread) per-layer chunks and cross-layer waves took the same 41 s, since the copies'
matmuls are already compute-bound; the waves serve both replays with one piece of code. Before
the sweep, the clean metric is recomputed by replaying every block unchanged; a disagreement with
the bridge's own logits raises.

Prefix replay: when the replacement starts at position P > 0 and the metric reads each
prompt's last position (every prompt's at or after P), positions < P cannot change. The clean
forward then also keeps every attention's keys and values (`interp.kv.KeyRecorder`), and the
copies run positions P.. only, each attention reading the clean keys/values of positions < P
(`interp.kv.PrefixCache`, stacked to the copies) with the recorded mask, cos/sin and position
ids cut to those query positions (`interp.kv.tail`). All (layer, head) copies go through the
blocks in one pass (a layer's copies join at their layer), in waves bounded to 64 MiB, as
above. Cost:
about 1 + (S - P) / S * H * sum_l (L - l) / L forward-equivalents of compute, plus the cached
attention; measured on smollm2-135m (batch 4 x 15 tokens, last position only, one thread on
a machine loaded by another process): 6.8-7.7 forward-equivalents over three rounds, where
replaying every position costs about 70. The clean check replays positions P.. of every block.

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
from contextlib import nullcontext

import torch
from torch import Tensor

from interp.arch import facts, param, softcap, uncached
from interp.kv import KeyRecorder, PrefixCache, attending, parameter_names, tail
from interp.progress import bar
from interp.offload import resident

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
        x = run_block(model, l, inputs[l], x, n, batch)
    return x


def run_block(model, layer: int, recorded: tuple[tuple, dict], x: Tensor, n: int, batch: int) -> Tensor:
    """Block `layer`'s output hidden states on input `x` [n * batch, pos, d_model], its other
    inputs the `recorded` (args, kwargs) of `batch` prompts stacked n times."""
    args, kwargs = recorded
    args, kwargs = _with_hidden(_stack(args, n, batch), _stack(kwargs, n, batch), x)
    out = model.blocks[layer](*args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def final_logits(model, x: Tensor) -> Tensor:
    """Logits from the last block's hidden states: final norm, unembedding, final soft cap."""
    return softcap(model.unembed(model.ln_final(x)), facts(model).final_softcap)


def metric_of(model, metric, x: Tensor, tokens: Tensor, last: Tensor, prompt: Tensor) -> Tensor:
    """The metric [n] from the last block's hidden states x [n pos d_model] (a last-position
    metric unembeds row i at last[i] only and reads prompt[i]'s target and foil; a logit
    difference unembeds only those two tokens)."""
    if metric.kind == "logit_diff":
        rows = torch.arange(len(x), device=x.device)
        h = model.ln_final(x[rows, last])
        return _token_logit(model, h, metric.target[prompt]) - _token_logit(model, h, metric.foil[prompt])
    if metric.last_only:
        rows = torch.arange(len(x), device=x.device)
        return metric.at_last(final_logits(model, x[rows, last]), prompt)
    return metric(final_logits(model, x), tokens, last)


def _token_logit(model, h: Tensor, token: Tensor) -> Tensor:
    """Logit [n] of token[i] from final-normed h [n d_model]: one column of the unembedding each
    (the bridge's processed W_U and b_U, as `model.unembed` uses them), then the final soft cap."""
    with resident(model, "unembed"):
        logit = (h * model.W_U[:, token].T).sum(-1) + param(model, "b_U")[token]
    return softcap(logit, facts(model).final_softcap)


def block_sweep(model, tokens: Tensor, replacement: Tensor, metric, lengths=None, positions=None,
                layers: Sequence[int] | None = None, chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """Clean metric [batch] and swept metric [layer head batch], as `naive_sweep` returns them.

    When the replacement starts at position P > 0 and the metric reads each prompt's last
    position (all at or after P), only positions P.. are replayed, attending to the clean keys
    and values of positions < P (`_kv_sweep`). Hooks of the user's on hook points run as in the
    loop (the replayed blocks are the model's own), but on a prefix replay they see positions P..
    only.

    Args:
        chunk: (layer, head) copies per stacked batch (default: as many as fit in 64 MiB).
    """
    from interp.sweep import _check_replacement, _first_changed, _last, position_mask

    _check_replacement(model, tokens, replacement)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    last, mask = _last(tokens, lengths), position_mask(positions, tokens.shape[1], tokens.device)
    start = _first_changed(mask, last, metric)
    inputs, tails, prefix, z, logits = record_tails(model, tokens, start)
    if tails is None:  # replay every position: the recorded inputs as they are, no key/value prefix
        start, tails = 0, inputs
    chosen = list(range(L) if layers is None else layers)
    with torch.no_grad():
        clean = metric(logits, tokens, last)
        out = _kv_sweep(model, tails, prefix, replacement[:, :, start:], mask[start:], metric,
                        tokens if not start else None, last - start, clean, chosen, chunk)
    return clean, out


def record_tails(model, tokens: Tensor, start: int):
    """One clean forward for a replay of positions start.. : (every block's inputs, those inputs
    cut to positions start.., a `PrefixCache` of every attention's keys and values of positions
    < start, hook_z per layer, logits). The cut inputs and the cache are None (replay every
    position) when start is 0 or a block input has no cutting rule (`interp.kv.tail`)."""
    recorder = KeyRecorder()
    with attending(model, recorder) if start else nullcontext():
        inputs, z, logits = record_inputs(model, tokens)
    tails = _tails(model, inputs, start) if start else None
    return inputs, tails, None if tails is None else PrefixCache(recorder.kv, start), z, logits


def _tails(model, inputs: list, start: int) -> list | None:
    """Every block's recorded inputs cut to positions start.. (None when an input has no rule)."""
    try:
        return [tail(args, kwargs, start, parameter_names(block.original_component))
                for block, (args, kwargs) in zip(model.blocks, inputs)]
    except ValueError:
        return None


def _d_mlp(model) -> int:
    return getattr(model.cfg, "d_mlp", None) or 4 * model.cfg.d_model


def _kv_sweep(model, tails, cache, replacement, mask, metric, tokens, last, clean, chosen, chunk) -> Tensor:
    """Swept metric [layer head batch] replaying positions P.. only (`tails`: each block's inputs
    cut there; `replacement` [layer batch pos-P head d_head], `mask` and `last` likewise offset),
    every attention reading the clean keys and values of positions < P from `cache` (None: P is
    0, every position is replayed, and `tokens` go to a metric that reads more than the last
    position).

    The (layer, head) copies run in waves, sorted by layer: a wave enters block l with the copies
    of layer l's heads appended to those already running, so one pass over the blocks serves every
    layer of the wave and later blocks see larger stacked batches. First, replaying all blocks
    unchanged must give `clean`.
    """
    B, n_pos = hidden(*tails[0]).shape[:2]
    L, H = model.cfg.n_layers, model.cfg.n_heads
    pairs = [(l, h) for l in sorted(chosen) for h in range(H)]
    keys = n_pos + (cache.length if cache is not None else 0)
    per_pair = B * 4 * (n_pos * _d_mlp(model) + H * keys * (2 * model.cfg.d_head + n_pos))
    chunk = chunk or max(1, _CHUNK_BYTES // per_pair)
    out = torch.full((L, H, B), float("nan"))
    with attending(model, cache) if cache is not None else nullcontext():
        _check_replay(clean, _wave(model, tails, [], replacement, mask, metric, tokens, last))
        with bar(len(pairs), "head sweep") as progress:
            for i in range(0, len(pairs), chunk):
                wave = pairs[i:i + chunk]
                result = _wave(model, tails, wave, replacement, mask, metric, tokens, last)
                for (l, h), row in zip(wave, result.reshape(len(wave), B).cpu()):
                    out[l, h] = row
                progress.update(len(wave))
    return out


def _wave(model, tails, pairs, replacement, mask, metric, tokens, last) -> Tensor:
    """Metric [len(pairs) * batch] of one wave (`_kv_sweep`); with no pairs, of the clean run
    (one copy, nothing replaced, from block 0)."""
    B, L = len(last), model.cfg.n_layers
    first = pairs[0][0] if pairs else 0
    heads = {l: [h for layer, h in pairs if layer == l] for l in range(first, L)}
    x = None if pairs else hidden(*tails[0])
    with model.hooks(fwd_hooks=_wave_hooks(heads, replacement, mask, B)):
        for l in range(first, L):
            if heads[l]:
                entering = hidden(*tails[l]).repeat(len(heads[l]), 1, 1)
                x = entering if x is None else torch.cat([x, entering])
            x = run_block(model, l, tails[l], x, len(x) // B, B)
    n = len(x) // B
    return metric_of(model, metric, x, None if tokens is None else tokens.repeat(n, 1), last.repeat(n),
                     torch.arange(B, device=x.device).repeat(n))


def _wave_hooks(heads: dict, replacement: Tensor, mask: Tensor, batch: int) -> list:
    """One hook_z hook per layer where copies enter a wave (`heads`: layer -> the heads entering)."""
    hooks, n = [], 0
    for l, hs in heads.items():
        n += len(hs)
        if hs:
            hooks.append((f"blocks.{l}.attn.hook_z", _copies_hook(_entering(n, hs, mask, replacement.shape[-2]),
                                                                  replacement[l])))
    return hooks


def _entering(n: int, heads: list[int], mask: Tensor, n_heads: int) -> Tensor:
    """Where [n 1 pos head 1] the last len(heads) of n copies take the replacement: copy
    n - len(heads) + i at head heads[i], at the positions `mask` [pos] sets."""
    chosen = torch.zeros(n, 1, 1, n_heads, 1, dtype=torch.bool, device=mask.device)
    chosen[torch.arange(n - len(heads), n), 0, 0, torch.tensor(heads)] = True
    return chosen & mask[None, None, :, None, None]


def _copies_hook(where: Tensor, value: Tensor):
    """hook_z hook on n stacked copies of a batch (z [n * batch, pos, head, d_head]): copy i takes
    `value` [batch pos head d_head] where where[i] ([n 1 pos head 1]) is set; nothing is repeated."""
    from interp.sweep import where_hook

    inner = where_hook(where, value[None])

    def hook(z, hook=None):
        return inner(z.view(len(where), -1, *z.shape[1:]), hook).reshape(z.shape)

    return hook


def _check_replay(clean: Tensor, replay: Tensor) -> None:
    err = (clean - replay).abs().max().item()
    if not err <= 1e-3 * max(1.0, clean.abs().max().item()):
        raise RuntimeError(f"replaying the last block disagrees with the bridge by {err:.2g}; use engine='naive' "
                           "and report this as a bug")
