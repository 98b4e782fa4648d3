"""Direct logit attribution and the logit lens: which components write a token's logit, and
what the residual stream predicts after every layer.

Method. In a pre-norm transformer the residual stream before the final LayerNorm is a sum of
writes: token embedding, position embedding, every attention head (z @ W_O), every attention
output bias b_O, every MLP output (or, split further, every neuron's activation times its
W_out row plus b_out). The final LayerNorm centres the stream and divides it by a scale that
depends on the whole stream; holding that scale fixed at the value the model actually used
(`ln_final.hook_scale`) makes the map from stream to logits linear, so each write gets an exact
share of a token's logit (Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits", direct logit attribution):

    share(c) = (c - mean(c)) / scale . (W_U[:, target] - W_U[:, foil])

plus one constant, `b_U[target] - b_U[foil]` (kind "bias"). The shares sum to the model's own
logit (difference) to float precision; `attribution_totals` shows the check, and the analysis
refuses a model where it fails (e.g. an unfolded final norm). Compatibility mode folds the
LayerNorm weights into W_U / b_U and centres every writer, so `mean(c)` is already ~0; it is
still subtracted (via a centred direction) so the identity does not rely on it. Compatibility
mode also centres W_U over the vocabulary, which shifts every raw logit at a position by one
constant versus plain Hugging Face: single-token shares sum to the bridge's logit, while
differences (target - foil) equal plain Hugging Face's too.

The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens") reads the residual
stream after the embeddings (layer 0) and after each block L (layer L + 1) through the model's
real final LayerNorm, with its statistics recomputed for that residual, and the unembedding;
its last layer is exactly the model's output.

Rows of the DLA table, in model order: embed, pos_embed, then per layer its heads (kind "head"),
b_O ("attn_bias") and MLP ("mlp"; or, for the `neurons` layer, one "neuron" row each plus b_out,
kind "mlp_bias"), and last the b_U term ("bias"). A target or foil is one token: "Mary" and
" Mary" both mean " Mary", the form a word takes after a space (see `interp.tokens.token_id`).

Why not TransformerLens' `tools.analysis`: its `direct_logit_attribution(unit="head")` gives the
same head values (to 2e-7 on zoo-4l) but caches every hook point (667 ms against 495 ms here for
one IOI prompt on the shared 2-core CPU; a bare forward took 335 ms), lumps embeddings, biases and
MLPs into one "remainder", leaves b_U out (its parts sum to logit - b_U), and takes one target
for the whole batch. This module captures only hook_z, mlp_out, the embeddings and the final
scale, projects the unembedding direction back through W_O / W_out (no [head, d_model] tensor
per position), takes a target and foil per prompt and each prompt's own last position, splits a
chosen MLP into neurons, and checks the total. TL's `logit_lens` is right (it runs `ln_final`
per residual, as this one does) and about as fast; it is reimplemented in ~20 lines to read
each prompt's own position from a right-padded batch and to return the tidy table directly.

Example:
    >>> import interp
    >>> from interp.attribution import attribute, attribution_totals, logit_lens
    >>> model = interp.load("zoo-4l")
    >>> prompt = "When Mary and John went to the store, John gave a drink to"
    >>> df = attribute(model, prompt, target=" Mary", foil=" John")
    >>> list(df.columns)
    ['prompt', 'component', 'layer', 'head', 'neuron', 'kind', 'value']
    >>> bool(attribution_totals(df)["error"].abs().max() < 1e-3)
    True
    >>> lens = logit_lens(model, prompt, target="Mary", k=3)
    >>> lens.query("layer == 4 and rank == 1")["token"].item()
    ' Mary'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interp.arch import facts, norm_gain, param, softcap
from interp.errors import InterpError, check_range
from interp.inputs import count_prompts
from interp.offload import resident
from interp.models import require_trained
from interp.tokens import Token, token_id, token_ids, token_text  # noqa: F401  (token_id is re-exported)

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from torch import Tensor

KINDS = ("embed", "pos_embed", "head", "attn_bias", "mlp", "neuron", "mlp_bias", "bias")
Targets = Token | Sequence[Token]
_CENTRING_NORMS = ("LN", "LNPre")


# ---------------------------------------------------------------- inputs

def resolve_positions(lengths: Sequence[int], pos: int) -> list[int]:
    """Each prompt's position `pos` (negative counts from that prompt's last token).

    Example:
        >>> resolve_positions([5, 3], -1)
        [4, 2]

    Raises:
        InterpError: `pos` is outside some prompt.
    """
    out = []
    for i, n in enumerate(lengths):
        p = pos + n if pos < 0 else pos
        if not 0 <= p < n:
            raise InterpError(f"position {pos} out of range: prompt {i} has {n} tokens (positions 0-{n - 1}, "
                              "or -1 for the last)")
        out.append(p)
    return out


def _check_model(model, what: str, allow_untrained: bool) -> None:
    require_trained(model, what, allow_untrained)
    info = model.info
    if "embed_ln.hook_scale" in model.hook_dict or info.architecture.endswith("ForMaskedLM"):
        raise InterpError(f"{what} needs a pre-norm causal LM (GPT-2 style), but {info.name} is a "
                          f"{info.architecture} (post-norm encoder with an MLM head); use a zoo model or a GPT-2")


# ---------------------------------------------------------------- direct logit attribution

@dataclass
class Attribution:
    """Direct logit attributions: `values[c, b]` is component c's share of prompt b's logit
    (difference) at `positions[b]`; `labels[c]` is (component, layer, head, neuron, kind);
    `model_value[b]` is the model's own logit (difference) there."""

    values: "Tensor"  # [component batch]
    labels: list[tuple]
    model_value: "Tensor"  # [batch]
    positions: list[int]
    tokens: list[list[str]]


