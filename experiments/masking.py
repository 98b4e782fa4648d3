"""What the causal mask hides: how much attention each head would put on future tokens without it,
and how the next-token loss changes when one layer (or all) may look ahead.

The default studies zoo-4l on its own corpus; `--model smollm2-135m --text english` studies a real
model on ordinary English paragraphs (experiments/data/english.txt).

Run: python -m experiments.masking [--model smollm2-135m --text english] [--n-docs 8 --n-tokens 64]
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.common import Report, cli, config_dict, pct

DATA = Path(__file__).parent / "data"
TEXTS = {"zoo": "the zoo corpus generator (interp.zoo.corpus.Corpus)", "english": "experiments/data/english.txt"}
REAL_MODEL_CONFIG = {"text": "english", "n_docs": 6, "n_tokens": 64}


@dataclass
class Config:
    model: str = "zoo-4l"
    text: str = "zoo"  # "zoo": the zoo's corpus generator; "english": experiments/data/english.txt
    n_docs: int = 8
    n_tokens: int = 64  # tokens per document (BOS included), the same for all so they batch unpadded
    n_view: int = 3  # heads shown in the interactive attention view
    seed: int = 0
    out: str = "reports/masking"


def paragraphs(path: Path) -> list[str]:
    """The blank-line-separated paragraphs of a text file, '#' comment lines dropped."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return [" ".join(b.split()) for b in "\n".join(lines).split("\n\n") if b.strip()]


def documents(cfg: Config) -> list[str]:
    """n_docs texts: zoo corpus documents (seeds seed..), or the English file's first paragraphs."""
    from interp.errors import InterpError

    if cfg.text == "zoo":
        from interp.zoo.corpus import Corpus, text

        return [text(Corpus(cfg.seed + i), cfg.n_tokens) for i in range(cfg.n_docs)]
    if cfg.text != "english":
        raise InterpError(f"unknown text {cfg.text!r}: use one of {', '.join(TEXTS)}")
    paras = paragraphs(DATA / "english.txt")
    if cfg.n_docs > len(paras):
        raise InterpError(f"n_docs {cfg.n_docs} > the {len(paras)} paragraphs of english.txt: use --n-docs {len(paras)}")
    return paras[:cfg.n_docs]


def doc_tokens(model, docs: list[str], n_tokens: int):
    """`Int[Tensor, "doc pos"]`: each document's first n_tokens tokens (BOS as the model prepends it)."""
    import torch

    from interp.errors import InterpError

    rows = [model.to_tokens(d, prepend_bos=model.cfg.default_prepend_bos, truncate=False)[0] for d in docs]
    short = min(len(r) for r in rows)
    if short < n_tokens:
        raise InterpError(f"a document has only {short} tokens: use --n-tokens {short} or less")
    return torch.stack([r[:n_tokens] for r in rows])


def future_table(model, tokens) -> pd.DataFrame:
    """Per document, layer and head: unmasked attention mass on future keys and JS divergence
    (bits), means over every query (`interp.attention.head_table`), and `next_mass`, the
    unmasked weight on the very next token (key = query + 1), mean over the queries that have one."""
    import torch

    from interp.attention import head_table, patterns

    frames = []
    for i, row in enumerate(tokens):
        pats = patterns(model, row)
        nxt = torch.diagonal(pats.unmasked, offset=1, dim1=-2, dim2=-1).mean(-1)  # [layer head]
        t = head_table(pats)
        frames.append(t.assign(next_mass=[float(nxt[L, h]) for L, h in zip(t.layer, t["head"])], doc=i))
    return pd.concat(frames)


def loss_table(model, tokens) -> pd.DataFrame:
    """Per condition (mask removed nowhere, in each layer, in all) and document: mean next-token
    loss (nats) and top-1 accuracy. Documents run as one unpadded batch (`no_causal_mask`)."""
    import torch

    from interp.attention import no_causal_mask

    n = model.cfg.n_layers
    conditions = [("none", [])] + [(str(L), [L]) for L in range(n)] + [("all", list(range(n)))]
    rows = []
    for order, (name, layers) in enumerate(conditions):
        with no_causal_mask(model, layers) if layers else nullcontext(), torch.no_grad():
            logp = model(tokens)[:, :-1].float().log_softmax(-1)
        target = tokens[:, 1:]
        nll = -logp.gather(-1, target[..., None])[..., 0]
        hit = (logp.argmax(-1) == target).float()
        rows += [{"order": order, "removed": name, "doc": d, "loss": float(nll[d].mean()),
                  "accuracy": float(hit[d].mean()), "n_tokens": int(target.shape[1])} for d in range(len(tokens))]
    return pd.DataFrame(rows)


