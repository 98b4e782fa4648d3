"""One device check (`interp.devices.check_device`) for the API and every command."""

import pytest

from interp.cli import main
from interp.devices import check_device
from interp.errors import InterpError

BAD = ["cuda", "cuda:99", "meta", "nonsense", "", "cpu:x", 7, None]


@pytest.mark.parametrize("device", BAD)
def test_bad_device_is_one_line(device):
    import torch

    if isinstance(device, str) and device.startswith("cuda") and torch.cuda.is_available() and device == "cuda":
        pytest.skip("this machine has a GPU")
    with pytest.raises(InterpError) as e:
        check_device(device)
    assert "\n" not in str(e.value) and repr(device) in str(e.value)


def test_cpu_is_accepted():
    assert check_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["nonsense", "cuda:99", "meta"])
def test_load_refuses_before_loading(device):
    import interp

    with pytest.raises(InterpError, match="device"):
        interp.load("zoo-2l", device=device)


@pytest.mark.parametrize("device", ["nonsense", "cuda:99"])
def test_cli_device_exit_2_one_line(device, capsys):
    code = main(["inspect", "--model", "zoo-2l", "--device", device])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err and device in err


LONG = "x" * 300


@pytest.mark.parametrize("argv", [
    ["inspect", "--model", LONG],
    ["report", "--model", "zoo-2l", "--prompt", "a b", "--out", f"/tmp/{LONG}"],
    ["attention", "--model", "zoo-2l", "--prompt", "a b", "--out", f"{LONG}/page.html"],
    ["cache", "--model", "zoo-2l", "--data", LONG, "--hooks", "hook_embed", "--out", "/tmp/c"],
    ["direction", "--model", "zoo-2l", "--pairs", LONG],
])
def test_long_path_component_is_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own one-line error
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "255" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_api_paths_checked(tmp_path):
    import interp
    from interp.report.write import check_target

    with pytest.raises(InterpError, match="255"):
        interp.load(str(tmp_path / LONG))
    with pytest.raises(InterpError, match="255"):
        check_target(tmp_path / LONG)


@pytest.mark.parametrize("argv, words", [
    (["zoo", "evaluate", "nosuchmodel"], "zoo name"),
    (["zoo", "evaluate", "zoo-2l", "--n", "0"], "--n 0"),
])
def test_zoo_evaluate_refuses_in_one_line(argv, words, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err


def test_zoo_evaluate_refuses_a_non_zoo_directory(tiny_dir, tmp_path, capsys):
    """A Llama directory would load as a GPT-2 with every weight random: refused, not 'evaluated'."""
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(tmp_path)
    capsys.readouterr()
    code = main(["zoo", "evaluate", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not a zoo model" in err


def test_model_directory_without_tokenizer_or_with_nan_weights(tiny_dir, tmp_path):
    import shutil

    import interp
    from safetensors.torch import load_file, save_file

    bare = tmp_path / "bare"
    bare.mkdir()
    for f in tiny_dir.iterdir():
        if f.name in ("config.json", "model.safetensors", "generation_config.json"):
            shutil.copy(f, bare / f.name)
    with pytest.raises(InterpError, match="tokenizer"):
        interp.load(str(bare))
    broken = tmp_path / "nan"
    shutil.copytree(tiny_dir, broken)
    weights = load_file(broken / "model.safetensors")
    key = sorted(k for k in weights if weights[k].is_floating_point())[0]
    weights[key][0] = float("nan")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InterpError, match="NaN or infinite"):
        interp.load(str(broken))