def direct_logit_attribution(model, prompts: str | Sequence[str], target: Targets, foil: Targets | None = None,
                             pos: int = -1, neurons: int | None = None, allow_untrained: bool = False,
                             prepend_bos: bool | None = None) -> Attribution:
    """Tensor core of `attribute`: each component's exact share of the target logit (difference).

    Raises:
        InterpError: untrained or post-norm model, bad token, position or neuron layer, or a model
            whose parts do not sum to its logits.
    """
    import torch

    from interp.activations import capture

    _check_model(model, "direct logit attribution", allow_untrained)
    if neurons is not None:
        check_range("layer", neurons, model.cfg.n_layers, model.info.name)
    n = count_prompts(prompts)
    t_ids, f_ids = token_ids(model, target, n, "target"), token_ids(model, foil, n, "foil")
    acts = capture(model, prompts, names=_dla_hooks(model, neurons), prepend_bos=prepend_bos, keep_logits=True)
    positions = resolve_positions(acts.lengths, pos)
    reads = ("unembed", "blocks.*.attn.o") + (("blocks.*.mlp.out",) if neurons is not None else ())
    with torch.no_grad(), resident(model, *reads, *_post_norms(model)):
        direction, bias = _direction(model, t_ids, f_ids)
        values, labels = _shares(model, acts, positions, direction, neurons)
        values = torch.cat([values, bias[None]])
        labels.append(("bias", None, None, None, "bias"))
        rows = torch.arange(len(positions), device=values.device)
        logits = _uncapped(model, acts.logits[rows, torch.tensor(positions, device=values.device)])
        model_value = logits.gather(1, t_ids[:, None])[:, 0]
        if f_ids is not None:
            model_value = model_value - logits.gather(1, f_ids[:, None])[:, 0]
    _check_sum(model, values.sum(0), model_value)
    return Attribution(values, labels, model_value, positions, acts.tokens)


def _post_norms(model) -> tuple[str, ...]:
    """The block post-norms whose gains the shares read (Gemma), as `resident` parts."""
    return ("blocks.*.ln1_post", "blocks.*.ln2_post") if facts(model).post_norms else ()


