"""Report sections: each is a small function from tidy tables to a `Section` (HTML + words).

Sections take DataFrames as read back from the report's CSVs, draw their figures from them
(`plots`), and say the finding in words for README.md (`Section.summary`).

Example:
    >>> import pandas as pd
    >>> from interp.report.sections import tokens_section
    >>> toks = pd.DataFrame({"pos": [0, 1], "token": ["<|endoftext|>", " Hi"]})
    >>> preds = pd.DataFrame({"pos": [1, 1], "token": [" Hi", " Hi"], "rank": [1, 2],
    ...                       "candidate": [" there", " you"], "prob": [0.7, 0.2], "logprob": [-0.36, -1.6]})
    >>> s = tokens_section(toks, preds)
    >>> s.id, "there" in s.summary
    ('tokens', True)
"""

from __future__ import annotations

import pandas as pd

from interp.report import plots
from interp.report.bundle import deferred_call, packed_attention
from interp.report.html import Section, esc, figure, picker, table, tokens_strip

_BUDGET = 1_400_000  # bytes of attention JSON per page (the bundle adds 1.3 MB)


def tokens_section(tokens: pd.DataFrame, preds: pd.DataFrame, target_foil: pd.DataFrame | None = None,
                   note: str = "") -> Section:
    """The tokens that ran, the top next-token predictions, and target vs foil if given."""
    toks = tokens["token"].tolist()
    body = f'<p class="lead">The prompt ran as {len(toks)} tokens (position below each).</p>{tokens_strip(toks)}'
    if note:
        return Section("tokens", "Tokens and next-token predictions", body + f'<p class="note">{esc(note)}</p>',
                       f"{len(toks)} tokens: {toks}. {note}")
    last = preds[preds["pos"] == preds["pos"].max()].sort_values("rank")
    svg = plots.bars(last, "candidate", "prob", f"next token after {toks[-1]!r}", "probability")
    body += figure(svg, f"Top {len(last)} next-token probabilities at the final position ({len(toks) - 1}).")
    top1 = preds[preds["rank"] == 1][["pos", "token", "candidate", "prob"]].rename(
        columns={"candidate": "top next token", "prob": "p"})
    body += "<h3>Most likely next token after every position</h3>" + table(top1)
    best = last.iloc[0]
    summary = (f"The prompt ran as {len(toks)} tokens. The most likely next token is {best['candidate']!r} "
               f"(p = {best['prob']:.3f}); then " +
               ", ".join(f"{r.candidate!r} ({r.prob:.3g})" for r in last.iloc[1:4].itertuples()) + ".")
    if target_foil is not None:
        body, summary = _target_foil(body, summary, target_foil)
    return Section("tokens", "Tokens and next-token predictions", body, summary)


def _target_foil(body: str, summary: str, tf: pd.DataFrame) -> tuple[str, str]:
    t, f, d = (tf[tf["role"] == r].iloc[0] for r in ("target", "foil", "logit_diff"))
    words = (f"Target {t['token']!r} has p = {t['prob']:.3g}, foil {f['token']!r} p = {f['prob']:.3g}; "
             f"log-prob difference (target − foil) = {d['logprob']:.3f}.")
    body += f"<h3>Target vs foil</h3><p>{esc(words)}</p>" + table(tf[tf["role"] != "logit_diff"])
    return body, summary + " " + words


def attention_arrays(attn: pd.DataFrame, n_pos: int, decimals: int = 3) -> dict[int, list]:
    """{layer: [head][query][key] nested lists} from the long attention table (zeros where absent)."""
    import numpy as np

    out = {}
    for layer, g in attn.groupby("layer", sort=True):
        arr = np.zeros((int(g["head"].max()) + 1, n_pos, n_pos))
        arr[g["head"].to_numpy(), g["query"].to_numpy(), g["key"].to_numpy()] = g["value"].to_numpy()
        out[int(layer)] = np.round(arr, decimals).tolist()
    return out


