"""Fast capture engine: a GPT-2-style forward in plain torch that records chosen hook points.

`interp.capture` runs this instead of the bridge's `run_with_cache` when `supports(model)`. It
gives the same activations (names, shapes and values to ~1e-6; `hook_attn_scores` holds -inf
above the diagonal, as the bridge's does) at about the cost of a plain forward, because it
computes only what was asked for: it stops after the last stage whose activations are wanted
(no unembedding unless the logits, `ln_final.*` or `hook_unembed` are), uses one fused q/k/v
matmul and `scaled_dot_product_attention` in every layer whose scores and pattern nobody asked
for (an explicit softmax otherwise), and computes per-head outputs (`hook_result`) only on
request. Nothing that was not asked for is kept.

It runs on the bridge's processed weights (compatibility mode: folded LayerNorm, centred
writing weights, i.e. `model.W_E`, `model.W_pos`, `model.W_Q`, ..., `model.W_U`), extracted once
per model and re-extracted when a parameter is replaced, moved or edited in place (checked by
tensor identity, `data_ptr` and version counter on every call; an edit through `param.data`
bypasses the version counter: call `forget(model)` after one). `interp.sweep` builds on the same
pieces: `weights`, `layer_norm`, `attention`, `mlp`.

Example:
    >>> import interp
    >>> from interp.engine import run
    >>> model = interp.load("zoo-2l")
    >>> tokens = model.to_tokens(["When Mary and John went to the store,"])
    >>> acts, logits = run(model, tokens, ["blocks.0.attn.hook_pattern"])
    >>> list(acts), tuple(acts["blocks.0.attn.hook_pattern"].shape), logits  # batch head query key
    (['blocks.0.attn.hook_pattern'], (1, 4, 10, 10), None)
    >>> _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    >>> bool((acts["blocks.0.attn.hook_pattern"] - cache["blocks.0.attn.hook_pattern"]).abs().max() < 1e-5)
    True
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.allocator import auto as auto_tune
from interp.errors import InterpError

_ACTS = {"gelu_new": lambda x: F.gelu(x, approximate="tanh"), "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
         "gelu": F.gelu, "relu": F.relu}
_ACTS_INPLACE = {"gelu_new": lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
                 "gelu_fast": lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
                 "gelu": torch.ops.aten.gelu_, "relu": torch.relu_}
_LAYER = re.compile(r"^blocks\.(\d+)\.(.+)$")
# Hook points (within a block) computed by the MLP half; the rest belong to the attention half.
_MLP_PART = ("ln2.", "mlp.", "hook_mlp_out", "hook_resid_post")
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MODULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------------------------
# Weights


def supports(model) -> bool:
    """True for GPT-2-style models (learned absolute positions, LayerNorm, attention then MLP)
    whose weights are all on the device (not `interp.offload.offloaded`)."""
    from interp.offload import offloaded

    c = model.cfg
    return (architecture(model) == "GPT2LMHeadModel" and not offloaded(model)
            and c.positional_embedding_type == "standard" and c.normalization_type in ("LN", "LNPre")
            and c.act_fn in _ACTS and not getattr(c, "attn_only", False)
            and not getattr(c, "parallel_attn_mlp", False))


def architecture(model) -> str:
    """The Hugging Face class name the model was loaded from (e.g. "GPT2LMHeadModel")."""
    return str(getattr(model.cfg, "original_architecture", None) or type(model.original_model).__name__)


@dataclass
class Weights:
    """The bridge's processed weights, laid out for fused matmuls (read-only: never edit them)."""

    W_E: Tensor  # [d_vocab d_model]
    W_pos: Tensor  # [n_ctx d_model]
    qkv: list  # per layer: (W [d_model 3*head*d_head] (q heads, k heads, v heads), b)
    o: list  # per layer: (W [head*d_head d_model], b [d_model])
    W_O: Tensor  # [layer head d_head d_model]
    mlp: list  # per layer: (W_in, b_in, W_out, b_out)
    ln1: list  # per layer: (weight, bias), or (None, None) where folded into the next matmul
    ln2: list
    ln_f: tuple
    W_U: Tensor  # [d_model d_vocab]
    b_U: Tensor
    act: Callable
    act_: Callable  # the same activation, in place
    eps: float
    scale: float
    n_heads: int
    d_head: int

    @property
    def n_layers(self) -> int:
        return len(self.mlp)


