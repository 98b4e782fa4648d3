"""Fast capture engine: every hook point equals the bridge's, only what is asked is computed and
kept, the weights cache follows parameter edits, and non-GPT-2 models fall back to the bridge."""

import pytest
import torch

from interp import engine
from interp.activations import Activations, capture, hook_names, to_tokens
from interp.errors import InterpError

PROMPTS = ["When Mary and John went to the store, John gave a drink to", "The king ruled", "a b c d e f"]


def _bridge_all(model, tokens):
    acts = capture(model, tokens, engine="bridge", keep_logits=True)
    return acts.cache, acts.logits


def _close(name, mine, ref, atol=1e-5):
    assert mine.shape == ref.shape, (name, mine.shape, ref.shape)
    if name.endswith("hook_attn_scores"):
        # masked entries hold -inf in both; compare the masks, then the finite entries
        assert torch.equal(torch.isinf(mine), torch.isinf(ref)), name
        mine, ref = mine.masked_fill(torch.isinf(mine), 0), ref.masked_fill(torch.isinf(ref), 0)
    # float32 sums in another order: the tolerance scales with the tensor's largest entry
    # (the zoo's residual stream reaches ~750 in a few dimensions)
    err, size = (mine - ref).abs().max().item(), max(1.0, ref.abs().max().item())
    assert err <= atol * size, f"{name}: max |engine - bridge| = {err:.3g} (largest entry {size:.3g})"


@pytest.mark.parametrize("fixture", ["tiny_model", "zoo2l", "zoo4l"])
def test_every_hook_point_equals_the_bridge(request, fixture):
    model = request.getfixturevalue(fixture)
    ids, strs = to_tokens(model, PROMPTS)
    assert len({len(s) for s in strs}) == len(PROMPTS)  # different lengths, right-padded
    ref, ref_logits = _bridge_all(model, ids)
    acts = capture(model, ids, engine="fast", keep_logits=True)
    assert list(acts.keys()) == hook_names(model) == list(ref.keys())
    for name in hook_names(model):
        _close(name, acts[name], ref[name])
    assert torch.isinf(acts["blocks.0.attn.hook_attn_scores"]).any()
    _close("logits", acts.logits.log_softmax(-1), ref_logits.log_softmax(-1), atol=1e-4)


def test_filtered_capture_returns_exactly_the_requested_names(zoo4l):
    names = ["blocks.1.attn.hook_q", "blocks.2.attn.hook_pattern", "blocks.0.hook_resid_post"]
    acts = capture(zoo4l, PROMPTS, names=names)
    assert sorted(acts.keys()) == sorted(names) and acts.logits is None
    ref = capture(zoo4l, PROMPTS, names=names, engine="bridge")
    for name in names:
        _close(name, acts[name], ref[name])
    # nothing that was not asked for is held: storage equals the requested tensors' own size
    assert acts.nbytes() == sum(acts[n].numel() * acts[n].element_size() for n in names)


def test_each_hook_alone_keeps_only_itself(tiny_model):
    tokens = tiny_model.to_tokens(PROMPTS[1])
    for name in hook_names(tiny_model):
        acts = capture(tiny_model, tokens, names=[name], engine="fast")
        assert list(acts.keys()) == [name]
        assert acts.nbytes() == acts[name].numel() * acts[name].element_size(), name


def test_glob_and_predicate_filters(zoo2l):
    acts = capture(zoo2l, PROMPTS[:1], names="blocks.*.attn.hook_pattern")
    assert list(acts.keys()) == [f"blocks.{l}.attn.hook_pattern" for l in range(zoo2l.cfg.n_layers)]
    acts = capture(zoo2l, PROMPTS[:1], names=lambda n: n.startswith("ln_final"))
    assert list(acts.keys()) == [n for n in hook_names(zoo2l) if n.startswith("ln_final")]
    assert sorted(acts.keys()) == ["ln_final.hook_normalized", "ln_final.hook_scale"]


def test_stops_after_the_last_wanted_stage(zoo2l, monkeypatch):
    calls = []
    for stage in ("_attn_stage", "_mlp_stage", "_unembed"):
        real = getattr(engine, stage)
        monkeypatch.setattr(engine, stage, lambda *a, _r=real, _s=stage: calls.append((_s, a[1] if _s != "_unembed" else None)) or _r(*a))
    tokens = zoo2l.to_tokens(PROMPTS[0])
    engine.run(zoo2l, tokens, ["blocks.0.hook_resid_post"])
    assert calls == [("_attn_stage", 0), ("_mlp_stage", 0)]
    calls.clear()
    engine.run(zoo2l, tokens, ["blocks.1.hook_resid_pre"])
    assert calls == [("_attn_stage", 0), ("_mlp_stage", 0)]
    calls.clear()
    engine.run(zoo2l, tokens, ["blocks.1.attn.hook_z"])
    assert calls == [("_attn_stage", 0), ("_mlp_stage", 0), ("_attn_stage", 1)]
    calls.clear()
    _, logits = engine.run(zoo2l, tokens, [], logits=True)
    assert calls[-1] == ("_unembed", None) and logits.shape == (1, tokens.shape[1], zoo2l.cfg.d_vocab)
    calls.clear()
    assert engine.run(zoo2l, tokens, []) == ({}, None) and calls == []


