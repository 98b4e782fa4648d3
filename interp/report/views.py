"""Notebook views drawn from tidy tables: attention, direct logit attribution, head sweeps, the
logit lens and activation patching. Each takes the DataFrame an analysis returned (or, for
attention, the patterns of any run) and returns an `interp.report.notebook.View`.

Example:
    >>> import pandas as pd
    >>> from interp.report.views import sweep_view
    >>> df = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "clean": 2.0,
    ...                    "ablated": [1.0, 2.0, 2.5, 2.0], "delta": [-1.0, 0.0, 0.5, 0.0]})
    >>> v = sweep_view(df)
    >>> print(repr(v))
    Sweep: 2 layers x 2 heads, clean 2; largest changes L0H0 -1, L1H0 +0.5, L0H1 0
    >>> v._repr_html_().startswith("<figure><svg")
    True
"""

from __future__ import annotations

import pandas as pd

from interp.errors import InterpError
from interp.report import plots, sections
from interp.report.html import esc, figure, table
from interp.report.notebook import View


def _need(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InterpError(f"{what} takes a DataFrame, not {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InterpError(f"{what} table lacks column(s) {', '.join(missing)}: pass the DataFrame the analysis returned")


def _tokens(tokens: list[str], n: int = 8) -> str:
    shown = ", ".join(repr(t) for t in tokens[:n])
    return f"[{shown}{', ...' if len(tokens) > n else ''}]"


def _head(layer, head) -> str:
    return f"L{int(layer)}H{int(head)}"


def attention_view(attn: pd.DataFrame, tokens: list[str], causal: bool, title: str) -> View:
    """Interactive circuitsvis patterns (a layer picker) from a long attention table
    (layer, head, query, key, value)."""
    import uuid

    _need(attn, ("layer", "head", "query", "key", "value"), "attention")
    views, note = sections.attention_views(attn, tokens, causal, prefix=f"attn-{uuid.uuid4().hex[:8]}", packed=True)
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    layers = sorted(int(x) for x in attn["layer"].unique())
    summary = (f"Attention: layers {layers[0]}-{layers[-1]} x {attn['head'].nunique()} heads, "
               f"{len(tokens)} tokens {_tokens(tokens)}")
    return View(title, note_html + views, attn.reset_index(drop=True), interactive=True, summary=summary)


def dla_view(df: pd.DataFrame, top: int = 12) -> View:
    """Per-head shares (layer x head heatmap) and the largest other components (bars), from
    `interp.attribution.attribute`'s table (the mean over prompts)."""
    _need(df, ("component", "layer", "head", "kind", "value"), "direct logit attribution")
    mean = df.groupby(["component", "kind"], sort=False, dropna=False)[["layer", "head", "value"]].agg(
        {"layer": "first", "head": "first", "value": "mean"}).reset_index()
    heads = mean[mean["kind"] == "head"].astype({"layer": int, "head": int})
    rest = mean[mean["kind"] != "head"]
    rest = rest.reindex(rest["value"].abs().sort_values(ascending=False).index).head(top)
    body = ""
    if len(heads):
        body += figure(plots.heatmap(heads, "layer", "head", "value", "direct logit attribution per head",
                                     center=True, cbar="share of the logit (logits)"),
                       "Each head's exact share of the target's logit (difference), mean over prompts.")
    body += figure(plots.bars(rest, "component", "value", "embeddings, biases and MLPs", "share of the logit (logits)"),
                   f"The {len(rest)} largest other components.")
    model_value = df.attrs.get("model_value")
    best = mean.reindex(mean["value"].abs().sort_values(ascending=False).index).head(4)
    summary = (f"DLA: {len(mean)} components, {df['prompt'].nunique() if 'prompt' in df else 1} prompt(s)"
               + (f", model value {sum(model_value) / len(model_value):.3g}" if model_value else "")
               + "; largest " + ", ".join(f"{r.component} {r.value:+.3g}" for r in best.itertuples()))
    return View("Direct logit attribution", body, df, summary=summary)


def sweep_view(df: pd.DataFrame, value: str = "delta") -> View:
    """A head sweep (`interp.ablation.sweep`) as a layer x head heatmap of `value`."""
    _need(df, ("layer", "head", value), "sweep")
    grid = df.groupby(["layer", "head"], as_index=False)[value].mean()
    svg = plots.heatmap(grid, "layer", "head", value, f"{value} when each head is ablated", center=True)
    order = grid.reindex(grid[value].abs().sort_values(ascending=False).index).head(3)
    clean = f", clean {df['clean'].mean():.3g}" if "clean" in df else ""
    summary = (f"Sweep: {grid['layer'].nunique()} layers x {grid['head'].nunique()} heads{clean}; largest changes "
               + ", ".join(f"{_head(r.layer, r.head)} {_signed(getattr(r, value))}" for r in order.itertuples()))
    return View("Head sweep", figure(svg, f"Mean {value} per head (ablated − clean)."), df, summary=summary)


def _signed(v: float) -> str:
    return "0" if v == 0 else f"{v:+.3g}"


def lens_view(df: pd.DataFrame) -> View:
    """The logit lens (`interp.attribution.logit_lens`): the top token after every layer, and the
    target's probability on a log axis when the table follows one."""
    _need(df, ("layer", "pos", "rank", "token", "prob"), "logit lens")
    first = df[df["prompt"] == df["prompt"].min()] if "prompt" in df else df
    top1 = first[first["rank"] == 1]
    if top1["pos"].nunique() > 1:
        svg = plots.heatmap(top1, "layer", "pos", "prob", "logit lens: top-1 token after each layer", labels="token",
                            cbar="top-1 probability")
    else:
        svg = plots.heatmap(first, "layer", "rank", "prob", "logit lens: top tokens after each layer", labels="token",
                            cbar="probability")
    body = figure(svg, "Rows: the residual stream after the embeddings (0) and after each block (L + 1).")
    if "target_prob" in first:
        last = first[first["pos"] == first["pos"].max()]
        tp = last.groupby("layer", as_index=False)[["target_prob", "target_rank"]].first()
        tgt, at = last["target"].iloc[0], int(last["pos"].iloc[0])
        body += figure(plots.lines(tp, "layer", "target_prob", f"p({tgt!r}) after each layer at position {at}",
                                   logy=True),
                       f"Probability of {tgt!r} read from each layer (log axis).")
    at = top1[top1["pos"] == top1["pos"].max()].sort_values("layer")
    summary = (f"Logit lens: {len(at)} layers, {top1['pos'].nunique()} position(s); top-1 per layer at pos "
               f"{int(at['pos'].iloc[0])} {_tokens(at['token'].tolist(), 12)}; final p={at['prob'].iloc[-1]:.3g}")
    return View("Logit lens", body, df, summary=summary)


def patching_view(df: pd.DataFrame, value: str | None = None) -> View:
    """Activation patching results (`interp.patching.activation_patch`, or any tidy table with
    layer, head and/or pos and `normalised`: 0 = the corrupted run, 1 = the clean run; or the
    `value` given): one layer x head and/or layer x position heatmap per component patched."""
    value = value or next((c for c in ("normalised", "normalized", "value", "delta") if c in df), "normalised")
    _need(df, ("layer", value), "patching")
    keys = [c for c in ("component", "direction", "method") if c in df.columns]
    groups = list(df.groupby(keys, sort=False)) if keys else [((), df)]
    body, sites = "", set()
    for name, g in groups:
        by = [c for c in ("head", "pos") if c in g.columns and g[c].notna().any()]
        if not by:
            raise InterpError("patching table needs a head or pos column next to layer (one row per patched site)")
        sites.update(by)
        label = " ".join(str(x) for x in (name if isinstance(name, tuple) else (name,)))
        body += "".join(_patch_map(g, c, value, label, len(by) > 1) for c in by)
    best = df.iloc[df[value].abs().to_numpy().argsort(kind="stable")[::-1][:3]]
    summary = (f"Patching: {len(df)} rows over layer x {' x '.join(sorted(sites))}"
               + (f" ({', '.join(map(str, df['component'].unique()))})" if "component" in df else "")
               + f"; largest {value} " + ", ".join(f"{_site(r)} {r[value]:+.3g}" for _, r in best.iterrows()))
    shown = [c for c in ("component", "layer", "head", "pos", "token", value) if c in df.columns and best[c].notna().any()]
    return View("Activation patching", body + table(best[shown], 10), df, summary=summary)


def _patch_map(g: pd.DataFrame, c: str, value: str, label: str, averaged: bool) -> str:
    """One heatmap of `value` per layer and `c` (head or pos; positions labelled with tokens)."""
    g = g[g[c].notna()].astype({c: int})
    grid = g.groupby(["layer", c], as_index=False, sort=True)[value].mean()
    cols = None
    if c == "pos" and "token" in g.columns:
        first = g.drop_duplicates("pos").sort_values("pos")
        cols = [f"{p} {repr(str(t))[1:-1]}" for p, t in zip(first["pos"], first["token"])]
        grid = grid.sort_values(["pos", "layer"])
    title = f"{label}: patching effect per layer and {c}".lstrip(": ") + (" (mean over the other)" if averaged else "")
    svg = plots.heatmap(grid, "layer", c, value, title, center=True, cbar=plots.unit(value), col_labels=cols)
    return figure(svg, f"Mean {value} per layer and {c}.")


def _site(r) -> str:
    parts = [f"L{int(r['layer'])}"] + [f"{c[0].upper()}{int(r[c])}" for c in ("head", "pos")
                                        if c in r and not pd.isna(r[c])]
    return "".join(parts)
