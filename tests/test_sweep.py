"""The fast downstream-only sweep equals the naive hooked loop; patching; input checks."""

from types import SimpleNamespace

import pytest
import torch

from interp.activations import to_tokens
from interp.errors import InterpError
from interp.sweep import (Metric, clean_run, custom, fast_sweep, logit_diff, logprob, loss, naive_sweep,
                          patch_heads, position_mask, supports_fast, zero_replacement)

IOI = ["When Mary and John went to the store, John gave a drink to",
       "When Adam and Anna went to the park, Anna gave a ball to",
       "The king and the queen"]


def _setup(model):
    tokens, strs = to_tokens(model, IOI)
    return tokens, [len(s) for s in strs]


def _replacements(model, tokens):
    """zero, a mean over the batch, and a resample (prompt i takes prompt i+1's z)."""
    z, _ = clean_run(model, tokens)
    return {"zero": zero_replacement(model, tokens),
            "mean": z.mean(1, keepdim=True).expand_as(z).clone(),
            "resample": z.roll(1, dims=1).clone()}


@pytest.mark.parametrize("fixture", ["tiny_model", "zoo2l"])
@pytest.mark.parametrize("mode", ["zero", "mean", "resample"])
def test_fast_equals_naive(request, fixture, mode, unchanged):
    model = request.getfixturevalue(fixture)
    tokens, lengths = _setup(model)
    repl = _replacements(model, tokens)[mode]
    metric = logit_diff(model, " Mary", " John", len(lengths))
    with unchanged(model):
        c_fast, fast = fast_sweep(model, tokens, repl, metric, lengths=lengths, chunk=3)
        c_naive, naive = naive_sweep(model, tokens, repl, metric, lengths=lengths)
    assert torch.allclose(c_fast, c_naive, atol=1e-4)
    assert (fast - naive).abs().max() < 1e-4
    assert (naive - c_naive).abs().max() > 1e-3  # the ablations do something


@pytest.mark.parametrize("which", ["logprob", "loss", "custom"])
def test_fast_equals_naive_other_metrics(zoo2l, which):
    tokens, lengths = _setup(zoo2l)
    metric = {"logprob": logprob(zoo2l, " Mary", len(lengths)), "loss": loss(),
              "custom": custom(lambda logits, toks: logits[:, 4].log_softmax(-1)[:, 7])}[which]
    repl = _replacements(zoo2l, tokens)["resample"]
    _, fast = fast_sweep(zoo2l, tokens, repl, metric, lengths=lengths, positions=[2, 4, 6])
    _, naive = naive_sweep(zoo2l, tokens, repl, metric, lengths=lengths, positions=[2, 4, 6])
    assert (fast - naive).abs().max() < 1e-4


@pytest.mark.parametrize("fixture", ["tiny_model", "zoo2l"])
def test_patch_fast_equals_naive(request, fixture, unchanged):
    model = request.getfixturevalue(fixture)
    metric = logit_diff(model, " Mary", " John", 1)
    with unchanged(model):
        fast = patch_heads(model, IOI[:1], IOI[1:2], metric, engine="fast")
        naive = patch_heads(model, IOI[:1], IOI[1:2], metric, engine="naive")
    assert (fast["patched"] - naive["patched"]).abs().max() < 1e-4
    assert len(fast) == model.cfg.n_layers * model.cfg.n_heads


def test_patch_with_itself_changes_nothing(zoo2l):
    df = patch_heads(zoo2l, IOI[:1], IOI[:1], logit_diff(zoo2l, " Mary", " John", 1))
    assert df["delta"].abs().max() < 1e-4


def test_patch_rejects_unequal_lengths(zoo2l):
    with pytest.raises(InterpError, match="equal token length"):
        patch_heads(zoo2l, IOI[:1], IOI[2:], logit_diff(zoo2l, " Mary", " John", 1))


def test_metric_loss_matches_cross_entropy():
    torch.manual_seed(0)
    logits, tokens = torch.randn(2, 5, 11), torch.randint(0, 11, (2, 5))
    got = loss()(logits, tokens, torch.tensor([4, 4]))
    want = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), tokens[:, 1:].reshape(-1),
                                             reduction="none").view(2, 4).mean(1)
    assert torch.allclose(got, want, atol=1e-6)


def test_metric_logit_diff_reads_last_real_position():
    logits = torch.zeros(2, 3, 4)
    logits[0, 1, 2], logits[1, 2, 3] = 5.0, -2.0
    m = Metric("logit_diff", target=torch.tensor([2, 3]), foil=torch.tensor([0, 0]))
    assert m(logits, torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 2])).tolist() == [5.0, -2.0]


def test_custom_metric_shape_checked():
    with pytest.raises(InterpError, match=r"shape \[batch\]"):
        custom(lambda lg, t: lg.sum())(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), torch.tensor([2, 2]))


def test_position_out_of_range():
    with pytest.raises(InterpError, match="positions 0-4"):
        position_mask([5], 5, "cpu")
    assert position_mask(None, 3, "cpu").all() and position_mask([-1], 3, "cpu").tolist() == [False, False, True]


