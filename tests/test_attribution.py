"""Direct logit attribution and the logit lens (interp/attribution.py, `interp attribute|lens`)."""

from types import SimpleNamespace

import pytest
import torch

from interp import cli
from interp.attribution import (
    KINDS,
    attribute,
    attribution_totals,
    direct_logit_attribution,
    lens_logits,
    logit_lens,
    resolve_positions,
    token_id,
)
from interp.errors import InterpError

IOI = "When Mary and John went to the store, John gave a drink to"
TINY_PROMPT = "When Mary and John went to the store,"


# ---------------------------------------------------------------- input checks (no model)

def test_positions_resolve_per_prompt_and_refuse_outside():
    assert resolve_positions([5, 3], -1) == [4, 2]
    assert resolve_positions([5, 3], 0) == [0, 0]
    with pytest.raises(InterpError, match=r"position 3 out of range: prompt 1 has 3 tokens"):
        resolve_positions([5, 3], 3)
    with pytest.raises(InterpError, match="position -6"):
        resolve_positions([5], -6)


def test_untrained_unembedding_refused_before_any_work():
    stub = SimpleNamespace(info=SimpleNamespace(name="stub-bert", untrained_parts=("cls.predictions",)))
    for call in (lambda: attribute(stub, "a b", target="b"), lambda: logit_lens(stub, "a b")):
        with pytest.raises(InterpError, match="stub-bert loaded cls.predictions at random.*allow_untrained=True"):
            call()


def test_lens_k_must_be_positive():
    with pytest.raises(InterpError, match="k 0 must be a positive integer"):
        logit_lens(None, "a b", k=0)


def test_cli_top_below_one_is_a_usage_error(capsys):
    assert cli.main(["attribute", "--prompt", "a", "--target", "b", "--top", "0"]) == 2
    assert "--top 0 must be at least 1" in capsys.readouterr().err


# ---------------------------------------------------------------- tokens

def test_target_with_or_without_space_is_the_spaced_token(zoo4l):
    spaced = zoo4l.tokenizer.convert_tokens_to_ids("ĠMary")
    assert token_id(zoo4l, "Mary") == token_id(zoo4l, " Mary") == spaced
    assert token_id(zoo4l, ",") == zoo4l.tokenizer.convert_tokens_to_ids(",")  # no spaced form: as given
    assert token_id(zoo4l, 7) == 7


@pytest.mark.parametrize("bad, message", [
    ("Mary John", r"not a single token: it tokenizes as \['Mary', ' John'\] \(2 tokens\)"),
    ("Xyzzyq", r"not in zoo-4l's vocabulary"),
    ("  ", r"is empty"),
    (5000, r"target token id 5000 out of range"),
])
def test_bad_targets_name_the_tokenization(zoo4l, bad, message):
    with pytest.raises(InterpError, match=message):
        token_id(zoo4l, bad)


# ---------------------------------------------------------------- DLA invariants

def _bridge_logits(model, prompt):
    with torch.no_grad():
        return model(prompt)[0, -1]


@pytest.mark.parametrize("fixture, prompt", [("zoo4l", IOI), ("tiny_model", TINY_PROMPT)])
def test_parts_sum_to_the_bridge_logit_and_logit_difference(request, unchanged, fixture, prompt):
    model = request.getfixturevalue(fixture)
    logits = _bridge_logits(model, prompt)
    t, f = token_id(model, "Mary"), token_id(model, "John")
    with unchanged(model):
        single = attribute(model, prompt, target="Mary")
        diff = attribute(model, prompt, target="Mary", foil="John")
    assert abs(single["value"].sum() - logits[t].item()) < 1e-3
    assert abs(diff["value"].sum() - (logits[t] - logits[f]).item()) < 1e-3
    assert attribution_totals(diff)["error"].abs().max() < 1e-3
    n_heads = model.cfg.n_layers * model.cfg.n_heads
    assert (diff["kind"] == "head").sum() == n_heads
    assert list(diff["kind"].drop_duplicates()) == ["embed", "pos_embed", "head", "attn_bias", "mlp", "bias"]


@pytest.mark.parametrize("fixture, prompt", [("zoo4l", IOI), ("tiny_model", TINY_PROMPT)])
def test_logit_difference_matches_plain_huggingface(request, fixture, prompt):
    from transformers import AutoModelForCausalLM

    model = request.getfixturevalue(fixture)
    hf = AutoModelForCausalLM.from_pretrained(model.info.path, attn_implementation="eager").eval()
    tokens = model.to_tokens(prompt)
    with torch.no_grad():
        hf_logits = hf(tokens).logits[0, -1]
    t, f = token_id(model, "Mary"), token_id(model, "John")
    diff = attribute(model, prompt, target="Mary", foil="John")
    assert abs(diff["value"].sum() - (hf_logits[t] - hf_logits[f]).item()) < 1e-3