def _fit(attn: pd.DataFrame, n_pos: int) -> tuple[dict[int, list], str]:
    """Attention arrays within the page budget: fewer decimals first, then fewer layers (the first
    ones of those in `attn`, which may be any subset, e.g. one layer of a notebook figure)."""
    layers = sorted(int(x) for x in attn["layer"].unique())
    n_heads = attn["head"].nunique()
    per_layer = lambda d: n_heads * n_pos * n_pos * (d + 3)  # noqa: E731 - rough JSON bytes
    decimals = 3 if len(layers) * per_layer(3) <= _BUDGET else 2
    kept = layers[:max(1, min(len(layers), _BUDGET // per_layer(decimals)))]
    arrays = attention_arrays(attn[attn["layer"].isin(kept)], n_pos, decimals)
    note = "" if kept == layers else (f"Interactive views show layers {kept[0]}-{kept[-1]} of {len(layers)} "
                                      "to keep the page small; attention.csv has every layer.")
    return arrays, note


def attention_views(attn: pd.DataFrame, tokens: list[str], causal: bool = True, prefix: str = "attn",
                    packed: bool = False) -> tuple[str, str]:
    """(HTML with one circuitsvis AttentionHeads view per layer and a layer picker, note);
    `packed` sends the patterns as `bundle.packed_attention` (notebook cells: a third the size)."""
    arrays, note = _fit(attn, len(tokens))
    data = (lambda a: {"packedAttention": packed_attention(a, causal)}) if packed else (lambda a: {"attention": a})
    panels = [deferred_call("AttentionHeads", {**data(a), "tokens": tokens, "maskUpperTri": causal,
                                               "attentionHeadNames": [f"L{layer}H{h}" for h in range(len(a))]},
                            f"{prefix}-layer-{layer}") for layer, a in arrays.items()]
    return picker(prefix, [f"layer {layer}" for layer in arrays], panels), note


def head_views(attn: pd.DataFrame, group: str, causal: bool = True, max_prompts: int = 8) -> str:
    """One circuitsvis view of the named heads per prompt (a prompt picker), from a long table
    with prompt, layer, head, query, key, key_token, value (as `Report.attention` writes it)."""
    panels, labels = [], []
    for prompt, g in list(attn.groupby("prompt", sort=True))[:max_prompts]:
        n = int(g["query"].max()) + 1
        tokens = g[g["query"] == n - 1].sort_values("key")["key_token"].tolist()
        heads = g[["layer", "head"]].drop_duplicates().values.tolist()
        arrays = [attention_arrays(g[(g["layer"] == l) & (g["head"] == h)].assign(head=0), n)[int(l)][0]
                  for l, h in heads]
        panels.append(deferred_call("AttentionHeads", {"attention": arrays, "tokens": tokens, "maskUpperTri": causal,
                                                       "attentionHeadNames": [f"L{l}H{h}" for l, h in heads]},
                                    f"{group}-p{int(prompt)}"))
        labels.append(f"prompt {int(prompt)}")
    return picker(group, labels, panels)


def final_attention(attn: pd.DataFrame) -> pd.DataFrame:
    """layer, head, key, key_token, value: where the final position attends most, per head."""
    last = attn[attn["query"] == attn["query"].max()]
    top = last.loc[last.groupby(["layer", "head"])["value"].idxmax()]
    return top[["layer", "head", "key", "key_token", "value"]].reset_index(drop=True)


def attention_section(attn: pd.DataFrame, tokens: list[str], causal: bool = True) -> Section:
    """Every layer's and head's attention pattern (interactive), and where the final token looks."""
    views, note = attention_views(attn, tokens, causal)
    top = final_attention(attn)
    body = ('<p class="lead">Attention patterns of every head: pick a layer, then hover or click a head. '
            "Rows are the attending (query) position, columns the attended-to (key) position.</p>"
            + (f'<p class="note">{esc(note)}</p>' if note else "") + views)
    svg = plots.heatmap(top, "layer", "head", "value", "max attention weight from the final position",
                        cbar="attention weight (0–1)")
    body += figure(svg, "For each head, the largest weight the final token puts on any one key position "
                        "(which key: table below).")
    body += "<h3>Where the final position attends, per head</h3>" + table(top.sort_values("value", ascending=False), 16)
    strong = top.sort_values("value", ascending=False).head(5)
    summary = ("Strongest final-position attention: " + "; ".join(
        f"L{r.layer}H{r.head} → {r.key_token!r} (pos {r.key}, {r.value:.2f})" for r in strong.itertuples()) + ".")
    return Section("attention", "Attention patterns", body, summary)