def test_block_sweep_equals_naive_with_padding_and_positions(zoo2l):
    """The any-architecture path (`interp.blocks`), run here on GPT-2, against the hooked loop:
    two prompts of different lengths, a last-position metric and a loss, replacement at two
    positions."""
    from interp.blocks import block_sweep

    tokens, lengths = _ablation_tokens(zoo2l)
    repl = zero_replacement(zoo2l, tokens)
    for metric in (logit_diff(zoo2l, [" Mary", " Anna"], [" John", " John"], 2), loss()):
        for positions in (None, [2, 5]):
            clean_b, fast = block_sweep(zoo2l, tokens, repl, metric, lengths=lengths, positions=positions)
            clean_n, slow = naive_sweep(zoo2l, tokens, repl, metric, lengths=lengths, positions=positions)
            assert torch.allclose(clean_b, clean_n, atol=1e-5)
            assert (fast - slow).abs().max() < 1e-4
            assert (fast - clean_n[None, None]).abs().max() > 1e-3  # the ablations do something


def _ablation_tokens(model):
    from interp.activations import to_tokens

    prompts = ["When Mary and John went to the store, John gave a drink to", "When Anna and John went home, John gave a book to"]
    tokens, strs = to_tokens(model, prompts)
    return tokens, [len(s) for s in strs]


def test_self_check_catches_wrong_weights(zoo2l, monkeypatch):
    import interp.sweep as sweep

    real = sweep._weights

    def skewed(model):
        w = real(model)
        w.W_U = w.W_U * 1.5
        return w

    monkeypatch.setattr(sweep, "_weights", skewed)
    tokens, lengths = _setup(zoo2l)
    with pytest.raises(RuntimeError, match="disagrees"):
        fast_sweep(zoo2l, tokens, zero_replacement(zoo2l, tokens), logit_diff(zoo2l, " Mary", " John", 3), lengths=lengths)


def test_bad_replacement_shape(zoo2l):
    tokens, _ = _setup(zoo2l)
    with pytest.raises(InterpError, match="layer batch pos head d_head"):
        fast_sweep(zoo2l, tokens, torch.zeros(1, 2, 3), loss())


def test_clean_run_engine_equals_bridge(zoo2l):
    """clean_run takes the engine when no hook is attached and the bridge otherwise: same z and resid_mid."""
    tokens, _ = _setup(zoo2l)
    z_fast, mid_fast = clean_run(zoo2l, tokens, mids=True)
    with zoo2l.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: x)]):  # forces the bridge path
        z_bridge, mid_bridge = clean_run(zoo2l, tokens, mids=True)
    assert z_fast.shape == z_bridge.shape == (2, *tokens.shape, 4, zoo2l.cfg.d_head)
    assert (z_fast - z_bridge).abs().max() < 1e-5 and (mid_fast - mid_bridge).abs().max() < 1e-4


def test_fast_sweep_refuses_a_hooked_model(zoo2l):
    tokens, lengths = _setup(zoo2l)
    with zoo2l.hooks(fwd_hooks=[("blocks.0.attn.hook_z", lambda z, hook: z * 0)]):
        with pytest.raises(InterpError, match="hooks attached.*engine='naive'"):
            fast_sweep(zoo2l, tokens, zero_replacement(zoo2l, tokens), loss(), lengths=lengths)


@pytest.mark.parametrize("positions", [[5], [4, 9], [-1]])
@pytest.mark.parametrize("mode", ["zero", "resample"])
def test_sweep_from_a_later_position_equals_naive(zoo2l, positions, mode):
    """Replacing z from position P on: the fast sweep skips positions < P (their clean keys and
    values stand in) and must still equal the naive loop."""
    from interp.sweep import _first_changed

    tokens, lengths = _setup(zoo2l)
    tokens, lengths = tokens[:2], lengths[:2]  # equal lengths: every last position is >= P
    repl = _replacements(zoo2l, tokens)[mode]
    metric = logit_diff(zoo2l, " Mary", " John", 2)
    mask = position_mask(positions, tokens.shape[1], "cpu")
    last = torch.tensor(lengths) - 1
    assert _first_changed(mask, last, metric) == min(p % tokens.shape[1] for p in positions) > 0
    _, fast = fast_sweep(zoo2l, tokens, repl, metric, lengths=lengths, positions=positions, chunk=3)
    clean, naive = naive_sweep(zoo2l, tokens, repl, metric, lengths=lengths, positions=positions)
    assert (fast - naive).abs().max() < 1e-4 and (naive - clean).abs().max() > 1e-3  # and it changed something


def test_first_changed_falls_back_to_zero():
    from interp.sweep import _first_changed

    mask = position_mask([3], 6, "cpu")
    assert _first_changed(mask, torch.tensor([5, 2]), Metric("logit_diff")) == 0  # a prompt ends before 3
    assert _first_changed(mask, torch.tensor([5, 5]), loss()) == 0  # the loss reads every position
    assert _first_changed(position_mask(None, 6, "cpu"), torch.tensor([5]), Metric("logprob")) == 0
