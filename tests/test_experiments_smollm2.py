"""The IOI, induction and logit-lens experiments on the real default model (SmolLM2-135M), at a
tiny configuration, each headline number recomputed here with the plain Hugging Face model
(never through the bridge or interp's analyses).

- IOI: accuracy and mean logit(IO) - logit(S) of the evaluation prompts; attention of a named
  head from the last token to IO, S1 and S2 (HF `output_attentions`).
- Induction: the clean repeat/first loss ratio on the same random vocabulary sequences.
- Logit lens: P(answer) at an intermediate layer (HF hidden state -> final RMSNorm -> lm_head)
  and at the output, for IOI and factual prompts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MODEL = "smollm2-135m"



@pytest.fixture(scope="module")
def hf(smollm2):
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.AutoModelForCausalLM.from_pretrained(smollm2.info.path, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def tok(smollm2):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(smollm2.info.path)


@pytest.fixture
def shared(smollm2, monkeypatch):
    """`interp.load(MODEL)` inside the experiments returns the session's model (no second load)."""
    import interp

    original = interp.load
    monkeypatch.setattr(interp, "load", lambda name, *a, **k: smollm2 if name == MODEL and not a and not k
                        else original(name, *a, **k))


def hf_last_logits(hf, tok, prompts: list[str], zeroed=()) -> torch.Tensor:
    """[n d_vocab] HF logits at each prompt's last token, one prompt at a time (no padding); the
    heads `zeroed` ((layer, head) pairs) have their slice of o_proj's input set to zero."""
    d_head = hf.config.hidden_size // hf.config.num_attention_heads

    def zero(heads):
        def hook(module, args):
            x = args[0].clone()
            for h in heads:
                x[..., h * d_head:(h + 1) * d_head] = 0
            return (x, *args[1:])
        return hook

    layers = {l for l, _ in zeroed}
    handles = [hf.model.layers[l].self_attn.o_proj.register_forward_pre_hook(zero([h for m, h in zeroed if m == l]))
               for l in layers]
    try:
        return _last_logits(hf, tok, prompts)
    finally:
        for h in handles:
            h.remove()


def _last_logits(hf, tok, prompts: list[str]) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([tok(p, add_special_tokens=False)["input_ids"]])
            out.append(hf(ids).logits[0, -1])
    return torch.stack(out)


