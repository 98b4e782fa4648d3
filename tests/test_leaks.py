"""Interventions never leak: after every analysis, also one whose forward raised halfway, the
model has the same parameters (hashed), the same hooks, the same flags and the same outputs.

A failure is injected with a forward hook on the last block that raises; the analysis must let
the error through and still remove everything it attached.
"""

import pytest
import torch

from interp import ablation, attention, attribution, embeddings, heads, sampling
from interp.activations import capture

PROMPT = "When Mary and John went to the store, John gave a drink to"
GROUPS = {"male": ["king", "man", "boy", "father", "son"], "female": ["queen", "woman", "girl", "mother", "daughter"]}

ANALYSES = {
    "capture": lambda m: capture(m, PROMPT),
    "patterns": lambda m: attention.patterns(m, PROMPT),
    "mask_removal": lambda m: attention.mask_removal_effect(m, [PROMPT]),
    "head_scores": lambda m: heads.head_scores(m, n=3),
    "attribute": lambda m: attribution.attribute(m, PROMPT, " Mary", " John"),
    "logit_lens": lambda m: attribution.logit_lens(m, PROMPT, " Mary"),
    "ablate_heads": lambda m: ablation.ablate(m, PROMPT, [(1, 0), (1, 2)], " Mary", " John"),
    "sweep_naive": lambda m: ablation.sweep(m, PROMPT, " Mary", " John", engine="naive"),
    "sweep_mean": lambda m: ablation.sweep(m, [PROMPT, PROMPT], " Mary", " John", mode="mean"),
    "sample": lambda m: sampling.sample(m, PROMPT, n=1, max_new_tokens=2),
    "probe_residual": lambda m: embeddings.probe_residual(m, GROUPS),
}


class Injected(RuntimeError):
    pass


def _raise(*args):
    raise Injected("injected failure halfway through the forward pass")


def _state(model):
    return bool(model.cfg.use_attn_result), model.training


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_analysis_leaves_no_trace(name, zoo2l, unchanged):
    tokens = zoo2l.to_tokens(PROMPT)
    with torch.no_grad():
        before = zoo2l(tokens)
    state = _state(zoo2l)
    with unchanged(zoo2l):
        ANALYSES[name](zoo2l)
    with unchanged(zoo2l):
        handle = zoo2l.blocks[0].register_forward_hook(_raise)  # a capture may stop before the last block
        try:
            with pytest.raises(Injected):
                ANALYSES[name](zoo2l)
        finally:
            handle.remove()
    assert _state(zoo2l) == state
    with torch.no_grad():
        assert torch.equal(zoo2l(tokens), before)
