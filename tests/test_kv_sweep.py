"""Prefix key/value replay of head sweeps (`interp.blocks`, `interp.kv`) against the hooked loop.

On tiny random 2-layer models of every causal architecture (`tests/archs.py`), `block_sweep`
replacing heads from a position P > 0 with a last-position metric replays positions P.. only,
reading the clean keys and values of positions < P from a cache. The reference is
`interp.sweep.naive_sweep` (one hooked bridge forward per head, every position recomputed),
which shares no code with the replay. Cases: the last position only (prompts of equal length),
and a P in the middle with right-padded prompts of unequal length, each with zero and mean
replacement.
"""

from __future__ import annotations

import pytest
import torch

import archs

pytestmark = pytest.mark.usefixtures("one_thread")

B, S = 3, 9
TOL = 1e-4  # relative to the largest swept value


@pytest.fixture(scope="module", params=archs.ARCHS, ids=archs.ARCHS)
def model(request, tmp_path_factory):
    return archs.bridged(request.param, tmp_path_factory.mktemp(request.param))


def _tokens(lengths: list[int]) -> torch.Tensor:
    """Random ids [B S] (no specials), right-padded with the pad token after each length."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, archs.VOCAB, (B, S), generator=g)
    for i, n in enumerate(lengths):
        tokens[i, n:] = archs.PAD
    return tokens


def _replacement(model, tokens: torch.Tensor, mode: str) -> torch.Tensor:
    from interp.sweep import clean_run, zero_replacement

    if mode == "zero":
        return zero_replacement(model, tokens)
    reference = torch.randint(3, archs.VOCAB, (4, S), generator=torch.Generator().manual_seed(1))
    z, _ = clean_run(model, reference)  # [layer 4 pos head d_head]: the mean over 4 other prompts
    return z.mean(1, keepdim=True).expand(-1, B, -1, -1, -1).contiguous()


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("lengths, positions", [([S] * B, [S - 1]), ([S, 6, 8], [4, 5])],
                         ids=["last-position", "middle-unequal-lengths"])
def test_prefix_sweep_equals_hooked_loop(model, mode, lengths, positions, monkeypatch):
    import interp.blocks
    from interp.sweep import Metric, naive_sweep

    caches, kv_sweep = [], interp.blocks._kv_sweep

    def spy(model, tails, cache, *args):
        caches.append(cache)
        return kv_sweep(model, tails, cache, *args)

    tokens = _tokens(lengths)
    repl = _replacement(model, tokens, mode)
    metric = Metric("logit_diff", torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]))
    clean_ref, ref = naive_sweep(model, tokens, repl, metric, lengths=lengths, positions=positions)
    monkeypatch.setattr(interp.blocks, "_kv_sweep", spy)
    clean, got = interp.blocks.block_sweep(model, tokens, repl, metric, lengths=lengths, positions=positions)
    assert len(caches) == 1 and caches[0].length == min(positions), "the prefix replay did not run"
    assert torch.allclose(clean, clean_ref, atol=1e-5), (clean, clean_ref)
    rel = ((got - ref).abs().max() / ref.abs().max()).item()
    assert rel <= TOL, f"prefix replay off the hooked loop by {rel:.2g} (relative)"


def test_logprob_metric_and_one_head_per_wave(model):
    """A last-position log-prob (full unembedding), waves of one (layer, head) copy each."""
    from interp.blocks import block_sweep
    from interp.sweep import Metric, naive_sweep, zero_replacement

    tokens = _tokens([S] * B)
    metric = Metric("logprob", torch.tensor([5, 6, 7]))
    repl = zero_replacement(model, tokens)
    _, ref = naive_sweep(model, tokens, repl, metric, positions=[S - 2], layers=[1])
    _, got = block_sweep(model, tokens, repl, metric, positions=[S - 2], layers=[1], chunk=1)
    assert torch.isnan(got[0]).all()
    assert ((got[1] - ref[1]).abs().max() / ref[1].abs().max()).item() <= TOL


def test_no_trace(model, unchanged):
    """The prefix replay leaves the model as it was (`unchanged` checks weights, hooks, flags) and
    no hook of its own attached."""
    from interp.blocks import block_sweep
    from interp.engine import hooked
    from interp.sweep import Metric, zero_replacement

    tokens = _tokens([S] * B)
    attached = hooked(model)
    with unchanged(model):
        clean, out = block_sweep(model, tokens, zero_replacement(model, tokens),
                                 Metric("logit_diff", torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10])),
                                 positions=[S - 1])
    assert hooked(model) == attached
    assert torch.isfinite(clean).all() and torch.isfinite(out).all()


def test_tail_cuts_known_keywords_and_refuses_others():
    from interp.kv import tail

    x, mask = torch.randn(2, 9, 4), torch.zeros(2, 1, 9, 9)
    cos = torch.randn(1, 9, 8)
    args, kwargs = tail((x,), {"attention_mask": mask, "position_embeddings": (cos, cos),
                               "position_ids": torch.arange(9)[None], "use_cache": False}, 6)
    assert args[0].shape == (2, 3, 4) and kwargs["attention_mask"].shape == (2, 1, 3, 9)
    assert kwargs["position_embeddings"][0].shape == (1, 3, 8) and kwargs["position_ids"].tolist() == [[6, 7, 8]]
    with pytest.raises(ValueError, match="no rule"):
        tail((x,), {"alibi": torch.zeros(2, 9, 9)}, 6)
