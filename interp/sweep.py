"""Per-head intervention sweeps: the naive hooked loop and a fast downstream-only engine.

An intervention replaces one attention head's output `z` (`blocks.{L}.attn.hook_z`, the
per-head mix of values before the output projection W_O) with another value: zero, a mean over
reference prompts, the head's output on other prompts (resampling) or on a corrupted prompt
(activation patching; Meng et al. 2022, "Locating and Editing Factual Associations in GPT";
Wang et al. 2022, "Interpretability in the Wild"). A sweep does this for every head alone and
reads a metric (logit difference, log-prob, loss, or your own) on each result.

`naive_sweep` runs one hooked bridge forward per head: L*H + 1 forwards, the reference.
`fast_sweep` runs the clean forward once (through `interp.engine`, stopping at the last layer's
attention), keeps each layer's `resid_mid`, and for the heads of layer l adds each head's change
(`(z_new - z_clean) @ W_O[l, h]`) to the clean `resid_mid` (the other heads' clean outputs are
reused), then recomputes only layers l..L-1 with one copy per head stacked along the batch
(chunked). A last-position metric computes the final layer at the last position only, and a
logit difference is one dot product with W_U[:, t] - W_U[:, f]. When the replacement starts at
position P > 0 (e.g. only the last position), positions before P are never recomputed. Its cost
in forward-equivalents is at most 1 + sum_l H * (L - l) / L; `make bench` measures it (zoo-4l: about 5 against the
naive loop's 33, i.e. 6-8x faster).

The fast path uses the bridge's own processed weights (`model.W_Q`, ..., with compatibility
mode's folded LayerNorm and centred weights) and the forward pieces of `interp.engine` (cached
weights, LayerNorm, attention, MLP), so it reproduces the bridge's numbers (to ~1e-5). Every
call checks that against one bridge forward of the first prompt (of all prompts for a custom
metric) and raises if they disagree. That plain-torch path serves GPT-2-style models (learned
absolute positions, LayerNorm, sequential attention then MLP) with no hooks attached. Llama,
Qwen2 and Mistral with no hooks attached take the same algorithm on `interp.rotary_engine`'s
pieces (`interp.rotary_sweep`). Every other causal architecture (Gemma 2/3, GPT-NeoX, Phi,
GPT-J, OPT), and any model with hooks attached, takes `interp.blocks.block_sweep`, which
replays the model's own decoder blocks downstream of each head, stacked along the batch. All
three give the naive loop's numbers (to ~1e-5; `make bench` has the speed-ups, see
reports/bench/README.md), and all three replay only positions P.. when the replacement starts
at position P > 0 and the metric reads the last position, reading the clean keys and values of
the earlier ones. `supports_fast(model)`
says whether a model has a fast path.

Example:
    >>> import interp
    >>> from interp.sweep import fast_sweep, logit_diff, naive_sweep, zero_replacement
    >>> model = interp.load("zoo-2l")
    >>> tokens = model.to_tokens(["When Mary and John went to the store, John gave a drink to"])
    >>> metric = logit_diff(model, " Mary", " John", n=1)
    >>> repl = zero_replacement(model, tokens)
    >>> clean, fast = fast_sweep(model, tokens, repl, metric)
    >>> fast.shape  # layer head batch
    torch.Size([2, 4, 1])
    >>> bool((fast - naive_sweep(model, tokens, repl, metric)[1]).abs().max() < 1e-4)
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from interp.engine import Weights, architecture, attention, hooked, layer_norm, mlp, supports, weights
from interp.errors import InterpError
from interp.progress import bar
from interp.tokens import token_ids

MetricKind = Literal["logit_diff", "logprob", "loss", "custom"]
# Bound on one chunk's largest activation (the MLP hidden layer). Below glibc's largest mmap
# threshold (32 MiB), so with `interp.tune_allocator()` the buffer is reused from chunk to chunk;
# on a 12-layer d_model-768 model, 5 heads per chunk ran 1.1-1.2x faster than all 12.
_CHUNK_BYTES = 32 * 2**20


# ---------------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class Metric:
    """A number per prompt read off the logits.

    `logit_diff` and `logprob` read only each prompt's last real position (`target`/`foil` are
    token ids [batch]); `loss` is the mean next-token loss over each prompt's real positions;
    `custom` calls `fn(logits [batch pos d_vocab], tokens [batch pos]) -> [batch]`.
    """

    kind: MetricKind
    target: Tensor | None = None
    foil: Tensor | None = None
    fn: Callable | None = None

    @property
    def last_only(self) -> bool:
        return self.kind in ("logit_diff", "logprob")

    def __call__(self, logits: Tensor, tokens: Tensor, last: Tensor) -> Tensor:
        """Metric per prompt [batch] from full logits [batch pos d_vocab]."""
        if self.kind == "custom":
            return _check_custom(self.fn(logits, tokens), tokens.shape[0])
        if self.kind == "loss":
            return _loss(logits, tokens, last)
        rows = torch.arange(len(last), device=logits.device)
        return self.at_last(logits[rows, last], rows)

    def at_last(self, logits: Tensor, prompt: Tensor) -> Tensor:
        """Metric from last-position logits [n d_vocab]; `prompt` [n] says whose row each is."""
        n = torch.arange(len(prompt), device=logits.device)
        if self.kind == "logit_diff":
            return logits[n, self.target[prompt]] - logits[n, self.foil[prompt]]
        return logits.log_softmax(-1)[n, self.target[prompt]]


def _check_custom(value, batch: int) -> Tensor:
    if not isinstance(value, Tensor) or tuple(value.shape) != (batch,):
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise InterpError(f"custom metric returned {shape}; it must return a tensor of shape [batch] = ({batch},)")
    return value


def _loss(logits: Tensor, tokens: Tensor, last: Tensor) -> Tensor:
    """Mean next-token cross-entropy over positions 0..last-1 of each prompt."""
    logp = logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]
    pos = torch.arange(tokens.shape[1] - 1, device=tokens.device)
    keep = (pos[None] < last[:, None]).to(logp.dtype)
    return -(logp * keep).sum(1) / keep.sum(1).clamp(min=1)


def logit_diff(model, target, foil, n: int) -> Metric:
    """Logit of `target` minus logit of `foil` at the last position (one token, or one per prompt)."""
    return Metric("logit_diff", token_ids(model, target, n), token_ids(model, foil, n))


def logprob(model, target, n: int) -> Metric:
    """Log-probability of `target` at the last position."""
    return Metric("logprob", token_ids(model, target, n))


def loss() -> Metric:
    """Mean next-token loss over each prompt's real positions."""
    return Metric("loss")


