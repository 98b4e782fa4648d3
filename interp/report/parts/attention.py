"""Attention with and without the causal mask, from `interp.attention`: per-head future mass and
JS divergence, one head's two patterns side by side, and the loss with the mask removed.

Example:
    >>> import pandas as pd
    >>> from interp.report.parts.attention import pick_head
    >>> pick_head(pd.DataFrame({"layer": [0, 1], "head": [0, 0], "future_mass": [0.1, 0.4], "js": [0.2, 0.3]}))
    (1, 0)
"""

from __future__ import annotations

import pandas as pd

from interp.errors import InterpError
from interp.report import plots
from interp.report.bundle import render_call
from interp.report.html import Section, esc, figure, table

KEY, TITLE, MODULE = "mask", "Attention with vs without the causal mask", "interp.attention"


def pick_head(heads: pd.DataFrame) -> tuple[int, int]:
    """The head whose pattern changes most without the mask (largest mean JS divergence)."""
    r = heads.loc[heads["js"].idxmax()]
    return int(r["layer"]), int(r["head"])


def compute(model, prompt: str, target, foil, seed: int, layer: int | None = None, head: int | None = None) -> dict:
    """mask_heads: future mass and JS per head; mask_pattern: the chosen head's two patterns;
    mask_removal: next-token loss on the prompt with the mask removed per layer and in all."""
    from interp.attention import head_table, mask_removal_effect, pattern_table, patterns

    if not model.cfg.n_layers:
        raise InterpError("the model has no layers")
    pats = patterns(model, prompt)
    heads = head_table(pats)
    if layer is None or head is None:
        layer, head = pick_head(heads)
    out = {"mask_heads": heads, "mask_pattern": pattern_table(pats, layer, head)}
    if pats.causal:
        out["mask_removal"] = mask_removal_effect(model, prompt)
    return out


def _pair_view(pat: pd.DataFrame) -> str:
    import numpy as np

    n = int(pat["query"].max()) + 1
    tokens = pat[pat["query"] == 0].sort_values("key")["key_token"].tolist()
    arrs = [np.round(pat.pivot(index="query", columns="key", values=c).to_numpy(), 3).tolist()
            for c in ("masked", "unmasked")]
    L, H = int(pat["layer"].iloc[0]), int(pat["head"].iloc[0])
    assert len(tokens) == n
    return render_call("AttentionHeads", {"attention": arrs, "tokens": tokens, "maskUpperTri": False,
                                          "attentionHeadNames": [f"L{L}H{H} masked", f"L{L}H{H} unmasked"]},
                       f"mask-L{L}H{H}")


def section(t: dict) -> Section:
    heads, pat = t["mask_heads"], t["mask_pattern"]
    L, H = int(pat["layer"].iloc[0]), int(pat["head"].iloc[0])
    body = ('<p class="lead">Each head\'s scores q·k/√d recomputed with no causal mask: how much attention '
            "would go to future tokens, and how far the pattern moves (Jensen-Shannon divergence, bits).</p>")
    body += '<div class="grid">' + figure(plots.heatmap(heads, "layer", "head", "future_mass", "future mass (unmasked)"),
                                          "Mean unmasked attention mass on future keys, per head.")
    body += figure(plots.heatmap(heads, "layer", "head", "js", "JS(masked, unmasked), bits"),
                   "Mean JS divergence between each head's masked and unmasked rows.") + "</div>"
    body += f"<h3>Head L{L}H{H}: masked vs unmasked (click a view)</h3>" + _pair_view(pat)
    fm = heads.loc[heads["future_mass"].idxmax()]
    words = (f"Without the mask, L{int(fm['layer'])}H{int(fm['head'])} would put {fm['future_mass']:.2f} of its "
             f"attention on future tokens (largest); L{L}H{H} changes most (JS {heads['js'].max():.3f} bits).")
    if "mask_removal" in t:
        rm = t["mask_removal"]
        body += "<h3>Next-token loss on the prompt with the mask removed</h3>" + table(rm)
        words += " Loss with the mask removed: " + ", ".join(f"{r.removed}: {r.loss:.3f}" for r in rm.itertuples()) + " nats."
    return Section(KEY, TITLE, body + f"<p>{esc(words)}</p>", words)


def page_sections(model, prompt: str, layer: int | None, head: int | None) -> list[Section]:
    """The comparison for the attention page (tables not written to disk)."""
    return [section(compute(model, prompt, None, None, 0, layer, head))]
