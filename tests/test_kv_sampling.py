"""Sampling through a key/value cache (`interp.kv.CachedStepper`) on every causal architecture.

On tiny random 2-layer models (`tests/archs.py`; Mistral and Gemma with sliding windows of 4
tokens, so 30 steps run far past the window), cached generation must give exactly the tokens of
`cache=False` (the whole sequence rerun through the bridge at each step), and each cached step's
next-token log-probs must equal a full bridge forward's.
"""

from __future__ import annotations

import pytest
import torch

import archs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=archs.ARCHS, ids=archs.ARCHS)
def model(request, tmp_path_factory):
    return archs.bridged(request.param, tmp_path_factory.mktemp(request.param))


def _prompt() -> torch.Tensor:
    return torch.randint(3, archs.VOCAB, (3, 6), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_cached_tokens_equal_rerun(model, temperature):
    from interp.sampling import generate

    runs = [generate(model, _prompt(), temperature, 30, torch.Generator().manual_seed(3), cache=c)
            for c in (True, False)]
    assert runs[0][0].shape == (3, 36)
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_each_cached_step_equals_full_forward(model, unchanged):
    from interp.kv import CachedStepper

    tokens = torch.randint(3, archs.VOCAB, (2, 24), generator=torch.Generator().manual_seed(1))
    with unchanged(model):
        step = CachedStepper(model)
        for end in [8, *range(9, 25)]:  # a prompt of 8, then one token a step
            got = step(tokens[:, :end]).log_softmax(-1)
            with torch.no_grad():
                want = model(tokens[:, :end])[:, -1].log_softmax(-1)
            assert (got - want).abs().max().item() <= 1e-4, f"step to {end} tokens"


def test_the_cache_is_used_unless_hooked(model):
    """GPT-2 steps through `interp.engine.Decoder`, every other architecture through the bridge's
    cache (OPT too: the bridge's own wiring hooks on its hook points do not count as a user's);
    hooks attached (or cache=False) rerun the whole sequence."""
    from interp.engine import supports
    from interp.kv import CachedStepper
    from interp.sampling import _stepper

    assert isinstance(_stepper(model, 2), CachedStepper) != supports(model)
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: x)]):
        assert not isinstance(_stepper(model, 2), CachedStepper)
    assert not isinstance(_stepper(model, 2, cache=False), CachedStepper)
