"""Report figures for notebooks, from a model and a prompt: views that display inline
(`_repr_html_`) and can be saved (`interp.report.notebook.View`; `interp.display` also takes
results and caches you already have).

An attention figure carries the circuitsvis bundle if it is the notebook's first interactive
view (once per notebook, `interp.report.notebook`); a saved figure page always has it.

Example:
    >>> import interp
    >>> from interp.report import figures, notebook
    >>> notebook.reset()
    >>> fig = figures.attention(interp.load("zoo-2l"), "When Mary and John went")
    >>> html = fig._repr_html_()
    >>> html.count("var CircuitsVis="), "AttentionHeads" in html, fig._repr_html_().count("var CircuitsVis=")
    (1, True, 0)
    >>> fig.table.columns.tolist()[:4]
    ['layer', 'head', 'query', 'key']
"""

from __future__ import annotations

import pandas as pd

from interp.report import plots, tables
from interp.report.html import figure
from interp.report.notebook import View
from interp.report.views import attention_view


def _model(model):
    """A model from `interp.load`, for a name, a path or a bridge booted by hand (gets `.info`)."""
    from interp.models import load

    return load(model)


def attention(model, prompt: str, layer: int | None = None) -> View:
    """Interactive attention patterns of every head (one layer, or all with a layer picker)."""
    from interp.errors import check_range

    model = _model(model)
    acts = tables.run(model, prompt)
    df = tables.attention_table(model, acts)
    if layer is not None:
        df = df[df["layer"] == check_range("layer", layer, model.cfg.n_layers, model.info.name)]
    return attention_view(df, acts.tokens[0], tables.is_causal(model), f"Attention: {prompt}")


def predictions(model, prompt: str, k: int = 10) -> View:
    """Top-k next-token probabilities at the final position (bar chart)."""
    model = _model(model)
    acts = tables.run(model, prompt)
    df = tables.predictions_table(model, acts, k=k)
    last = df[df["pos"] == df["pos"].max()]
    svg = plots.bars(last, "candidate", "prob", f"next token after {acts.tokens[0][-1]!r}", "probability")
    return View(f"Predictions: {prompt}", figure(svg, f"Top {k} next tokens."), df,
                summary=f"Predictions: top {k} after {acts.tokens[0][-1]!r}: " +
                ", ".join(f"{r.candidate!r} {r.prob:.3g}" for r in last.head(4).itertuples()))


def heatmap(df: pd.DataFrame, row: str, col: str, value: str, title: str) -> View:
    """Any tidy table as a `row` x `col` heatmap of `value` (e.g. an ablation sweep: layer x head)."""
    return View(title, figure(plots.heatmap(df, row, col, value, title), title), df,
                summary=f"Heatmap {title!r}: {df[row].nunique()} {row} x {df[col].nunique()} {col} of {value}")
