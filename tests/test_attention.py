"""Tests for interp.attention and `interp attention`: invariants of the masked and unmasked
patterns, mask removal that leaves no trace, and head classes on the zoo models."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import torch

from interp import attention as A
from interp import heads
from interp.errors import InterpError

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def pats2(zoo2l):
    return A.patterns(zoo2l, PROMPT)


@pytest.fixture(scope="module")
def pats4(zoo4l):
    return A.patterns(zoo4l, "The king said that he was tired. The queen said that she was happy.")


@pytest.fixture(scope="module")
def minilm():
    import interp
    from interp.models import MINILM, builtin_names

    if MINILM not in builtin_names():
        pytest.skip("all-MiniLM-L6-v2 extra not installed")
    return interp.load(MINILM)


def zoo_text(n_docs: int = 3, seed: int = 123) -> list[str]:
    """Documents of the zoo's own training distribution (a seed its training did not use)."""
    from interp.zoo.corpus import Corpus, text

    corpus = Corpus(seed)
    return [text(corpus, 60) for _ in range(n_docs)]


# ---------------------------------------------------------------- tensor core, no model


def test_js_divergence_bounds():
    p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    js = A.js_divergence(p, q)
    assert js[0].item() == 0.0
    assert js[1].item() == pytest.approx(1.0)  # disjoint supports: one bit
    r = torch.rand(4, 6).softmax(-1), torch.rand(4, 6).softmax(-1)
    assert torch.allclose(A.js_divergence(*r), A.js_divergence(*reversed(r)))


def test_causal_softmax_and_future_mass():
    scores = torch.randn(2, 5, 5)
    masked = A.causal_softmax(scores)
    assert torch.allclose(masked.sum(-1), torch.ones(2, 5))
    assert A.future_mass(masked).abs().max().item() == 0.0
    unmasked = A.causal_softmax(scores, causal=False)
    assert A.future_mass(unmasked)[:, :-1].min().item() > 0


def test_head_targets_on_a_crafted_sequence():
    tokens = torch.tensor([0, 5, 6, 7, 5, 6, 7])  # BOS, block, block again
    prev, induction, dup, bos = heads.head_targets(tokens)
    assert induction[4].nonzero().flatten().tolist() == [2]  # 5 at 4 -> after the earlier 5 at 1
    assert induction[6].nonzero().flatten().tolist() == [4]  # 7 at 6 -> after 7 at 3 comes 5 at 4
    assert not induction[:4].any()
    assert dup[5].nonzero().flatten().tolist() == [2]
    assert prev[3].nonzero().flatten().tolist() == [2] and not prev[1].any()
    assert bos[:, 0].tolist() == [False] + [True] * 6


def test_score_heads_perfect_induction_pattern():
    tokens = torch.tensor([0, 5, 6, 7, 5, 6, 7])
    ideal = torch.zeros(7, 7)
    ideal[torch.arange(7), torch.tensor([0, 0, 1, 2, 2, 3, 4])] = 1  # induction rows 4..6, else prev/BOS
    scores = heads.score_heads(ideal[None, None], tokens)  # [kind layer head]
    assert scores[heads.HEAD_KINDS.index("induction"), 0, 0].item() == pytest.approx(1.0)
    assert scores[heads.HEAD_KINDS.index("duplicate_token"), 0, 0].item() == pytest.approx(0.0)


def test_input_checks_need_no_model():
    with pytest.raises(InterpError, match="one prompt"):
        A.patterns(None, ["a", "b"])
    with pytest.raises(InterpError, match="n >= 2"):
        heads.repeated_tokens(None, n=1)


# ---------------------------------------------------------------- pattern invariants


@pytest.mark.parametrize("which", ["pats2", "pats4"])
def test_rebuilt_masked_pattern_equals_hook_pattern(which, request):
    pats = request.getfixturevalue(which)
    assert pats.causal
    assert pats.rebuild_error < 1e-5


@pytest.mark.parametrize("which", ["pats2", "pats4"])
def test_pattern_invariants(which, request):
    pats = request.getfixturevalue(which)
    masked, unmasked = pats.masked, pats.unmasked
    n = masked.shape[-1]
    # the model's own pattern puts exactly nothing on the future
    assert A.future_mass(masked).abs().max().item() == 0.0
    # at the final query no future exists: both patterns agree
    assert torch.allclose(masked[..., -1, :], unmasked[..., -1, :], atol=1e-5)
    assert pats.js()[..., -1].abs().max().item() < 1e-5
    # unmasked restricted to keys <= q and renormalised is the masked row
    past = torch.ones(n, n, dtype=torch.bool).tril()
    restricted = unmasked * past
    assert torch.allclose(restricted / restricted.sum(-1, keepdim=True), masked, atol=1e-5)
    assert torch.allclose(unmasked.sum(-1), torch.ones(unmasked.shape[:-1]), atol=1e-5)
    js = pats.js()
    assert js.min().item() >= 0 and js.max().item() <= 1 + 1e-6
    assert torch.allclose(pats.future_mass(), 1 - restricted.sum(-1), atol=1e-5)


