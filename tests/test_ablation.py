"""Head ablation: invariants against hand-edited weights, mean/resample/patch identities, no trace."""

import pytest
import torch

from interp.ablation import ablate, ablate_sets, make_metric, replacement, sweep
from interp.activations import to_tokens
from interp.cli import main
from interp.errors import InterpError
from interp.sweep import clean_run, patch_heads

P1 = "When Mary and John went to the store, John gave a drink to"
P2 = "When Adam and Anna went to the park, Anna gave a ball to"
SHORT = "The king and the queen"


def _hf_logit_diff(path, prompt_tokens, heads, target, foil):
    """Logit diff from a fresh transformers model whose heads' W_O rows are zeroed by hand.

    interp keeps value biases in each head's values (`interp.arch.COMPATIBILITY`), so a zeroed
    head writes nothing at all, as when its rows of c_proj's weight are zero.
    """
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager").eval()
    dh = hf.config.n_embd // hf.config.n_head
    with torch.no_grad():
        for l, h in heads:
            hf.transformer.h[l].attn.c_proj.weight[h * dh:(h + 1) * dh] = 0
        logits = hf(prompt_tokens).logits[0, -1]
    return (logits[target] - logits[foil]).item()


@pytest.mark.parametrize("fixture", ["tiny_model", "zoo2l"])
def test_zero_ablation_equals_removing_w_o_rows(request, fixture, unchanged):
    model = request.getfixturevalue(fixture)
    tokens, _ = to_tokens(model, P1)
    t, f = (model.tokenizer.encode(s, add_special_tokens=False)[0] for s in (" Mary", " John"))
    with unchanged(model):
        one = ablate(model, P1, [(1, 2)], " Mary", " John")
        two = ablate(model, P1, [(0, 1), (1, 3)], " Mary", " John")
    assert one["heads"][0] == "L1H2"
    assert one["ablated"][0] == pytest.approx(_hf_logit_diff(model.info.path, tokens, [(1, 2)], t, f), abs=1e-4)
    assert two["ablated"][0] == pytest.approx(_hf_logit_diff(model.info.path, tokens, [(0, 1), (1, 3)], t, f), abs=1e-4)
    assert one["clean"][0] == pytest.approx(_hf_logit_diff(model.info.path, tokens, [], t, f), abs=1e-4)


@pytest.mark.parametrize("mode", ["zero", "mean", "resample"])
def test_sweep_rows_equal_single_head_ablations(zoo2l, mode):
    prompts = [P1, P2]
    df = sweep(zoo2l, prompts, [" Mary", " Anna"], [" John", " Adam"], mode=mode, per_prompt=True)
    for l, h in [(0, 3), (1, 1)]:
        one = ablate(zoo2l, prompts, [(l, h)], [" Mary", " Anna"], [" John", " Adam"], mode=mode, per_prompt=True)
        rows = df[(df["layer"] == l) & (df["head"] == h)].sort_values("prompt")
        assert rows["ablated"].tolist() == pytest.approx(one["ablated"].tolist(), abs=1e-4)


def test_mean_over_the_prompt_itself_changes_nothing(zoo2l):
    df = sweep(zoo2l, P1, " Mary", " John", mode="mean", reference=[P1])
    assert df["delta"].abs().max() < 1e-4


def test_mean_and_resample_from_one_reference_equal_patching(zoo2l):
    patched = patch_heads(zoo2l, [P1], [P2], make_metric(zoo2l, 1, " Mary", " John"))
    for mode in ("mean", "resample"):
        df = sweep(zoo2l, P1, " Mary", " John", mode=mode, reference=[P2])
        assert df["ablated"].tolist() == pytest.approx(patched["patched"].tolist(), abs=1e-4)
    assert patched["delta"].abs().max() > 1e-2


def test_mean_over_positions_when_lengths_differ(zoo2l):
    tokens, strs = to_tokens(zoo2l, [P1])
    repl = replacement(zoo2l, tokens, [len(strs[0])], "mean", reference=[P1, SHORT])
    z1, _ = clean_run(zoo2l, to_tokens(zoo2l, [P1])[0])
    z2, _ = clean_run(zoo2l, to_tokens(zoo2l, [SHORT])[0])
    want = torch.cat([z1[:, 0], z2[:, 0]], 1).mean(1)  # [layer head d_head] over all real positions
    assert torch.allclose(repl[:, 0, 5], want, atol=1e-6) and torch.allclose(repl[:, 0, 0], want, atol=1e-6)


def test_resample_takes_another_prompt_seeded(zoo2l):
    prompts = [P1, P2, "When Anna and Adam went to the park, Adam gave a ball to"]
    tokens, strs = to_tokens(zoo2l, prompts)
    z, _ = clean_run(zoo2l, tokens)
    repl = replacement(zoo2l, tokens, [len(s) for s in strs], "resample", seed=3)
    for i in range(3):
        sources = [j for j in range(3) if torch.equal(repl[:, i], z[:, j])]
        assert sources and i not in sources
    assert torch.equal(repl, replacement(zoo2l, tokens, [len(s) for s in strs], "resample", seed=3))


