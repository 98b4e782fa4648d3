"""Facts about a model's architecture, in one place that analyses and the engine ask.

TransformerLens' bridge runs many Hugging Face families, and they differ in ways every analysis
must respect. Instead of each analysis guessing from GPT-2, `facts(model)` answers:

- grouped-query attention: `n_kv_heads`, and `kv_head(h)` says which key/value head serves
  query head h (SmolLM2: 9 query heads share 3 kv heads, so heads 0-2 read kv head 0);
- positions: "learned" (GPT-2, OPT), "rotary" (Llama, Qwen2, Gemma, NeoX, Phi, GPT-J; possibly
  on part of each head, `rotary_fraction`);
- norms: "layer" (LayerNorm) or "rms", whether blocks also normalise their outputs
  (`post_norms`, Gemma), and `parallel` (attention and MLP read the same residual: NeoX, Phi,
  GPT-J);
- soft caps on attention scores and on the final logits (Gemma 2), sliding-window layers
  (Mistral, Gemma 2/3);
- `pattern_editable`: whether replacing `hook_pattern` reaches the output (False for the OPT
  and GPT-J bridges, which copy the pattern out of Hugging Face's own attention);
  `has_attn_result`: whether the bridge can give per-head outputs (`hook_result`).

How the mask is applied and removed: every bridge hands each layer's attention module an
`attention_mask` keyword, the additive 4-D mask [batch 1 query key] Hugging Face built (causal
triangle, sliding window and padding in one). `free_mask` turns it into a mask that hides only
padding keys, and `attention_module(model, layer)` is where to hand it in, so removing the mask
uses the model's own attention code (rotary, kv groups, soft caps, q/k norms) on every
architecture. "Without the mask" therefore means every real position is visible, past and
future, on sliding-window layers too.

Biases a checkpoint lacks (Llama, Gemma, SmolLM2 have none) are zeros here (`param`), not errors.

Example:
    >>> import interp
    >>> from interp.arch import facts
    >>> f = facts(interp.load("zoo-2l"))
    >>> f.family, f.positions, f.norm, f.n_kv_heads == f.n_heads, f.pattern_editable
    ('gpt2', 'learned', 'layer', True, True)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# How interp turns on the bridge's compatibility mode. LayerNorm weights are folded and writing
# weights centred (HookedTransformer's numerics), but value biases stay in each head's values:
# folding them into b_O (TransformerLens' default) would make `hook_z` differ from the input of
# Hugging Face's output projection by a per-head constant, so zeroing a head would leave that
# constant's write behind and DLA would credit it to b_O instead of the head.
COMPATIBILITY = {"fold_value_biases": False}
# HF model_type -> the family name interp reports.
_FAMILY = {"gpt2": "gpt2", "llama": "llama", "qwen2": "qwen2", "mistral": "mistral", "gemma": "gemma",
           "gemma2": "gemma2", "gemma3": "gemma3", "gemma3_text": "gemma3", "gpt_neox": "neox", "phi": "phi",
           "gptj": "gptj", "opt": "opt", "bert": "bert"}
_GENERIC_ATTENTION = ("AttentionBridge",)  # bridges that run HF's own attention, pattern copied out
_CACHE_KWARGS = ("cache", "past_key_values", "past_key_value", "layer_past")


@dataclass(frozen=True)
class Facts:
    """What differs between the architectures interp supports (see the module docstring)."""

    family: str
    hf_class: str
    causal: bool
    n_layers: int
    n_heads: int
    n_kv_heads: int
    positions: str  # "learned", "rotary" or "none"
    rotary_fraction: float
    norm: str  # "layer" or "rms"
    post_norms: bool
    parallel: bool
    attn_softcap: float | None
    final_softcap: float | None
    sliding_window: int | None
    sliding_layers: tuple[int, ...]
    pattern_editable: bool
    has_attn_result: bool

    def kv_head(self, head: int) -> int:
        """The key/value head that query head `head` reads (grouped-query attention)."""
        return head // (self.n_heads // self.n_kv_heads)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def facts(model) -> Facts:
    """The `Facts` of a bridge (computed once per model)."""
    if model not in _FACTS:
        _FACTS[model] = _compute(model)
    return _FACTS[model]


def hf_config(model):
    """The Hugging Face config of the model the bridge wraps (its text config for multimodal ones)."""
    config = model.original_model.config
    return getattr(config, "text_config", None) or config


def _compute(model) -> Facts:
    cfg, hf = model.cfg, hf_config(model)
    n_heads = int(cfg.n_heads)
    n_kv = int(getattr(hf, "num_key_value_heads", None) or n_heads)
    rotary = cfg.positional_embedding_type == "rotary"
    blocks = list(model.blocks)
    names = [type(b.attn).__name__ for b in blocks]
    return Facts(
        family=_FAMILY.get(hf.model_type, hf.model_type), hf_class=type(model.original_model).__name__,
        causal=getattr(cfg, "attention_dir", "causal") != "bidirectional", n_layers=int(cfg.n_layers),
        n_heads=n_heads, n_kv_heads=n_kv, positions="rotary" if rotary else _learned(model),
        rotary_fraction=_rotary_fraction(hf) if rotary else 0.0,
        norm="rms" if str(cfg.normalization_type).startswith("RMS") else "layer",
        post_norms=hasattr(blocks[0], "ln1_post"), parallel=bool(getattr(cfg, "parallel_attn_mlp", False))
        or "Parallel" in type(blocks[0]).__name__,
        attn_softcap=_cap(getattr(hf, "attn_logit_softcapping", None)),
        final_softcap=_cap(getattr(hf, "final_logit_softcapping", None)),
        sliding_window=getattr(hf, "sliding_window", None) or None, sliding_layers=_sliding_layers(hf),
        pattern_editable=not any(n in _GENERIC_ATTENTION for n in names),
        has_attn_result=not any(n in _GENERIC_ATTENTION for n in names))


def _learned(model) -> str:
    return "learned" if "hook_pos_embed" in model.hook_dict else "none"


def _rotary_fraction(hf) -> float:
    if getattr(hf, "rotary_dim", None):  # GPT-J
        return hf.rotary_dim / (hf.hidden_size // hf.num_attention_heads)
    for key in ("partial_rotary_factor", "rotary_pct"):
        if getattr(hf, key, None):
            return float(getattr(hf, key))
    rope = getattr(hf, "rope_parameters", None) or {}
    return float(rope.get("partial_rotary_factor", 1.0)) if isinstance(rope, dict) else 1.0


def _cap(value) -> float | None:
    return float(value) if value else None


def _sliding_layers(hf) -> tuple[int, ...]:
    types = getattr(hf, "layer_types", None)
    if types:
        return tuple(i for i, t in enumerate(types) if t == "sliding_attention")
    if getattr(hf, "sliding_window", None) and getattr(hf, "use_sliding_window", True):
        return tuple(range(hf.num_hidden_layers))
    return ()


# ---------------------------------------------------------------- parameters


def param(model, name: str):
    """A processed weight (`W_O`, `b_O`, `b_out`, `b_U`, ...); a bias the checkpoint lacks is zeros.

    Zeros take the shape the bias would have: b_O [layer d_model], b_out [layer d_model],
    b_U [d_vocab], b_Q/b_K/b_V [layer head d_head].
    """
    import torch

    try:
        value = getattr(model, name)
    except AttributeError:
        value = None
    if value is not None:
        return value
    cfg, like = model.cfg, model.W_E
    shapes = {"b_O": (cfg.n_layers, cfg.d_model), "b_out": (cfg.n_layers, cfg.d_model), "b_U": (cfg.d_vocab,),
              "b_Q": (cfg.n_layers, cfg.n_heads, cfg.d_head)}
    if name not in shapes:
        raise AttributeError(f"{name} is not a parameter interp knows how to stand in for")
    device = torch.device(model.cfg.device) if like.is_meta else like.device  # W_E offloaded (interp.offload)
    return torch.zeros(shapes[name], dtype=like.dtype, device=device)


def norm_gain(norm_module):
    """The elementwise gain of a norm module ([d_model]): Gemma's RMSNorm scales by 1 + weight."""
    module = getattr(norm_module, "original_component", None) or norm_module
    weight = module.weight
    return 1 + weight if type(module).__name__.startswith("Gemma") else weight


