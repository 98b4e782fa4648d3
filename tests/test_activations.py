"""Capture and hook points: coverage of every layer, residual-stream identities, no side effects."""

import pytest
import torch

import interp
from interp.activations import capture, hook_points, select_names, split_name
from interp.errors import InterpError

PROMPT = "When Mary and John went to the store, John gave a drink to"
REQUIRED = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"] + [
    f"blocks.{{L}}.{n}" for n in (
        "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
        "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern",
        "attn.hook_z", "attn.hook_result", "mlp.hook_pre", "mlp.hook_post")]


def test_split_name():
    assert split_name("blocks.3.attn.hook_z") == (3, "attn.hook_z")
    assert split_name("hook_embed") == (None, "hook_embed")


def test_hook_points_cover_every_layer(zoo4l):
    df = hook_points(zoo4l, PROMPT)
    names = set(df["name"])
    for template in REQUIRED:
        for layer in range(zoo4l.info.n_layers):
            assert template.format(L=layer) in names
    assert not any(n.endswith(".hook_in") or n.endswith(".hook_out") for n in names)
    assert (df["shape"] != "not produced").all()
    n_tok = len(zoo4l.to_str_tokens(PROMPT))
    pattern = df.set_index("name").loc["blocks.0.attn.hook_pattern", "shape"]
    assert pattern == f"1x{zoo4l.info.n_heads}x{n_tok}x{n_tok}"


def test_residual_stream_identities(zoo4l):
    acts = capture(zoo4l, PROMPT)
    for layer in range(zoo4l.info.n_layers - 1):
        assert torch.allclose(acts[f"blocks.{layer}.hook_resid_post"], acts[f"blocks.{layer + 1}.hook_resid_pre"])
    for layer in range(zoo4l.info.n_layers):
        pre, mid, post = (acts[f"blocks.{layer}.hook_resid_{k}"] for k in ("pre", "mid", "post"))
        assert torch.allclose(pre + acts[f"blocks.{layer}.hook_attn_out"], mid, atol=1e-5)
        assert torch.allclose(mid + acts[f"blocks.{layer}.hook_mlp_out"], post, atol=1e-5)


def test_per_head_outputs_plus_bias_equal_attention_output(zoo4l):
    acts = capture(zoo4l, PROMPT)
    for layer in range(zoo4l.info.n_layers):
        heads = acts[f"blocks.{layer}.attn.hook_result"].sum(dim=2)
        b_O = zoo4l.blocks[layer].attn.b_O
        assert torch.allclose(heads + b_O, acts[f"blocks.{layer}.hook_attn_out"], atol=1e-4)


def test_capture_leaves_model_unchanged(zoo4l, unchanged):
    tokens = zoo4l.to_tokens(PROMPT)
    with torch.no_grad():
        before = zoo4l(tokens)
    with unchanged(zoo4l):
        capture(zoo4l, [PROMPT, "The king ruled the kingdom."])
        with pytest.raises(InterpError):
            capture(zoo4l, PROMPT, names=["blocks.0.attn.hook_patern"])
    assert not zoo4l.cfg.use_attn_result
    with torch.no_grad():
        assert torch.equal(zoo4l(tokens), before)


def test_names_filters(zoo2l):
    assert select_names(zoo2l, "blocks.*.attn.hook_pattern") == [
        "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert select_names(zoo2l, lambda n: n.endswith("hook_z")) == ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    with pytest.raises(InterpError, match="did you mean 'blocks.0.attn.hook_pattern'"):
        select_names(zoo2l, ["blocks.0.attn.hook_patern"])
    acts = capture(zoo2l, PROMPT, names="*hook_pattern")
    assert set(acts.keys()) == {"blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"}


def test_tokens_are_shown_beside_the_cache(zoo2l):
    acts = capture(zoo2l, ["When Mary", "The king ruled"])
    assert acts.tokens == [["<|endoftext|>", "When", " Mary"], ["<|endoftext|>", "The", " king", " ruled"]]
    assert acts.lengths == [3, 4]
    assert acts["hook_embed"].shape[:2] == (2, 4)
    no_bos = capture(zoo2l, "When Mary", prepend_bos=False)
    assert no_bos.tokens == [["When", " Mary"]]


def test_prompt_checks(zoo2l):
    with pytest.raises(InterpError, match="empty prompt"):
        capture(zoo2l, "   ")
    with pytest.raises(InterpError, match="at most 129"):
        capture(zoo2l, " ".join(["king"] * 200))


def test_full_cache_stores_no_alias_twice(zoo2l):
    acts = capture(zoo2l, PROMPT)
    ptrs = [t.untyped_storage().data_ptr() for t in acts.cache.values()]
    assert acts.nbytes() <= sum(t.untyped_storage().nbytes() for t in acts.cache.values())
    assert len(acts) == len(interp.hook_points(zoo2l))
    assert len(ptrs) == len(acts)


def test_activation_cache_view_and_compact_repr(zoo2l):
    """`to_activation_cache` hands TransformerLens' methods the same tensors; repr shows shapes only."""
    import torch

    acts = interp.capture(zoo2l, "When Mary and John went to the store")
    cache = acts.to_activation_cache(zoo2l)
    resid, labels = cache.accumulated_resid(return_labels=True)
    assert labels[-1] == "final_post"
    assert torch.equal(resid[-1], acts["blocks.1.hook_resid_post"])
    parts = cache.decompose_resid()
    assert torch.allclose(parts.sum(0), acts["blocks.1.hook_resid_post"], atol=1e-4)
    text = repr(acts)
    assert len(text) < 600 and "hook_embed: 1x" in text and "tensor(" not in text
