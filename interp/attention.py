"""Attention with and without the causal mask, and mask removal (head classes: `interp.heads`).

Method. A decoder's attention head scores every query position q against every key position k
with `q·k / sqrt(d_head)`; the causal mask of Vaswani et al. (2017), "Attention Is All You
Need", sets the scores of future keys (k > q) to -inf before the softmax, so a position never
reads the words it must predict. Every architecture's attention module receives that mask as an
`attention_mask` keyword (a 4-D additive mask that also carries sliding windows and padding), so
interp removes the mask by handing the module a freed one (`interp.arch.free_mask`): the model's
own code then computes the unmasked pattern, with its rotary embeddings, grouped kv heads, soft
caps and q/k norms (rebuilding q·k from `hook_q`/`hook_k` is wrong on rotary models and
unavailable where the bridge copies the pattern out of Hugging Face's attention, OPT and GPT-J).
`rebuild_error` checks that the unmasked pattern renormalised over the visible keys gives the
model's own pattern back:

- `patterns` -> `AttentionPatterns` with `masked` and `unmasked` [layer head query key];
  `future_mass` is the unmasked mass on keys > query, `js` the Jensen-Shannon divergence (bits)
  between the masked and the unmasked row. `pattern_table`, `query_table` and `head_table` are
  the tidy views of it.
- `no_causal_mask(model, layers)` runs the model with the chosen layers' masks freed (a
  forward pre-hook on their attention modules), and `mask_removal_effect` reports next-token loss and
  accuracy with the mask removed per layer and in all of them. Without the mask later words can
  give the answer away, but only through a circuit the model already has (an induction head at
  query i that finds key i+1, whose previous-token feature matches token i, could copy token
  i+1); removing it also feeds later layers residuals they never saw in training. On zoo-4l
  (2026-12-01 weights, 8 corpus documents, `reports/masking`) the second effect wins in every
  layer: the loss rises from 1.66 nats to 1.75 (last layer unmasked) up to 4.03 (first layer),
  and to 5.05 with every layer unmasked.
An encoder (e.g. all-MiniLM-L6-v2) has no causal mask: its masked and unmasked patterns are the
same (`AttentionPatterns.causal` is False) and mask removal refuses, saying so.

Example:
    >>> import interp
    >>> from interp.attention import head_table, mask_removal_effect, patterns
    >>> model = interp.load("zoo-2l")
    >>> pats = patterns(model, "The king said that he was tired.")
    >>> pats.masked.shape  # layer head query key
    torch.Size([2, 4, 9, 9])
    >>> float(pats.future_mass()[:, :, -1].max())  # the last query has no future
    0.0
    >>> list(head_table(pats).columns)
    ['layer', 'head', 'future_mass', 'js']
    >>> effect = mask_removal_effect(model, "The king said that he was tired. The queen said that she was happy.")
    >>> list(effect.removed)
    ['none', '0', '1', 'all']
    >>> loss = dict(zip(effect.removed, effect.loss))
    >>> bool(loss["1"] < loss["none"])  # the induction layer reads the next word once it may
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from interp.arch import attention_module, uncached, unmasked_kwargs, visible
from interp.errors import InterpError, check_range, model_name




# ---------------------------------------------------------------- tensor core


def is_causal(model) -> bool:
    """Whether `model`'s self-attention has a causal mask (False for BERT-style encoders)."""
    return getattr(model.cfg, "attention_dir", "causal") != "bidirectional"


def attn_scale(model, layer: int) -> float:
    """The factor the bridge multiplies q·k by in `layer`: 1/sqrt(d_head), or the config's
    `attn_scale`, divided by (layer + 1) when `scale_attn_by_inverse_layer_idx` is set."""
    cfg = model.cfg
    if not getattr(cfg, "use_attn_scale", True):
        scale = 1.0
    else:
        given = getattr(cfg, "attn_scale", None)
        scale = 1.0 / given if given and given > 0 else cfg.d_head ** -0.5
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        scale /= layer + 1
    return scale


def qk_scores(q, k, scale: float):
    """Unmasked scores [batch head query key] from hook_q, hook_k [batch pos head d_head] (a GPT-2
    reference: no rotation, one kv head per query head)."""
    import torch

    return torch.einsum("bqhd,bkhd->bhqk", q, k) * scale


