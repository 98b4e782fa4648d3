"""Batched runs of prompts of different lengths give the same per-prompt results as single runs.

GPT-2 attention is causal and `capture` pads on the right, so padding comes after every real
position and cannot be attended to: the real positions of a batched run must equal the
one-prompt runs. In float32 they differ only by rounding (different matmul shapes): checked
relative to each tensor's scale. In float64 the rounding vanishes and the check is exact to 1e-9,
which a padding leak (an O(1) effect) could not pass.
"""

import inspect

import pytest
import torch

import interp
from interp.activations import capture

PROMPTS = ["When Mary and John went to the store, John gave a drink to",
           "The king ruled the kingdom.",
           "The capital of France is",
           "a"]
ENGINES = ["bridge", "fast"] if "engine" in inspect.signature(capture).parameters else [None]
_ATTN = ("hook_pattern", "hook_attn_scores")


def _run(model, prompts, engine):
    kwargs = {"engine": engine} if engine else {}
    return capture(model, prompts, keep_logits=True, **kwargs)


def _worst(batch, singles) -> dict:
    """Largest |batched - single| over real positions per activation, relative to its scale."""
    worst = {}
    for i, single in enumerate(singles):
        n = single.lengths[0]
        assert batch.tokens[i] == single.tokens[0] and batch.lengths[i] == n
        pairs = {"logits": (batch.logits[i, :n], single.logits[0])}
        for name, value in single.cache.items():
            got = batch[name][i][:, :n, :n] if name.endswith(_ATTN) else batch[name][i][:n]
            pairs[name] = (got, value[0])
        for name, (got, want) in pairs.items():
            finite = torch.isfinite(want)  # hook_attn_scores holds -inf above the diagonal
            assert torch.equal(finite, torch.isfinite(got)), f"{name}: masked positions differ"
            scale = want[finite].abs().max().clamp_min(1.0)
            worst[name] = max(worst.get(name, 0.0), float((got[finite] - want[finite]).abs().max() / scale))
    return worst


@pytest.mark.parametrize("engine", ENGINES)
def test_batched_capture_equals_one_at_a_time(zoo4l, engine, unchanged):
    with unchanged(zoo4l):
        batch = _run(zoo4l, PROMPTS, engine)
        singles = [_run(zoo4l, p, engine) for p in PROMPTS]
    assert len(set(batch.lengths)) == len(PROMPTS)  # really different lengths, so really padded
    worst = _worst(batch, singles)
    assert len(worst) > 50  # every hook point was compared, plus the logits
    bad = {k: v for k, v in worst.items() if v > 1e-5}
    assert not bad, bad


@pytest.mark.slow
def test_batched_equals_single_exactly_in_float64():
    model = interp.load("zoo-4l").to(torch.float64)  # a private copy: the session model stays float32
    engine = ENGINES[0]  # the bridge: the fast engine runs float32 weights only
    batch = _run(model, PROMPTS, engine)
    worst = _worst(batch, [_run(model, p, engine) for p in PROMPTS])
    assert max(worst.values()) < 1e-9, max(worst, key=worst.get)

