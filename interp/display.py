"""Notebook displays: attention, direct logit attribution, head sweeps, the logit lens and
activation patching, shown inline in Jupyter, from a model and a prompt or from what you have.

Every function returns an `interp.report.notebook.View`: Jupyter shows it (`_repr_html_`), its
`repr` is one line (names, shapes, tokens), `.table` is the tidy DataFrame it was drawn from and
`.save(path)` writes a self-contained page. The circuitsvis bundle (1.3 MB) goes into the
notebook once, with the first attention view; later views draw from it, and a saved notebook
reopened offline still draws them (see `interp.report.notebook` for a cleared first cell:
`bundle()` puts the bundle back).

    attention(model, prompt)  or  attention(acts)  or  attention(cache, tokens=[...])
    dla(model, prompt, target, foil)  or  dla(interp.attribution.attribute(...))
    sweep(model, prompts, target, foil)  or  sweep(interp.ablation.sweep(...))
    lens(model, prompt, target)  or  lens(interp.attribution.logit_lens(...))
    patching(df)      a tidy patching table: layer, head and/or pos, normalised
    bundle(), reset(), bundle_mode("every")

Example:
    >>> import interp
    >>> from interp import display
    >>> model = interp.load("zoo-2l")
    >>> acts = interp.capture(model, "When Mary and John went", names="*hook_pattern")
    >>> display.attention(acts)  # doctest: +ELLIPSIS
    Attention: layers 0-1 x 4 heads, 6 tokens ['<|endoftext|>', 'When', ' Mary', ' and', ' John', ' went']
    >>> display.sweep(model, "When Mary and John went to the store, John gave a drink to", " Mary", " John")
    ... # doctest: +ELLIPSIS
    Sweep: 2 layers x 4 heads, clean ...; largest changes ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from interp.errors import InterpError
from interp.report.notebook import View, bundle, bundle_mode, reset
from interp.report.views import dla_view, lens_view, patching_view, sweep_view

__all__ = ["View", "attention", "bundle", "bundle_mode", "dla", "lens", "patching", "reset", "sweep"]

_PATTERN = re.compile(r"^blocks\.(\d+)\.attn\.hook_pattern$")


def _model(model):
    from interp.models import load

    return load(model)


def _is_cache(obj) -> bool:
    """A mapping of hook names to tensors that is not a model (TransformerLens' ActivationCache)."""
    import torch

    return hasattr(obj, "keys") and hasattr(obj, "__getitem__") and not isinstance(obj, torch.nn.Module)


def attention(source, prompt: str | None = None, *, tokens: list[str] | None = None, layer: int | None = None,
              batch: int = 0) -> View:
    """Interactive attention patterns of every head, one layer per tab.

    Args:
        source: a model (or its name) with `prompt`; an `interp.capture` result holding
            `blocks.*.attn.hook_pattern`; or any mapping of hook names to patterns
            [batch head query key], e.g. TransformerLens' `ActivationCache` from
            `run_with_cache` of a patched run, with `tokens`.
        prompt: the text to run (with a model).
        tokens: the tokens' text (a mapping has none; default: an `Activations`' own).
        layer: show only this layer.
        batch: which prompt of a batch.

    Raises:
        InterpError: no patterns in the cache, a missing prompt or tokens, a layer not there.
    """
    from interp.activations import Activations
    from interp.report import figures, tables
    from interp.report.views import attention_view

    if not (isinstance(source, Mapping | Activations) or _is_cache(source)):
        if prompt is None:
            raise InterpError("attention(model, prompt): give the prompt to run, or pass a capture result")
        return figures.attention(_model(source), prompt, layer)
    cache = source.cache if isinstance(source, Activations) else source
    patterns = {int(m[1]): cache[n][batch] for n in list(cache.keys()) if (m := _PATTERN.match(n))}
    if not patterns:
        raise InterpError("no attention patterns in this cache: capture names='blocks.*.attn.hook_pattern'")
    if layer is not None and layer not in patterns:
        raise InterpError(f"layer {layer} is not in this cache (it has layers {sorted(patterns)})")
    n_pos = next(iter(patterns.values())).shape[-1]
    if isinstance(source, Activations):
        tokens, n = list(tokens or source.tokens[batch]), source.lengths[batch]
    elif tokens is None or len(tokens) > n_pos:
        raise InterpError(f"attention of a cache needs tokens=[...], one string per position (at most {n_pos})")
    else:
        tokens, n = list(tokens), len(tokens)
    tokens = tokens[:n]
    patterns = {k: v[:, :n, :n] for k, v in patterns.items() if layer is None or k == layer}
    causal = all(bool((p.detach().float().triu(1).abs() == 0).all()) for p in patterns.values())
    df = tables.pattern_table(patterns, tokens, causal)
    return attention_view(df, tokens, causal, "Attention")


def dla(source, prompt: str | None = None, target=None, foil=None, **kw) -> View:
    """Direct logit attribution: each head's share (heatmap) and the other components (bars).

    `source` is `interp.attribution.attribute`'s DataFrame, or a model with prompt, target and
    foil (keywords as `attribute`).
    """
    if isinstance(source, pd.DataFrame):
        return dla_view(source)
    from interp.attribution import attribute

    if prompt is None or target is None:
        raise InterpError("dla(model, prompt, target, foil=None): give the prompt and target, or pass attribute()'s table")
    return dla_view(attribute(_model(source), prompt, target, foil, **kw))


def sweep(source, prompts=None, target=None, foil=None, **kw) -> View:
    """A head-ablation sweep as a layer x head heatmap of the change in the metric.

    `source` is `interp.ablation.sweep`'s DataFrame, or a model with prompts (target, foil and
    keywords as `sweep`).
    """
    if isinstance(source, pd.DataFrame):
        return sweep_view(source)
    from interp.ablation import sweep as run

    if prompts is None:
        raise InterpError("sweep(model, prompts, target, foil): give the prompts, or pass ablation.sweep()'s table")
    return sweep_view(run(_model(source), prompts, target, foil, **kw))


def lens(source, prompt: str | None = None, target=None, **kw) -> View:
    """The logit lens: the top tokens after every layer, and the target's probability (log axis).

    `source` is `interp.attribution.logit_lens`'s DataFrame, or a model with a prompt (target
    and keywords as `logit_lens`; `pos=None` shows every position).
    """
    if isinstance(source, pd.DataFrame):
        return lens_view(source)
    from interp.attribution import logit_lens

    if prompt is None:
        raise InterpError("lens(model, prompt, target=None): give the prompt, or pass logit_lens()'s table")
    return lens_view(logit_lens(_model(source), prompt, target, **kw))


def patching(df: pd.DataFrame, value: str | None = None) -> View:
    """Activation patching results (a tidy table: layer, head and/or pos, and `normalised`, 0 =
    the corrupted run, 1 = the clean run; or the `value` column given) as heatmaps."""
    return patching_view(df, value)