def weights(model) -> Weights:
    """The processed weights of `model`, extracted once and re-extracted when a parameter changed.

    Raises:
        InterpError: the model is not GPT-2-style (`supports(model)` is False).
    """
    if not supports(model):
        raise InterpError(f"the fast engine supports GPT-2-style models, not {architecture(model)}; "
                          "use engine='bridge' (or 'auto')")
    auto_tune()  # keep freed activation memory for reuse (interp.allocator; INTERP_TUNE_ALLOCATOR=0 opts out)
    entry = _CACHE.get(model)
    if entry is not None and _fresh(entry[0]):
        return entry[1]
    slots = _slots(model)
    with torch.no_grad():
        w = _extract(model)
    _CACHE[model] = (slots, w)
    return w


def forget(model) -> None:
    """Drop the cached weights of `model` (needed only after editing a parameter's `.data`)."""
    _CACHE.pop(model, None)


def hooked(model) -> bool:
    """True when a forward hook of the user's is attached (on a hook point, e.g. inside
    `model.hooks(...)`, or on any module): the bridge runs it, the engine cannot, so `capture`
    falls back to the bridge. The bridge's and transformers' own bookkeeping hooks do not count."""
    from transformer_lens.hook_points import HookPoint

    refs = _MODULES.get(model)
    if refs is None:  # listing the modules once: walking the bridge's tree costs ~0.5 ms
        refs = _MODULES[model] = [weakref.ref(m) for m in model.modules()]
    for ref in refs:
        m = ref()
        if m is None or not (m._forward_hooks or m._forward_pre_hooks):
            continue
        hooks = (*m._forward_hooks.values(), *m._forward_pre_hooks.values())
        if any(not (_bridge_wiring(h) if isinstance(m, HookPoint) else _internal(h)) for h in hooks):
            return True
    return False


def _internal(hook) -> bool:
    return str(getattr(hook, "__module__", "")).startswith(("transformer_lens.", "transformers.", "interp.offload"))


def _bridge_wiring(hook) -> bool:
    """True for the permanent hooks a bridge puts on its own hook points to mirror a
    subcomponent's activation onto a placeholder's (TransformerLens `_wire_symbolic_hooks`,
    e.g. OPT's fc1.hook_in / fc2.hook_out): they change nothing. Every other hook on a hook point
    counts as the user's, also one whose function comes from TransformerLens."""
    code = getattr(hook, "__code__", None)
    if code is None or code.co_name != "full_hook" or "hook" not in code.co_freevars:
        return False
    inner = hook.__closure__[code.co_freevars.index("hook")].cell_contents
    return getattr(inner, "__module__", "") == "transformer_lens.model_bridge.component_setup"


def _slots(model) -> list:
    """(module ref, name, parameter, data_ptr, version) of every parameter: what `_fresh` checks."""
    return [(weakref.ref(m), n, p, p.data_ptr(), p._version)
            for m in model.modules() for n, p in m._parameters.items() if p is not None]


def _fresh(slots: list) -> bool:
    for ref, name, p, ptr, version in slots:
        m = ref()
        if m is None or m._parameters.get(name) is not p or p.data_ptr() != ptr or p._version != version:
            return False
    return True