def custom(fn: Callable) -> Metric:
    """Your own `fn(logits [batch pos d_vocab], tokens [batch pos]) -> [batch]`."""
    return Metric("custom", fn=fn)


# ---------------------------------------------------------------------------------------------
# Clean run and replacements


def clean_run(model, tokens: Tensor, mids: bool = False) -> tuple[Tensor, Tensor | None]:
    """hook_z per layer [layer batch pos head d_head] and (if asked) resid_mid per layer
    [layer batch pos d_model] on `tokens` (see `_acts`)."""
    L = model.cfg.n_layers
    names = [f"blocks.{l}.attn.hook_z" for l in range(L)] + (
        [f"blocks.{l}.hook_resid_mid" for l in range(L)] if mids else [])
    acts = _acts(model, tokens, names)
    z = torch.stack([acts[n] for n in names[:L]])
    return z, (torch.stack([acts[n] for n in names[L:]]) if mids else None)


def _acts(model, tokens: Tensor, names: list[str]) -> dict:
    """The activations `names` of one clean forward: through the plain-torch engine `capture`
    would use (`interp.engine` or `interp.rotary_engine`, which stop after the last stage asked
    for) when the model has one and no hooks attached, else the bridge."""
    from interp.activations import _fast_engine

    fast = _fast_engine(model, "auto")
    with torch.no_grad():
        if fast is not None:
            return fast(model, tokens, names)[0]
        return model.run_with_cache(tokens, names_filter=lambda n: n in set(names))[1]


def zero_replacement(model, tokens: Tensor) -> Tensor:
    """Zeros shaped like every layer's hook_z on `tokens`: [layer batch pos head d_head]."""
    c = model.cfg
    return torch.zeros(c.n_layers, *tokens.shape, c.n_heads, c.d_head, device=tokens.device)


