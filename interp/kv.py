"""Key/value caches through the bridge's own attention, on every causal architecture.

Why this module exists: transformers 5.24 hands each decoder layer's attention its cache as the
keyword `cache` (`past_key_values` is deprecated there), while TransformerLens 4.3's attention
bridges that re-implement attention (`PositionEmbeddingsAttentionBridge`: Llama, Qwen2, Mistral,
Gemma 2/3, Phi, SmolLM2) read only `past_key_values` or `layer_past`. A `DynamicCache` passed to
the bridge therefore stays empty on those models and every cached step attends to its new tokens
alone (tiny Llama: next-token log-probs 1.9 off, measured). GPT-NeoX (`layer_past`) and the
bridges that run Hugging Face's own attention (GPT-J, OPT) were right. `attending` fixes it for
the time of a `with`: a forward pre-hook on every attention module hands it a cache under the
name that module reads.

Two uses:
- sampling: `CachedStepper` feeds the bridge only the tokens it has not seen, with Hugging
  Face's own `DynamicCache` (one new token's forward per step instead of the whole sequence;
  smollm2-135m, 4 x 40 new tokens after 10, one thread: 7.2 s against 24.5 s rerunning; a
  4-token step still costs about 0.18 s, near half a 4 x 15-token forward);
- downstream-only replay (`interp.blocks`): `KeyRecorder` keeps the keys and values every
  attention computed in one clean forward (after rotary embeddings and key norms, as the
  attention uses them), `PrefixCache` supplies those of positions < P to a replay of positions
  P.. only, and `tail` cuts a block's recorded inputs (hidden states, the 4-D attention mask
  with its causal triangle, sliding window and padding, rotary cos/sin, position ids) to
  positions P.. .

Example:
    >>> import interp, torch
    >>> from interp.kv import CachedStepper
    >>> model = interp.load("zoo-2l")
    >>> tokens = model.to_tokens("When Mary and John went to the store")
    >>> step = CachedStepper(model)
    >>> _ = step(tokens[:, :-1])
    >>> bool((step(tokens) - model(tokens)[:, -1]).abs().max() < 1e-4)
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

# Block keywords that list positions along their last axis.
_POSITION_IDS = ("position_ids", "cache_position")


class KeyRecorder:
    """A stand-in for a Hugging Face cache that keeps each layer's keys and values
    [batch kv_head pos d_head] and returns them unchanged (the forward is the uncached one)."""

    def __init__(self):
        self.kv: dict[int, tuple[Tensor, Tensor]] = {}

    def update(self, key: Tensor, value: Tensor, layer_idx: int, *args, **kwargs) -> tuple[Tensor, Tensor]:
        self.kv[layer_idx] = (key, value)
        return key, value


class PrefixCache:
    """A stand-in for a Hugging Face cache with fixed keys and values of the first P positions.

    `update` returns the prefix followed by the new keys/values, the prefix's batch rows repeated
    to the new batch (copy-major: row i * batch + b is prompt b). It stores nothing, so one object
    serves every replay.
    """

    def __init__(self, kv: dict[int, tuple[Tensor, Tensor]], length: int):
        self.kv = {l: (k[..., :length, :], v[..., :length, :]) for l, (k, v) in kv.items()}
        self.length = length

    def update(self, key: Tensor, value: Tensor, layer_idx: int, *args, **kwargs) -> tuple[Tensor, Tensor]:
        pk, pv = self.kv[layer_idx]
        n = key.shape[0] // pk.shape[0]
        return (torch.cat([pk.repeat(n, *[1] * (pk.dim() - 1)), key], -2),
                torch.cat([pv.repeat(n, *[1] * (pv.dim() - 1)), value], -2))

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length


def _runs_hf_attention(attn) -> bool:
    """Whether the attention bridge delegates to Hugging Face's attention (which reads `cache`)."""
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    return type(attn).forward is AttentionBridge.forward


def _hand(cache, hf: bool):
    """Forward pre-hook: the attention gets `cache` (or, when None, the `cache` keyword its decoder
    layer passed) under the name it reads."""

    def hook(module, args, kwargs):
        given = cache if cache is not None else kwargs.get("cache")
        if given is None:
            return None
        return args, {**kwargs, ("cache" if hf else "past_key_values"): given}

    return hook


@contextmanager
def attending(model, cache=None):
    """Within the `with`, every attention of `model` reads and extends a key/value cache: `cache`
    when given (replacing what the decoder layers pass), else the one Hugging Face passes down."""
    handles = [block.attn.register_forward_pre_hook(_hand(cache, _runs_hf_attention(block.attn)), with_kwargs=True)
               for block in model.blocks]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _cut(name: str, value, start: int, n_pos: int):
    """`value` (a block keyword) for query positions start.. of n_pos; None when unknown."""
    if not isinstance(value, Tensor):
        if isinstance(value, (tuple, list)) and name == "position_embeddings":
            return type(value)(t[..., start:, :] for t in value)  # rotary cos/sin [batch pos dim]
        return value
    if name == "attention_mask" and value.dim() == 4:
        return value[:, :, start:, :]  # query rows start..; every key column (the cache holds the rest)
    if name in _POSITION_IDS or name == "hidden_states":
        return value[..., start:] if name in _POSITION_IDS else value[:, start:]
    if n_pos in value.shape:
        raise ValueError(f"no rule to cut the block keyword {name!r} {tuple(value.shape)} to positions {start}..")
    return value


def tail(args: tuple, kwargs: dict, start: int, names: Sequence[str] = ()) -> tuple[tuple, dict]:
    """A block's recorded (args, kwargs) for positions start.. only (hidden states first;
    `names`: the block's parameter names, for its positional arguments after the first).

    Raises:
        ValueError: a positional input this module has no rule for (then replay all positions).
    """
    hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
    n_pos = hidden.shape[1]
    kwargs = {k: _cut(k, v, start, n_pos) for k, v in kwargs.items()}
    if "hidden_states" not in kwargs:
        rest = [_cut(names[i] if i < len(names) else "", a, start, n_pos) for i, a in enumerate(args) if i]
        args = (hidden[:, start:], *rest)
    return args, kwargs


def parameter_names(module) -> list[str]:
    """The names of `module`'s forward parameters, in order (to name recorded positional inputs)."""
    return list(inspect.signature(module.forward).parameters)


class CachedStepper:
    """Next-token logits [n d_vocab] of a growing batch of sequences, through the bridge with a
    Hugging Face `DynamicCache`: each call runs only the tokens not seen before (the first call
    the whole prompt). Hooks on the model would see only those tokens; callers with hooks attached
    rerun the whole sequence instead (`interp.sampling`)."""

    def __init__(self, model):
        self.model, self.cache, self.seen = model, None, 0

    def __call__(self, tokens: Tensor) -> Tensor:
        with torch.no_grad(), attending(self.model):
            logits, self.cache = self.model(tokens[:, self.seen:], past_key_values=self.cache,
                                            return_type="logits_and_cache", use_cache=True)
        self.seen = tokens.shape[1]
        return logits[:, -1]