def summarise_loss(per_doc: pd.DataFrame) -> pd.DataFrame:
    """Per condition: mean loss and accuracy over documents (= over tokens: equal lengths), the std
    of the loss over documents, and the change from the clean run with its std over documents."""
    clean = per_doc[per_doc.removed == "none"].set_index("doc").loss
    df = per_doc.assign(delta=per_doc.loss - per_doc.doc.map(clean))
    return df.groupby(["order", "removed"], as_index=False, sort=False).agg(
        loss=("loss", "mean"), loss_std=("loss", "std"), accuracy=("accuracy", "mean"),
        delta_loss=("delta", "mean"), delta_std=("delta", "std"), n_docs=("doc", "size"), n_tokens=("n_tokens", "sum"))


def main(cfg: Config) -> dict:
    import interp

    model = interp.load(cfg.model)
    docs = documents(cfg)
    tokens = doc_tokens(model, docs, cfg.n_tokens)
    rep = Report("masking", f"The causal mask in {cfg.model}",
                 "If the causal mask were removed, how much of each head's attention would go to future tokens, "
                 "and how does the next-token loss change once a layer can read the words it must predict?",
                 _method(cfg, model))
    per_doc_heads = future_table(model, tokens)
    heads = per_doc_heads.groupby(["layer", "head"], as_index=False).agg(
        future_mass=("future_mass", "mean"), future_std=("future_mass", "std"), js=("js", "mean"),
        next_mass=("next_mass", "mean"))
    heads = rep.table("future_mass", heads, ["layer", "head"])
    per_doc = rep.table("mask_removal_by_doc", loss_table(model, tokens), ["order", "doc"])
    effect = rep.table("mask_removal", summarise_loss(per_doc), ["order"])
    rep.table("documents", pd.DataFrame({"doc": range(len(docs)), "text": docs}), ["doc"])
    headline = _findings(rep, cfg, heads, effect)
    top = heads.sort_values(["future_mass", "layer", "head"], ascending=[False, True, True]).head(cfg.n_view)
    named = [(int(r.layer), int(r["head"])) for _, r in top.iterrows()]
    rep.findings.append(rep.attention("attention_view", model, tokens[0, :min(cfg.n_tokens, 40)], named,
                                      "the heads with the most unmasked future mass, their own (masked) patterns "
                                      "on the first 40 tokens of document 0"))
    rep.findings.append(_caveats(cfg, model))
    rep.write(cfg.out, config_dict(cfg, cfg.model), headline)
    return headline


def _method(cfg: Config, model) -> str:
    src = (f"the zoo's training-distribution generator (`interp.zoo.corpus.text`: `Corpus(seed)` documents without their random "
           f"token runs, seeds {cfg.seed}–{cfg.seed + cfg.n_docs - 1})" if cfg.text == "zoo" else
           "the first paragraphs of experiments/data/english.txt, ordinary English written for this project "
           "(not in any training set we know of, but about everyday topics)")
    return (f"Text: {cfg.n_docs} documents from {src}, each cut to its first {cfg.n_tokens} tokens "
            f"({'BOS first, ' if model.cfg.default_prepend_bos else ''}as `documents.csv` lists the texts), so they run "
            "as one unpadded batch.\n\n"
            "Future attention: `interp.attention.patterns` runs each attention module a second time on the same "
            "inputs with the mask freed, so each head's unmasked pattern comes from the model's own code (rotary "
            "q/k and grouped kv heads included); `future_mass` is the unmasked mass on keys after the query, `js` "
            "the Jensen–Shannon divergence (bits) between the masked and unmasked rows, both averaged over all "
            "queries (the last query has no future, so the mean includes a zero), then over documents "
            "(`future_std`: std over documents); `next_mass` is the unmasked weight on key = query + 1.\n\n"
            "Loss: the model runs with the mask removed (`interp.attention.no_causal_mask`) in one layer at a time "
            "and in all layers; per document, the mean next-token loss (nats) and top-1 accuracy over its "
            f"{cfg.n_tokens - 1} targets; tables give the mean and std over documents of the loss and of its change "
            "from the clean run.")


