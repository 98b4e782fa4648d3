"""Fast capture for Llama-shaped decoders: Llama (SmolLM2), Qwen2, Mistral.

`interp.capture` runs this instead of the bridge's forward when `supports(model)`, as it runs
`interp.engine` on GPT-2-style models. These three families share one block: RMSNorm, rotary
query/key projections with grouped key/value heads, causal (optionally sliding-window)
attention, a gated MLP, a residual add after each half, and no soft caps or post-norms. The
forward below is that block written out once, on the bridge's own modules (the `nn.Linear`,
norm and rotary modules behind its components, holding the processed weights the bridge
itself computes with), recording each hook point as a plain dict entry. The bridge routes
the same computation through ~23 hook points and several wrapper modules per layer; skipping
that Python machinery is what makes a capture of every hook point cost about one plain
transformers forward (`make bench`, reports/bench/README.md). The rotary cos/sin come from the
model's own rotary module and are applied by transformers' own `apply_rotary_pos_emb`, so rope
scaling variants are the model's.

Values equal the bridge's hook points (to float32 rounding; `tests/test_rotary_engine.py` on
tiny random Llama, Qwen2 and Mistral models and on SmolLM2-135M): `hook_attn_scores` holds
-inf where the causal or sliding-window mask hides a key; `hook_result` is the per-head output
before the output projection's bias; `hook_pos_embed` is not produced (rotary models have no
positional embedding), as in the bridge. Every position attends causally to all before it,
padding included, exactly as the bridge's forward on a token tensor.

Only what is asked for is computed: the forward stops after the last stage whose activations
are wanted, and attention runs `scaled_dot_product_attention` in every layer whose scores and
pattern nobody asked for.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.engine import _put, architecture, hooked
from interp.engine import _stage as _engine_stage
from interp.errors import InterpError

FAMILIES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")
_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def supports(model) -> bool:
    """True for a Llama, Qwen2 or Mistral bridge in its default configuration: float32 (or
    float64) weights, full rotary, RMSNorm, sequential attention then MLP, no soft caps, weights
    all on the device, and none of the bridge's optional split-input hooks
    (`use_split_qkv_input`, `use_attn_in`) switched on."""
    from interp.arch import facts
    from interp.offload import offloaded

    if architecture(model) not in FAMILIES or offloaded(model):
        return False
    f, c = facts(model), model.cfg
    if model.embed.original_component.weight.dtype not in (torch.float32, torch.float64):
        return False  # half precision: the bridge upcasts inside its norms; leave it to the bridge
    return (f.positions == "rotary" and f.rotary_fraction == 1.0 and f.norm == "rms" and not f.parallel
            and not f.post_norms and f.attn_softcap is None and f.final_softcap is None
            and not getattr(c, "use_split_qkv_input", False) and not getattr(c, "use_attn_in", False)
            and all(type(b.attn).__name__ == "PositionEmbeddingsAttentionBridge" for b in model.blocks))


@dataclass(frozen=True)
class _Block:
    """One decoder layer's modules (the bridge's original components: they hold its weights)."""

    ln1: torch.nn.Module
    q: torch.nn.Linear
    k: torch.nn.Linear
    v: torch.nn.Linear
    o: torch.nn.Linear
    ln2: torch.nn.Module
    gate: torch.nn.Linear
    up: torch.nn.Linear
    down: torch.nn.Linear
    act: object
    scaling: float
    groups: int
    d_head: int
    window: int | None


@dataclass(frozen=True)
class _Parts:
    embed: torch.nn.Embedding
    rotary: torch.nn.Module
    blocks: list
    ln_final: torch.nn.Module
    unembed: torch.nn.Linear


def parts(model) -> _Parts:
    """The modules the forward reads (also `interp.rotary_sweep`'s), looked up once per model
    (they hold the live weights, so edits to them are followed)."""
    found = _PARTS.get(model)
    if found is None:
        found = _PARTS[model] = _lookup(model)
    return found


def _lookup(model) -> _Parts:
    from interp.arch import facts

    f = facts(model)
    blocks = []
    for l, b in enumerate(model.blocks):
        hf_attn, hf_mlp = b.attn.original_component, b.mlp.original_component
        blocks.append(_Block(
            ln1=b.ln1.original_component, q=b.attn.q.original_component, k=b.attn.k.original_component,
            v=b.attn.v.original_component, o=b.attn.o.original_component, ln2=b.ln2.original_component,
            gate=b.mlp.gate.original_component, up=getattr(b.mlp, "in").original_component,
            down=b.mlp.out.original_component, act=hf_mlp.act_fn,
            scaling=float(getattr(hf_attn, "scaling", hf_attn.head_dim ** -0.5)),
            groups=int(getattr(hf_attn, "num_key_value_groups", 1)), d_head=int(hf_attn.head_dim),
            window=f.sliding_window if l in f.sliding_layers else None))
    return _Parts(embed=model.embed.original_component, rotary=model.rotary_emb.original_component,
                  blocks=blocks, ln_final=model.ln_final.original_component,
                  unembed=model.unembed.original_component)


# ---------------------------------------------------------------------------------------------
# Recording forward


def run(model, tokens: Tensor, names: Iterable[str], logits: bool = False) -> tuple[dict, Tensor | None]:
    """Run `tokens` [batch pos] through `model` and record the hook points `names`.

    Args:
        model: a Llama, Qwen2 or Mistral bridge (see `supports`).
        tokens: token ids [batch pos].
        names: canonical hook names (`interp.activations.hook_names`); only these are kept
            (`hook_pos_embed`, which rotary models do not produce, is left out as the bridge leaves it).
        logits: also return the logits [batch pos d_vocab] (runs the whole model).

    Returns:
        ({name: tensor} in the order of `names`, logits or None).

    Raises:
        InterpError: unsupported model, hooks attached to it, or an unknown hook name.
    """
    if not supports(model):
        raise InterpError(f"the rotary engine supports Llama, Qwen2 and Mistral models, not {architecture(model)}; "
                          "use engine='bridge' (or 'auto')")
    if hooked(model):
        raise InterpError("the model has hooks attached that the fast engine cannot run; "
                          "use engine='bridge' (or 'auto', which does so by itself)")
    names = list(names)
    want = set(names)
    p = parts(model)
    L = len(p.blocks)
    stop = max([_stage(n, L) for n in names] + [2 * L + 1 if logits else -1])
    out: dict = {}
    final = None
    with torch.no_grad():
        tokens = tokens.to(p.embed.weight.device)
        x = F.embedding(tokens, p.embed.weight)
        _put(out, want, "hook_embed", x)
        _put(out, want, "blocks.0.hook_resid_pre", x)
        positions = torch.arange(tokens.shape[1], device=x.device)[None]
        cos, sin = p.rotary(x, positions)
        _put(out, want, "rotary_emb.hook_cos", cos)
        _put(out, want, "rotary_emb.hook_sin", sin)
        for l, block in enumerate(p.blocks):
            if stop < 2 * l + 1:
                break
            x = _attention(block, l, x, cos, sin, want, out)
            if stop >= 2 * l + 2:
                x = _mlp(block, l, x, want, out)
        if stop == 2 * L + 1:
            h = _rms(x, p.ln_final, "ln_final.", want, out)
            final = F.linear(h, p.unembed.weight, p.unembed.bias)
            _put(out, want, "hook_unembed", final)
    return {n: out[n] for n in names if n in out}, final if logits else None


def _stage(name: str, n_layers: int) -> int:
    """Forward stage of `name` (as `interp.engine`'s; the rotary module's cos/sin are stage 0)."""
    return 0 if name.startswith("rotary_emb.") else _engine_stage(name, n_layers)


def _eps(norm) -> float:
    eps = getattr(norm, "variance_epsilon", None)
    return float(norm.eps if eps is None else eps)


def _rms(x: Tensor, norm, prefix: str, want: set, out: dict) -> Tensor:
    """RMSNorm recording `{prefix}hook_scale` [batch pos 1] and `{prefix}hook_normalized`
    (before the gain, which compatibility mode has folded into the next matmul)."""
    s_name, n_name = prefix + "hook_scale", prefix + "hook_normalized"
    if s_name not in want and n_name not in want:
        return F.rms_norm(x, x.shape[-1:], norm.weight, _eps(norm))
    scale = (x.pow(2).mean(-1, keepdim=True) + _eps(norm)).sqrt()
    normed = x / scale
    _put(out, want, s_name, scale)
    _put(out, want, n_name, normed)
    return normed * norm.weight


def _attention(b: _Block, l: int, x: Tensor, cos: Tensor, sin: Tensor, want: set, out: dict) -> Tensor:
    """Attention half of layer l: resid_pre [batch pos d_model] -> resid_mid, recording hooks."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    p = f"blocks.{l}."
    B, S, _ = x.shape
    h = _rms(x, b.ln1, p + "ln1.", want, out)
    q = F.linear(h, b.q.weight, b.q.bias).view(B, S, -1, b.d_head)
    k = F.linear(h, b.k.weight, b.k.bias).view(B, S, -1, b.d_head)
    v = F.linear(h, b.v.weight, b.v.bias).view(B, S, -1, b.d_head)
    for name, t in (("q", q), ("k", k), ("v", v)):
        _put(out, want, p + f"attn.hook_{name}", t)
    _put(out, want, p + "attn.hook_cos", cos)
    _put(out, want, p + "attn.hook_sin", sin)
    qr, kr = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)  # [batch head pos d_head]
    _put(out, want, p + "attn.hook_rot_q", qr.transpose(1, 2))  # [batch pos head d_head] views
    _put(out, want, p + "attn.hook_rot_k", kr.transpose(1, 2))
    keys, values = repeat_kv(kr, b.groups), repeat_kv(v.transpose(1, 2), b.groups)
    allowed = _allowed(S, b.window, x.device)
    if p + "attn.hook_attn_scores" in want or p + "attn.hook_pattern" in want:
        scores = (qr @ keys.transpose(-1, -2)).mul_(b.scaling).masked_fill_(~allowed, float("-inf"))
        pattern = scores.softmax(-1)
        _put(out, want, p + "attn.hook_attn_scores", scores)
        _put(out, want, p + "attn.hook_pattern", pattern)
        z = pattern @ values
    elif b.window is None:
        z = F.scaled_dot_product_attention(qr, keys, values, is_causal=True, scale=b.scaling)
    else:
        z = F.scaled_dot_product_attention(qr, keys, values, attn_mask=allowed, scale=b.scaling)
    z = z.transpose(1, 2).contiguous()  # [batch pos head d_head]
    _put(out, want, p + "attn.hook_z", z)
    if p + "attn.hook_result" in want:  # the per-head outputs, summed, are the output projection
        result = _result(b, z)
        out[p + "attn.hook_result"] = result
        attn_out = result.sum(2) if b.o.bias is None else result.sum(2).add_(b.o.bias)
    else:
        attn_out = F.linear(z.view(B, S, -1), b.o.weight, b.o.bias)
    _put(out, want, p + "hook_attn_out", attn_out)
    x = x + attn_out
    _put(out, want, p + "hook_resid_mid", x)
    return x