def _last(tokens: Tensor, lengths: Sequence[int] | Tensor | None) -> Tensor:
    if lengths is None:
        return torch.full((tokens.shape[0],), tokens.shape[1] - 1, device=tokens.device)
    from interp.inputs import check_lengths

    return torch.as_tensor(check_lengths(lengths, *tokens.shape), device=tokens.device) - 1


def position_mask(positions, n_pos: int, device) -> Tensor:
    """Bool [pos]: where the replacement applies (None = everywhere)."""
    mask = torch.zeros(n_pos, dtype=torch.bool, device=device)
    if positions is None:
        return mask | True
    for p in positions:
        if not isinstance(p, int) or not -n_pos <= p < n_pos:
            raise InterpError(f"position {p} out of range: these prompts have positions 0-{n_pos - 1}")
        mask[p] = True
    return mask


def _check_replacement(model, tokens: Tensor, replacement: Tensor) -> None:
    c = model.cfg
    want = (c.n_layers, *tokens.shape, c.n_heads, c.d_head)
    if tuple(replacement.shape) != want:
        raise InterpError(f"replacement has shape {tuple(replacement.shape)}; it must be [layer batch pos head d_head] = {want}")


# ---------------------------------------------------------------------------------------------
# Naive reference: one hooked forward per head