def test_tables_shapes_and_columns(pats2):
    n_layers, n_heads, n = pats2.masked.shape[:3]
    full = A.pattern_table(pats2, layer=1, head=2)
    assert list(full.columns) == ["layer", "head", "query", "key", "query_token", "key_token", "masked", "unmasked"]
    assert len(full) == n * n
    row = full[(full["query"] == 3) & (full["key"] == 1)].iloc[0]
    assert row.masked == pytest.approx(pats2.masked[1, 2, 3, 1].item())
    assert row.key_token == pats2.tokens[1]
    per_head = A.head_table(pats2)
    assert list(per_head.columns) == ["layer", "head", "future_mass", "js"] and len(per_head) == n_layers * n_heads
    queries = A.query_table(pats2, layer=0)
    assert per_head.future_mass.iloc[0] == pytest.approx(queries[queries["head"] == 0].future_mass.mean())
    with pytest.raises(InterpError, match="layer 5 out of range: zoo-2l has layers 0-1"):
        A.pattern_table(pats2, layer=5)


def test_analyses_leave_model_unchanged(zoo2l, unchanged):
    with unchanged(zoo2l):  # asserts on exit: parameters byte-identical, no hooks left
        pats = A.patterns(zoo2l, "The cat sat on the mat.")
        scores = heads.head_scores(zoo2l, n=8)
        effect = A.mask_removal_effect(zoo2l, "The king said that he was tired.")
    assert pats.masked.shape == pats.unmasked.shape and len(scores) and len(effect)


# ---------------------------------------------------------------- mask removal


def test_mask_removal_rewires_z(zoo4l, unchanged):
    tokens = zoo4l.to_tokens("The king said that he was tired. The queen said that she was happy.")
    names = {f"blocks.2.attn.hook_{s}" for s in ("q", "k", "v", "z", "pattern")}
    with unchanged(zoo4l), torch.no_grad():
        _, clean = zoo4l.run_with_cache(tokens, names_filter=lambda n: n in names)
        with A.no_causal_mask(zoo4l, layers=[2]):
            _, cut = zoo4l.run_with_cache(tokens, names_filter=lambda n: n in names)
    q, k, v, z = (cut[f"blocks.2.attn.hook_{s}"] for s in ("q", "k", "v", "z"))
    pattern = A.causal_softmax(A.qk_scores(q, k, A.attn_scale(zoo4l, 2)), causal=False)
    assert torch.allclose(cut["blocks.2.attn.hook_pattern"], pattern, atol=1e-6)
    assert torch.allclose(z, torch.einsum("bhqk,bkhd->bqhd", pattern, v), atol=1e-5)
    assert (z - clean["blocks.2.attn.hook_z"])[:, :-1].abs().max().item() > 1e-3  # z followed the pattern
    assert torch.allclose(z[:, -1], clean["blocks.2.attn.hook_z"][:, -1], atol=1e-5)  # no future at the end


def test_mask_removal_leaves_no_hooks_when_body_raises(zoo2l, unchanged):
    with unchanged(zoo2l):
        with pytest.raises(RuntimeError, match="boom"):
            with A.no_causal_mask(zoo2l):
                zoo2l(zoo2l.to_tokens("The cat sat."))
                raise RuntimeError("boom")
        with pytest.raises(InterpError, match="layer 7 out of range"):
            with A.no_causal_mask(zoo2l, layers=[7]):
                pass


def test_zero_layers_removed_is_exactly_clean(zoo2l, unchanged):
    tokens = zoo2l.to_tokens(PROMPT)
    with unchanged(zoo2l), torch.no_grad():
        clean = zoo2l(tokens)
        with A.no_causal_mask(zoo2l, layers=[]):
            empty = zoo2l(tokens)
        table = A.mask_removal_effect(zoo2l, PROMPT, layers=[])
    assert torch.equal(clean, empty)
    assert list(table.removed) == ["none", "[]"]
    assert table.loss.iloc[1] == table.loss.iloc[0] and table.accuracy.iloc[1] == table.accuracy.iloc[0]


def test_mask_removal_raises_zoo4l_loss_in_early_and_all_layers(zoo4l):
    # Observed on every document set tried: unmasking the first layer, or all of them, feeds later
    # layers inputs they never saw (> 2 nats worse); the last layer's effect is small and goes either
    # way with the documents (an induction head may use the next word), so it is not asserted.
    table = A.mask_removal_effect(zoo4l, zoo_text())
    loss = dict(zip(table.removed, table.loss))
    assert list(table.removed) == ["none", "0", "1", "2", "3", "all"]
    assert loss["0"] > loss["none"] + 2 and loss["all"] > loss["none"] + 2
    assert table.n_tokens.nunique() == 1
    assert table.delta_loss.iloc[0] == 0.0


