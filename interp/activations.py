"""Hook points and activation capture: see and keep every activation of every layer.

Hook names follow TransformerLens (`hook_embed`, `hook_pos_embed`, `blocks.{L}.hook_resid_pre`,
`blocks.{L}.attn.hook_pattern`, `blocks.{L}.attn.hook_result`, `blocks.{L}.mlp.hook_post`,
`ln_final.hook_scale`, ...). The bridge also exposes alias names for the same tensors
(`embed.hook_out`, `blocks.0.attn.o.hook_in`, ...); interp lists and keeps only the canonical
ones, so nothing is stored twice.

Example:
    >>> import interp
    >>> model = interp.load("zoo-2l")
    >>> acts = interp.capture(model, ["When Mary and John went to the store,"], names="*hook_pattern")
    >>> acts["blocks.1.attn.hook_pattern"].shape  # batch head query key
    torch.Size([1, 4, 10, 10])
    >>> acts.tokens[0][:3]
    ['<|endoftext|>', 'When', ' Mary']
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from interp.errors import InterpError, closest, model_name
from interp.tokens import token_texts

Names = str | Sequence[str] | Callable[[str], bool] | None
# Aliases of other hook points, and points the bridge fires only under optional flags
# (use_split_qkv_input, use_hook_mlp_in): listing them would show names that never fill.
_ALIAS = re.compile(r"(\.hook_in|\.hook_out|hook_hidden_states|hook_[qkv]_input|hook_attn_in|hook_mlp_in)$")
_LAYER = re.compile(r"^blocks\.(\d+)\.(.+)$")


def hook_names(model) -> list[str]:
    """Canonical hook point names of `model`, in forward order (aliases dropped, and per-head
    outputs `attn.hook_result` where the bridge cannot give them: OPT, GPT-J)."""
    from interp.arch import facts

    result = facts(model).has_attn_result
    return [n for n in model.hook_dict if not _ALIAS.search(n) and (result or not n.endswith("attn.hook_result"))]


def select_names(model, names: Names) -> list[str]:
    """Resolve a names filter (None = all, exact list, glob string, or predicate) to hook names.

    Raises:
        InterpError: an exact name that is not a hook point, or a glob that matches nothing.
    """
    valid = hook_names(model)
    if names is None:
        return valid
    if callable(names):
        return [n for n in valid if names(n)]
    if isinstance(names, str):
        hits = [n for n in valid if fnmatch.fnmatchcase(n, names)] if any(c in names for c in "*?[") else \
            [n for n in valid if n == names]
        if not hits:
            raise InterpError(f"hook {names!r} matches no hook point{closest(names, valid)}; "
                              "list them with `interp inspect --model M`")
        return hits
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InterpError(f"unknown hook {unknown[0]!r}{closest(unknown[0], valid)}; "
                          "list them with `interp inspect --model M`")
    return [n for n in valid if n in set(names)]


def split_name(name: str) -> tuple[int | None, str]:
    """('blocks.3.attn.hook_z') -> (3, 'attn.hook_z'); ('hook_embed') -> (None, 'hook_embed')."""
    m = _LAYER.match(name)
    return (int(m.group(1)), m.group(2)) if m else (None, name)


@contextmanager
def attn_result(model):
    """Enable per-head attention outputs (`hook_result`) inside the block, then restore."""
    before = bool(getattr(model.cfg, "use_attn_result", False))
    model.set_use_attn_result(True)
    try:
        yield model
    finally:
        model.set_use_attn_result(before)


def to_tokens(model, prompts: str | Sequence[str], prepend_bos: bool | None = None):
    """Token ids [batch pos] (right-padded) and the string tokens of each prompt.

    Raises:
        InterpError: empty prompt, or a prompt longer than the model's context.
    """
    from interp.inputs import check_prompts

    prompts = check_prompts(prompts)
    bos = model.cfg.default_prepend_bos if prepend_bos is None else prepend_bos
    rows = [model.to_tokens(p, prepend_bos=bos, truncate=False)[0] for p in prompts]
    n_ctx = model.cfg.n_ctx
    too_long = [len(r) for r in rows if len(r) > n_ctx]
    if too_long:
        name = model_name(model)
        raise InterpError(f"prompt is {too_long[0]} tokens but {name} takes at most {n_ctx}; "
                          "shorten it (or truncate it yourself)")
    import torch

    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    tokens = torch.full((len(rows), max(len(r) for r in rows)), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = r
    return tokens.to(model.cfg.device), [_show(model, r.tolist()) for r in rows]


def _show(model, ids) -> list[str]:
    """Tokens as text by the tokenizer's own decoder (' café', not byte-level BPE's 'ĠcafÃ©')."""
    return token_texts(model.tokenizer, ids)


@dataclass
class Activations:
    """Captured activations: `acts[name]` is a tensor [batch, ...]; `tokens` says what each
    position is; `lengths` gives each prompt's real length (positions past it are padding)."""

    cache: dict
    tokens: list[list[str]]
    lengths: list[int]
    logits: object = None

    def __getitem__(self, name: str):
        if name not in self.cache:
            raise InterpError(f"activation {name!r} was not captured{closest(name, self.cache)}; "
                              "pass it in names=")
        return self.cache[name]

    def __contains__(self, name: str) -> bool:
        return name in self.cache

    def keys(self):
        return self.cache.keys()

    def __len__(self) -> int:
        return len(self.cache)

    def nbytes(self) -> int:
        """Bytes held, counting shared storage once."""
        seen, total = set(), 0
        for t in self.cache.values():
            ptr = t.untyped_storage().data_ptr()
            if ptr not in seen:
                seen.add(ptr)
                total += t.untyped_storage().nbytes()
        return total

    def __repr__(self) -> str:
        """Names and shapes, not values: a capture of a real model holds hundreds of MB."""
        shapes = ", ".join(f"{n}: {'x'.join(map(str, t.shape))}" for n, t in list(self.cache.items())[:6])
        more = f", ... ({len(self.cache) - 6} more)" if len(self.cache) > 6 else ""
        first = "".join(self.tokens[0][:8]) if self.tokens else ""
        return (f"Activations({len(self.cache)} hook points, {len(self.tokens)} prompt(s), "
                f"{self.nbytes() / 2**20:.1f} MiB; {shapes}{more}; tokens[0] starts {first!r})")

    def to_activation_cache(self, model):
        """The same tensors as TransformerLens' `ActivationCache` (its `decompose_resid`,
        `accumulated_resid`, `stack_head_results`, `logit_attrs`, ... then work on them); the
        tensors are shared, not copied."""
        from transformer_lens import ActivationCache

        return ActivationCache(dict(self.cache), model)