def _extract(model) -> Weights:
    c, sd = model.cfg, model.state_dict()
    d, L = c.d_model, range(c.n_layers)
    flat = lambda W: W.permute(1, 0, 2).reshape(d, -1)  # noqa: E731  [head d_model d_head] -> [d_model head*d_head]
    WQ, WK, WV, WO = model.W_Q, model.W_K, model.W_V, model.W_O
    bQ, bK, bV, bO = model.b_Q, model.b_K, model.b_V, model.b_O
    W_in, b_in, W_out, b_out = model.W_in, model.b_in, model.W_out, model.b_out
    cut = lambda t: t.detach().clone()  # noqa: E731  own storage: nothing aliases the model
    return Weights(
        W_E=cut(model.W_E), W_pos=cut(model.W_pos),
        qkv=[(cut(torch.cat([flat(WQ[l]), flat(WK[l]), flat(WV[l])], 1)),
              cut(torch.cat([bQ[l].reshape(-1), bK[l].reshape(-1), bV[l].reshape(-1)]))) for l in L],
        o=[(cut(WO[l].reshape(-1, d)), cut(bO[l])) for l in L], W_O=cut(WO),
        mlp=[(cut(W_in[l]), cut(b_in[l]), cut(W_out[l]), cut(b_out[l])) for l in L],
        ln1=[_ln_weights(sd, f"blocks.{l}.ln1") for l in L], ln2=[_ln_weights(sd, f"blocks.{l}.ln2") for l in L],
        ln_f=_ln_weights(sd, "ln_final"), W_U=cut(model.W_U), b_U=cut(model.b_U), act=_ACTS[c.act_fn],
        act_=_ACTS_INPLACE[c.act_fn], eps=c.eps,
        scale=1 / math.sqrt(c.d_head) if c.use_attn_scale else 1.0, n_heads=c.n_heads, d_head=c.d_head)


def _ln_weights(sd: dict, prefix: str) -> tuple:
    """(weight, bias) of a LayerNorm, or (None, None) when absent or the identity (folded)."""
    wt, b = sd.get(f"{prefix}.weight"), sd.get(f"{prefix}.bias")
    if wt is None or (bool((wt == 1).all()) and (b is None or bool((b == 0).all()))):
        return None, None
    return wt.detach().clone(), (torch.zeros_like(wt) if b is None else b.detach().clone())


# ---------------------------------------------------------------------------------------------
# Shared pieces (also used by interp.sweep)


def layer_norm(x: Tensor, wb: tuple, eps: float) -> Tensor:
    """LayerNorm over d_model with (weight, bias) `wb` ((None, None) = none)."""
    return F.layer_norm(x, x.shape[-1:], wb[0], wb[1], eps)


def mlp(w: Weights, l: int, x: Tensor) -> Tensor:
    """x + MLP_l(LN2(x)) for x [..., d_model]: biases and the residual add fused into the
    matmuls and the activation applied in place, so the only new buffers are the hidden
    layer and the output."""
    W_in, b_in, W_out, b_out = w.mlp[l]
    flat = x.reshape(-1, x.shape[-1])
    hidden = w.act_(torch.addmm(b_in, layer_norm(flat, w.ln2[l], w.eps), W_in))
    return torch.addmm(flat, hidden, W_out).add_(b_out).view(x.shape)


def attention(w: Weights, l: int, x: Tensor, last: Tensor | None = None, past: tuple | None = None) -> Tensor:
    """resid_mid of layer l from resid_pre x [batch pos d_model]; with `last` [batch] (indices
    into x's positions), at those positions only (-> [batch d_model]). `past` = (keys, values)
    [batch head P d_head] of P earlier positions whose residuals are not in x (x then holds
    positions P, P+1, ...): x's queries attend to them as well, causally."""
    B, S, _ = x.shape
    q, k, v = _qkv(w, l, layer_norm(x, w.ln1[l], w.eps))
    P = 0 if past is None else past[0].shape[2]
    if P:
        k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
    if last is None:
        mask = causal_mask(P, P + S, x.device) if P else None
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=not P, scale=w.scale)
        W, b = w.o[l]
        return torch.addmm(x.reshape(B * S, -1), z.transpose(1, 2).reshape(B * S, -1), W).add_(b).view(x.shape)
    rows = torch.arange(B, device=x.device)
    allowed = torch.arange(P + S, device=x.device)[None, None, None, :] <= (last + P)[:, None, None, None]
    z = F.scaled_dot_product_attention(q[rows, :, last][:, :, None], k, v, attn_mask=allowed, scale=w.scale)
    return x[rows, last] + _out(w, l, z)[:, 0]


