"""The rotary capture engine (Llama, Qwen2, Mistral): every hook point equals the bridge's, the
residual stream, patterns, head outputs and log-probs equal a plain transformers forward (the
independent reference), only what is asked is computed, and other models fall back."""

import pytest
import torch

import archs
from interp import rotary_engine
from interp.activations import capture, hook_names, to_tokens
from interp.errors import InterpError
from test_engine import _close

FAMILIES = ("llama", "qwen2", "mistral")
# 20+ tokens: past the tiny Mistral's 4-token sliding window
PROMPTS = ["ab cd ef gh ia bb cc dd ee ff gg hh ii ab cd ef gh ia bb cc", "ab cd", "ef gh ia bb cc dd"]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    model = archs.bridged(request.param, path)  # writes the checkpoint into path
    return request.param, model, archs.load_hf(path)


def _every_point(model, ids, atol):
    ref = capture(model, ids, engine="bridge", keep_logits=True)
    acts = capture(model, ids, engine="fast", keep_logits=True)
    assert list(acts.keys()) == list(ref.keys()) == [n for n in hook_names(model) if n != "hook_pos_embed"]
    for name in ref.keys():
        _close(name, acts[name], ref[name], atol)
    _close("log-probs", acts.logits.log_softmax(-1), ref.logits.log_softmax(-1), atol=10 * atol)
    return acts


def test_every_hook_point_equals_the_bridge(tiny):
    name, model, _ = tiny
    assert rotary_engine.supports(model)
    ids, strs = to_tokens(model, PROMPTS)
    assert len({len(s) for s in strs}) == len(PROMPTS)  # right-padded rows of different lengths
    acts = _every_point(model, ids, 1e-5)
    scores = acts["blocks.0.attn.hook_attn_scores"][0, 0]
    if name == "mistral":  # the sliding window hides keys 4 or more positions back
        assert torch.isinf(scores[10, :7]).all() and not torch.isinf(scores[10, 7:11]).any()


def test_every_hook_point_equals_the_bridge_on_smollm2(smollm2):
    assert rotary_engine.supports(smollm2)
    ids, _ = to_tokens(smollm2, ["When Mary and John went to the store, John gave a drink to", "The king"])
    _every_point(smollm2, ids, 5e-5)


def test_equals_plain_transformers(tiny):
    """Independent of the bridge: hidden states, patterns, the output projections' inputs and
    log-probs from an eager transformers forward of the same checkpoint."""
    name, model, hf = tiny
    ids = archs.encode(archs.load_tokenizer(model.info.path), PROMPTS[0], model.info.prepends_bos)
    L = hf.config.num_hidden_layers
    names = [f"blocks.{l}.{p}" for l in range(L) for p in ("hook_resid_pre", "attn.hook_pattern", "attn.hook_z")]
    acts = capture(model, ids, names=names + [f"blocks.{L - 1}.hook_resid_post"], engine="fast", keep_logits=True)
    with torch.no_grad():
        out = hf(ids, output_attentions=True, output_hidden_states=True)
    z = archs.head_z(hf, ids)
    for l in range(L):
        _close(f"resid_pre {l}", acts[f"blocks.{l}.hook_resid_pre"], out.hidden_states[l])
        _close(f"pattern {l}", acts[f"blocks.{l}.attn.hook_pattern"], out.attentions[l])
        _close(f"z {l}", acts[f"blocks.{l}.attn.hook_z"].flatten(-2), z[l])
    final = hf.model.norm(acts[f"blocks.{L - 1}.hook_resid_post"])  # HF's last hidden state is after the norm
    _close("last hidden state", final, out.hidden_states[L])
    _close("log-probs", acts.logits.log_softmax(-1), out.logits.log_softmax(-1), 1e-4)


def test_stops_after_the_last_wanted_stage(tiny, monkeypatch):
    _, model, _ = tiny
    calls = []
    real = rotary_engine._mlp
    monkeypatch.setattr(rotary_engine, "_mlp", lambda b, l, *a: calls.append(l) or real(b, l, *a))
    acts = capture(model, PROMPTS[1], names=["blocks.0.attn.hook_pattern"])
    assert list(acts.keys()) == ["blocks.0.attn.hook_pattern"] and acts.logits is None
    assert calls == []  # the first layer's MLP never ran
    capture(model, PROMPTS[1], names=["blocks.1.hook_resid_pre"])
    assert calls == [0]


def test_filtered_capture_keeps_only_what_was_asked(tiny):
    _, model, _ = tiny
    names = ["blocks.1.attn.hook_rot_q", "blocks.0.mlp.hook_post", "ln_final.hook_scale"]
    acts = capture(model, PROMPTS, names=names)
    assert sorted(acts.keys()) == sorted(names)
    ref = capture(model, PROMPTS, names=names, engine="bridge")
    for n in names:
        _close(n, acts[n], ref[n])