def one(tok, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1
    return ids[0]


def test_ioi_on_smollm2(smollm2, hf, tok, shared, tmp_path, unchanged):
    from experiments import ioi_circuit as E
    from interp.tasks.ioi import ioi_prompts

    cfg = E.Config(model=MODEL, n_select=4, n_eval=6, n_random=3, n_patch=2, n_movers=1, sweep_modes=["mean"],
                   sweep_layers="27,28,29", path_layers=2, out=str(tmp_path / "ioi"))
    with unchanged(smollm2):
        headline = E.main(cfg)
    out = Path(cfg.out)
    assert json.loads((out / "config.json").read_text())["model"] == MODEL
    rows = ioi_prompts(tok, "eval", cfg.n_eval, cfg.seed + 2)  # the evaluation set, rebuilt independently
    logits = hf_last_logits(hf, tok, [r["prompt"] for r in rows])
    io = torch.tensor([one(tok, r["io"]) for r in rows])
    s = torch.tensor([one(tok, r["s"]) for r in rows])
    diff = logits[torch.arange(len(rows)), io] - logits[torch.arange(len(rows)), s]
    assert headline["accuracy"] == pytest.approx((diff > 0).float().mean().item())
    acc = pd.read_csv(out / "accuracy.csv").set_index("group")
    assert acc.loc["all", "mean"] == pytest.approx(diff.mean().item(), abs=1e-3)
    # the named heads' attention from the last token, against HF's own attention weights
    att = pd.read_csv(out / "attention_to_names.csv")
    first = att[att.prompt_id == 0].iloc[0]
    ids = torch.tensor([tok(rows[0]["prompt"], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        pattern = hf(ids, output_attentions=True).attentions[int(first.layer)][0, int(first.head_index), -1]
    texts = [tok.decode([i]).strip() for i in ids[0].tolist()]
    io_pos = texts.index(rows[0]["io"].strip())
    s1 = texts.index(rows[0]["s"].strip())
    s2 = len(texts) - 1 - texts[::-1].index(rows[0]["s"].strip())
    for col, p in (("to_io", io_pos), ("to_s1", s1), ("to_s2", s2)):
        assert first[col] == pytest.approx(pattern[p].item(), abs=1e-4), col
    # the top heads zero-ablated together: HF with their slices of o_proj's input zeroed
    top = pd.read_csv(out / "top_ablation.csv").set_index(["set", "mode"]).loc[("top (sweep)", "zero")]
    heads = [(int(h[1:].split("H")[0]), int(h.split("H")[1])) for h in top.heads.split("+")]
    zeroed = hf_last_logits(hf, tok, [r["prompt"] for r in rows], heads)
    ablated = zeroed[torch.arange(len(rows)), io] - zeroed[torch.arange(len(rows)), s]
    assert top.ablated == pytest.approx(ablated.mean().item(), abs=1e-3)
    assert top.clean == pytest.approx(diff.mean().item(), abs=1e-3)
    patch = pd.read_csv(out / "patch_heads.csv")
    assert len(patch) == 3 * smollm2.cfg.n_layers * smollm2.cfg.n_heads
    assert -1 <= headline["attribution_r"] <= 1


def test_induction_on_smollm2(smollm2, hf, tok, shared, tmp_path, unchanged):
    from experiments import induction_heads as E

    cfg = E.Config(model=MODEL, n_tokens=6, n_seqs=2, n_view=4, sweep_modes=["mean"], sweep_layers="0,1,2",
                   out=str(tmp_path / "ind"))
    with unchanged(smollm2):
        headline = E.main(cfg)
    seqs = E.vocab_sequences(smollm2, cfg.n_tokens, cfg.n_seqs, cfg.seed)
    special = set(tok.all_special_ids)
    assert not special & set(seqs.flatten().tolist()) and seqs.shape == (2, 12)  # no BOS: SmolLM2 prepends none
    with torch.no_grad():
        logp = hf(seqs).logits.log_softmax(-1)
    n = cfg.n_tokens
    loss = -logp[:, :-1].gather(-1, seqs[:, 1:, None])[..., 0]  # column p predicts token p + 1
    first, repeat = loss[:, 0:n - 1].mean(-1), loss[:, n:2 * n - 1].mean(-1)
    assert headline["clean_ratio"] == pytest.approx((repeat / first).mean().item(), rel=1e-3)


def test_logit_lens_on_smollm2(smollm2, hf, tok, shared, tmp_path, unchanged):
    from experiments import logit_lens as E
    from interp.tasks.facts import fact_prompts

    cfg = E.Config(model=MODEL, n_prompts=3, out=str(tmp_path / "lens"))
    with unchanged(smollm2):
        E.main(cfg)
    by_layer = pd.read_csv(Path(cfg.out) / "by_layer.csv")
    facts = fact_prompts(tok)
    layer = 15  # residual after block 14
    probs_mid, probs_out = [], []
    with torch.no_grad():
        for r in facts:
            ids = torch.tensor([tok(r["prompt"], add_special_tokens=False)["input_ids"]])
            o = hf(ids, output_hidden_states=True)
            mid = hf.lm_head(hf.model.norm(o.hidden_states[layer][0, -1])).softmax(-1)
            probs_mid.append(mid[one(tok, r["answer"])].item())
            probs_out.append(o.logits[0, -1].softmax(-1)[one(tok, r["answer"])].item())
    got = by_layer[(by_layer.task == "facts")].set_index("layer").mean_prob
    assert got[layer] == pytest.approx(sum(probs_mid) / len(probs_mid), abs=1e-4)
    assert got[smollm2.cfg.n_layers] == pytest.approx(sum(probs_out) / len(probs_out), abs=1e-4)
