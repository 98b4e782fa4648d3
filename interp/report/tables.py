"""The report's own tables, from one `interp.capture` run: tokens, next-token predictions, attention.

These are tidy long-format DataFrames, like every analysis's output, so the report writes each
one to a CSV and draws its figures from the CSV.

Example:
    >>> import interp
    >>> from interp.report.tables import run, predictions_table
    >>> model = interp.load("zoo-2l")
    >>> acts = run(model, "When Mary and John went to the store, John gave a drink to")
    >>> top = predictions_table(model, acts, k=3)
    >>> list(top.columns)
    ['pos', 'token', 'rank', 'candidate', 'prob', 'logprob']
    >>> bool(top.groupby("pos")["prob"].sum().le(1 + 1e-6).all())
    True
"""

from __future__ import annotations

import math

import pandas as pd

from interp.tokens import token_id, token_texts


def is_causal(model) -> bool:
    """True for a decoder (each position attends only to itself and earlier positions)."""
    return str(getattr(model.cfg, "attention_dir", "causal")) != "bidirectional"


def run(model, prompt: str):
    """Capture every layer's attention pattern and the logits for `prompt` (one forward pass)."""
    from interp.activations import capture

    return capture(model, prompt, names="blocks.*.attn.hook_pattern", keep_logits=True)


def tokens_table(acts) -> pd.DataFrame:
    """pos, token: the tokens that ran (BOS included when the model prepends it)."""
    return pd.DataFrame({"pos": range(len(acts.tokens[0])), "token": acts.tokens[0]})


def _decode(model, ids) -> list[str]:
    """Token strings as capture shows them (decoded by the tokenizer: ' café', not 'ĠcafÃ©')."""
    return token_texts(model.tokenizer, ids)


def predictions_table(model, acts, k: int = 5) -> pd.DataFrame:
    """pos, token, rank, candidate, prob, logprob: the top-k next tokens after every position."""
    logprobs = acts.logits[0].float().log_softmax(-1)  # pos d_vocab
    values, ids = logprobs.topk(k, dim=-1)
    rows = []
    for pos, token in enumerate(acts.tokens[0]):
        for rank, (lp, cand) in enumerate(zip(values[pos].tolist(), _decode(model, ids[pos])), 1):
            rows.append({"pos": pos, "token": token, "rank": rank, "candidate": cand,
                         "prob": math.exp(lp), "logprob": lp})
    return pd.DataFrame(rows)


def attention_table(model, acts) -> pd.DataFrame:
    """layer, head, query, key, query_token, key_token, value: every attention weight
    (for a causal model only key <= query, the rest is zero by the mask)."""
    patterns = {layer: acts[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(model.cfg.n_layers)}
    return pattern_table(patterns, acts.tokens[0], is_causal(model))


def pattern_table(patterns: dict, tokens: list[str], causal: bool) -> pd.DataFrame:
    """The long attention table from {layer: pattern [head query key]} of any run (a capture, a
    TransformerLens cache, a patched run); with `causal`, only key <= query."""
    import torch

    n = len(tokens)
    keep = torch.tril(torch.ones(n, n, dtype=torch.bool)) if causal else torch.ones(n, n, dtype=torch.bool)
    q, k = keep.nonzero(as_tuple=True)
    frames = []
    for layer, pattern in sorted(patterns.items()):
        pattern = pattern.detach().float().cpu()[:, :n, :n]
        for head in range(pattern.shape[0]):
            frames.append(pd.DataFrame({"layer": layer, "head": head, "query": q.numpy(), "key": k.numpy(),
                                        "value": pattern[head][q, k].numpy()}))
    df = pd.concat(frames, ignore_index=True)
    df.insert(4, "query_token", [tokens[i] for i in df["query"]])
    df.insert(5, "key_token", [tokens[i] for i in df["key"]])
    return df


def target_foil_table(model, acts, target: str, foil: str) -> pd.DataFrame:
    """token, role, id, logprob, prob at the final position, and a logit_diff row (target - foil)."""
    final = acts.logits[0, -1].float().log_softmax(-1)
    rows = []
    for role, text in (("target", target), ("foil", foil)):
        i = token_id(model, text, role)
        rows.append({"role": role, "token": text, "id": i, "logprob": final[i].item(), "prob": final[i].exp().item()})
    rows.append({"role": "logit_diff", "token": f"{target} - {foil}", "id": -1,
                 "logprob": rows[0]["logprob"] - rows[1]["logprob"], "prob": float("nan")})
    return pd.DataFrame(rows)