def causal_mask(start: int, end: int, device) -> Tensor:
    """Bool [end - start, end]: query position start + i may attend to keys 0..start + i."""
    return torch.arange(end, device=device)[None, :] <= torch.arange(start, end, device=device)[:, None]


def _qkv(w: Weights, l: int, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v [batch head pos d_head] (views of one fused matmul) from LN1 output h [batch pos d_model]."""
    B, S, d = h.shape
    W, b = w.qkv[l]
    qkv = torch.addmm(b, h.reshape(-1, d), W).view(B, S, 3, w.n_heads, w.d_head)
    return tuple(t.transpose(1, 2) for t in qkv.unbind(2))


def _out(w: Weights, l: int, z: Tensor) -> Tensor:
    """Attention output [batch pos d_model] from z [batch head pos d_head] (bias included)."""
    B, _, S, _ = z.shape
    W, b = w.o[l]
    return torch.addmm(b, z.transpose(1, 2).reshape(B * S, -1), W).view(B, S, -1)


# ---------------------------------------------------------------------------------------------
# Recording forward


def run(model, tokens: Tensor, names: Iterable[str], logits: bool = False) -> tuple[dict, Tensor | None]:
    """Run `tokens` [batch pos] through `model` and record the hook points `names`.

    Args:
        model: a GPT-2-style model from `interp.load` (see `supports`).
        tokens: token ids [batch pos]; every position attends causally to all before it,
            padding included, exactly as in the bridge.
        names: canonical hook names (`interp.activations.hook_names`); only these are kept.
        logits: also return the logits [batch pos d_vocab] (runs the whole model).

    Returns:
        ({name: tensor} in the order of `names`, logits or None).

    Raises:
        InterpError: unsupported model, hooks attached to it (`hooked`), unknown hook name, or
            more positions than the context.
    """
    w = weights(model)
    if hooked(model):
        raise InterpError("the model has hooks attached that the fast engine cannot run; "
                          "use engine='bridge' (or 'auto', which does so by itself)")
    names = list(names)
    want = set(names)
    stop = max([_stage(n, w.n_layers) for n in names] + [2 * w.n_layers + 1 if logits else -1])
    if tokens.shape[-1] > w.W_pos.shape[0]:
        raise InterpError(f"{tokens.shape[-1]} positions but the model takes at most {w.W_pos.shape[0]}; "
                          "shorten the prompts")
    out: dict = {}
    final = None
    with torch.no_grad():
        if stop >= 0:
            x = _embed(w, tokens.to(w.W_E.device), want, out)
        for l in range(w.n_layers):
            if stop < 2 * l + 1:
                break
            x = _attn_stage(w, l, x, want, out)
            if stop >= 2 * l + 2:
                x = _mlp_stage(w, l, x, want, out)
        if stop == 2 * w.n_layers + 1:
            final = _unembed(w, x, want, out)
    return {n: out[n] for n in names}, final if logits else None


def _stage(name: str, n_layers: int) -> int:
    """Forward stage that produces `name`: 0 embedding, 2l+1 attention of layer l, 2l+2 its MLP,
    2L+1 final LayerNorm and unembedding."""
    if name in ("hook_embed", "hook_pos_embed"):
        return 0
    if name.startswith("ln_final.hook_") or name == "hook_unembed":
        return 2 * n_layers + 1
    m = _LAYER.match(name)
    if m is None or int(m.group(1)) >= n_layers:
        raise InterpError(f"unknown hook {name!r}; list them with `interp inspect --model M`")
    l, part = int(m.group(1)), m.group(2)
    if part == "hook_resid_pre":
        return 2 * l
    return 2 * l + 2 if part.startswith(_MLP_PART) else 2 * l + 1


def _embed(w: Weights, tokens: Tensor, want: set, out: dict) -> Tensor:
    B, S = tokens.shape
    embed, pos = F.embedding(tokens, w.W_E), w.W_pos[:S]
    _put(out, want, "hook_embed", embed)
    if "hook_pos_embed" in want:
        out["hook_pos_embed"] = pos.expand(B, S, -1).clone()  # own storage, not a view of W_pos
    x = embed + pos
    _put(out, want, "blocks.0.hook_resid_pre", x)
    return x


def _put(out: dict, want: set, name: str, t: Tensor) -> None:
    if name in want:
        out[name] = t


def _ln_hooked(x: Tensor, wb: tuple, eps: float, prefix: str, want: set, out: dict) -> Tensor:
    """LayerNorm that records `{prefix}hook_scale` [batch pos 1] and `{prefix}hook_normalized`."""
    s_name, n_name = prefix + "hook_scale", prefix + "hook_normalized"
    if s_name not in want and n_name not in want:
        return layer_norm(x, wb, eps)
    var, mean = torch.var_mean(x, -1, correction=0, keepdim=True)
    scale = (var + eps).sqrt_()
    normed = (x - mean).div_(scale)
    _put(out, want, s_name, scale)
    _put(out, want, n_name, normed)
    return normed if wb[0] is None else normed * wb[0] + wb[1]


def _attn_stage(w: Weights, l: int, x: Tensor, want: set, out: dict) -> Tensor:
    """Attention half of block l: resid_pre [batch pos d_model] -> resid_mid, recording hooks."""
    p = f"blocks.{l}."
    q, k, v = _qkv(w, l, _ln_hooked(x, w.ln1[l], w.eps, p + "ln1.", want, out))
    _put_qkv(out, want, p + "attn.", (q, k, v))
    if p + "attn.hook_attn_scores" in want or p + "attn.hook_pattern" in want:
        scores = _scores(w, q, k)
        pattern = scores.softmax(-1)
        _put(out, want, p + "attn.hook_attn_scores", scores)
        _put(out, want, p + "attn.hook_pattern", pattern)
        z = pattern @ v
    else:
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=w.scale)
    _put(out, want, p + "attn.hook_z", z.transpose(1, 2))
    if p + "attn.hook_result" in want:
        out[p + "attn.hook_result"] = _result(w, l, z)
    attn_out = _out(w, l, z)
    _put(out, want, p + "hook_attn_out", attn_out)
    x = x + attn_out
    _put(out, want, p + "hook_resid_mid", x)
    return x


def _scores(w: Weights, q: Tensor, k: Tensor) -> Tensor:
    """Scaled scores [batch head query key] with -inf above the diagonal (one fused baddbmm)."""
    B, H, S, dh = q.shape
    causal = torch.full((S, S), float("-inf"), dtype=q.dtype, device=q.device).triu_(1)
    flat = torch.baddbmm(causal, q.reshape(B * H, S, dh), k.reshape(B * H, S, dh).transpose(1, 2), alpha=w.scale)
    return flat.view(B, H, S, S)


def _result(w: Weights, l: int, z: Tensor) -> Tensor:
    """Per-head outputs [batch pos head d_model] from z [batch head pos d_head]: one batched
    matmul over heads, returned as a permuted view (no copy into batch-major order)."""
    B, H, S, dh = z.shape
    per_head = torch.bmm(z.transpose(0, 1).reshape(H, B * S, dh), w.W_O[l])
    return per_head.view(H, B, S, -1).permute(1, 2, 0, 3)


def _put_qkv(out: dict, want: set, prefix: str, qkv: tuple) -> None:
    """Record q, k, v [batch pos head d_head]: views of the fused buffer when all three are
    wanted, own copies otherwise (a view would keep the unwanted ones alive)."""
    names = [prefix + f"hook_{c}" for c in "qkv"]
    hits = [n in want for n in names]
    for name, t, hit in zip(names, qkv, hits):
        if hit:
            out[name] = t.transpose(1, 2) if all(hits) else t.transpose(1, 2).contiguous()


def _mlp_stage(w: Weights, l: int, x: Tensor, want: set, out: dict) -> Tensor:
    """MLP half of block l: resid_mid [batch pos d_model] -> resid_post, recording hooks."""
    p = f"blocks.{l}."
    B, S, d = x.shape
    W_in, b_in, W_out, b_out = w.mlp[l]
    h = _ln_hooked(x, w.ln2[l], w.eps, p + "ln2.", want, out)
    pre = torch.addmm(b_in, h.reshape(-1, d), W_in)
    post = w.act(pre) if p + "mlp.hook_pre" in want else w.act_(pre)  # in place unless pre is kept
    _put(out, want, p + "mlp.hook_pre", pre.view(B, S, -1))
    _put(out, want, p + "mlp.hook_post", post.view(B, S, -1))
    mlp_out = torch.addmm(b_out, post, W_out).view(B, S, d)
    _put(out, want, p + "hook_mlp_out", mlp_out)
    x = x + mlp_out
    _put(out, want, p + "hook_resid_post", x)
    _put(out, want, f"blocks.{l + 1}.hook_resid_pre", x)
    return x


def _unembed(w: Weights, x: Tensor, want: set, out: dict) -> Tensor:
    B, S, d = x.shape
    h = _ln_hooked(x, w.ln_f, w.eps, "ln_final.", want, out)
    logits = torch.addmm(w.b_U, h.reshape(-1, d), w.W_U).view(B, S, -1)
    _put(out, want, "hook_unembed", logits)
    return logits


# ---------------------------------------------------------------------------------------------
# Incremental decoding


class Decoder:
    """A forward with a key/value cache, for generation: feed the prompt once, then one new token
    per call; each call returns the logits [batch d_vocab] at the last position fed.

    Each layer's keys and values live in buffers of the full context, filled as tokens arrive,
    so a step costs one token's forward plus attention over the cache instead of a rerun of the
    whole sequence. All rows have the same length (no padding). The numbers equal the bridge's
    last-position logits (to ~1e-5; `tests/test_engine.py`).

    Example:
        >>> import interp, torch
        >>> from interp.engine import Decoder
        >>> model = interp.load("zoo-2l")
        >>> tokens = model.to_tokens(["The king and the"])
        >>> dec = Decoder(model, batch=1)
        >>> step = dec(tokens)  # the prompt
        >>> nxt = step.argmax(-1, keepdim=True)
        >>> full = model(torch.cat([tokens, nxt], 1))[:, -1]
        >>> bool((dec(nxt) - full).abs().max() < 1e-4)
        True
    """

    def __init__(self, model, batch: int):
        if hooked(model):
            raise InterpError("the model has hooks attached that the decoder cannot run; remove them first")
        self.w = w = weights(model)
        n_ctx, device = w.W_pos.shape[0], w.W_E.device
        shape = (batch, w.n_heads, n_ctx, w.d_head)
        self.k = [torch.empty(shape, dtype=w.W_E.dtype, device=device) for _ in range(w.n_layers)]
        self.v = [torch.empty(shape, dtype=w.W_E.dtype, device=device) for _ in range(w.n_layers)]
        self.pos = 0

    def __call__(self, tokens: Tensor) -> Tensor:
        w, start = self.w, self.pos
        end = start + tokens.shape[1]
        if end > w.W_pos.shape[0]:
            raise InterpError(f"{end} positions but the model takes at most {w.W_pos.shape[0]}")
        with torch.no_grad():
            x = F.embedding(tokens.to(w.W_E.device), w.W_E) + w.W_pos[start:end]
            mask = None if end - start == 1 else causal_mask(start, end, x.device)
            for l in range(w.n_layers):
                q, k, v = _qkv(w, l, layer_norm(x, w.ln1[l], w.eps))
                self.k[l][:, :, start:end], self.v[l][:, :, start:end] = k, v
                z = F.scaled_dot_product_attention(q, self.k[l][:, :, :end], self.v[l][:, :, :end],
                                                   attn_mask=mask, scale=w.scale)
                x = mlp(w, l, x + _out(w, l, z))
            self.pos = end
            return layer_norm(x[:, -1], w.ln_f, w.eps) @ w.W_U + w.b_U