def test_user_hooks_send_capture_to_the_bridge(tiny, unchanged):
    _, model, _ = tiny
    seen = []
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda t, hook: seen.append(1))]):
        capture(model, PROMPTS[1], names=["blocks.1.hook_resid_post"])
        with pytest.raises(InterpError, match="hooks attached"):
            rotary_engine.run(model, model.to_tokens(PROMPTS[1]), ["blocks.1.hook_resid_post"])
    assert seen == [1]  # the bridge ran the user's hook


@pytest.mark.parametrize("name", ["gpt2", "gemma2", "neox"])
def test_other_architectures_are_not_claimed(name, tmp_path):
    model = archs.bridged(name, tmp_path)
    assert not rotary_engine.supports(model)
    with pytest.raises(InterpError, match="rotary engine supports"):
        rotary_engine.run(model, model.to_tokens("ab"), ["blocks.0.hook_resid_pre"])


# ---------------------------------------------------------------- sweeps


def _replay_starts(monkeypatch) -> list:
    """The first position of every attention replay (`rotary_engine.attend`'s start) from now on."""
    starts = []
    real = rotary_engine.attend
    monkeypatch.setattr(rotary_engine, "attend", lambda b, x, cos, sin, start=0, *a: starts.append(start)
                        or real(b, x, cos, sin, start, *a))
    return starts


@pytest.mark.parametrize("positions", [None, [5, 6, 8]], ids=["all", "from-5"])
@pytest.mark.parametrize("kind", ["logit_diff", "logprob", "loss"])
def test_rotary_sweep_equals_the_hooked_loop(tiny, kind, positions, monkeypatch):
    from interp import sweep as sw
    from interp.rotary_sweep import rotary_sweep

    _, model, _ = tiny
    ids, strs = to_tokens(model, [PROMPTS[0], PROMPTS[2]])  # 21 and 7 tokens: both last positions after 5
    lengths = [len(s) for s in strs]
    metric = {"logit_diff": sw.logit_diff(model, "ab", "cd", 2), "logprob": sw.logprob(model, "ab", 2),
              "loss": sw.loss()}[kind]
    zero = sw.zero_replacement(model, ids)
    clean_ref, ref = sw.naive_sweep(model, ids, zero, metric, lengths=lengths, positions=positions)
    starts = _replay_starts(monkeypatch)
    clean, got = rotary_sweep(model, ids, zero, metric, lengths=lengths, positions=positions, chunk=3)
    _close("clean", clean, clean_ref, 1e-5)
    _close("sweep", got, ref, 1e-4)
    # positions before 5 are replayed only when the metric reads more than the last position
    assert set(starts) == ({5} if positions and kind != "loss" else {0})


def test_fast_sweep_takes_the_rotary_path_unless_hooked(tiny, monkeypatch):
    from interp import blocks, rotary_sweep, sweep as sw

    _, model, _ = tiny
    ids = model.to_tokens(PROMPTS[1:2])
    taken = []
    for module, name in ((rotary_sweep, "rotary_sweep"), (blocks, "block_sweep")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _n=name, _r=real, **k: taken.append(_n) or _r(*a, **k))
    metric = sw.logit_diff(model, "ab", "cd", 1)
    sw.fast_sweep(model, ids, sw.zero_replacement(model, ids), metric)
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda t, hook: None)]):
        sw.fast_sweep(model, ids, sw.zero_replacement(model, ids), metric)
    assert taken == ["rotary_sweep", "block_sweep"]


def test_patch_heads_replays_from_the_first_difference(tiny, monkeypatch):
    from interp import sweep as sw

    _, model, _ = tiny
    clean = model.to_tokens([PROMPTS[0]])
    corrupted = clean.clone()
    corrupted[0, 6:9] = corrupted[0, 10:13]  # the prompts first differ at position 6
    metric = sw.logit_diff(model, "ab", "cd", 1)
    z_corrupt, _ = sw.clean_run(model, corrupted)
    _, every = sw.naive_sweep(model, clean, z_corrupt, metric)  # patched at every position
    starts = _replay_starts(monkeypatch)
    df = sw.patch_heads(model, clean, corrupted, metric).sort_values(["layer", "head"])
    assert set(starts) == {6}
    _close("patched", torch.tensor(df["patched"].to_numpy()).reshape(every.shape[:2]), every[..., 0], 1e-4)


def test_rotary_sweep_refuses_what_it_cannot_run(tiny, tmp_path):
    from interp import sweep as sw
    from interp.rotary_sweep import rotary_sweep

    _, model, _ = tiny
    ids = model.to_tokens(PROMPTS[1:2])
    metric = sw.logit_diff(model, "ab", "cd", 1)
    with pytest.raises(InterpError, match="replacement has shape"):
        rotary_sweep(model, ids, torch.zeros(1, 2, 3), metric)
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda t, hook: None)]):
        with pytest.raises(InterpError, match="hooks attached"):
            rotary_sweep(model, ids, sw.zero_replacement(model, ids), metric)
    gpt2 = archs.bridged("gpt2", tmp_path)
    ids = gpt2.to_tokens("ab")
    with pytest.raises(InterpError, match="rotary sweep supports"):
        rotary_sweep(gpt2, ids, sw.zero_replacement(gpt2, ids), sw.logit_diff(gpt2, "ab", "cd", 1))