def naive_sweep(model, tokens: Tensor, replacement: Tensor, metric: Metric, lengths=None, positions=None,
                layers: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """Clean metric [batch] and swept metric [layer head batch], one `run_with_hooks` per head.

    Args:
        model: a model from `interp.load`.
        tokens: token ids [batch pos] (right-padded).
        replacement: the value each head's z takes, [layer batch pos head d_head].
        metric: a `Metric`.
        lengths: each prompt's real length (default: all of pos).
        positions: positions where z is replaced (default: all).
        layers: layers to sweep (default: all); rows of other layers are NaN.
    """
    _check_replacement(model, tokens, replacement)
    last, mask = _last(tokens, lengths), position_mask(positions, tokens.shape[1], tokens.device)
    with torch.no_grad():
        clean = metric(model(tokens), tokens, last)
        out = torch.full((model.cfg.n_layers, model.cfg.n_heads, tokens.shape[0]), float("nan"))
        chosen = list(range(model.cfg.n_layers) if layers is None else layers)
        with bar(len(chosen) * model.cfg.n_heads, "head sweep (hooked loop)") as progress:
            for l in chosen:
                for h in range(model.cfg.n_heads):
                    logits = model.run_with_hooks(tokens, fwd_hooks=[replace_hook(l, [h], replacement[l], mask)])
                    out[l, h] = metric(logits, tokens, last)
                    progress.update(1)
    return clean, out


def replace_hook(layer: int, heads: Sequence[int], value: Tensor, mask: Tensor):
    """(hook name, hook) that sets z[:, mask, heads] to value[:, mask, heads] ([batch pos head d_head])."""
    chosen = torch.zeros(value.shape[-2], dtype=torch.bool, device=mask.device)
    chosen[list(heads)] = True
    return f"blocks.{layer}.attn.hook_z", where_hook(mask[:, None, None] & chosen[None, :, None], value)


def where_hook(mask: Tensor, value: Tensor):
    """hook_z hook: z [batch pos head d_head] takes `value` where `mask` (broadcastable) is set."""

    def hook(z, hook=None):
        return torch.where(mask, value.to(z.dtype), z)

    return hook


# ---------------------------------------------------------------------------------------------
# Fast engine: downstream-only recomputation on the bridge's processed weights


def supports_fast(model) -> bool:
    """Whether `fast_sweep` runs on `model`: every causal bridge (GPT-2-style ones through the
    plain-torch engine, the rest by replaying their own blocks, `interp.blocks`)."""
    from interp.arch import facts

    return supports(model) or facts(model).causal


def _weights(model) -> Weights:
    """The engine's cached processed weights, as a shallow copy (rebinding a field never
    touches the cache)."""
    if not supports(model):
        raise InterpError(f"the fast sweep supports GPT-2-style models, not {architecture(model)}; "
                          "use engine='naive'")
    return dataclasses.replace(weights(model))


def _downstream(w: Weights, l: int, mid: Tensor, metric: Metric, tokens: Tensor, last: Tensor,
                prompt: Tensor, past: list | None = None) -> Tensor:
    """Metric [n] from resid_mid of layer l [n pos d_model], running layers l..L-1. With `past`
    (per layer, the clean keys and values [n head P d_head] of the first P positions), `mid` holds
    positions P.. only and `last` indexes into them."""
    n_layers = w.n_layers
    x = mid
    if metric.last_only and l == n_layers - 1:
        x = x[torch.arange(len(x), device=x.device), last]
    x = mlp(w, l, x)
    for j in range(l + 1, n_layers):
        x = mlp(w, j, attention(w, j, x, last if metric.last_only and j == n_layers - 1 else None,
                                None if past is None else past[j]))
    h = layer_norm(x, w.ln_f, w.eps)
    if metric.kind == "logit_diff":
        direction = (w.W_U[:, metric.target[prompt]] - w.W_U[:, metric.foil[prompt]]).T
        return (h * direction).sum(-1) + w.b_U[metric.target[prompt]] - w.b_U[metric.foil[prompt]]
    logits = h @ w.W_U + w.b_U
    return metric.at_last(logits, prompt) if metric.last_only else metric(logits, tokens, last)


def _first_changed(mask: Tensor, last: Tensor, metric: Metric) -> int:
    """The first position an intervention at `mask` changes, when the rows before it can be
    skipped (a last-position metric, every prompt's last position at or after it); else 0."""
    first = int(mask.nonzero()[0]) if mask.any() else 0
    return first if metric.last_only and first > 0 and bool((last >= first).all()) else 0


def fast_sweep(model, tokens: Tensor, replacement: Tensor, metric: Metric, lengths=None, positions=None,
               layers: Sequence[int] | None = None, chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """Same results as `naive_sweep` (to ~1e-5), recomputing only what each head can change:
    the layers from the head's own on, and, when `positions` starts after 0 and the metric reads
    the last position, only the positions from the first replaced one on (earlier positions
    cannot see the change; their clean keys and values are reused).

    Args:
        chunk: heads per stacked batch (default: as many as fit in 32 MiB of MLP activations).

    Raises:
        InterpError: a bad replacement. Llama, Qwen2 and Mistral run through
            `interp.rotary_sweep.rotary_sweep`, other models (and any with hooks attached)
            through `interp.blocks.block_sweep` (their own decoder blocks), both downstream
            only and from the first replaced position on under the same conditions.
    """
    _check_replacement(model, tokens, replacement)
    if not supports(model):
        from interp import rotary_engine
        from interp.blocks import block_sweep
        from interp.rotary_sweep import rotary_sweep

        faster = rotary_sweep if rotary_engine.supports(model) and not hooked(model) else block_sweep
        return faster(model, tokens, replacement, metric, lengths, positions, layers, chunk)
    w = _weights(model)
    if hooked(model):
        raise InterpError("the model has hooks attached, which the fast sweep would not run; remove them "
                          "or use engine='naive'")
    B, S = tokens.shape
    last, mask = _last(tokens, lengths), position_mask(positions, S, tokens.device)
    P = _first_changed(mask, last, metric)  # positions < P are the clean run's in every copy
    L = w.n_layers
    names = [f"blocks.{l}.{n}" for n in ("attn.hook_z", "hook_resid_mid") for l in range(L)]
    names += [f"blocks.{l}.attn.hook_{c}" for l in range(1, L) for c in "kv"] if P else []
    with torch.no_grad():
        acts = _acts(model, tokens, names)
        z = torch.stack([acts[f"blocks.{l}.attn.hook_z"] for l in range(L)])
        mid = torch.stack([acts[f"blocks.{l}.hook_resid_mid"] for l in range(L)])
        clean = _downstream(w, L - 1, mid[-1], metric, tokens, last, torch.arange(B, device=tokens.device))
        _self_check(model, tokens, clean, metric, last)
        prefix = [None] + [tuple(acts[f"blocks.{l}.attn.hook_{c}"][:, :P].transpose(1, 2) for c in "kv")
                           for l in range(1, L)] if P else None
        H = w.n_heads
        chunk = chunk or max(1, _CHUNK_BYTES // (B * (S - P) * model.cfg.d_mlp * 4))
        out = torch.full((L, H, B), float("nan"))
        for l in (range(L) if layers is None else layers):
            diff = torch.where(mask[None, :, None, None], replacement[l].to(z.dtype) - z[l], 0)[:, P:]
            delta = torch.einsum("bshe,hed->hbsd", diff, w.W_O[l])  # each head's change to resid_mid
            for h0 in range(0, H, chunk):
                hs = slice(h0, min(H, h0 + chunk))
                x = (mid[l][None, :, P:] + delta[hs]).reshape(-1, S - P, mid.shape[-1])
                n = x.shape[0] // B
                prompt = torch.arange(B, device=x.device).repeat(n)
                past = None if prefix is None else [None] + [tuple(t.repeat(n, 1, 1, 1) for t in kv)
                                                             for kv in prefix[1:]]
                out[l, hs] = _downstream(w, l, x, metric, tokens.repeat(n, 1), (last - P).repeat(n), prompt,
                                         past).reshape(n, B).cpu()
    return clean, out


def _self_check(model, tokens: Tensor, clean: Tensor, metric: Metric, last: Tensor) -> None:
    """The engine's clean metric must equal the bridge's: a guard against weights the engine
    misreads. It costs one bridge forward of the first prompt (of all, for a custom metric,
    which may index the whole batch)."""
    n = len(tokens) if metric.kind == "custom" else 1
    with torch.no_grad():
        ref = metric(model(tokens[:n]), tokens[:n], last[:n])
    err = (ref - clean[:n]).abs().max().item()
    if not err <= 1e-3 * max(1.0, ref.abs().max().item()):
        raise RuntimeError(f"fast sweep disagrees with the bridge by {err:.2g} on the clean run; use engine='naive' "
                           "and report this as a bug")


# ---------------------------------------------------------------------------------------------
# Activation patching of head outputs


def _from_first_difference(model, clean: Tensor, corrupted: Tensor, positions):
    """`positions` when given; else, on a causal model, the positions from the first one where any
    clean and corrupted prompt differ (before it every head's corrupted z is its clean z, so
    patching there changes nothing and a last-position metric replays only the rest); else None."""
    from interp.arch import facts

    if positions is not None or not facts(model).causal:
        return positions
    differs = (clean != corrupted).any(0).nonzero()
    first = int(differs[0]) if len(differs) else 0
    return list(range(first, clean.shape[1])) if first > 0 else None


def patch_heads(model, clean: Sequence[str] | Tensor, corrupted: Sequence[str] | Tensor, metric: Metric,
                positions=None, engine: Literal["auto", "fast", "naive"] = "auto"):
    """Patch each head's z from the corrupted run into the clean run; a table per head.

    Args:
        clean, corrupted: prompts (or token tensors) of equal token length, pairwise.
        metric: a `Metric` read on the patched clean run.
        positions: positions to patch (default: on a causal model, every position from the first
            one where a clean and a corrupted prompt differ: the earlier ones would receive their
            own clean values, so a last-position metric replays only the rest).

    Returns:
        DataFrame with layer, head, clean, patched, delta, relative (delta / |clean|), averaged
        over prompts.
    """
    import pandas as pd

    from interp.activations import to_tokens

    ct = clean if isinstance(clean, Tensor) else to_tokens(model, clean)[0]
    xt = corrupted if isinstance(corrupted, Tensor) else to_tokens(model, corrupted)[0]
    if ct.shape != xt.shape:
        raise InterpError(f"clean tokens {tuple(ct.shape)} and corrupted tokens {tuple(xt.shape)} differ in shape; "
                          "patching needs prompts of equal token length, pairwise")
    z_corrupt, _ = clean_run(model, xt)
    run = fast_sweep if engine == "fast" or (engine == "auto" and supports_fast(model)) else naive_sweep
    base, out = run(model, ct, z_corrupt, metric, positions=_from_first_difference(model, ct, xt, positions))
    rows = [{"layer": l, "head": h, "clean": base.mean().item(), "patched": out[l, h].mean().item()}
            for l in range(out.shape[0]) for h in range(out.shape[1])]
    df = pd.DataFrame(rows)
    df["delta"] = df["patched"] - df["clean"]
    df["relative"] = df["delta"] / df["clean"].abs()
    return df