def test_neuron_split_sums_to_the_mlp_row(zoo4l, unchanged):
    with unchanged(zoo4l):
        whole = attribute(zoo4l, IOI, target="Mary", foil="John")
        split = attribute(zoo4l, IOI, target="Mary", foil="John", neurons=2)
    mlp2 = whole.query("kind == 'mlp' and layer == 2")["value"].item()
    parts = split.query("layer == 2 and kind in ['neuron', 'mlp_bias']")["value"]
    assert len(parts) == zoo4l.cfg.d_mlp + 1
    assert abs(parts.sum() - mlp2) < 1e-4
    assert abs(split["value"].sum() - whole["value"].sum()) < 1e-4
    assert set(split["kind"]) <= set(KINDS) and "mlp" in set(split.query("layer != 2")["kind"])


def test_batched_prompts_of_different_lengths_match_single_runs(zoo4l):
    prompts = [IOI, "When John and Mary went to the park, Mary gave a ball"]
    targets, foils = ["Mary", "John"], ["John", "Mary"]
    batch = direct_logit_attribution(zoo4l, prompts, targets, foils)
    assert batch.positions == [len(t) - 1 for t in batch.tokens]
    for b in range(2):
        one = direct_logit_attribution(zoo4l, prompts[b], targets[b], foils[b])
        torch.testing.assert_close(batch.values[:, b], one.values[:, 0], atol=1e-4, rtol=1e-4)


def test_position_other_than_last(zoo4l):
    df = attribute(zoo4l, IOI, target="John", foil="Mary", pos=9)
    with torch.no_grad():
        logits = zoo4l(IOI)[0, 9]
    t, f = token_id(zoo4l, "John"), token_id(zoo4l, "Mary")
    assert df.attrs["positions"] == [9] and df.attrs["position_tokens"] == [","]
    assert abs(df["value"].sum() - (logits[t] - logits[f]).item()) < 1e-3


def test_ioi_logit_difference_is_carried_by_a_few_late_heads(zoo4l):
    """Measured (40 train prompts, seeds 0-2): top-3 |mean head DLA| = 73-77% of the sum over all
    32 heads (uniform would be 9%), and the top head is L3H2 (+3.6 to +4.3)."""
    from interp.zoo.corpus import ioi_prompts

    ps = ioi_prompts("train", 40, seed=0)
    a = direct_logit_attribution(zoo4l, [p["prompt"] for p in ps], [p["io"] for p in ps], [p["s"] for p in ps])
    heads = [i for i, lab in enumerate(a.labels) if lab[4] == "head"]
    mean = a.values[heads].mean(1)
    share = mean.abs().topk(3).values.sum() / mean.abs().sum()
    assert share > 0.5, f"top-3 heads carry only {share:.2f} of the head attribution"
    best = a.labels[heads[int(mean.abs().argmax())]]
    assert best[1] == zoo4l.cfg.n_layers - 1 and mean.abs().max() == mean.max()
    assert (a.values.sum(0) - a.model_value).abs().max() < 1e-3
    assert (a.model_value > 0).float().mean() > 0.9  # the model does prefer the IO name


# ---------------------------------------------------------------- logit lens

@pytest.mark.parametrize("fixture, prompt", [("zoo4l", IOI), ("tiny_model", TINY_PROMPT)])
def test_lens_last_layer_is_the_model_and_each_layer_uses_a_fresh_layernorm(request, unchanged, fixture, prompt):
    model = request.getfixturevalue(fixture)
    with unchanged(model):
        lens, final, names, pairs, _ = lens_logits(model, prompt)
    torch.testing.assert_close(lens[-1, 0], _bridge_logits(model, prompt), atol=1e-4, rtol=0)
    torch.testing.assert_close(lens[-1], final, atol=1e-4, rtol=0)
    assert len(names) == model.cfg.n_layers + 1 and names[0] == "blocks.0.hook_resid_pre"
    _, cache = model.run_with_cache(prompt, names_filter=names)
    for layer, name in enumerate(names):  # LayerNorm recomputed for this residual, weights folded into W_U
        resid = cache[name][0, pairs[0][1]]
        normed = torch.nn.functional.layer_norm(resid, (model.cfg.d_model,), eps=model.cfg.eps)
        torch.testing.assert_close(lens[layer, 0], normed @ model.W_U + model.b_U, atol=1e-4, rtol=1e-4)


