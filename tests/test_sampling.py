"""Temperature, entropy and seeded sampling, and `interp sample`."""

import math
from types import SimpleNamespace

import pytest

from interp.cli import main
from interp.errors import InterpError

PROMPT = "When Mary and John went to the store, John gave a drink to"


# ---- input checks and the tensor core (no model) ----

@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), -float("inf"), "hot", None, True])
def test_bad_temperatures_are_refused(bad):
    from interp.sampling import check_temperature

    with pytest.raises(InterpError, match="temperature"):
        check_temperature(bad)


def test_counts_are_checked():
    from interp.sampling import check_counts

    check_counts(1, 0)
    with pytest.raises(InterpError, match="n must be"):
        check_counts(0, 5)
    with pytest.raises(InterpError, match="max_new_tokens"):
        check_counts(2, -1)


def test_untrained_unembedding_is_refused_before_any_work():
    from interp.models import ModelInfo
    from interp.sampling import entropy_by_temperature, sample

    info = ModelInfo("enc", "local", "/x", 1, 1, 8, 8, 10, 16, True, "Bert", untrained_parts=("cls.predictions",))
    fake = SimpleNamespace(info=info)
    with pytest.raises(InterpError, match="allow_untrained"):
        sample(fake, "hello")
    with pytest.raises(InterpError, match="allow_untrained"):
        entropy_by_temperature(fake, "hello")


def _logits():
    import torch

    return torch.randn(4, 50, generator=torch.Generator().manual_seed(0)) * 3


def test_probs_sum_to_one_and_t1_is_softmax():
    import torch

    from interp.sampling import temperature_probs

    logits = _logits()
    for t in (0, 1e-3, 0.5, 1, 3, 100):
        assert torch.allclose(temperature_probs(logits, t).sum(-1), torch.ones(4, dtype=torch.double))
    assert torch.allclose(temperature_probs(logits, 1), torch.softmax(logits.double(), -1))


def test_zero_and_tiny_temperature_are_the_argmax_one_hot():
    import torch

    from interp.sampling import temperature_probs

    logits = _logits()
    hot = torch.nn.functional.one_hot(logits.argmax(-1), 50).double()
    assert torch.equal(temperature_probs(logits, 0), hot)
    assert torch.allclose(temperature_probs(logits, 1e-4), hot)
    assert not temperature_probs(logits * 1e30, 1e-30).isnan().any()


def test_entropy_is_monotone_in_temperature_and_bounded():
    import torch

    from interp.sampling import entropy, temperature_log_probs

    logits = _logits()
    temps = [0, 0.01, 0.1, 0.3, 0.7, 1, 1.5, 2, 5, 20, 1000]
    h = torch.stack([entropy(temperature_log_probs(logits, t)) for t in temps])  # [temp batch]
    assert (h.diff(dim=0) >= -1e-9).all()
    assert torch.equal(h[0], torch.zeros(4, dtype=torch.double))
    assert (h[-1] <= math.log(50) + 1e-9).all() and (h[-1] > math.log(50) - 0.01).all()


# ---- zoo-4l ----

def test_t1_matches_the_hf_model_log_probs(zoo4l, unchanged):
    import torch

    from interp.activations import to_tokens
    from interp.sampling import top_tokens

    with unchanged(zoo4l):
        top = top_tokens(zoo4l, PROMPT, temperature=1.0, k=5)
    tokens, _ = to_tokens(zoo4l, PROMPT)
    with torch.no_grad():  # an independent path: the plain transformers model under the bridge
        ref = torch.log_softmax(zoo4l.original_model(tokens).logits[0, -1].double(), -1)
    assert torch.allclose(torch.tensor(top["logprob"].tolist(), dtype=torch.double), ref[top["token_id"]], atol=1e-4)
    assert top["token_id"].iloc[0] == int(ref.argmax())
    assert top["prob"].is_monotonic_decreasing