def softcap(logits, cap: float | None):
    """cap * tanh(logits / cap), the identity when cap is None."""
    return logits if cap is None else cap * (logits / cap).tanh()


# ---------------------------------------------------------------- attention mask


def attention_module(model, layer: int):
    """The module that receives layer `layer`'s `attention_mask` keyword."""
    return model.blocks[layer].attn


def free_mask(mask):
    """A mask like `mask` that hides only keys no query may see (padding): no causal triangle,
    no sliding window. Accepts additive float masks and boolean masks [batch 1 query key]."""
    import torch

    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return mask.any(-2, keepdim=True).expand_as(mask)
    visible = (mask > torch.finfo(mask.dtype).min / 2).any(-2, keepdim=True)
    return torch.where(visible, torch.zeros((), dtype=mask.dtype, device=mask.device),
                       torch.full((), torch.finfo(mask.dtype).min, dtype=mask.dtype, device=mask.device)).expand_as(mask)


def visible(mask, n_query: int, n_key: int, causal: bool = True):
    """Which keys each query may see under `mask`, as a bool [batch query key]; with no mask,
    the causal triangle (or every key, when not `causal`)."""
    import torch

    if mask is None:
        every = torch.ones(n_query, n_key, dtype=torch.bool)
        return (every.tril(n_key - n_query) if causal else every)[None]
    if mask.dtype == torch.bool:
        return mask[:, 0, -n_query:, :n_key]
    return mask[:, 0, -n_query:, :n_key] > torch.finfo(mask.dtype).min / 2


def uncached(kwargs: dict) -> dict:
    """An attention call's keywords without its key/value cache (for a second, side-effect-free call)."""
    out = {k: (None if k in _CACHE_KWARGS else v) for k, v in kwargs.items()}
    if "use_cache" in out:
        out["use_cache"] = False
    return out


def unmasked_kwargs(args: tuple, kwargs: dict) -> dict:
    """An attention call's keywords with the mask freed (`free_mask`). When the caller passed no
    mask, an all-visible one of the right size stands in, so the bridge adds no causal mask of
    its own."""
    import torch

    mask = kwargs.get("attention_mask")
    if mask is None:
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        n = hidden.shape[1]
        mask = torch.zeros(hidden.shape[0], 1, n, n, dtype=hidden.dtype, device=hidden.device)
    return {**kwargs, "attention_mask": free_mask(mask)}
