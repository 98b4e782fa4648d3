"""The CLI front door: help is instant and lists every subcommand; mistakes are one line, exit 2."""

import json
import subprocess
import sys
import time

from interp.cli import build_parser, main


def test_help_lists_subcommands_and_is_fast():
    t = time.time()
    out = subprocess.run([sys.executable, "-m", "interp.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "models" in out.stdout and "inspect" in out.stdout
    assert time.time() - t < 10
    probe = subprocess.run([sys.executable, "-c", "import sys, interp.cli; interp.cli.build_parser(); "
                            "print('torch' in sys.modules)"], capture_output=True, text=True)
    assert probe.stdout.strip() == "False"


def test_every_subcommand_has_an_example():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.epilog and "interp " in p.epilog, name


def test_unknown_model_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["inspect", "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-model" in err and "zoo-4l" in err


def test_bad_flag_exits_2(capsys):
    try:
        main(["inspect", "--no-such-flag"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("argparse should exit")


def test_models_json(capsys):
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows if r["default"]] == ["smollm2-135m"]
    assert by_name["zoo-4l"]["default"] is False and by_name["zoo-2l"]["default"] is False
    for r in rows:
        assert {"name", "default", "n_layers", "n_heads", "d_model", "trained", "weights", "quantization"} <= set(r)
    assert by_name["smollm2-135m"]["quantization"] == "Q4_1" and by_name["smollm2-135m"]["n_layers"] == 30
    assert by_name["zoo-4l"]["n_layers"] == 4 and by_name["zoo-4l"]["trained"] is True
    if "all-MiniLM-L6-v2" in by_name:
        assert by_name["all-MiniLM-L6-v2"]["trained"] is False


def test_inspect_lists_hook_points(capsys):
    assert main(["inspect", "--model", "zoo-2l", "--prompt", "When Mary"]) == 0
    out = capsys.readouterr().out
    for name in ("hook_embed", "blocks.1.attn.hook_pattern", "blocks.0.mlp.hook_post", "ln_final.hook_scale"):
        assert name in out
    assert "1x4x3x3" in out  # pattern shape: batch head query key for BOS + 2 tokens
    assert main(["inspect", "--model", "zoo-2l", "--prompt", "When Mary", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("name,layer,component,shape")
