"""Head ablation: what a metric loses when one attention head (or a set) is knocked out.

A head is ablated through its output `z` (`blocks.{L}.attn.hook_z`, before W_O), which is
replaced by zero (zero ablation), by its mean over reference prompts (mean ablation; per position
when every reference and every prompt has the same length, else over positions too), or by its
value on another prompt (resample ablation, seeded; Chan et al. 2022, "Causal Scrubbing").
Zeroing z removes the head's write to the residual stream, except for a constant: compatibility
mode folds each head's value bias (with LayerNorm's bias) into the layer's output bias b_O (as
HookedTransformer did), so that constant stays, like b_O. Interventions run inside `model.hooks(...)`/`run_with_hooks`; the model is unchanged after.

Metrics: logit difference target - foil at the last position (`foil` given), the target's
log-prob (`target` only), the mean next-token loss (neither), or your own
`fn(logits, tokens) -> [batch]`. Raw logits shift by a per-position constant in compatibility
mode, so a custom metric should compare log-probs or differences.

`sweep` ablates every head alone with the fast downstream-only engine (`interp.sweep`) on every
causal model (`engine="naive"`: one hooked forward per head); `ablate` ablates a set together,
and `ablate_sets` many sets, each together, stacked along the batch.

Example:
    >>> import interp
    >>> from interp.ablation import sweep
    >>> model = interp.load("zoo-2l")
    >>> df = sweep(model, ["When Mary and John went to the store, John gave a drink to"], " Mary", " John")
    >>> list(df.columns), len(df)
    (['layer', 'head', 'clean', 'ablated', 'delta', 'relative'], 8)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from interp.activations import to_tokens
from interp.blocks import hidden, metric_of, record_inputs, run_blocks
from interp.errors import InterpError, check_range, model_name
from interp.progress import bar
from interp.sweep import (Metric, clean_run, custom, fast_sweep, logit_diff, logprob, loss, naive_sweep,
                          position_mask, supports_fast, where_hook, zero_replacement)

Mode = Literal["zero", "mean", "resample"]
Engine = Literal["auto", "fast", "naive"]
_MODES = ("zero", "mean", "resample")


def make_metric(model, n: int, target=None, foil=None, metric: Callable | None = None) -> Metric:
    """The metric implied by the arguments: custom fn, logit diff (foil), log-prob (target) or loss."""
    if metric is not None:
        if not callable(metric):
            raise InterpError(f"metric {metric!r} is not callable; pass fn(logits, tokens) -> tensor[batch]")
        return custom(metric)
    _check_logits_trained(model)
    if foil is not None:
        if target is None:
            raise InterpError("a foil needs a target: pass target= too (logit difference = target - foil)")
        return logit_diff(model, target, foil, n)
    return logprob(model, target, n) if target is not None else loss()


def _check_logits_trained(model) -> None:
    """Refuse a built-in metric on logits that come from weights the checkpoint lacked."""
    info = getattr(model, "info", None)
    if info is not None and info.untrained_parts:
        raise InterpError(f"head ablation reads the logits, but {info.name} loaded {', '.join(info.untrained_parts)} "
                          "at random (missing from its checkpoint), so its metrics would be noise; use a model "
                          "with a trained unembedding, e.g. smollm2-135m")


def replacement(model, tokens: Tensor, lengths: Sequence[int], mode: Mode, reference: Sequence[str] | None = None,
                seed: int = 0) -> Tensor:
    """The value every head's z takes under `mode`: [layer batch pos head d_head].

    Args:
        reference: prompts for mean/resample (default: the prompts themselves; resampling then
            draws each prompt's source from the others).
        seed: seeds the resample draw.
    """
    if mode not in _MODES:
        raise InterpError(f"unknown ablation mode {mode!r}; choose one of {', '.join(_MODES)}")
    if mode == "zero":
        if reference is not None:
            raise InterpError("zero ablation uses no reference prompts: drop reference (CLI: --reference) "
                              "or choose mode 'mean' or 'resample'")
        return zero_replacement(model, tokens)
    if reference is None and len(lengths) < 2:
        raise InterpError(f"{mode} ablation over a single prompt uses that prompt's own head outputs; "
                          "pass reference prompts (CLI: --reference) or several prompts")
    ref_tokens, ref_lengths = (tokens, list(lengths)) if reference is None else _tokens(model, reference)
    z_ref, _ = clean_run(model, ref_tokens)  # [layer ref pos head d_head]
    if mode == "mean":
        return _mean(z_ref, ref_lengths, tokens, lengths)
    return _resample(z_ref, tokens, seed, exclude_self=reference is None)


def _mean(z_ref: Tensor, ref_lengths: Sequence[int], tokens: Tensor, lengths: Sequence[int]) -> Tensor:
    B, S = tokens.shape
    if len(set(ref_lengths) | set(lengths)) == 1 and z_ref.shape[2] == S:
        mean = z_ref.mean(1, keepdim=True)  # per position
    else:
        real = torch.arange(z_ref.shape[2])[None, :] < torch.tensor(list(ref_lengths))[:, None]  # [ref pos]
        mean = z_ref[:, real].mean(1)[:, None, None]  # over prompts and real positions
    return mean.expand(-1, B, S, -1, -1).clone()


def _resample(z_ref: Tensor, tokens: Tensor, seed: int, exclude_self: bool) -> Tensor:
    B, S = tokens.shape
    R = z_ref.shape[1]
    if z_ref.shape[2] < S:
        raise InterpError(f"resample reference prompts are {z_ref.shape[2]} tokens but the prompts are {S}; "
                          "give reference prompts at least as long (same template)")
    if exclude_self and R < 2:
        raise InterpError("resample ablation needs at least 2 prompts (each takes another's head output), "
                          "or pass reference prompts")
    g = torch.Generator().manual_seed(seed)
    if exclude_self:  # a draw among the other prompts
        source = (torch.arange(B) + torch.randint(1, R, (B,), generator=g)) % R
    else:
        source = torch.randint(0, R, (B,), generator=g)
    return z_ref[:, source.to(z_ref.device), :S].clone()


def _tokens(model, prompts):
    """Token ids [batch pos] and each row's length: prompts are tokenized (right-padded); a 2-D
    integer tensor is taken as given, every row its full length (e.g. random token sequences)."""
    if isinstance(prompts, Tensor):
        from interp.inputs import check_tokens

        tokens = check_tokens(model, prompts)
        return tokens, [tokens.shape[1]] * tokens.shape[0]
    tokens, strs = to_tokens(model, prompts)
    return tokens, [len(s) for s in strs]


def _table(clean: Tensor, ablated: Tensor, keys: list[dict], per_prompt: bool):
    """Long table from clean [batch] and ablated [row batch] with one key dict per row."""
    import pandas as pd

    rows = []
    for key, values in zip(keys, ablated):
        if per_prompt:
            rows += [{**key, "prompt": i, "clean": c.item(), "ablated": a.item()} for i, (c, a) in enumerate(zip(clean, values))]
        else:
            rows.append({**key, "clean": clean.mean().item(), "ablated": values.mean().item()})
    df = pd.DataFrame(rows)
    df["delta"] = df["ablated"] - df["clean"]
    df["relative"] = df["delta"] / df["clean"].abs()
    return df


def sweep(model, prompts: str | Sequence[str], target=None, foil=None, *, metric: Callable | None = None,
          mode: Mode = "zero", reference: Sequence[str] | None = None, positions: Sequence[int] | None = None,
          layers: Sequence[int] | None = None, seed: int = 0, per_prompt: bool = False, engine: Engine = "auto"):
    """Ablate every head alone (layer x head) and measure the metric.

    Args:
        model: a model from `interp.load`.
        prompts: one prompt or a list (right-padded; metrics read each prompt's last real token).
        target, foil: single tokens (" Mary"), or one per prompt; see the module docstring.
        metric: your own fn(logits [batch pos d_vocab], tokens [batch pos]) -> [batch].
        mode: "zero", "mean" or "resample".
        reference: prompts for mean/resample (default: the prompts themselves).
        positions: positions whose z is ablated (default: all).
        layers: layers to sweep (default: all).
        seed: resample seed.
        per_prompt: one row per (layer, head, prompt) instead of the mean over prompts.
        engine: "auto" (fast when supported), "fast" or "naive" (one hooked forward per head).

    Returns:
        DataFrame with layer, head, [prompt,] clean, ablated, delta = ablated - clean and
        relative = delta / |clean|.
    """
    from interp.inputs import check_choice

    check_choice(engine, ("auto", "fast", "naive"), "engine")
    tokens, lengths = _tokens(model, prompts)
    for l in layers or ():
        check_range("layer", l, model.cfg.n_layers, model_name(model))
    met = make_metric(model, len(lengths), target, foil, metric)
    repl = replacement(model, tokens, lengths, mode, reference, seed)
    fast = engine == "fast" or (engine == "auto" and supports_fast(model))
    run = fast_sweep if fast else naive_sweep
    clean, out = run(model, tokens, repl, met, lengths=lengths, positions=positions, layers=layers)
    chosen = range(model.cfg.n_layers) if layers is None else layers
    keys = [{"layer": l, "head": h} for l in chosen for h in range(model.cfg.n_heads)]
    return _table(clean, torch.stack([out[k["layer"], k["head"]] for k in keys]), keys, per_prompt)


def ablate(model, prompts: str | Sequence[str], heads: Sequence[tuple[int, int]], target=None, foil=None, *,
           metric: Callable | None = None, mode: Mode = "zero", reference: Sequence[str] | None = None,
           positions: Sequence[int] | None = None, seed: int = 0, per_prompt: bool = False):
    """Ablate a set of heads together (one head: `[(layer, head)]`): one clean forward, then the
    blocks from the set's first layer on replayed with the heads replaced (`ablate_sets`).

    Arguments as in `sweep`. Returns a one-row table (one per prompt with `per_prompt`) with
    heads ("L0H1+L1H3"), clean, ablated, delta and relative.
    """
    return ablate_sets(model, prompts, [heads], target, foil, metric=metric, mode=mode, reference=reference,
                       positions=positions, seed=seed, per_prompt=per_prompt)


_TOKENS_PER_FORWARD = 8192


def ablate_sets(model, prompts: str | Sequence[str], head_sets: Sequence[Sequence[tuple[int, int]]], target=None,
                foil=None, *, metric: Callable | None = None, mode: Mode = "zero",
                reference: Sequence[str] | None = None, positions: Sequence[int] | None = None, seed: int = 0,
                per_prompt: bool = False, chunk: int = 20):
    """Ablate each of many head sets together (e.g. the random sets of a baseline control).

    One clean forward records what every block received (`interp.blocks.record_inputs`). Then
    the prompts are repeated once per set of a chunk and stacked along the batch, and only the
    blocks from the chunk's first ablated layer on are replayed, with one hook per layer putting
    the replacement into the heads each copy ablates; a last-position metric unembeds the last
    positions only. So `chunk` sets cost a fraction (L - first) / L of one forward of `chunk`
    times the batch instead of `chunk` full forwards (fewer sets per chunk when the stacked
    batch would pass 8192 tokens; a custom metric sees the batch it was written for: one set per
    forward). Other arguments as in `sweep`.

    Returns:
        One row per set (per set and prompt with `per_prompt`): heads ("L0H1+L1H3"), clean,
        ablated, delta and relative.
    """
    sets = [_check_heads(model, heads) for heads in head_sets]
    if not sets:
        raise InterpError("no head sets to ablate: pass head_sets=[[(layer, head), ...], ...]")
    tokens, lengths = _tokens(model, prompts)
    met = make_metric(model, len(lengths), target, foil, metric)
    repl = replacement(model, tokens, lengths, mode, reference, seed)
    where = position_mask(positions, tokens.shape[1], tokens.device)
    last = torch.tensor(lengths, device=tokens.device) - 1
    fits = max(1, _TOKENS_PER_FORWARD // tokens.numel())  # bounds the stacked logits' memory
    step = 1 if met.kind == "custom" else max(1, min(chunk, fits))
    inputs, _, logits = record_inputs(model, tokens)
    with torch.no_grad(), bar(len(sets), "head sets", unit="set") as progress:
        clean = met(logits, tokens, last)
        parts = []
        for i in range(0, len(sets), step):
            parts.append(_ablate_chunk(model, inputs, tokens, last, met, repl, where, sets[i:i + step]))
            progress.update(len(sets[i:i + step]))
        ablated = torch.cat(parts)
    keys = [{"heads": "+".join(f"L{l}H{h}" for l, h in heads)} for heads in sets]
    return _table(clean, ablated, keys, per_prompt)


def _check_heads(model, heads) -> list[tuple[int, int]]:
    name = model_name(model)
    heads = [(check_range("layer", l, model.cfg.n_layers, name), check_range("head", h, model.cfg.n_heads, name))
             for l, h in heads]
    if not heads:
        raise InterpError("no heads to ablate: pass heads=[(layer, head), ...]")
    return heads


def _ablate_chunk(model, inputs: list, tokens: Tensor, last: Tensor, met: Metric, repl: Tensor, where: Tensor,
                  sets: list) -> Tensor:
    """Metric [set batch] with each set's heads ablated in its own copy of the batch, replaying
    the blocks from the chunk's first ablated layer on (`inputs`: `record_inputs`' record)."""
    c, (B, _) = len(sets), tokens.shape
    heads = torch.zeros(model.cfg.n_layers, c * B, model.cfg.n_heads, dtype=torch.bool, device=tokens.device)
    for i, chosen in enumerate(sets):
        for layer, head in chosen:
            heads[layer, i * B:(i + 1) * B, head] = True
    hooks = [(f"blocks.{l}.attn.hook_z", where_hook(heads[l][:, None, :, None] & where[None, :, None, None],
                                                   repl[l].repeat(c, 1, 1, 1)))
             for l in range(model.cfg.n_layers) if heads[l].any()]
    first = min(layer for chosen in sets for layer, _ in chosen)
    with model.hooks(fwd_hooks=hooks):
        x = run_blocks(model, inputs, first, hidden(*inputs[first]).repeat(c, 1, 1), c, B)
    prompt = torch.arange(B, device=tokens.device).repeat(c)  # whose target and foil each row reads
    values = metric_of(model, met, x, tokens.repeat(c, 1), last.repeat(c), prompt)
    return values.reshape(c, B)