def _result(b: _Block, z: Tensor) -> Tensor:
    """Per-head outputs [batch pos head d_model] from z [batch pos head d_head], before the
    output bias: one batched matmul over heads, returned as a permuted view."""
    B, S, H, dh = z.shape
    W_O = b.o.weight.view(-1, H, dh).permute(1, 2, 0)  # [head d_head d_model]
    per_head = torch.bmm(z.permute(2, 0, 1, 3).reshape(H, B * S, dh), W_O)
    return per_head.view(H, B, S, -1).permute(1, 2, 0, 3)


def _allowed(S: int, window: int | None, device) -> Tensor:
    """Bool [S S]: query i sees key j when j <= i (and i - j < window on a sliding-window layer)."""
    i = torch.arange(S, device=device)
    diff = i[:, None] - i[None, :]
    return (diff >= 0) & (diff < window) if window else diff >= 0


def _mlp(b: _Block, l: int, x: Tensor, want: set, out: dict) -> Tensor:
    """MLP half of layer l: resid_mid -> resid_post, recording hooks."""
    p = f"blocks.{l}."
    h = _rms(x, b.ln2, p + "ln2.", want, out)
    gate = F.linear(h, b.gate.weight, b.gate.bias)
    up = F.linear(h, b.up.weight, b.up.bias)
    _put(out, want, p + "mlp.hook_pre", gate)
    _put(out, want, p + "mlp.hook_pre_linear", up)
    post = b.act(gate) * up
    _put(out, want, p + "mlp.hook_post", post)
    mlp_out = F.linear(post, b.down.weight, b.down.bias)
    _put(out, want, p + "hook_mlp_out", mlp_out)
    x = x + mlp_out
    _put(out, want, p + "hook_resid_post", x)
    _put(out, want, f"blocks.{l + 1}.hook_resid_pre", x)
    return x