def _findings(rep, cfg, heads, effect) -> dict:
    from interp.report import plots

    e = effect.set_index("removed")
    per_layer = heads.groupby("layer", as_index=False)[["future_mass", "js"]].mean()
    top = heads.sort_values(["future_mass", "layer", "head"], ascending=[False, True, True]).iloc[0]
    layers = [r for r in effect.removed if r not in ("none", "all")]
    best = min(layers, key=lambda L: e.loss[L])
    worst = max(layers, key=lambda L: e.loss[L])
    q = heads.future_mass.quantile([0.1, 0.5, 0.9])
    rep.findings += [
        f"Without the mask, heads would put on average **{pct(heads.future_mass.mean())}** of their attention on "
        f"future tokens (over heads: 10th percentile {pct(q[0.1])}, median {pct(q[0.5])}, 90th {pct(q[0.9])}; per "
        "layer: " + ", ".join(f"L{int(r.layer)} {pct(r.future_mass)}" for r in per_layer.itertuples())
        + f"). The most forward-looking head is L{int(top.layer)}H{int(top['head'])} ({pct(top.future_mass)} ± "
        f"{pct(top.future_std)} over documents).",
        f"Clean next-token loss **{nats(e.loss['none'])}** ± {nats(e.loss_std['none'])} nats (mean ± std over "
        f"documents; accuracy {pct(e.accuracy['none'])}). Removing the mask in one layer (loss, change ± std over "
        "documents): " + "; ".join(
            f"layer {L}: {nats(e.loss[L])} ({_signed(e.delta_loss[L])} ± {nats(e.delta_std[L])})" for L in layers)
        + f". In all layers: **{nats(e.loss['all'])}** nats (accuracy {pct(e.accuracy['all'])}).",
        _interpretation(e, best, worst, layers, heads),
    ]
    rep.findings.append(rep.figure("future_mass", plots.heatmap(heads, "layer", "head", "future_mass",
                                                                "attention mass on future tokens without the mask"),
                                   "Mean unmasked attention mass on future keys per head."))
    rep.findings.append(rep.figure("mask_removal", plots.bars(effect, "removed", "loss",
                                                              "next-token loss with the mask removed", "nats"),
                                   "Mean next-token loss: clean (none), mask removed in one layer, in all layers."))
    rep.show("Mask removal", effect)
    rep.show("Future mass per head", heads)
    return {"mean_future_mass": float(heads.future_mass.mean()),
            "future_mass_by_layer": [float(v) for v in per_layer.future_mass],
            "loss_clean": float(e.loss["none"]), "loss_by_layer": {L: float(e.loss[L]) for L in layers},
            "loss_all": float(e.loss["all"]), "best_layer": best, "worst_layer": worst,
            "summary": (f"without the mask heads would put {pct(heads.future_mass.mean())} of attention on future "
                        f"tokens; unmasking one layer moves the loss {nats(e.loss['none'])} → {nats(e.loss[best])} "
                        f"(layer {best}) to {nats(e.loss[worst])} (layer {worst}) nats, unmasking all layers gives "
                        f"{nats(e.loss['all'])}")}


def nats(x: float) -> str:
    return f"{float(x):.3f}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "−") + nats(abs(x))


def _interpretation(e, best: str, worst: str, layers: list[str], heads: pd.DataFrame) -> str:
    se = e.delta_std / e.n_docs ** 0.5
    falling = [L for L in layers if e.delta_loss[L] < -2 * se[L]]
    rising = [L for L in layers if e.delta_loss[L] > 2 * se[L]]
    lead = (f"Beyond two standard errors over documents, unmasking one layer lowers the loss in layer(s) "
            f"{', '.join(falling) or 'none'} and raises it in {', '.join(rising) or 'none'} (largest rise: layer "
            f"{worst}, {_signed(e.delta_loss[worst])} nats). ")
    if e.delta_loss[best] >= 0:
        return lead + ("No single layer's mask removal lowers the loss: no layer can turn the words it is newly "
                       "shown into a better prediction; the unmasked outputs are off the training distribution.")
    h = heads[heads.layer == int(best)].sort_values(["next_mass", "head"], ascending=[False, True]).iloc[0]
    g = heads.sort_values(["next_mass", "layer", "head"], ascending=[False, True, True]).iloc[0]
    return lead + (f"The largest fall is layer {best}: {nats(e.loss['none'])} → {nats(e.loss[best])} nats, top-1 "
                   f"accuracy {pct(e.accuracy['none'])} → {pct(e.accuracy[best])}. Unmasked, its head "
                   f"L{best}H{int(h['head'])} puts {pct(h.next_mass)} of its attention on exactly the next token "
                   f"(key = query + 1); the most next-token-seeking head anywhere is L{int(g.layer)}H{int(g['head'])} "
                   f"({pct(g.next_mass)}). A fall means some head can read the token to be predicted and later layers "
                   "can use it: the answer is given away. "
                   + (f"With every layer unmasked the loss is {nats(e.loss['all'])} nats."
                      if e.loss["all"] < e.loss[best] else
                      f"With every layer unmasked it is {nats(e.loss['all'])} nats: the shifts compound."))


def _caveats(cfg, model) -> str:
    notes = ["**Caveats.** Removing the mask changes a layer's output into something the later layers never saw in "
             "training, so a rising loss measures that shift as much as any loss of information; a falling loss says "
             "a circuit can use the future token, not that the model 'looks ahead' when masked. Future mass is "
             "averaged over all queries, so the late queries (little future to attend to) pull it down."]
    if cfg.text == "english":
        notes.append(f"The English text is {cfg.n_docs} short paragraphs; the spread over documents is over that few.")
    if getattr(model.info, "quantization", "none") != "none":
        notes.append(f"Weights: {model.info.weights}; it is the checkpoint a user of interp gets, not the original "
                     "bf16 release.")
    return " ".join(notes)


if __name__ == "__main__":
    cli(main, Config, __doc__, "python -m experiments.masking --model smollm2-135m --text english",
        choices={"text": list(TEXTS)})
