"""Direct logit attribution (heads as a layer x head heatmap, other parts as bars) and the logit
lens (layer x position heatmap), from `interp.attribution`.

Example:
    >>> import pandas as pd
    >>> from interp.report.parts.attribution import dla_section
    >>> df = pd.DataFrame({"component": ["embed", "L0H0", "L0H1", "bias"], "layer": [None, 0, 0, None],
    ...                    "head": [None, 0, 1, None], "kind": ["embed", "head", "head", "bias"],
    ...                    "value": [0.1, 2.0, -0.5, 0.2]})
    >>> "L0H0" in dla_section({"dla": df}).summary
    True
"""

from __future__ import annotations

import pandas as pd

from interp.report import plots
from interp.report.html import Section, esc, figure, table

KEY, TITLE, MODULE = "attribution", "Direct logit attribution and the logit lens", "interp.attribution"
_MAX_LENS_POS = 24  # logit lens positions shown (the last ones)


def _target(model, prompt: str, target: str | None) -> str:
    """The given target, or the model's own top next token."""
    from interp.report import tables

    acts = tables.run(model, prompt)
    return target if target is not None else tables.predictions_table(model, acts, k=1)["candidate"].iloc[-1]


def compute(model, prompt: str, target: str | None, foil: str | None, seed: int) -> dict:
    """dla: one row per component; logit_lens: top token and target prob per layer and position."""
    from interp.activations import to_tokens
    from interp.attribution import attribute, logit_lens

    target = _target(model, prompt, target)
    dla = attribute(model, prompt, target=target, foil=foil)
    dla = dla.assign(target=target, foil=foil if foil is not None else "")
    n = len(to_tokens(model, prompt)[1][0])
    lens = logit_lens(model, prompt, target=target, k=1, pos=None)  # every position, one forward
    lens = lens[lens["pos"] >= max(0, n - _MAX_LENS_POS)].reset_index(drop=True).drop(columns=["prompt"])
    return {"dla": dla.drop(columns=["prompt"]), "logit_lens": lens}


def dla_section(t: dict) -> Section:
    """Heads' shares as a heatmap; embeddings, biases and MLPs as bars; the largest in words."""
    df = t["dla"]
    what = "logit"
    if "target" in df and len(df):
        tgt, foil = df["target"].iloc[0], df["foil"].iloc[0]
        what = f"logit({tgt!r}) − logit({foil!r})" if foil else f"logit({tgt!r})"
    heads = df[df["kind"] == "head"]
    body = f'<p class="lead">How much each component writes directly to {esc(what)} at the final position.</p>'
    if len(heads):
        svg = plots.heatmap(heads, "layer", "head", "value", f"head contributions to {what}", center=True,
                            cbar="direct contribution (logits)")
        body += figure(svg, "Each head's direct contribution (red raises the target, blue lowers it).")
    rest = df[df["kind"] != "head"]
    if len(rest):
        body += figure(plots.bars(rest, "component", "value", "embeddings, biases and MLPs", f"{what} (logits)"),
                       "Direct contributions of the parts that are not heads.")
    top = df.reindex(df["value"].abs().sort_values(ascending=False).index).head(10)
    body += "<h3>Largest contributions</h3>" + table(top[["component", "kind", "value"]])
    summary = (f"Direct logit attribution of {what} (sum {df['value'].sum():.3f}); largest parts: "
               + ", ".join(f"{r.component} {r.value:+.3f}" for r in top.head(5).itertuples()) + ".")
    return Section("dla", "Direct logit attribution", body, summary)


def lens_section(t: dict) -> Section:
    """Layer x position heatmap of the target's probability, each cell labelled with the top token."""
    df = t["logit_lens"]
    df = df[df["rank"] == 1]
    tgt = df["target"].iloc[0] if "target" in df and len(df) else None
    value = "target_prob" if tgt is not None else "prob"
    svg = plots.heatmap(df, "layer", "pos", value, f"logit lens: p({tgt!r})" if tgt else "logit lens: top-1 prob",
                        labels="token", center=False, cbar=f"p({tgt!r})" if tgt else "top-1 probability")
    body = ('<p class="lead">The residual stream read through the final LayerNorm and unembedding after the '
            "embeddings (layer 0) and after each block (layer L+1 = after block L).</p>")
    body += figure(svg, f"Colour: probability of {tgt!r} read from each layer at each position; text: the "
                        "top token there. The last row is the model's output.")
    last = df[df["pos"] == df["pos"].max()].sort_values("layer")
    body += "<h3>Final position, layer by layer</h3>" + table(last[[c for c in ("layer", "token", "prob", "target_rank",
                                                                                  "target_prob") if c in last]])
    layers = last[last["token"] == last["token"].iloc[-1]]["layer"].tolist()
    summary = (f"Logit lens at the final position: the output token {last['token'].iloc[-1]!r} is the top "
               f"prediction at lens layers {layers}; {'p(' + repr(tgt) + ')' if tgt else 'top-1 prob'} by layer "
               "(0 = embeddings): " + ", ".join(f"{v:.3g}" for v in last[value]) + ".")
    return Section("logit-lens", "Logit lens", body, summary)


def section(t: dict) -> list[Section]:
    return [dla_section(t), lens_section(t)]