def capture(model, prompts, names: Names = None, prepend_bos: bool | None = None,
            keep_logits: bool = False, lengths: Sequence[int] | None = None,
            engine: Literal["auto", "fast", "bridge"] = "auto") -> Activations:
    """Run `prompts` through `model` and keep the chosen activations (all by default).

    Args:
        model: a model from `interp.load`.
        prompts: a string, a list of strings (right-padded into one batch), or a token tensor
            [batch pos] (then `lengths` gives each row's real length; default: all of it).
        names: None (every hook point), exact names, a glob ("blocks.*.attn.hook_pattern") or a
            predicate on the name.
        prepend_bos: override the model's default of prepending BOS to strings.
        keep_logits: also keep the output logits [batch pos d_vocab].
        engine: "fast" runs a plain-torch forward that computes only what is asked for
            (`interp.engine` on GPT-2-style models, `interp.rotary_engine` on Llama, Qwen2 and
            Mistral), "bridge" the bridge's forward with one keeping hook per chosen
            point, stopped as soon as the last of them has fired (unless the logits are
            wanted), "auto" the fast one
            where the model supports it and no hook of yours is attached to it. Both give the
            same activations.

    Returns:
        `Activations` with `.cache`, `.tokens` (string tokens per prompt) and `.lengths`.
    """
    import torch

    fast = _fast_engine(model, engine)
    chosen = select_names(model, names)
    if isinstance(prompts, torch.Tensor):
        from interp.inputs import check_lengths, check_tokens

        tokens = check_tokens(model, prompts)
        lengths = check_lengths(lengths, tokens.shape[0], tokens.shape[1])
        strs = [_show(model, row[:n].tolist()) for row, n in zip(tokens, lengths)]
    else:
        tokens, strs = to_tokens(model, prompts, prepend_bos)
    if fast:
        kept, logits = fast(model, tokens, chosen, logits=keep_logits)
        return Activations(kept, strs, [len(s) for s in strs], logits)
    with attn_result(model) if any(n.endswith("attn.hook_result") for n in chosen) else _null():
        kept, logits = _bridge_capture(model, tokens, chosen, keep_logits)
    return Activations(kept, strs, [len(s) for s in strs], logits)


class _Enough(Exception):
    """Raised by the capture hook once every wanted activation is kept: the forward stops there."""


def _bridge_capture(model, tokens, chosen: list[str], keep_logits: bool):
    """The chosen activations from one bridge forward that stops as soon as the last of them has
    fired (unless the logits are wanted), so nothing downstream of them is computed."""
    import torch

    kept: dict = {}
    wanted = len(set(chosen))

    def keep(name: str):  # by the name asked for: a hook point's own name may be an alias
        def hook(tensor, hook):
            kept[name] = tensor.detach()
            if not keep_logits and len(kept) == wanted:
                raise _Enough
            return tensor
        return hook

    logits = None
    with torch.no_grad():
        try:
            with model.hooks(fwd_hooks=[(n, keep(n)) for n in dict.fromkeys(chosen)]):
                logits = model(tokens)
        except _Enough:
            pass
    return {n: kept[n] for n in chosen if n in kept}, logits if keep_logits else None


@contextmanager
def _null():
    yield


def _fast_engine(model, engine: str):
    """The plain-torch forward `capture` runs (`interp.engine.run` on GPT-2-style models,
    `interp.rotary_engine.run` on Llama, Qwen2 and Mistral), or None for the bridge ("fast" on
    an unsupported model is an error)."""
    if engine not in ("auto", "fast", "bridge"):
        raise InterpError(f"engine {engine!r} is not one of 'auto', 'fast', 'bridge'")
    if engine == "bridge":
        return None
    from interp import engine as gpt2, rotary_engine as rotary

    run = gpt2.run if gpt2.supports(model) else rotary.run if rotary.supports(model) else None
    if engine == "fast":
        if run is None:
            raise InterpError(f"engine 'fast' supports GPT-2-style, Llama, Qwen2 and Mistral models, "
                              f"not {gpt2.architecture(model)}; use engine='bridge' (or 'auto')")
        return run
    return None if run is None or gpt2.hooked(model) else run


def hook_points(model, prompt: str = "The cat sat on the mat.") -> "pandas.DataFrame":
    """Every canonical hook point with its layer, component and shape on `prompt`.

    Returns:
        DataFrame with columns name, layer (NA outside blocks), component, shape.
    """
    import pandas as pd

    acts = capture(model, prompt)
    rows = []
    for name in hook_names(model):
        layer, component = split_name(name)
        shape = tuple(acts.cache[name].shape) if name in acts.cache else None
        rows.append({"name": name, "layer": layer, "component": component,
                     "shape": "x".join(map(str, shape)) if shape else "not produced"})
    df = pd.DataFrame(rows)
    df["layer"] = df["layer"].astype("Int64")
    return df