def test_entropy_table_on_the_model(zoo4l, unchanged):
    from interp.sampling import entropy_by_temperature, top_tokens

    temps = [0, 0.5, 1, 2, 4]
    with unchanged(zoo4l):
        table = entropy_by_temperature(zoo4l, PROMPT, temps)
    assert table.columns.tolist() == ["temperature", "entropy_nats", "top_token", "top_prob"]
    assert table["entropy_nats"].iloc[0] == 0 and table["top_prob"].iloc[0] == 1
    assert table["entropy_nats"].is_monotonic_increasing
    assert table["top_token"].nunique() == 1  # temperature never changes the argmax
    assert table["top_prob"].iloc[2] == pytest.approx(top_tokens(zoo4l, PROMPT, 1.0, k=1)["prob"].iloc[0])


def test_same_seed_same_samples_different_seed_different(zoo4l, unchanged):
    from interp.sampling import sample

    with unchanged(zoo4l):
        a = sample(zoo4l, "The", n=4, max_new_tokens=8, temperature=1.5, seed=7)
        b = sample(zoo4l, "The", n=4, max_new_tokens=8, temperature=1.5, seed=7)
        c = sample(zoo4l, "The", n=4, max_new_tokens=8, temperature=1.5, seed=8)
    assert a.equals(b)
    assert not a["text"].equals(c["text"])
    assert (a["n_new_tokens"] <= 8).all()


def test_greedy_sampling_ignores_the_seed_and_follows_the_argmax(zoo4l):
    import torch

    from interp.activations import to_tokens
    from interp.sampling import sample

    a = sample(zoo4l, PROMPT, n=2, max_new_tokens=4, temperature=0, seed=1)
    b = sample(zoo4l, PROMPT, n=1, max_new_tokens=4, temperature=0, seed=2)
    assert a["text"].nunique() == 1 and a["text"].iloc[0] == b["text"].iloc[0]
    tokens, _ = to_tokens(zoo4l, PROMPT)
    with torch.no_grad():
        for _ in range(4):
            tokens = torch.cat([tokens, zoo4l(tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert zoo4l.tokenizer.decode(tokens[0, -4:].tolist()) == b["text"].iloc[0]


def test_sampling_stops_at_the_context_limit(zoo4l):
    from interp.activations import to_tokens
    from interp.sampling import sample

    prompt = " ".join(["the"] * (zoo4l.cfg.n_ctx - 4))
    start = to_tokens(zoo4l, prompt)[0].shape[1]
    out = sample(zoo4l, prompt, n=2, max_new_tokens=50, temperature=1.0, seed=0)
    room = zoo4l.cfg.n_ctx - start
    assert ((out["stop"] == "context") & (out["n_new_tokens"] == room) | (out["stop"] == "eos")).all()
    assert (out["n_new_tokens"] <= room).all()


# ---- CLI ----

def test_cli_sample(zoo4l, monkeypatch, capsys):
    import interp.commands.sample as cmd

    monkeypatch.setattr(cmd, "load_model", lambda args: zoo4l)
    argv = ["sample", "--prompt", PROMPT, "--temperature", "0.8", "--n", "2", "--max-new-tokens", "5", "--seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Mary" in out and "entropy" in out and "2 samples (seed 3" in out
    assert main(argv + ["--format", "csv"]) == 0
    first = capsys.readouterr().out
    assert main(argv + ["--format", "csv"]) == 0
    assert capsys.readouterr().out == first and first.startswith("sample,text,n_new_tokens,stop")


@pytest.mark.parametrize("extra, message", [(["--temperature", "-1"], "temperature"),
                                            (["--temperature", "nan"], "temperature"),
                                            (["--n", "0"], "n must be")])
def test_cli_sample_mistakes_exit_2(capsys, extra, message):
    assert main(["sample", "--prompt", "The", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cached_and_rerun_generation_draw_the_same_samples(zoo4l):
    """generate takes the key/value cache without hooks and the full rerun with one attached:
    the same seed gives the same tokens either way."""
    from interp.sampling import sample

    a = sample(zoo4l, PROMPT, n=3, max_new_tokens=10, temperature=1.2, seed=5)
    with zoo4l.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: x)]):  # forces the rerun path
        b = sample(zoo4l, PROMPT, n=3, max_new_tokens=10, temperature=1.2, seed=5)
    assert a.equals(b) and a["n_new_tokens"].sum() > 3
