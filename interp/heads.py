"""Head classes: previous-token, induction, duplicate-token and BOS heads, from attention patterns.

Each head is scored on a repeated random sequence (a random block of word tokens, then the same
block again), the test for induction heads of Olsson et al. (2022), "In-context Learning and
Induction Heads": in the second copy, an induction head at token i attends to the key right
after the earlier copy of token i. For every kind, `head_targets` marks the keys a perfect head
of that kind attends to, and a head's score is the mean, over the queries that have a target,
of its attention mass on the targets (in [0, 1]; 1 is a perfect head).

TransformerLens' `head_detector` works with the bridge too, but it takes text (re-tokenised, one
forward per kind), has no BOS class, and divides by all attention including rows that have no
target, so a perfect induction head scores under 0.5 on a repeated sequence.

Example:
    >>> import interp
    >>> from interp.heads import head_scores, top_heads
    >>> model = interp.load("zoo-2l")
    >>> scores = head_scores(model)  # layer, head, kind, score
    >>> best = top_heads(scores, k=1)
    >>> best[best.kind == "induction"][["layer", "head"]].values.tolist(), bool(best.score.max() > 0.8)
    ([[1, 3]], True)
"""

from __future__ import annotations

import re
from typing import Literal

from interp.errors import InterpError, model_name

HeadKind = Literal["previous_token", "induction", "duplicate_token", "bos"]
HEAD_KINDS: tuple[HeadKind, ...] = ("previous_token", "induction", "duplicate_token", "bos")
_MIN_WORDS = 64  # fewer word tokens than this: draw random sequences from the whole vocabulary



def repeated_tokens(model, n: int = 20, seed: int = 0):
    """[1, pos] tokens: the model's start token (if any), then n distinct random tokens, twice."""
    import torch

    if not isinstance(n, int) or n < 2:
        raise InterpError(f"repeated sequence length {n} is too short: use n >= 2")
    tok = model.tokenizer
    start = tok.bos_token_id if model.cfg.default_prepend_bos else None
    start = start if start is not None else getattr(tok, "cls_token_id", None)
    prefix = [] if start is None else [start]
    if 2 * n + len(prefix) > model.cfg.n_ctx:
        raise InterpError(f"repeated sequence of 2 x {n} tokens exceeds {model_name(model)}'s context "
                          f"of {model.cfg.n_ctx}; use n <= {(model.cfg.n_ctx - len(prefix)) // 2}")
    pool = torch.tensor(word_ids(model))
    if len(pool) < n:
        raise InterpError(f"{model_name(model)} has only {len(pool)} word tokens to draw from; use n <= {len(pool)}")
    gen = torch.Generator().manual_seed(seed)
    r = pool[torch.randperm(len(pool), generator=gen)[:n]]
    return torch.cat([torch.tensor(prefix, dtype=torch.long), r, r])[None].to(model.cfg.device)


def word_ids(model) -> list[int]:
    """Token ids that are whole lower-case words (' king' in byte-level BPE, 'king' in WordPiece).

    Random sequences are drawn from these: a model's heads behave on words as in training,
    while punctuation, numbers and capitalised sentence starters are rare in random order.
    Falls back to every non-special token when the vocabulary has too few words.
    """
    tok = model.tokenizer
    special = set(tok.all_special_ids)
    ids = [i for i in range(model.cfg.d_vocab) if i not in special]
    strings = tok.convert_ids_to_tokens(ids)
    for pattern in (r"(Ġ|▁)[a-z]+", r"[a-z]+"):
        words = [i for i, s in zip(ids, strings) if s is not None and re.fullmatch(pattern, s)]
        if len(words) >= 2 * _MIN_WORDS:
            return words
    return ids


def head_targets(tokens):
    """Target keys of each head kind for tokens [pos]: bool [kind query key], kinds as HEAD_KINDS.

    previous_token: key q-1 (queries from 2 on, so that query 1's BOS is not counted);
    induction: keys right after an earlier copy of the query's token; duplicate_token: earlier
    copies of the query's token; bos: key 0 (queries from 1 on).
    """
    import torch

    n = len(tokens)
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    same = tokens[:, None] == tokens[None, :]  # [query key]
    after_copy = torch.zeros(n, n, dtype=torch.bool)
    after_copy[:, 1:] = same[:, :-1] & (k[:, 1:] - 1 < q)
    previous = (k == q - 1) & (q >= 2)
    duplicate = same & (k < q)
    bos = (k == 0) & (q >= 1)
    return torch.stack([previous, after_copy & (k <= q), duplicate, bos])


def score_heads(pattern, tokens):
    """Scores [kind layer head]: per head, the mean over queries that have a target of the
    attention mass on the targets. pattern: [layer head query key]; tokens: [pos]."""
    import torch

    targets = head_targets(tokens.cpu()).to(pattern.dtype)  # [kind query key]
    mass = torch.einsum("lhqk,tqk->tlhq", pattern.cpu(), targets)  # [kind layer head query]
    has = targets.sum(-1) > 0  # [kind query]
    return (mass * has[:, None, None]).sum(-1) / has.sum(-1).clamp(min=1)[:, None, None]


def head_scores(model, n: int = 20, seed: int = 0, tokens=None):
    """Previous-token, induction, duplicate-token and BOS scores of every head.

    Args:
        model: a model from `interp.load`.
        n: length of the random block, which is repeated once (ignored when `tokens` is given).
        seed: seed of the random block.
        tokens: optional [pos] or [1, pos] token ids to score on instead.

    Returns:
        DataFrame with layer, head, kind (one of HEAD_KINDS), score in [0, 1].
    """
    import pandas as pd
    import torch

    tokens = repeated_tokens(model, n, seed) if tokens is None else torch.as_tensor(tokens).reshape(1, -1)
    names = [f"blocks.{L}.attn.hook_pattern" for L in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda x: x in names)
    pattern = torch.stack([cache[name][0] for name in names])
    scores = score_heads(pattern, tokens[0])
    rows = [{"layer": L, "head": H, "kind": kind, "score": scores[t, L, H].item()}
            for t, kind in enumerate(HEAD_KINDS) for L in range(scores.shape[1]) for H in range(scores.shape[2])]
    return pd.DataFrame(rows)


def top_heads(scores, k: int = 3):
    """The k best heads of each kind from a `head_scores` table (same columns; kinds in
    HEAD_KINDS order, best first)."""
    order = scores.kind.map({kind: i for i, kind in enumerate(HEAD_KINDS)})
    ranked = scores.assign(_order=order).sort_values(["_order", "score"], ascending=[True, False])
    return ranked.groupby("kind", sort=False).head(k).drop(columns="_order").reset_index(drop=True)
