"""The head-ablation heatmap (layer x head), from `interp.ablation.sweep` (zero ablation).

Example:
    >>> import pandas as pd
    >>> from interp.report.parts.ablation import section
    >>> df = pd.DataFrame({"layer": [0, 0], "head": [0, 1], "clean": [2.0, 2.0], "ablated": [1.0, 2.1],
    ...                    "delta": [-1.0, 0.1], "relative": [-0.5, 0.05], "metric": ["logit diff", "logit diff"]})
    >>> "L0H0" in section({"ablation": df}).summary
    True
"""

from __future__ import annotations

from interp.report import plots
from interp.report.html import Section, esc, figure, table

KEY, TITLE, MODULE = "ablation", "Head ablation", "interp.ablation"


def compute(model, prompt: str, target, foil, seed: int) -> dict:
    """ablation: clean and zero-ablated metric per head (logit difference with a target and foil,
    else the mean next-token loss on the prompt)."""
    from interp.ablation import sweep

    df = sweep(model, prompt, target, foil, mode="zero", seed=seed)
    what = f"logit diff {target!r} − {foil!r}" if foil is not None else "next-token loss"
    return {"ablation": df.assign(metric=what)}


def section(t: dict) -> Section:
    df = t["ablation"]
    what = df["metric"].iloc[0] if "metric" in df and len(df) else "metric"
    svg = plots.heatmap(df, "layer", "head", "delta", f"change in {what} when a head is zeroed", center=True,
                        cbar=f"Δ {what} ({'nats' if 'loss' in what else 'logits'}, ablated − clean)")
    body = (f'<p class="lead">Each head\'s output (hook_z) set to zero, one head at a time; the table gives the '
            f"metric ({esc(what)}) clean and ablated.</p>")
    body += figure(svg, f"delta = ablated − clean for every head (clean {df['clean'].iloc[0]:.3f}); blue: the head "
                        "was helping a metric that the ablation lowers.")
    top = df.reindex(df["delta"].abs().sort_values(ascending=False).index).head(10)
    body += "<h3>Heads that matter most</h3>" + table(top[["layer", "head", "clean", "ablated", "delta"]])
    words = (f"Zero-ablating single heads, {what} (clean {df['clean'].iloc[0]:.3f}) changes most for: "
             + ", ".join(f"L{int(r.layer)}H{int(r.head)} {r.delta:+.3f}" for r in top.head(5).itertuples()) + ".")
    return Section(KEY, TITLE, body + f"<p>{esc(words)}</p>", words)