def test_sdpa_unless_scores_or_pattern_wanted(zoo2l, monkeypatch):
    used = []
    real = engine.F.scaled_dot_product_attention
    monkeypatch.setattr(engine.F, "scaled_dot_product_attention", lambda *a, **k: used.append(1) or real(*a, **k))
    tokens = zoo2l.to_tokens(PROMPTS[0])
    engine.run(zoo2l, tokens, ["blocks.1.attn.hook_z"])
    assert len(used) == 2
    used.clear()
    engine.run(zoo2l, tokens, ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_z"])
    assert len(used) == 1


def test_capture_leaves_model_unchanged(zoo4l, unchanged):
    with unchanged(zoo4l):
        acts = capture(zoo4l, PROMPTS, keep_logits=True, engine="fast")
        for t in acts.cache.values():  # no captured tensor aliases a weight
            t.add_(1.0)
        with pytest.raises(InterpError):
            capture(zoo4l, PROMPTS, names="blocks.9.*", engine="fast")
    assert isinstance(acts, Activations)


def test_weights_are_cached_and_follow_parameter_edits(tiny_model):
    w = engine.weights(tiny_model)
    assert engine.weights(tiny_model) is w
    capture(tiny_model, PROMPTS[:1], engine="bridge")
    assert engine.weights(tiny_model) is w  # a bridge forward changes nothing
    param = next(p for n, p in tiny_model.named_parameters() if "mlp" in n and "bias" in n)
    before = param.detach().clone()
    try:
        with torch.no_grad():
            param.add_(0.5)
        edited = engine.weights(tiny_model)
        assert edited is not w
        tokens = tiny_model.to_tokens(PROMPTS[1])
        fast = capture(tiny_model, tokens, names="ln_final.hook_normalized", engine="fast")
        ref = capture(tiny_model, tokens, names="ln_final.hook_normalized", engine="bridge")
        _close("ln_final.hook_normalized", fast["ln_final.hook_normalized"], ref["ln_final.hook_normalized"])
    finally:
        with torch.no_grad():
            param.copy_(before)
    assert engine.weights(tiny_model) is not w  # restored values, new version: re-extracted


def test_hooks_of_the_user_send_capture_to_the_bridge(zoo2l, unchanged):
    tokens = zoo2l.to_tokens(PROMPTS[0])
    zero_z = ("blocks.0.attn.hook_z", lambda z, hook: z * 0)
    with unchanged(zoo2l):
        clean = capture(zoo2l, tokens, names="blocks.1.hook_resid_pre")["blocks.1.hook_resid_pre"]
        assert not engine.hooked(zoo2l)
        with zoo2l.hooks(fwd_hooks=[zero_z]):
            assert engine.hooked(zoo2l)
            acts = capture(zoo2l, tokens, names=["blocks.0.attn.hook_z", "blocks.1.hook_resid_pre"])
            with pytest.raises(InterpError, match="hooks attached"):
                capture(zoo2l, tokens, names="blocks.0.attn.hook_z", engine="fast")
        assert not engine.hooked(zoo2l)
    assert acts["blocks.0.attn.hook_z"].abs().max() == 0  # the hook ran
    assert (acts["blocks.1.hook_resid_pre"] - clean).abs().max() > 1e-3


def test_engine_argument_is_checked():
    with pytest.raises(InterpError, match="engine 'turbo'"):
        capture(None, ["a"], engine="turbo")


def test_too_many_positions_refused(tiny_model):
    n_ctx = tiny_model.cfg.n_ctx
    with pytest.raises(InterpError, match="at most"):
        engine.run(tiny_model, torch.zeros(1, n_ctx + 1, dtype=torch.long), ["hook_embed"])


@pytest.mark.slow
def test_bert_falls_back_to_the_bridge(monkeypatch):
    import interp

    try:
        model = interp.load("all-MiniLM-L6-v2")
    except InterpError as e:
        pytest.skip(str(e))
    assert not engine.supports(model)
    monkeypatch.setattr(engine, "run", lambda *a, **k: pytest.fail("fast engine used on BERT"))
    acts = capture(model, ["The cat sat."], names="blocks.0.attn.hook_pattern")
    assert acts["blocks.0.attn.hook_pattern"].shape[1] == model.cfg.n_heads
    with pytest.raises(InterpError, match="engine 'fast' supports GPT-2-style"):
        capture(model, ["The cat sat."], engine="fast")


def test_decoder_steps_equal_full_forwards(zoo2l, unchanged):
    """Prompt, then 6 sampled tokens one at a time: every step's logits equal the bridge's full
    forward at the last position; the model is unchanged."""
    from interp.engine import Decoder

    tokens = zoo2l.to_tokens(["When Mary and John went to the store,", "The king and the queen went to"])[:, :8]
    g = torch.Generator().manual_seed(0)
    with unchanged(zoo2l):
        dec = Decoder(zoo2l, batch=2)
        step = dec(tokens)
        for _ in range(6):
            with torch.no_grad():
                full = zoo2l(tokens)[:, -1]
            assert (step - full).abs().max() < 1e-4
            nxt = torch.multinomial(step.softmax(-1), 1, generator=g)
            tokens = torch.cat([tokens, nxt], 1)
            step = dec(nxt)


def test_decoder_refuses_past_the_context(zoo2l):
    from interp.engine import Decoder

    dec = Decoder(zoo2l, batch=1)
    dec(torch.zeros(1, zoo2l.cfg.n_ctx, dtype=torch.long))
    with pytest.raises(InterpError, match="at most"):
        dec(torch.zeros(1, 1, dtype=torch.long))
