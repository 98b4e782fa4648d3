"""Every analysis on ten architectures, compared with plain Hugging Face computations.

Each test runs on tiny random 2-layer models of GPT-2, Llama, Qwen2, Mistral (sliding window 4),
Gemma 2, Gemma 3 (sliding + full layers), GPT-NeoX (rotary 0.5, parallel), Phi (partial rotary),
GPT-J and OPT, built by `tests/archs.py` once per session. interp runs on `interp.load(dir)` (the
bridge in compatibility mode); the reference is the same directory loaded as a plain eager
transformers model and never goes through the bridge. Compatibility mode shifts raw logits by a
constant per position, so log-probs and logit differences are compared, never raw logits.

What is compared to what (on one 8-9 token prompt):
- capture's logits -> HF log-probs; `attention.patterns` masked -> HF `output_attentions`,
  unmasked[L] -> HF attentions[L] with layer L's additive attention mask replaced by zeros (every
  position visible: no causal triangle and no sliding window);
- `no_causal_mask` / `mask_removal_effect` -> HF log-probs / loss with those layers' masks removed;
- DLA: the parts sum to HF's logit difference as the unembedding writes it (before Gemma 2's
  final softcap, which is not linear in the residual); each head's share -> z_h @ W_O_h (HF's
  output-projection input slice and weight rows) through the run's frozen norm scales;
- logit lens last layer -> HF softmax; head ablation, set ablation and patching -> HF with head
  slices of the output projection's input replaced (zeros, means, resampled or corrupted z);
- previous-token and BOS head scores -> HF attentions with the formula of `interp.heads`;
- sampling -> HF softmax(logits / T) and HF greedy decoding;
- embeddings, hook points, capture-all and the CLI run; no analysis leaves a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import archs

pytestmark = pytest.mark.slow

PROMPT = "f ba cb dc ed fe gf hg"
REFERENCES = ["c ba cb de fa gc ha ib", "d ia hb gc fd ee da cf"]  # same token count as PROMPT
CORRUPTED = "e hh gg ff ee dd cc bb"
TARGET, FOIL = "ab", "ca"  # " ab", " ca"
TOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine two threads
    made each forward 20-40x slower (spinning workers), not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class Case:
    name: str
    path: Path
    model: object  # interp's bridge
    hf: object  # plain transformers model
    tok: object
    ids: torch.Tensor  # [1 pos]: PROMPT as the model runs it
    target: int
    foil: int

    def encode(self, text: str) -> torch.Tensor:
        return archs.encode(self.tok, text, self.model.info.prepends_bos)


@pytest.fixture(scope="session", params=archs.ARCHS, ids=archs.ARCHS)
def case(request, tmp_path_factory) -> Case:
    import transformers

    import interp

    name, verbosity = request.param, transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # quiet while building; restored for other tests
    transformers.logging.disable_progress_bar()
    try:
        path = archs.build(name, tmp_path_factory.mktemp(name))
        tok, hf = archs.load_tokenizer(path), archs.load_hf(path)
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    vocab = tok.get_vocab()
    c = Case(name, path, interp.load(str(path)), hf, tok, None, vocab["Ġ" + TARGET], vocab["Ġ" + FOIL])
    c.ids = c.encode(PROMPT)
    return c


def close(got, want, tol: float = TOL, what: str = "") -> None:
    got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != reference {tuple(want.shape)}"
    err = (got - want).abs().max().item()
    assert err <= tol, f"{what}: off by {err:.3g} (tolerance {tol:g})"


# ---------------------------------------------------------------- 1. capture


def test_capture_log_probs(case):
    import interp
    from interp.activations import to_tokens

    tokens, _ = to_tokens(case.model, PROMPT)
    assert tokens.tolist() == case.ids.tolist(), "interp tokenises the prompt differently from the tokenizer"
    acts = interp.capture(case.model, PROMPT, names=["blocks.0.hook_resid_pre"], keep_logits=True)
    close(acts.logits.log_softmax(-1), archs.log_probs(case.hf, case.ids), what="log-probs")


# ---------------------------------------------------------------- 2. patterns


def test_patterns(case):
    from interp.attention import head_table, pattern_table, patterns

    pats = patterns(case.model, PROMPT)
    close(pats.masked, archs.attentions(case.hf, case.ids), what="masked patterns")
    n_layers = case.hf.config.num_hidden_layers
    for L in range(n_layers):
        with archs.unmasked(case.hf, [L]):
            ref = archs.attentions(case.hf, case.ids)[L]
        assert ref.triu(1).sum(-1).max() > 1e-3, "reference still masked"  # the check can fail
        close(pats.unmasked[L], ref, what=f"unmasked patterns of layer {L}")
    n_heads, n_pos = pats.masked.shape[1], case.ids.shape[1]
    assert len(head_table(pats)) == n_layers * n_heads
    assert len(pattern_table(pats)) == n_layers * n_heads * n_pos * n_pos


# ---------------------------------------------------------------- 3. mask removal


@pytest.mark.parametrize("removed", ["0", "1", "all"])
def test_mask_removal(case, removed):
    from interp.attention import mask_removal_effect, no_causal_mask

    layers = [0, 1] if removed == "all" else [int(removed)]
    clean = archs.loss(case.hf, case.ids)
    with archs.unmasked(case.hf, layers):
        ref_logp, ref_loss = archs.log_probs(case.hf, case.ids), archs.loss(case.hf, case.ids)
    assert abs(ref_loss - clean) > 1e-3, "removing the mask changes nothing here: the test could not fail"
    with no_causal_mask(case.model, None if removed == "all" else layers), torch.no_grad():
        got = case.model(case.ids).log_softmax(-1)
    close(got, ref_logp, what=f"log-probs with mask removed in {removed}")
    effect = mask_removal_effect(case.model, PROMPT, layers=None if removed == "all" else layers)
    loss = dict(zip(effect.removed, effect.loss))
    assert loss["none"] == pytest.approx(clean, abs=TOL)
    assert loss[removed] == pytest.approx(ref_loss, abs=TOL)


# ---------------------------------------------------------------- 4. direct logit attribution


@pytest.mark.parametrize("neurons", [None, 0, 1])
def test_dla_sum(case, neurons):
    from interp.attribution import attribute

    df = attribute(case.model, PROMPT, target=TARGET, foil=FOIL, neurons=neurons)
    written = archs.unembed_logits(case.hf, case.ids)[-1]
    ref = (written[case.target] - written[case.foil]).item()
    # 1e-4 relative, not 1e-3: on this prompt Gemma 2's softcap moves the difference by 9e-4 of it
    assert df["value"].sum() == pytest.approx(ref, rel=1e-4, abs=TOL)
    heads = df[df.kind == "head"]
    n_layers, n_heads = case.hf.config.num_hidden_layers, archs.n_heads(case.hf)
    assert sorted(zip(heads["layer"], heads["head"])) == [(L, h) for L in range(n_layers) for h in range(n_heads)]
    if neurons is not None:
        assert (df.kind == "neuron").sum() == archs.d_mlp(case.hf)


def test_dla_heads(case):
    from interp.attribution import attribute

    df = attribute(case.model, PROMPT, target=TARGET, foil=FOIL)
    heads = df[df.kind == "head"].sort_values(["layer", "head"])
    ref = archs.head_shares(case.hf, case.ids, case.target, case.foil)
    assert len(heads) == ref.numel()  # one row per (layer, head)
    got = torch.tensor(heads["value"].to_numpy()).reshape(ref.shape)
    close(got, ref, tol=TOL + 1e-3 * ref.abs().max().item(), what="per-head direct logit shares")


# ---------------------------------------------------------------- 5. logit lens


def test_logit_lens(case):
    from interp.attribution import logit_lens

    lens = logit_lens(case.model, PROMPT, k=3)
    n_layers = case.hf.config.num_hidden_layers
    assert sorted(lens.layer.unique()) == list(range(n_layers + 1))
    last = lens[lens.layer == n_layers].sort_values("rank")
    probs = archs.logits(case.hf, case.ids)[0, -1].softmax(-1)
    top = probs.topk(3)
    assert last.token_id.tolist() == top.indices.tolist()
    close(torch.tensor(last.prob.to_numpy()), top.values, what="last-layer lens probabilities")


# ---------------------------------------------------------------- 6. ablation


def _hf_sweep(case, replacement) -> torch.Tensor:
    """HF logit difference [layer head] with each head's z replaced by replacement[L] (a tensor
    [1 pos head*d_head] whose head slice is used)."""
    hf = case.hf
    n_layers, H, dh = hf.config.num_hidden_layers, archs.n_heads(hf), archs.d_head(hf)
    out = torch.zeros(n_layers, H)
    for L in range(n_layers):
        for h in range(H):
            value = replacement[L][..., h * dh:(h + 1) * dh]
            with archs.replace_heads(hf, {(L, h): lambda z, v=value: v.expand_as(z)}):
                out[L, h] = archs.logit_diff(hf, case.ids, case.target, case.foil)
    return out


def _replacement(case, mode: str) -> dict:
    n_layers = case.hf.config.num_hidden_layers
    if mode == "zero":
        return {L: torch.zeros(1, 1, archs.n_heads(case.hf) * archs.d_head(case.hf)) for L in range(n_layers)}
    refs = [archs.head_z(case.hf, case.encode(r)) for r in REFERENCES]
    if mode == "mean":  # per position, over the reference prompts (all of PROMPT's length)
        return {L: torch.stack([r[L] for r in refs]).mean(0) for L in range(n_layers)}
    return refs[0]  # resample from one reference prompt: it is the only source


@pytest.mark.parametrize("mode", ["zero", "mean", "resample"])
def test_ablation_sweep(case, mode):
    from interp.ablation import sweep

    reference = {"zero": None, "mean": REFERENCES, "resample": REFERENCES[:1]}[mode]
    assert all(case.encode(r).shape == case.ids.shape for r in REFERENCES)
    df = sweep(case.model, PROMPT, TARGET, FOIL, mode=mode, reference=reference)
    clean = archs.logit_diff(case.hf, case.ids, case.target, case.foil)
    assert df["clean"].tolist() == pytest.approx([clean] * len(df), abs=TOL)
    ref = _hf_sweep(case, _replacement(case, mode))
    got = torch.tensor(df.sort_values(["layer", "head"])["ablated"].to_numpy()).reshape(ref.shape)
    close(got, ref, what=f"{mode}-ablated logit difference per head")


def test_ablate_sets(case):
    from interp.ablation import ablate_sets

    heads = [(0, 1), (1, 2)]
    df = ablate_sets(case.model, PROMPT, [heads], TARGET, FOIL)
    with archs.replace_heads(case.hf, {lh: torch.zeros_like for lh in heads}):
        ref = archs.logit_diff(case.hf, case.ids, case.target, case.foil)
    assert len(df) == 1 and df["heads"].item() == "L0H1+L1H2"
    assert df["ablated"].item() == pytest.approx(ref, abs=TOL)


# ---------------------------------------------------------------- 7. patching


def test_patch_heads(case):
    from interp.sweep import logit_diff, patch_heads

    corrupted = case.encode(CORRUPTED)
    assert corrupted.shape == case.ids.shape
    df = patch_heads(case.model, [PROMPT], [CORRUPTED], logit_diff(case.model, TARGET, FOIL, 1))
    clean = archs.logit_diff(case.hf, case.ids, case.target, case.foil)
    assert df["clean"].tolist() == pytest.approx([clean] * len(df), abs=TOL)
    ref = _hf_sweep(case, archs.head_z(case.hf, corrupted))
    got = torch.tensor(df.sort_values(["layer", "head"])["patched"].to_numpy()).reshape(ref.shape)
    close(got, ref, what="patched logit difference per head")


# ---------------------------------------------------------------- 8. head classes


def test_head_scores(case):
    from interp.heads import head_scores

    block = list(range(60, 68))
    tokens = torch.tensor([[archs.BOS] + block + block])
    scores = head_scores(case.model, tokens=tokens)
    A = archs.attentions(case.hf, tokens)  # [layer head query key]
    n = tokens.shape[1]
    q = torch.arange(n)
    ref = {"previous_token": A[:, :, q[2:], q[2:] - 1].mean(-1),  # key q-1, queries 2..
           "bos": A[:, :, 1:, 0].mean(-1)}  # key 0, queries 1..
    for kind, want in ref.items():
        got = scores[scores.kind == kind].sort_values(["layer", "head"])["score"].to_numpy()
        close(torch.tensor(got).reshape(want.shape), want, what=f"{kind} scores")
    default = head_scores(case.model)
    assert default["score"].between(0, 1).all()


# ---------------------------------------------------------------- 9. sampling


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_next_token_distribution(case, temperature):
    from interp.sampling import top_tokens

    df = top_tokens(case.model, PROMPT, temperature=temperature, k=5)
    probs = (archs.logits(case.hf, case.ids)[0, -1].double() / temperature).softmax(-1)
    top = probs.topk(5)
    assert df.token_id.tolist() == top.indices.tolist()
    close(torch.tensor(df.prob.to_numpy()), top.values, what=f"next-token probabilities at T={temperature}")


def test_sampling(case):
    from interp.sampling import sample

    a = sample(case.model, PROMPT, n=2, max_new_tokens=4, temperature=1.0, seed=7)
    b = sample(case.model, PROMPT, n=2, max_new_tokens=4, temperature=1.0, seed=7)
    assert a.equals(b)
    greedy = sample(case.model, PROMPT, n=1, max_new_tokens=4, temperature=0, seed=0)
    new = archs.greedy(case.hf, case.ids, 4)
    assert greedy["text"].item() == case.tok.decode(new)
    assert greedy["n_new_tokens"].item() == len(new)


# ---------------------------------------------------------------- 10. embeddings


def test_embeddings(case):
    from interp.embeddings import analogy, neighbors

    near = neighbors(case.model, TARGET, k=3)
    assert list(near.columns) == ["rank", "word", "token_id", "cosine"] and len(near) == 3
    assert case.target not in near.token_id.tolist()
    assert near.cosine.is_monotonic_decreasing and near.cosine.between(-1, 1).all()
    assert len(analogy(case.model, TARGET, FOIL, "dd", k=3)) == 3


# ---------------------------------------------------------------- 11. hook points and capture-all


def test_hook_points_and_capture_all(case):
    import interp

    points = interp.hook_points(case.model, PROMPT)
    assert len(points) > 0
    acts = interp.capture(case.model, PROMPT)
    assert "blocks.0.attn.hook_pattern" in acts
    assert acts["blocks.1.attn.hook_pattern"].shape[-2:] == (case.ids.shape[1],) * 2


# ---------------------------------------------------------------- 12. no trace


def _analyses(case) -> dict:
    import interp
    from interp import ablation, attention, attribution, embeddings, heads, sampling, sweep

    def unmasked_forward():
        with attention.no_causal_mask(case.model), torch.no_grad():
            case.model(case.ids)

    return {
        "capture": lambda: interp.capture(case.model, PROMPT),
        "hook_points": lambda: interp.hook_points(case.model, PROMPT),
        "patterns": lambda: attention.patterns(case.model, PROMPT),
        "no_causal_mask": unmasked_forward,
        "mask_removal_effect": lambda: attention.mask_removal_effect(case.model, PROMPT),
        "attribute": lambda: attribution.attribute(case.model, PROMPT, TARGET, FOIL, neurons=1),
        "logit_lens": lambda: attribution.logit_lens(case.model, PROMPT, k=3),
        "sweep": lambda: ablation.sweep(case.model, PROMPT, TARGET, FOIL),
        "sweep_mean": lambda: ablation.sweep(case.model, PROMPT, TARGET, FOIL, mode="mean", reference=REFERENCES),
        "ablate_sets": lambda: ablation.ablate_sets(case.model, PROMPT, [[(0, 1), (1, 2)]], TARGET, FOIL),
        "patch_heads": lambda: sweep.patch_heads(case.model, [PROMPT], [CORRUPTED],
                                                 sweep.logit_diff(case.model, TARGET, FOIL, 1)),
        "head_scores": lambda: heads.head_scores(case.model),
        "top_tokens": lambda: sampling.top_tokens(case.model, PROMPT),
        "sample": lambda: sampling.sample(case.model, PROMPT, n=2, max_new_tokens=3),
        "neighbors": lambda: embeddings.neighbors(case.model, TARGET, k=3),
    }


def test_no_trace(case, unchanged):
    """Parameters byte-identical and no hooks left after every analysis, also one that raised
    (whether it should have raised is the other tests' business)."""
    traces, raised = {}, {}
    for name, run in _analyses(case).items():
        try:
            with unchanged(case.model):
                try:
                    run()
                except Exception as e:  # noqa: BLE001  recorded; the trace check still runs
                    raised[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:120]
        except AssertionError as e:
            traces[name] = str(e).splitlines()[0]
    assert not traces, f"analyses left a trace: {traces} (raised on the way: {raised})"


# ---------------------------------------------------------------- 13. CLI


COMMANDS = {
    "inspect": ["inspect"],
    "attention": ["attention"],
    "attention-remove-mask": ["attention", "--remove-mask"],
    "attribute": ["attribute", "--target", TARGET, "--foil", FOIL],
    "lens": ["lens", "--k", "3"],
    "ablate": ["ablate", "--target", TARGET, "--foil", FOIL],
    "sample": ["sample", "--n", "2", "--max-new-tokens", "4"],
    "report": ["report", "--target", TARGET, "--foil", FOIL],
    "cache": ["cache", "--hooks", "blocks.*.hook_resid_post"],
    "neighbors": ["neighbors", "ab", "--k", "3"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli(case, command, tmp_path, capsys):
    from interp.cli import main

    given = ["--prompt", PROMPT] if command not in ("cache", "neighbors") else []
    argv = COMMANDS[command][:1] + ["--model", str(case.path)] + given + COMMANDS[command][1:]
    if command == "report":
        argv += ["--out", str(tmp_path / "report")]
    if command == "cache":
        (tmp_path / "data.txt").write_text(f"{PROMPT}\nab ca ba\n", encoding="utf-8")
        argv += ["--data", str(tmp_path / "data.txt"), "--out", str(tmp_path / "cache"), "--no-progress"]
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc == 0, f"interp {' '.join(argv[:1])} exited {rc}: {err.strip().splitlines()[-1:] if err.strip() else ''}"


# ---------------------------------------------------------------- offloaded to disk


def test_offloaded_model_gives_the_plain_dla_and_log_probs(case, tmp_path):
    """Every weight on disk (`interp.offload`): log-probs and per-head DLA still equal the plain
    Hugging Face computation, and the sweep (blocks path) equals the in-memory one."""
    import transformers

    import interp
    from interp import ablation
    from interp.attribution import attribute
    from interp.offload import placement

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model = interp.load(str(case.path), device_map="auto", max_memory={"cpu": 0}, offload_folder=tmp_path / "off")
    finally:
        transformers.logging.set_verbosity(verbosity)
    assert set(placement(model).values()) == {"disk"}
    with torch.no_grad():
        got = model(case.ids).float().log_softmax(-1)
        want = case.hf(case.ids).logits.float().log_softmax(-1)
    close(got, want, what="offloaded log-probs")
    heads = attribute(model, PROMPT, target=TARGET, foil=FOIL).query("kind == 'head'").sort_values(["layer", "head"])
    ref = archs.head_shares(case.hf, case.ids, case.target, case.foil)
    close(torch.tensor(heads["value"].to_numpy()).reshape(ref.shape), ref,
          tol=TOL + 1e-3 * ref.abs().max().item(), what="offloaded per-head direct logit shares")
    a, b = ablation.sweep(case.model, PROMPT, TARGET, FOIL), ablation.sweep(model, PROMPT, TARGET, FOIL)
    close(b["delta"].to_numpy(copy=True), a["delta"].to_numpy(copy=True), what="offloaded head sweep")
