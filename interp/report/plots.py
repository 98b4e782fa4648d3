"""Figures drawn with matplotlib from tidy tables, returned as inline SVG text.

Each function takes a DataFrame (as read back from the report's CSV) and column names, and
returns an `<svg>` string with text kept as text. No pyplot: figures never touch global state.

Readable by default: titles wrap to the figure's width (never clipped), colour bars carry a label
with units (`UNITS` names the usual columns), probability axes are logarithmic when the values
span orders of magnitude, integer axes (layers, positions) have integer ticks, and heatmap cells
are annotated only when they are big enough for their number (one fixed number of decimals per
figure, so no label runs into the next).

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
import math
import textwrap

import pandas as pd

_STYLE = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


# Colour bar and axis labels for the usual column names, with units.
UNITS = {"delta": "change in metric (ablated − clean)", "relative": "relative change (delta / |clean|)",
         "prob": "probability", "logprob": "log-probability (nats)", "logit": "logit",
         "future_mass": "attention mass on future keys (0–1)", "js": "JS divergence (bits)",
         "weight": "attention weight (0–1)", "attention": "attention weight (0–1)",
         "score": "head score (0–1)", "normalised": "patching effect (0 = corrupted, 1 = clean)",
         "dla": "direct logit attribution (logits)", "loss": "loss (nats)", "entropy_nats": "entropy (nats)",
         "target_prob": "target probability", "mean_prob": "mean probability"}
_TITLE_CHARS_PER_INCH = 13  # 9-pt sans text: about 13 characters to the inch


def unit(column: str, given: str = "") -> str:
    """The label for `column`: `given` if set, else its entry in `UNITS`, else the column name."""
    return given or UNITS.get(column, column)


def _title(ax, fig, title: str) -> None:
    """A title wrapped to the figure's width (`_fit_titles` narrows it further if need be)."""
    ax.set_title(textwrap.fill(title, max(16, int(fig.get_figwidth() * _TITLE_CHARS_PER_INCH))))
    ax.title.set_gid("title")
    ax._interp_title = title


def _fit_titles(fig) -> None:
    """Rewrap each axes title until, laid out, it lies inside the figure with a 3% margin (a
    title is centred on its axes, which a colour bar pushes left, so the figure width is not
    enough to go by)."""
    for ax in fig.axes:
        title = getattr(ax, "_interp_title", None)
        if not title:
            continue
        chars = max(16, int(fig.get_figwidth() * _TITLE_CHARS_PER_INCH))
        for _ in range(6):
            fig.draw_without_rendering()
            box, w = ax.title.get_window_extent(), fig.bbox.width
            if box.x0 >= 0.03 * w and box.x1 <= 0.97 * w or chars <= 12:
                break
            centre = (box.x0 + box.x1) / 2
            room = 2 * min(centre - 0.03 * w, 0.97 * w - centre)  # widest line centred there
            chars = max(12, min(chars - 1, int(chars * room / box.width * 0.95)))
            ax.set_title(textwrap.fill(title, chars))


def _integer_ticks(axis, values) -> None:
    """Integer tick marks on an axis whose values are all whole numbers (layers, positions)."""
    from matplotlib.ticker import MaxNLocator

    vals = pd.to_numeric(pd.Series(values), errors="coerce")
    if vals.notna().all() and (vals % 1 == 0).all():
        axis.set_major_locator(MaxNLocator(integer=True))


def _wants_log(column: str, values, log: bool | None) -> bool:
    """Log scale when asked, or for a probability column that spans two orders of magnitude."""
    if log is not None:
        return log
    vals = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return "prob" in column and len(vals) > 0 and bool((vals > 0).all()) and vals.max() / vals.min() >= 100


def _decimals(lim: float) -> int:
    """Decimals for every annotation of a grid whose largest |value| is `lim` (3 significant)."""
    return 0 if lim >= 100 else max(0, min(3, 2 - math.floor(math.log10(lim)))) if lim > 0 else 2