def test_next_token_stats_all_layers_matches_table(zoo2l):
    table = A.mask_removal_effect(zoo2l, "The king said that he was tired.")
    stats = A.next_token_stats(zoo2l, "The king said that he was tired.", remove=None)
    assert table.loss.iloc[-1] == pytest.approx(stats["loss"])


# ---------------------------------------------------------------- head classes


def test_zoo2l_head_classes(zoo2l):
    for seed in (0, 1):
        scores = heads.head_scores(zoo2l, n=20, seed=seed)
        assert set(scores.kind) == set(heads.HEAD_KINDS) and scores.score.between(0, 1 + 1e-6).all()
        induction = scores[scores.kind == "induction"]
        assert induction.score.max() >= 0.8
        assert induction.loc[induction.score.idxmax(), "layer"] == 1  # needs a previous-token head below
        prev = scores[(scores.kind == "previous_token") & (scores.layer == 0)]
        assert prev.score.max() >= 0.9


def test_top_heads_order():
    scores = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "kind": ["bos", "induction"] * 2,
                           "score": [0.1, 0.2, 0.9, 0.8]})
    top = heads.top_heads(scores, k=1)
    assert list(top.kind) == ["induction", "bos"] and list(top.score) == [0.8, 0.9]


def test_repeated_tokens(zoo2l):
    tokens = heads.repeated_tokens(zoo2l, n=10, seed=3)[0]
    assert len(tokens) == 21 and torch.equal(tokens[1:11], tokens[11:])
    assert len(set(tokens[1:11].tolist())) == 10
    with pytest.raises(InterpError, match="context"):
        heads.repeated_tokens(zoo2l, n=500)


# ---------------------------------------------------------------- encoder: no causal mask


def test_encoder_has_no_mask_to_remove(minilm, unchanged):
    with unchanged(minilm):
        pats = A.patterns(minilm, "When Mary went to the store.")
        assert not pats.causal and pats.rebuild_error < 1e-5
        assert torch.equal(pats.masked, pats.unmasked) and pats.js().max().item() == 0.0
        with pytest.raises(InterpError, match="no causal mask"):
            A.mask_removal_effect(minilm, "When Mary went to the store.")


# ---------------------------------------------------------------- CLI


def _cli(monkeypatch, model, argv):
    import interp.commands.attention as cmd
    from interp.cli import main

    if model is not None:
        monkeypatch.setattr(cmd, "load_model", lambda args: model)
    return main(["attention", *argv])


def test_cli_text(zoo2l, monkeypatch, capsys):
    assert _cli(monkeypatch, zoo2l, ["--prompt", PROMPT, "--layer", "1", "--head", "1", "--remove-mask"]) == 0
    out = capsys.readouterr().out
    assert "' Mary'" in out and "future_mass" in out and "per query" in out
    assert "top heads by class" in out and "induction" in out and "previous_token" in out
    assert "causal mask removed" in out and "delta_loss" in out


def test_cli_csv(zoo2l, monkeypatch, capsys):
    assert _cli(monkeypatch, zoo2l, ["--prompt", "The cat sat.", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"layer", "head", "future_mass", "js", *heads.HEAD_KINDS} <= set(df.columns) and len(df) == 8


def test_cli_mistakes_exit_2(zoo2l, monkeypatch, capsys):
    assert _cli(monkeypatch, zoo2l, ["--prompt", "The cat sat.", "--layer", "9"]) == 2
    assert "layer 9 out of range: zoo-2l has layers 0-1" in capsys.readouterr().err
    assert _cli(monkeypatch, None, ["--prompt", "The cat sat.", "--top", "0"]) == 2
    assert "--top 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _cli(monkeypatch, None, ["--prompt", "x", "--layer", "one"])
    assert e.value.code == 2


def test_cli_encoder_says_so(minilm, monkeypatch, capsys):
    assert _cli(monkeypatch, minilm, ["--prompt", "When Mary went to the store."]) == 0
    assert "no causal mask" in capsys.readouterr().out
    assert _cli(monkeypatch, minilm, ["--prompt", "When Mary went to the store.", "--remove-mask"]) == 2
    assert "no causal mask" in capsys.readouterr().err


def test_cli_loads_by_name(capsys):
    from interp.cli import main

    assert main(["attention", "--model", "zoo-2l", "--prompt", "The cat sat.", "--top", "1"]) == 0
    assert "zoo-2l: 5 tokens" in capsys.readouterr().out