@pytest.mark.parametrize("engine", ["fast", "naive"])
def test_model_unchanged_even_when_metric_raises(zoo2l, unchanged, engine):
    calls = []

    def flaky(logits, tokens):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("boom")
        return logits[:, -1, 0] - logits[:, -1, 1]

    with unchanged(zoo2l):
        with pytest.raises(ValueError, match="boom"):
            sweep(zoo2l, [P1, P2], metric=flaky, engine=engine)
        calls.clear()
        calls.append(1)  # the ablated run (second call) raises inside model.hooks
        with pytest.raises(ValueError, match="boom"):
            ablate(zoo2l, [P1, P2], [(1, 0)], metric=flaky)
        sweep(zoo2l, [P1, P2], " Mary", " John", mode="resample", engine=engine)


def test_input_checks_without_a_model():
    with pytest.raises(InterpError, match="needs a target"):
        make_metric(None, 1, foil=" John")
    with pytest.raises(InterpError, match="not callable"):
        make_metric(None, 1, metric="loss")
    with pytest.raises(InterpError, match="choose one of zero, mean, resample"):
        replacement(None, None, [3], "median")


def test_ablation_errors(zoo2l):
    with pytest.raises(InterpError, match="heads 0-3"):
        ablate(zoo2l, P1, [(0, 4)], " Mary")
    with pytest.raises(InterpError, match="pass reference prompts"):
        sweep(zoo2l, P1, " Mary", mode="mean")
    with pytest.raises(InterpError, match="single token|vocabulary"):
        sweep(zoo2l, P1, " Maryland and", " John")


def test_cli_top_heads(capsys):
    rc = main(["ablate", "--model", "zoo-2l", "-p", P1, "--target", " Mary", "--foil", " John", "--top", "3",
               "--format", "csv"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and out[0] == "layer,head,clean,ablated,delta,relative" and len(out) == 4
    deltas = [abs(float(r.split(",")[4])) for r in out[1:]]
    assert deltas == sorted(deltas, reverse=True)


def test_cli_one_head_and_range(capsys):
    assert main(["ablate", "--model", "zoo-2l", "-p", P1, "-t", " Mary", "--layer", "1", "--head", "0"]) == 0
    assert "L1H0" in capsys.readouterr().out
    assert main(["ablate", "--model", "zoo-2l", "-p", P1, "-t", " Mary", "--layer", "5", "--head", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interp ablate: error: layer 5 out of range: zoo-2l has layers 0-1"]


def test_cli_head_needs_layer(capsys):
    assert main(["ablate", "-p", P1, "-t", " Mary", "--head", "0"]) == 2
    assert "needs --layer" in capsys.readouterr().err


SETS = [[(0, 1)], [(1, 2), (0, 3)], [(1, 0), (1, 1), (1, 3)], [(0, 0)], [(1, 2)]]


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_batched_sets_equal_one_set_per_forward(zoo2l, mode, unchanged):
    """ablate_sets stacks chunk sets along the batch; each must equal its own forward (chunk=1),
    per prompt, with per-prompt targets and a position subset."""
    args = ([P1, P2], SETS, [" Mary", " Anna"], [" John", " Adam"])
    kw = dict(mode=mode, positions=[0, 3, 5, 6], per_prompt=True)
    with unchanged(zoo2l):
        batched = ablate_sets(zoo2l, *args, chunk=3, **kw)
        single = ablate_sets(zoo2l, *args, chunk=1, **kw)
    assert batched["heads"].tolist() == single["heads"].tolist() and len(batched) == 2 * len(SETS)
    assert batched["ablated"].tolist() == pytest.approx(single["ablated"].tolist(), abs=1e-4)
    assert (batched["delta"].abs() > 1e-3).any()  # the sets do change the metric


def test_one_head_sets_equal_the_fast_sweep(zoo2l):
    """Hooked batched ablation and the downstream-only engine are separate implementations."""
    df = sweep(zoo2l, [P1, P2], [" Mary", " Anna"], [" John", " Adam"], mode="mean")
    heads = [(l, h) for l in range(2) for h in range(4)]
    sets = ablate_sets(zoo2l, [P1, P2], [[x] for x in heads], [" Mary", " Anna"], [" John", " Adam"], mode="mean")
    assert sets["ablated"].tolist() == pytest.approx(df["ablated"].tolist(), abs=1e-4)


def test_custom_metric_sees_its_own_batch(zoo2l):
    """A custom metric indexing per-prompt data of the original batch runs one set per forward."""
    targets = torch.tensor([zoo2l.tokenizer.encode(" Mary", add_special_tokens=False)[0]] * 2)
    fn = lambda logits, tokens: logits[torch.arange(2), -1, targets].float()  # noqa: E731  needs batch 2
    df = ablate_sets(zoo2l, [P1, P2], SETS[:2], metric=fn, chunk=8)
    assert len(df) == 2 and df["delta"].abs().max() > 0


def test_ablate_sets_refuses_empty_and_bad_sets(zoo2l):
    with pytest.raises(InterpError, match="no head sets"):
        ablate_sets(zoo2l, P1, [])
    with pytest.raises(InterpError, match="no heads to ablate"):
        ablate_sets(zoo2l, P1, [[(0, 1)], []])
    with pytest.raises(InterpError, match="head 9"):
        ablate_sets(zoo2l, P1, [[(0, 9)]])
