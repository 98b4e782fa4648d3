"""Temperature view from `interp.sampling`: entropy against temperature, top tokens at a few
temperatures, and seeded samples.

Example:
    >>> import pandas as pd
    >>> from interp.report.parts.sampling import section
    >>> ent = pd.DataFrame({"temperature": [0.0, 1.0], "entropy_nats": [0.0, 0.5],
    ...                     "top_token": [" a", " a"], "top_prob": [1.0, 0.8]})
    >>> top = pd.DataFrame({"temperature": [1.0], "rank": [1], "token": [" a"], "prob": [0.8]})
    >>> smp = pd.DataFrame({"sample": [0], "text": [" a b"], "n_new_tokens": [2], "stop": ["eos"]})
    >>> section({"temperature": ent, "temperature_top": top, "samples": smp}).id
    'temperature'
"""

from __future__ import annotations

import pandas as pd

from interp.report import plots
from interp.report.html import Section, esc, figure, table

KEY, TITLE, MODULE = "temperature", "Temperature and samples", "interp.sampling"
_SHOWN = (0.5, 1.0, 2.0)


def compute(model, prompt: str, target, foil, seed: int) -> dict:
    """temperature: entropy per temperature; temperature_top: top 5 at 0.5/1/2; samples: 3 seeded."""
    from interp.sampling import entropy_by_temperature, sample, top_tokens

    tops = pd.concat([top_tokens(model, prompt, temperature=t, k=5).assign(temperature=t) for t in _SHOWN],
                     ignore_index=True)
    return {"temperature": entropy_by_temperature(model, prompt),
            "temperature_top": tops[["temperature", "rank", "token", "prob"]],
            "samples": sample(model, prompt, n=3, max_new_tokens=12, temperature=1.0, seed=seed)}


def section(t: dict) -> Section:
    ent, top, smp = t["temperature"], t["temperature_top"], t["samples"]
    body = ('<p class="lead">The next-token distribution softmax(logits / T): T → 0 is greedy, T = 1 the '
            "model's own distribution, large T flattens it.</p>")
    body += figure(plots.lines(ent, "temperature", "entropy_nats", "entropy of the next token vs temperature"),
                   "Entropy (nats) of the next-token distribution at each temperature (one forward pass).")
    wide = top.pivot_table(index="rank", columns="temperature", values="prob", aggfunc="first")
    toks = top.pivot_table(index="rank", columns="temperature", values="token", aggfunc="first")
    cols = {f"T={c:g}": [f"{tok!r} {p:.3f}" for tok, p in zip(toks[c], wide[c])] for c in wide.columns}
    body += "<h3>Top tokens at three temperatures</h3>" + table(pd.DataFrame({"rank": wide.index, **cols}))
    body += "<h3>Seeded samples at T = 1</h3>" + table(smp)
    e1 = ent[ent["temperature"] == 1.0]
    words = (f"Entropy of the next token: " + ", ".join(f"T={r.temperature:g}: {r.entropy_nats:.3f}"
                                                          for r in ent.itertuples()) + " nats"
             + (f"; at T=1 the top token is {e1['top_token'].iloc[0]!r} (p = {e1['top_prob'].iloc[0]:.3f})" if len(e1) else "")
             + ". Samples at T=1: " + "; ".join(repr(x) for x in smp["text"]) + ".")
    return Section(KEY, TITLE, body + f"<p>{esc(words)}</p>", words)