def _number(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


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

    _fit_titles(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": "interp"}):  # stable ids: same data, same bytes
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def bars(df: pd.DataFrame, label: str, value: str, title: str, xlabel: str = "", logx: bool | None = None) -> str:
    """Horizontal bars of `value` per `label`, first row on top, each labelled with its value
    just past the bar's end (left of a negative bar); a log axis for probabilities that span
    two orders of magnitude (or `logx=True`)."""
    fig, ax = _new(5.2, 0.3 * len(df) + 0.9)
    labels = [repr(str(t))[1:-1] for t in df[label]]
    ax.barh(range(len(df)), df[value], color="#2456b3")
    ax.set_yticks(range(len(df)), labels)
    ax.invert_yaxis()
    if _wants_log(value, df[value], logx):
        ax.set_xscale("log")
    for i, v in enumerate(df[value]):
        ax.annotate(f"{v:.3g}", (v, i), xytext=(4 if v >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if v >= 0 else "right", va="center", fontsize=8)
    ax.margins(x=0.18)
    ax.set_xlabel(unit(value, xlabel))
    _title(ax, fig, title)
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
    under = 0.065 * max(map(len, col_labels)) if col_labels else 0.0  # room for rotated column labels
    fig, ax = _new(min(max(3.4, 1.9 + 0.48 * vals.shape[1]), 11),
                   min(max(2.2, 1.3 + 0.34 * vals.shape[0]) + under + (0.6 if vals.shape[0] <= 4 else 0), 9))
    kw = dict(cmap="RdBu_r", vmin=-lim, vmax=lim) if signed else dict(cmap="viridis")
    im = ax.imshow(vals, aspect="auto", **kw)
    ax.set_xticks(range(vals.shape[1]), col_labels or [_lab(c) for c in grid.columns],
                  rotation=90 if col_labels else 0)
    ax.set_yticks(range(vals.shape[0]), row_labels or [_lab(r) for r in grid.index])
    ax.set_xlabel(col)
    ax.set_ylabel(row)
    text = df.pivot_table(index=row, columns=col, values=labels, aggfunc="first", sort=False) \
        .reindex(index=grid.index, columns=grid.columns) if labels else None
    flat = vals.shape[0] <= 4  # too short for an upright colour bar and its label: lay it under the grid
    fig.colorbar(im, ax=ax, shrink=0.6 if flat else 0.8, aspect=30 if flat else 20, label=unit(value, cbar),
                 orientation="horizontal" if flat else "vertical", location="bottom" if flat else "right")
    _title(ax, fig, title)
    _annotate(ax, fig, vals, text, signed, lim)
    return _svg(fig)


def _annotate(ax, fig, vals, text, signed: bool, lim: float) -> None:
    """Numbers (or `text`) in the cells, only when a cell is wide enough for its label at 7 pt."""
    import numpy as np

    decimals = _decimals(lim)
    label = (lambda i, j, v: str(text.iat[i, j]).strip()[:8]) if text is not None else \
        (lambda i, j, v: _number(v, decimals))
    cells = [(i, j, v, label(i, j, v)) for (i, j), v in np.ndenumerate(vals) if not np.isnan(v)]
    if not cells:
        return
    longest = max(len(c[3]) for c in cells)
    fig.draw_without_rendering()  # the layout, to measure the grid's cells
    box = ax.get_window_extent()
    cell_w, cell_h = (72 / fig.dpi * box.width / vals.shape[1], 72 / fig.dpi * box.height / vals.shape[0])  # pt
    if cell_w < 4.6 * longest + 4 or cell_h < 9:
        return
    lo, hi = np.nanmin(vals), np.nanmax(vals)
    for i, j, v, t in cells:
        dark = (abs(v) > 0.6 * lim) if signed else (v < lo + 0.6 * (hi - lo))
        ax.text(j, i, t, ha="center", va="center", fontsize=7, color="white" if dark else "black")


def lines(df: pd.DataFrame, x: str, y: str, title: str, hue: str | None = None, logx: bool = False,
          logy: bool | None = None, ylabel: str = "") -> str:
    """`y` against `x`, one line per `hue` value; a log `y` axis for probabilities that span two
    orders of magnitude (or `logy=True`); integer ticks when `x` is whole numbers (layers)."""
    fig, ax = _new(5.2, 3.2)
    groups = df.groupby(hue, sort=False) if hue else [("", df)]
    for name, g in groups:
        ax.plot(g[x], g[y], marker="o", markersize=3, label=str(name) if hue else None)
    if logx:
        ax.set_xscale("log")
    else:
        _integer_ticks(ax.xaxis, df[x])
    if _wants_log(y, df[y], logy):
        ax.set_yscale("log")
    if hue:
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(x)
    ax.set_ylabel(unit(y, ylabel))
    _title(ax, fig, title)
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
    _title(ax, fig, title)
    return _svg(fig)