def test_lens_table_ranks_and_target(zoo4l, unchanged):
    with unchanged(zoo4l):
        df = logit_lens(zoo4l, IOI, target="Mary", k=3)
    assert len(df) == (zoo4l.cfg.n_layers + 1) * 3
    for _, g in df.groupby("layer"):
        assert list(g["rank"]) == [1, 2, 3] and g["prob"].is_monotonic_decreasing
        top = g.iloc[0]
        assert (top["token"] == " Mary") == (top["target_rank"] == 1)
        assert g["target_prob"].nunique() == 1 and 0 <= top["target_prob"] <= top["prob"] + 1e-7
    last = df[df["layer"] == zoo4l.cfg.n_layers]
    with torch.no_grad():
        probs = torch.softmax(zoo4l(IOI)[0, -1], -1)
    assert abs(last["target_prob"].iloc[0] - probs[token_id(zoo4l, "Mary")].item()) < 1e-4


def test_lens_every_position_in_one_pass_matches_single_positions(zoo2l):
    lens, final, _, pairs, tokens = lens_logits(zoo2l, [TINY_PROMPT, "The king said that"], pos=None)
    assert pairs == [(b, p) for b in range(2) for p in range(len(tokens[b]))]
    with torch.no_grad():
        logits = zoo2l(TINY_PROMPT)[0]
    torch.testing.assert_close(lens[-1, :len(tokens[0])], logits, atol=1e-4, rtol=0)
    df = logit_lens(zoo2l, TINY_PROMPT, target="John", k=2, pos=None)
    one = logit_lens(zoo2l, TINY_PROMPT, target="John", k=2, pos=3)
    same = df[df["pos"] == 3].reset_index(drop=True)
    assert list(same["token"]) == list(one["token"])
    assert abs(same["target_prob"] - one["target_prob"]).max() < 1e-5


# ---------------------------------------------------------------- CLI

def test_cli_attribute_prints_parts_and_total(capsys):
    assert cli.main(["attribute", "--model", "zoo-4l", "--prompt", IOI, "--target", "Mary",
                     "--foil", " John", "--top", "4"]) == 0
    out = capsys.readouterr().out
    assert "target 'Mary' -> token ' Mary'" in out and "foil ' John' -> token ' John'" in out
    assert "logit(target) - logit(foil) =" in out and "sum of the 43 parts" in out
    rows = [line.split() for line in out.split("kind     value")[1].splitlines() if line.strip()]
    values = [abs(float(r[-1])) for r in rows]
    assert len(rows) == 4 and values == sorted(values, reverse=True)


def test_cli_attribute_csv_with_neurons(capsys, zoo2l):
    assert cli.main(["attribute", "--model", "zoo-2l", "--prompt", TINY_PROMPT, "--target", "John",
                     "--neurons", "1", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "component,layer,head,neuron,kind,value"
    kinds = [line.split(",")[4] for line in out[1:]]
    assert kinds.count("neuron") == zoo2l.cfg.d_mlp and kinds.count("mlp_bias") == 1 and kinds[-1] == "bias"


@pytest.mark.parametrize("argv, message", [
    (["--target", "Mary John"], "tokenizes as ['Mary', ' John']"),
    (["--target", "Mary", "--neurons", "9"], "layer 9 out of range: zoo-2l has layers 0-1"),
    (["--target", "Mary", "--pos", "40"], "position 40 out of range"),
])
def test_cli_attribute_mistakes_exit_2_with_one_line(capsys, argv, message):
    assert cli.main(["attribute", "--model", "zoo-2l", "--prompt", TINY_PROMPT, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_lens(capsys):
    assert cli.main(["lens", "--model", "zoo-2l", "--prompt", TINY_PROMPT, "--target", "John", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "target 'John' -> token ' John'" in out and "blocks.1.hook_resid_post" in out
    assert cli.main(["lens", "--model", "zoo-2l", "--prompt", TINY_PROMPT, "--k", "0"]) == 2
    assert "k 0 must be a positive integer" in capsys.readouterr().err


# ---------------------------------------------------------------- untrained unembedding (real model)

@pytest.mark.slow
def test_minilm_refused_unless_allowed_then_refused_as_post_norm(unchanged, monkeypatch, capsys):
    import interp
    from interp.commands import common

    model = interp.load("all-MiniLM-L6-v2")
    with unchanged(model):
        with pytest.raises(InterpError, match=r"needs trained unembedding weights.*allow_untrained=True"):
            attribute(model, "the cat sat", target="dog")
        with pytest.raises(InterpError, match="needs trained unembedding weights"):
            logit_lens(model, "the cat sat")
        with pytest.raises(InterpError, match="pre-norm causal LM"):
            attribute(model, "the cat sat", target="dog", allow_untrained=True)
    monkeypatch.setattr(common, "load_model", lambda args: model)
    assert cli.main(["lens", "--model", "all-MiniLM-L6-v2", "--prompt", "the cat sat"]) == 2
    assert "--allow-untrained" in capsys.readouterr().err
