"""Figures drawn with matplotlib from tidy tables, returned as inline SVG text.

Each function takes a DataFrame (as read back from the report's CSV) and column names, and
returns an `<svg>` string with text kept as text. No pyplot: figures never touch global state.

Example:
    >>> import pandas as pd
    >>> from interp.report.plots import heatmap
    >>> df = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "delta": [0.1, -0.2, 0.0, 1.5]})
    >>> svg = heatmap(df, "layer", "head", "delta", title="ablation")
    >>> svg.startswith("<svg") and "ablation" in svg
    True
"""

from __future__ import annotations

import io

import pandas as pd

_STYLE = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def _lab(v) -> str:
    """A tick label: 3.0 -> '3' (integer columns read back from a CSV with gaps become floats)."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _new(width: float, height: float):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
        return fig, fig.add_subplot()


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": "interp"}):  # stable ids: same data, same bytes
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def bars(df: pd.DataFrame, label: str, value: str, title: str, xlabel: str = "") -> str:
    """Horizontal bars of `value` per `label`, first row on top."""
    fig, ax = _new(5.2, 0.3 * len(df) + 0.9)
    labels = [repr(str(t))[1:-1] for t in df[label]]
    ax.barh(range(len(df)), df[value], color="#2456b3")
    ax.set_yticks(range(len(df)), labels)
    ax.invert_yaxis()
    for i, v in enumerate(df[value]):
        ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
    ax.set_xlabel(xlabel or value)
    ax.set_title(title)
    return _svg(fig)


def heatmap(df: pd.DataFrame, row: str, col: str, value: str, title: str, center: bool | None = None,
            row_labels: list[str] | None = None, col_labels: list[str] | None = None, cbar: str = "",
            labels: str | None = None) -> str:
    """A `row` x `col` grid of `value` (mean over duplicates), annotated when small.

    A diverging colour map centred on 0 is used when values have both signs (or `center=True`).
    With `labels`, each cell shows that column's text (e.g. the top token) instead of the value.
    """
    grid = df.pivot_table(index=row, columns=col, values=value, aggfunc="mean", sort=False)
    grid = grid.reindex(sorted(grid.index)) if row_labels is None else grid
    grid = grid[sorted(grid.columns)] if col_labels is None else grid
    vals = grid.to_numpy(dtype=float)
    signed = center if center is not None else bool((vals < 0).any() and (vals > 0).any())
    lim = float(abs(pd.DataFrame(vals).abs().max().max())) or 1.0
    fig, ax = _new(min(1.2 + 0.42 * vals.shape[1], 11), min(1.3 + 0.36 * vals.shape[0], 9))
    kw = dict(cmap="RdBu_r", vmin=-lim, vmax=lim) if signed else dict(cmap="viridis")
    im = ax.imshow(vals, aspect="auto", **kw)
    ax.set_xticks(range(vals.shape[1]), col_labels or [_lab(c) for c in grid.columns],
                  rotation=90 if col_labels else 0)
    ax.set_yticks(range(vals.shape[0]), row_labels or [_lab(r) for r in grid.index])
    ax.set_xlabel(col)
    ax.set_ylabel(row)
    text = df.pivot_table(index=row, columns=col, values=labels, aggfunc="first", sort=False) \
        .reindex(index=grid.index, columns=grid.columns) if labels else None
    if vals.size <= 400:
        for (i, j), v in pd.DataFrame(vals).stack().items():
            dark = (abs(v) > 0.6 * lim) if signed else (v < vals.min() + 0.6 * (vals.max() - vals.min()))
            ax.text(j, i, str(text.iat[i, j]).strip()[:8] if labels else f"{v:.2g}", ha="center", va="center",
                    fontsize=6 if labels else 7, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label=cbar or value)
    ax.set_title(title)
    return _svg(fig)


def lines(df: pd.DataFrame, x: str, y: str, title: str, hue: str | None = None, logx: bool = False) -> str:
    """`y` against `x`, one line per `hue` value."""
    fig, ax = _new(5.2, 3.2)
    groups = df.groupby(hue, sort=False) if hue else [("", df)]
    for name, g in groups:
        ax.plot(g[x], g[y], marker="o", markersize=3, label=str(name) if hue else None)
    if logx:
        ax.set_xscale("log")
    if hue:
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    return _svg(fig)


def scatter(df: pd.DataFrame, x: str, y: str, label: str, title: str, hue: str | None = None) -> str:
    """Labelled points (e.g. words projected on two directions)."""
    fig, ax = _new(5.6, 4.2)
    groups = df.groupby(hue, sort=False) if hue else [("", df)]
    for name, g in groups:
        ax.scatter(g[x], g[y], s=18, label=str(name) if hue else None)
        for _, r in g.iterrows():
            ax.annotate(str(r[label]), (r[x], r[y]), fontsize=7, xytext=(3, 2), textcoords="offset points")
    if hue:
        ax.legend(fontsize=7, frameon=False)
    ax.axhline(0, color="#ccc", lw=0.6)
    ax.axvline(0, color="#ccc", lw=0.6)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    return _svg(fig)