# ---------------------------------------------------------------------------------------------
# Downstream pieces for sweeps (nothing recorded)


def attend(b: _Block, x: Tensor, cos: Tensor, sin: Tensor, start: int = 0, last: Tensor | None = None,
           past: tuple | None = None) -> Tensor:
    """resid_mid from resid_pre x [n pos d_model] holding positions start.. (`cos`/`sin` cover
    every position); `past` = the rotated keys and values [n kv_head start d_head] of positions
    < start; with `last` [n] (indices into x's positions), queries only there (-> [n d_model])."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    n, S, _ = x.shape
    h = F.rms_norm(x, x.shape[-1:], b.ln1.weight, _eps(b.ln1))
    k = F.linear(h, b.k.weight, b.k.bias).view(n, S, -1, b.d_head).transpose(1, 2)
    v = F.linear(h, b.v.weight, b.v.bias).view(n, S, -1, b.d_head).transpose(1, 2)
    k = apply_rotary_pos_emb(k, k, cos[:, start:start + S], sin[:, start:start + S])[1]
    if past is not None:
        k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
    keys, values = repeat_kv(k, b.groups), repeat_kv(v, b.groups)
    rows = torch.arange(n, device=x.device)
    if last is None:
        q_in, q_pos, resid = h, torch.arange(start, start + S, device=x.device)[None].expand(n, -1), x
    else:
        q_in, q_pos, resid = h[rows, last][:, None], (start + last)[:, None], x[rows, last]
    q = F.linear(q_in, b.q.weight, b.q.bias).view(n, q_in.shape[1], -1, b.d_head).transpose(1, 2)
    q = apply_rotary_pos_emb(q, q, cos[0, q_pos], sin[0, q_pos])[0]
    diff = q_pos[:, :, None] - torch.arange(k.shape[2], device=x.device)[None, None]  # [n query key]
    allowed = (diff >= 0) & (diff < b.window) if b.window else diff >= 0
    z = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed[:, None], scale=b.scaling)
    out = F.linear(z.transpose(1, 2).reshape(n, q.shape[2], -1), b.o.weight, b.o.bias)
    return resid + (out[:, 0] if last is not None else out)


def feed_forward(b: _Block, x: Tensor) -> Tensor:
    """resid_post from resid_mid x [..., d_model]."""
    h = F.rms_norm(x, x.shape[-1:], b.ln2.weight, _eps(b.ln2))
    return x + F.linear(b.act(F.linear(h, b.gate.weight, b.gate.bias)) * F.linear(h, b.up.weight, b.up.bias),
                        b.down.weight, b.down.bias)


def head_outputs(b: _Block, z: Tensor) -> Tensor:
    """Per-head outputs [head batch pos d_model] of z [batch pos head d_head] (no bias)."""
    return _result(b, z).permute(2, 0, 1, 3)


def final_norm(p: _Parts, x: Tensor) -> Tensor:
    return F.rms_norm(x, x.shape[-1:], p.ln_final.weight, _eps(p.ln_final))
