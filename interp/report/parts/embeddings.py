"""The embedding-direction picture, from `interp.embeddings`: a gender direction learned from the
lexicon's training word pairs (those that are single tokens for the model), with held-out pairs
and the prompt's own words projected on it.

Example:
    >>> import pandas as pd
    >>> from interp.report.parts.embeddings import section
    >>> df = pd.DataFrame({"word": ["duke", "duchess"], "projection": [-0.3, 0.2], "cosine": [-0.3, 0.2],
    ...                    "side": ["male", "female"], "expected": ["male", "female"], "pair": [0, 0],
    ...                    "group": ["held-out pair", "held-out pair"]})
    >>> "2 of 2" in section({"embedding_direction": df}).summary
    True
"""

from __future__ import annotations

import pandas as pd

from interp.errors import InterpError, model_name
from interp.report import plots
from interp.report.html import Section, esc, figure, table

KEY, TITLE, MODULE = "embeddings", "Embedding direction: male → female", "interp.embeddings"


def compute(model, prompt: str, target, foil, seed: int) -> dict:
    """embedding_direction: held-out gender pairs and the prompt's words projected on the
    diff-of-means direction of the training pairs (input embedding W_E)."""
    from interp.activations import to_tokens
    from interp.embeddings import pair_direction, project

    train, held = _single_token_pairs(model, "train"), _single_token_pairs(model, "held_out")
    if len(train) < 4 or len(held) < 2:
        raise InterpError(f"only {len(train)} training and {len(held)} held-out gender pairs are single tokens in "
                          f"{model_name(model)}'s vocabulary (at least 4 and 2 are needed)")
    d = pair_direction(model, train, labels=("male", "female"))
    rows = project(model, [w for pair in held for w in pair], d)
    rows = rows.assign(expected=[lab for _ in held for lab in ("male", "female")],
                       pair=[i for i in range(len(held)) for _ in (0, 1)], group="held-out pair")
    words = []
    for tok in dict.fromkeys(to_tokens(model, prompt)[1][0]):
        try:
            words.append(project(model, [tok.strip()], d))
        except InterpError:
            continue  # punctuation, BOS, words outside the vocabulary
    if words:
        prompt_rows = pd.concat(words, ignore_index=True).assign(expected="", pair=-1, group="prompt word")
        rows = pd.concat([rows, prompt_rows], ignore_index=True)
    return {"embedding_direction": rows}


def _single_token_pairs(model, split: str) -> list[tuple[str, str]]:
    """The lexicon's gender pairs of `split` whose two words are each one token for `model`."""
    from interp.embeddings.vectors import why_not_word
    from interp.zoo.lexicon import gender_pairs

    return [p for p in gender_pairs(split) if all(why_not_word(model, w)[0] is not None for w in p)]


def section(t: dict) -> Section:
    df = t["embedding_direction"]
    held = df[df["group"] == "held-out pair"]
    plot = df.assign(row=[p if p >= 0 else -1 - i for i, p in enumerate(df["pair"])])
    svg = plots.scatter(plot, "projection", "row", "word", "words on the male → female direction", hue="group")
    body = ('<p class="lead">A direction in the input embedding: the mean of (female − male) over the '
            "training word pairs (single-token ones) of interp\'s gender lexicon. Held-out pairs (never used to build it) and the prompt's words are projected "
            "on it.</p>")
    body += figure(svg, "x: projection on the direction (right = female side); y: held-out pair index (prompt "
                        "words below zero).")
    right = int((held["side"] == held["expected"]).sum())
    body += table(df[["group", "word", "projection", "cosine", "side"]])
    words = (f"Held-out words on the expected side of the male → female direction: {right} of {len(held)}. "
             + "; ".join(f"{r.word}: {r.projection:+.3f}" for r in df[df['group'] == 'prompt word'].itertuples()))
    return Section(KEY, TITLE, body + f"<p>{esc(words)}</p>", words)