def _dla_hooks(model, neurons: int | None) -> list[str]:
    names = ["hook_embed"] + (["hook_pos_embed"] if "hook_pos_embed" in model.hook_dict else [])
    post = facts(model).post_norms
    for layer in range(model.cfg.n_layers):
        names += [f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_mlp_out"]
        names += [f"blocks.{layer}.ln1_post.hook_scale", f"blocks.{layer}.ln2_post.hook_scale"] if post else []
    if neurons is not None:
        names.append(f"blocks.{neurons}.mlp.hook_post")
    if "ln_final.hook_scale" in model.hook_dict:
        names.append("ln_final.hook_scale")
    return names


def _direction(model, t_ids, f_ids):
    """Unembedding direction [batch d_model] (centred when the final norm centres) and b_U term [batch]."""
    b_U = param(model, "b_U")
    d, b = model.W_U[:, t_ids].T, b_U[t_ids]
    if f_ids is not None:
        d, b = d - model.W_U[:, f_ids].T, b - b_U[f_ids]
    if model.cfg.normalization_type in _CENTRING_NORMS:
        d = d - d.mean(-1, keepdim=True)
    return d, b


def _shares(model, acts, positions: list[int], d, neurons: int | None):
    """Shares [component batch] of every residual write at each prompt's position, and labels."""
    import torch

    rows = torch.arange(len(positions), device=d.device)
    cols = torch.tensor(positions, device=d.device)
    at = lambda name: acts[name][rows, cols]  # noqa: E731  [batch ...]
    scale = at("ln_final.hook_scale")[:, 0] if "ln_final.hook_scale" in acts else torch.ones_like(d[:, 0])
    d = d / scale[:, None]
    vals, labels = [(at("hook_embed") * d).sum(-1)], [("embed", None, None, None, "embed")]
    if "hook_pos_embed" in acts:
        vals.append((at("hook_pos_embed") * d).sum(-1))
        labels.append(("pos_embed", None, None, None, "pos_embed"))
    W_O, b_O = model.W_O, param(model, "b_O")
    for layer in range(model.cfg.n_layers):
        d_attn = _through_post_norm(model, acts, at, layer, "ln1_post", d)
        head_dirs = torch.einsum("hem,bm->bhe", W_O[layer], d_attn)
        vals += list(((at(f"blocks.{layer}.attn.hook_z") * head_dirs).sum(-1)).T)
        labels += [(f"L{layer}H{h}", layer, h, None, "head") for h in range(model.cfg.n_heads)]
        vals.append(d_attn @ b_O[layer])
        labels.append((f"L{layer} b_O", layer, None, None, "attn_bias"))
        if layer == neurons:
            d_mlp = _through_post_norm(model, acts, at, layer, "ln2_post", d)
            v, lab = _neuron_shares(model, at(f"blocks.{layer}.mlp.hook_post"), d_mlp, layer)
            vals, labels = vals + v, labels + lab
        else:
            vals.append((at(f"blocks.{layer}.hook_mlp_out") * d).sum(-1))
            labels.append((f"L{layer} mlp", layer, None, None, "mlp"))
    return torch.stack(vals), labels


def _through_post_norm(model, acts, at, layer: int, norm: str, d):
    """The direction a write must have before a block's post-norm (Gemma) so that its share is
    exact: the norm's gain over its frozen scale, times d. Without post-norms, d itself."""
    name = f"blocks.{layer}.{norm}.hook_scale"
    if name not in acts:
        return d
    gain = norm_gain(getattr(model.blocks[layer], norm))
    return d * gain / at(name)[:, :1]


def _neuron_shares(model, post, d, layer: int):
    """Each neuron's share (activation x W_out row . direction) and the b_out share."""
    per_neuron = post * (d @ model.W_out[layer].T)  # [batch d_mlp]
    labels = [(f"L{layer} N{i}", layer, None, i, "neuron") for i in range(post.shape[-1])]
    return list(per_neuron.T) + [d @ param(model, "b_out")[layer]], labels + [(f"L{layer} b_out", layer, None, None, "mlp_bias")]


def _uncapped(model, logits):
    """Logits before the final soft cap (Gemma 2: cap * tanh(x / cap), inverted), which the parts
    sum to; the logits themselves when the model has no cap."""
    cap = facts(model).final_softcap
    return logits if cap is None else cap * (logits / cap).clamp(-1 + 1e-7, 1 - 1e-7).atanh()


def _check_sum(model, total, model_value) -> None:
    err = float((total - model_value).abs().max())
    if err > 1e-2 + 1e-3 * float(model_value.abs().max()):
        raise InterpError(f"direct logit attribution does not reproduce {model.info.name}'s logits (off by {err:.3g}): "
                          "its final norm or unembedding is not the folded LayerNorm -> W_U this analysis assumes")


def attribute(model, prompts: str | Sequence[str], target: Targets, foil: Targets | None = None, pos: int = -1,
              neurons: int | None = None, allow_untrained: bool = False,
              prepend_bos: bool | None = None) -> "pandas.DataFrame":
    """Direct logit attribution of every component to `target`'s logit (minus `foil`'s).

    Args:
        model: a model from `interp.load` (pre-norm causal LM).
        prompts: a string or a list of strings.
        target: the token whose logit to explain ("Mary" and " Mary" both mean " Mary", see
            `token_id`), or one per prompt.
        foil: optional token(s) to subtract: the value becomes logit(target) - logit(foil).
        pos: position read in each prompt (default -1: its last token).
        neurons: split this layer's MLP into one row per neuron plus its bias b_out.
        allow_untrained: run even if the unembedding was not in the checkpoint.
        prepend_bos: override the model's default of prepending BOS.

    Returns:
        Long DataFrame in model order per prompt: prompt, component, layer, head, neuron, kind
        (one of `KINDS`), value. `df.attrs` holds `model_value` (per prompt), `positions`,
        `target` and `foil` ids; `attribution_totals(df)` checks the sum.
    """
    a = direct_logit_attribution(model, prompts, target, foil, pos, neurons, allow_untrained, prepend_bos)
    return _dla_frame(a, model, target, foil)


def _dla_frame(a: Attribution, model, target, foil) -> "pandas.DataFrame":
    import pandas as pd

    n_comp, n_prompt = a.values.shape
    meta = pd.DataFrame(a.labels, columns=["component", "layer", "head", "neuron", "kind"])
    df = pd.concat([meta] * n_prompt, ignore_index=True)
    df.insert(0, "prompt", [b for b in range(n_prompt) for _ in range(n_comp)])
    df["value"] = a.values.T.reshape(-1).cpu().numpy()
    for col in ("layer", "head", "neuron"):
        df[col] = df[col].astype("Int64")
    df.attrs.update(model_value=a.model_value.cpu().tolist(), positions=a.positions,
                    position_tokens=[t[p] for t, p in zip(a.tokens, a.positions)])
    return df


def attribution_totals(df: "pandas.DataFrame") -> "pandas.DataFrame":
    """Per prompt: the summed parts, the model's own logit (difference) and their difference.

    Returns:
        DataFrame with columns prompt, total, model, error (total - model).
    """
    import pandas as pd

    total = df.groupby("prompt", sort=True)["value"].sum()
    model_value = df.attrs.get("model_value")
    if model_value is None or len(model_value) != len(total):
        raise InterpError("this table has no model values to check against: pass the table `attribute` "
                          "returned, before filtering prompts")
    out = pd.DataFrame({"prompt": total.index, "total": total.values, "model": model_value})
    out["error"] = out["total"] - out["model"]
    return out


# ---------------------------------------------------------------- logit lens

def lens_logits(model, prompts: str | Sequence[str], pos: int | None = -1, allow_untrained: bool = False,
                prepend_bos: bool | None = None):
    """Tensor core of `logit_lens`: logits [layer row d_vocab] read from every residual stage.

    Stage 0 is `blocks.0.hook_resid_pre` (the embeddings); stage L + 1 is `blocks.L.hook_resid_post`.
    A row is one (prompt, position) pair: each prompt's `pos`, or all its positions for None.

    Returns:
        (lens logits, the model's logits [row d_vocab] at the same places, hook names,
        rows as (prompt, position) pairs, string tokens).
    """
    import torch

    from interp.activations import capture

    _check_model(model, "the logit lens", allow_untrained)
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{L}.hook_resid_post" for L in range(model.cfg.n_layers)]
    acts = capture(model, prompts, names=names, prepend_bos=prepend_bos, keep_logits=True)
    pairs = [(b, p) for b, n in enumerate(acts.lengths) for p in range(n)] if pos is None else \
        list(enumerate(resolve_positions(acts.lengths, pos)))
    rows, cols = (torch.tensor(x, device=model.cfg.device) for x in zip(*pairs))
    with torch.no_grad(), resident(model, "ln_final", "unembed"):
        stack = torch.stack([acts[n][rows, cols] for n in names])  # [layer row d_model]
        lens = softcap(model.ln_final(stack) @ model.W_U + param(model, "b_U"), facts(model).final_softcap)
    final = acts.logits[rows, cols]
    err = float((lens[-1] - final).abs().max())
    if err > 1e-3:
        raise InterpError(f"the logit lens does not reproduce {model.info.name}'s logits (off by {err:.3g}): "
                          "its output is not ln_final -> W_U on the last residual")
    return lens, final, names, pairs, acts.tokens


def logit_lens(model, prompts: str | Sequence[str], target: Targets | None = None, k: int = 5,
               pos: int | None = -1, allow_untrained: bool = False,
               prepend_bos: bool | None = None) -> "pandas.DataFrame":
    """Top-k next tokens predicted from the residual stream after every layer.

    Args:
        model: a model from `interp.load` (pre-norm causal LM).
        prompts: a string or a list of strings.
        target: optional token (or one per prompt) whose rank and probability to follow.
        k: tokens per layer (>= 1).
        pos: position read in each prompt (default -1: its last token; None: every position,
            all from one forward pass).
        allow_untrained: run even if the unembedding was not in the checkpoint.
        prepend_bos: override the model's default of prepending BOS.

    Returns:
        Long DataFrame: prompt, pos, layer (0 = embeddings, L + 1 = after block L), hook, rank
        (1 = top), token, token_id, prob, logit; with a target also target, target_rank (1 =
        top), target_prob.
    """
    import torch

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InterpError(f"k {k!r} must be a positive integer (tokens per layer)")
    _check_model(model, "the logit lens", allow_untrained)
    n = count_prompts(prompts)
    t_ids = token_ids(model, target, n, "target")
    lens, _, names, pairs, _ = lens_logits(model, prompts, pos, allow_untrained, prepend_bos)
    probs = torch.softmax(lens.float(), -1)
    top = torch.topk(lens, min(k, lens.shape[-1]), dim=-1)
    return _lens_frame(model, lens, probs, top, names, pairs, t_ids)


def _lens_frame(model, lens, probs, top, names, pairs, t_ids) -> "pandas.DataFrame":
    import pandas as pd

    tok = model.tokenizer
    rows = []
    for layer, name in enumerate(names):
        for r, (b, p) in enumerate(pairs):
            extra = _target_cols(tok, lens[layer, r], probs[layer, r], t_ids[b]) if t_ids is not None else {}
            for rank, (i, logit) in enumerate(zip(top.indices[layer, r].tolist(), top.values[layer, r].tolist())):
                rows.append({"prompt": b, "pos": p, "layer": layer, "hook": name, "rank": rank + 1,
                             "token": token_text(tok, i), "token_id": i,
                             "prob": float(probs[layer, r, i]), "logit": logit, **extra})
    return pd.DataFrame(rows).sort_values(["prompt", "pos", "layer", "rank"], ignore_index=True)


def _target_cols(tok, logits, probs, t_id) -> dict:
    t = int(t_id)
    return {"target": token_text(tok, t),
            "target_rank": int((logits > logits[t]).sum()) + 1, "target_prob": float(probs[t])}