def causal_softmax(scores, causal: bool = True):
    """Softmax over keys of scores [... query key], with keys > query masked out if `causal`."""
    import torch

    if causal:
        n_q, n_k = scores.shape[-2:]
        future = torch.ones(n_q, n_k, dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(future, -torch.inf)
    return scores.softmax(-1)


def future_mass(pattern):
    """Attention mass on keys after the query: [... query key] -> [... query]."""
    import torch

    n_q, n_k = pattern.shape[-2:]
    future = torch.ones(n_q, n_k, dtype=torch.bool, device=pattern.device).triu(1)
    return (pattern * future).sum(-1)


def js_divergence(p, q):
    """Jensen-Shannon divergence in bits (0..1) between rows [..., key] -> [...]."""
    import torch

    m = (p + q) / 2

    def kl(a):  # 0 log 0 = 0
        return torch.where(a > 0, a * (a / m).log2(), torch.zeros_like(a)).sum(-1)

    return ((kl(p) + kl(q)) / 2).clamp(min=0)


# ---------------------------------------------------------------- patterns of a prompt


@dataclass
class AttentionPatterns:
    """Every head's attention on one prompt.

    Attributes:
        tokens: the string tokens that ran (BOS included when the model prepends it).
        masked: the model's own pattern (`hook_pattern`) [layer head query key].
        unmasked: softmax over the same scores with no causal mask [layer head query key].
        causal: False for an encoder, whose masked and unmasked patterns are identical.
        rebuild_error: max |unmasked renormalised over the keys the mask lets through - masked| (a sanity figure).
        model_name: the model's name, for messages.
    """

    tokens: list[str]
    masked: object
    unmasked: object
    causal: bool
    rebuild_error: float
    model_name: str = "the model"

    def future_mass(self):
        """Unmasked mass on future keys [layer head query]."""
        return future_mass(self.unmasked)

    def js(self):
        """JS divergence (bits) between masked and unmasked rows [layer head query]."""
        return js_divergence(self.masked, self.unmasked)


def patterns(model, prompt, prepend_bos: bool | None = None) -> AttentionPatterns:
    """Masked and unmasked attention patterns of every layer and head on `prompt` (one string,
    or a 1-D tensor of token ids taken as given).

    One forward. In each layer the attention module runs as usual (its output is the masked
    pattern), then once more on the same inputs with the mask freed (`interp.arch`), which gives
    the unmasked pattern from the model's own code: rotary q/k, grouped kv heads, soft caps and
    q/k norms included. The second call's output is dropped, so later layers see only the
    masked run.

    Raises:
        InterpError: empty or too long prompt, or a list instead of one prompt.
    """
    import torch

    from interp.activations import to_tokens

    if isinstance(prompt, torch.Tensor) and prompt.ndim <= 1:
        from interp.inputs import check_tokens
        from interp.tokens import token_texts

        tokens = check_tokens(model, prompt.reshape(-1) if prompt.ndim == 0 else prompt)
        strs = [token_texts(model.tokenizer, tokens[0].tolist())]
    elif not isinstance(prompt, str):
        raise InterpError(f"patterns takes one prompt string (or 1-D token ids), got {type(prompt).__name__}; "
                          "loop over prompts")
    else:
        tokens, strs = to_tokens(model, prompt, prepend_bos)
    causal = is_causal(model)
    found: dict = {}
    handles = [attention_module(model, L).register_forward_hook(_both_patterns(found, L, causal), with_kwargs=True)
               for L in range(model.cfg.n_layers)]
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        for h in handles:
            h.remove()
    n = model.cfg.n_layers
    masked = torch.stack([found[L, "masked"][0] for L in range(n)]).float()
    unmasked = torch.stack([found[L, "unmasked"][0] for L in range(n)]).float() if causal else masked
    seen = torch.stack([found[L, "visible"][0] for L in range(n)])[:, None]  # [layer 1 query key]
    rebuilt = unmasked * seen
    error = (rebuilt / rebuilt.sum(-1, keepdim=True) - masked).abs().max().item()
    return AttentionPatterns(strs[0], masked.detach(), unmasked.detach(), causal, error, model_name(model))


def _both_patterns(found: dict, layer: int, causal: bool):
    """Forward hook: keep the layer's own (masked) pattern and the one with its mask freed."""

    def hook(module, args, kwargs, output):
        found[layer, "masked"] = output[1]
        n_q, n_k = output[1].shape[-2:]
        found[layer, "visible"] = visible(kwargs.get("attention_mask"), n_q, n_k, causal).to(output[1].device)
        if causal:
            found[layer, "unmasked"] = module.forward(*args, **unmasked_kwargs(args, uncached(kwargs)))[1]
        return output

    return hook


def _heads(pats: AttentionPatterns, layer: int | None, head: int | None):
    """(layer, head) pairs to show, checked against the pattern's shape."""
    n_layers, n_heads = pats.masked.shape[:2]
    layers = range(n_layers) if layer is None else [check_range("layer", layer, n_layers, pats.model_name)]
    heads = range(n_heads) if head is None else [check_range("head", head, n_heads, pats.model_name)]
    return [(L, H) for L in layers for H in heads]


def pattern_table(pats: AttentionPatterns, layer: int | None = None, head: int | None = None):
    """Long table of both patterns.

    Returns:
        DataFrame with one row per (layer, head, query, key), keys over the whole prompt:
        layer, head, query, key, query_token, key_token, masked, unmasked.
    """
    import pandas as pd

    n_pos = len(pats.tokens)
    frames = []
    for L, H in _heads(pats, layer, head):
        q = [i for i in range(n_pos) for _ in range(n_pos)]
        k = list(range(n_pos)) * n_pos
        frames.append(pd.DataFrame({
            "layer": L, "head": H, "query": q, "key": k,
            "query_token": [pats.tokens[i] for i in q], "key_token": [pats.tokens[j] for j in k],
            "masked": pats.masked[L, H].flatten().tolist(), "unmasked": pats.unmasked[L, H].flatten().tolist()}))
    return pd.concat(frames, ignore_index=True)


def query_table(pats: AttentionPatterns, layer: int | None = None, head: int | None = None):
    """Per query position: layer, head, query, token, future_mass, js (bits)."""
    import pandas as pd

    fm, js = pats.future_mass(), pats.js()
    rows = [{"layer": L, "head": H, "query": i, "token": tok, "future_mass": fm[L, H, i].item(), "js": js[L, H, i].item()}
            for L, H in _heads(pats, layer, head) for i, tok in enumerate(pats.tokens)]
    return pd.DataFrame(rows)


def head_table(pats: AttentionPatterns, layer: int | None = None, head: int | None = None):
    """Per head, means over all query positions: layer, head, future_mass, js (bits)."""
    table = query_table(pats, layer, head)
    return table.groupby(["layer", "head"], as_index=False)[["future_mass", "js"]].mean()


# ---------------------------------------------------------------- mask removal


@contextmanager
def no_causal_mask(model, layers: Sequence[int] | None = None):
    """Inside the block, the chosen layers (all by default) attend without the causal mask.

    A forward pre-hook hands each chosen layer's attention module a freed mask
    (`interp.arch.free_mask`: only padding stays hidden), so the model's own attention code
    computes the unmasked pattern and everything after it follows, on every architecture
    (including those whose `hook_pattern` cannot be edited). On sliding-window layers the window
    goes too. The hooks go when the block exits, also when it raised.

    Raises:
        InterpError: the model has no causal mask, or a layer is out of range.
    """
    if not is_causal(model):
        raise InterpError(f"{model_name(model)} is an encoder with no causal mask: its attention already "
                          "sees every position, so there is nothing to remove")
    layers = _check_layers(model, layers)
    handles = [attention_module(model, L).register_forward_pre_hook(_free, with_kwargs=True) for L in layers]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def _free(module, args, kwargs):
    return args, unmasked_kwargs(args, kwargs)


def _check_layers(model, layers: Sequence[int] | None) -> list[int]:
    n = model.cfg.n_layers
    if layers is None:
        return list(range(n))
    if isinstance(layers, int):
        layers = [layers]
    return sorted({check_range("layer", L, n, model_name(model)) for L in layers})


def next_token_stats(model, prompts: str | Sequence[str], remove: Sequence[int] | None = ()) -> dict:
    """Next-token loss (nats) and top-1 accuracy over every position of every prompt.

    Args:
        model: a causal model from `interp.load`.
        prompts: one string or a list; each runs alone (no padding the unmasked rows could see).
        remove: layers whose causal mask is removed (() = the clean model, None = all layers).

    Returns:
        {"loss": mean cross-entropy, "accuracy": fraction of argmax hits, "n_tokens": targets}.
    """
    import torch

    from interp.activations import to_tokens
    from interp.models import require_trained

    require_trained(model, "next-token loss")
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    total, hits, count = 0.0, 0, 0
    for prompt in prompts:
        tokens, _ = to_tokens(model, prompt)
        if tokens.shape[1] < 2:
            raise InterpError(f"prompt {prompt!r} is one token: next-token loss needs at least two")
        with no_causal_mask(model, remove) if remove is None or len(remove) else _null(), torch.no_grad():
            logits = model(tokens)
        logp = logits[0, :-1].log_softmax(-1)
        target = tokens[0, 1:]
        total += -logp.gather(-1, target[:, None]).sum().item()
        hits += (logp.argmax(-1) == target).sum().item()
        count += len(target)
    return {"loss": total / count, "accuracy": hits / count, "n_tokens": count}


@contextmanager
def _null():
    yield


def mask_removal_effect(model, prompts: str | Sequence[str], layers: Sequence[int] | None = None):
    """Next-token loss and accuracy with the causal mask removed, layer by layer and together.

    Args:
        model: a causal model from `interp.load` (an encoder is refused: it has no mask).
        prompts: one string or a list of strings.
        layers: the layers to try (all by default); [] gives only the clean row and an
            empty removal, which equals it.

    Returns:
        DataFrame with one row per condition: removed ("none", each layer "L", and "all" or the
        chosen layers joined by commas), loss, accuracy, n_tokens, delta_loss, delta_accuracy
        (both relative to "none").
    """
    import pandas as pd

    if not is_causal(model):
        raise InterpError(f"{model_name(model)} is an encoder with no causal mask: nothing to remove "
                          "(its masked and unmasked patterns are the same)")
    chosen = _check_layers(model, layers)
    label = "all" if chosen == list(range(model.cfg.n_layers)) else ",".join(map(str, chosen)) or "[]"
    conditions = [("none", [])] + [(str(L), [L]) for L in chosen if len(chosen) > 1] + [(label, chosen)]
    rows = [{"removed": name, **next_token_stats(model, prompts, remove)} for name, remove in conditions]
    df = pd.DataFrame(rows)
    df["delta_loss"] = df.loss - df.loss.iloc[0]
    df["delta_accuracy"] = df.accuracy - df.accuracy.iloc[0]
    return df
