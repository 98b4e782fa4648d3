"""Batched runs of prompts of different lengths give the same per-prompt results as single runs."""

import torch

from interp.activations import capture

PROMPTS = ["When Mary and John went to the store, John gave a drink to",
           "The king ruled the kingdom.",
           "The capital of France is"]


def test_batched_capture_equals_one_at_a_time(zoo4l):
    batch = capture(zoo4l, PROMPTS, keep_logits=True)
    assert len(set(batch.lengths)) == 3
    for i, prompt in enumerate(PROMPTS):
        single = capture(zoo4l, prompt, keep_logits=True)
        n = single.lengths[0]
        assert batch.tokens[i] == single.tokens[0]
        assert torch.allclose(batch.logits[i, :n], single.logits[0], atol=1e-4)
        for name, value in single.cache.items():
            got = batch[name][i]
            if name.endswith(("hook_pattern", "hook_attn_scores")):
                got, want = got[:, :n, :n], value[0]
                finite = torch.isfinite(want)
                assert torch.equal(finite, torch.isfinite(got)), name
                assert torch.allclose(got[finite], want[finite], atol=1e-5), name
            else:
                assert torch.allclose(got[:n], value[0], atol=1e-4), name
