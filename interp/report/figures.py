"""Report figures for notebooks: objects that display inline (`_repr_html_`) and can be saved.

Each object carries what it needs: an attention figure includes the circuitsvis bundle itself
(a notebook cell is its own page), so it works offline and in a saved notebook too.

Example:
    >>> import interp
    >>> from interp.report import figures
    >>> fig = figures.attention(interp.load("zoo-2l"), "When Mary and John went")
    >>> html = fig._repr_html_()
    >>> html.count("var CircuitsVis="), "AttentionHeads" in html
    (1, True)
    >>> fig.table.columns.tolist()[:4]
    ['layer', 'head', 'query', 'key']
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interp.report import plots, sections, tables
from interp.report.bundle import bundle_tag
from interp.report.html import PICKER, Section, esc, figure, page


@dataclass
class Figure:
    """HTML that Jupyter shows inline, with the table it was drawn from."""

    html: str
    title: str
    table: pd.DataFrame | None = None

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path: str | Path) -> str:
        """Write the figure as a self-contained page (atomically)."""
        from interp.report.write import atomic_file

        body = self.html.replace(bundle_tag(), "")
        return str(atomic_file(path, page(self.title, "", "", [Section("figure", self.title, body)], bundle_tag())))


def _model(model):
    """A model from `interp.load`, for a name, a path or a bridge booted by hand (gets `.info`)."""
    from interp.models import load

    return load(model)


def attention(model, prompt: str, layer: int | None = None) -> Figure:
    """Interactive attention patterns of every head (one layer, or all with a layer picker)."""
    from interp.errors import check_range

    model = _model(model)
    acts = tables.run(model, prompt)
    df = tables.attention_table(model, acts)
    if layer is not None:
        df = df[df["layer"] == check_range("layer", layer, model.cfg.n_layers, model.info.name)]
    views, note = sections.attention_views(df, acts.tokens[0], tables.is_causal(model),
                                           prefix=f"attn-{uuid.uuid4().hex[:8]}")
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    return Figure(f"{bundle_tag()}{PICKER}{note_html}{views}", f"Attention: {prompt}", df.reset_index(drop=True))


def predictions(model, prompt: str, k: int = 10) -> Figure:
    """Top-k next-token probabilities at the final position (bar chart)."""
    model = _model(model)
    acts = tables.run(model, prompt)
    df = tables.predictions_table(model, acts, k=k)
    last = df[df["pos"] == df["pos"].max()]
    svg = plots.bars(last, "candidate", "prob", f"next token after {acts.tokens[0][-1]!r}", "probability")
    return Figure(figure(svg, f"Top {k} next tokens."), f"Predictions: {prompt}", df)


def heatmap(df: pd.DataFrame, row: str, col: str, value: str, title: str) -> Figure:
    """Any tidy table as a `row` x `col` heatmap of `value` (e.g. an ablation sweep: layer x head)."""
    return Figure(figure(plots.heatmap(df, row, col, value, title), title), title, df)
