"""Bad input, table-driven: every user mistake is one line that names the value, and exit status 2.

Each row is (id, argv, words the message must contain). `{tmp}` in argv is replaced by a fresh
directory holding the input files below. No row may print a traceback or leave files behind.
"""

import os

import pytest

from interp.cli import main

PROMPT = "When Mary and John went to the store, John gave a drink to"
LONG = " ".join(["king"] * 200)

CASES = [
    ("empty prompt", ["inspect", "-m", "zoo-2l", "--prompt", "  "], ["empty prompt"]),
    ("prompt too long", ["attention", "-m", "zoo-2l", "--prompt", LONG], ["201", "129"]),
    ("unknown model", ["inspect", "-m", "zoo-4", "--prompt", "x"], ["zoo-4", "zoo-4l"]),
    ("missing path", ["inspect", "-m", "{tmp}/nope", "--prompt", "x"], ["nope", "does not exist"]),
    ("dir without config", ["inspect", "-m", "{tmp}/empty_dir", "--prompt", "x"], ["config.json"]),
    ("corrupt safetensors", ["inspect", "-m", "{tmp}/corrupt", "--prompt", "x"], ["corrupt", "could not load"]),
    ("layer out of range", ["ablate", "-m", "zoo-2l", "-p", PROMPT, "-t", " Mary", "--layer", "7", "--head", "0"],
     ["7", "0-1"]),
    ("head out of range", ["ablate", "-m", "zoo-2l", "-p", PROMPT, "-t", " Mary", "--layer", "1", "--head", "9"],
     ["9", "0-3"]),
    ("attention layer out of range", ["attention", "-m", "zoo-2l", "-p", PROMPT, "--layer", "5"], ["5", "0-1"]),
    ("analogy word not one token", ["analogy", "-m", "zoo-4l", "king", "man", "womanhood"], ["womanhood"]),
    ("neighbors word not one token", ["neighbors", "-m", "zoo-4l", "xylophone"], ["xylophone"]),
    ("target not one token", ["attribute", "-m", "zoo-4l", "-p", PROMPT, "-t", " Marylin"], ["Marylin"]),
    ("foil not one token", ["attribute", "-m", "zoo-4l", "-p", PROMPT, "-t", " Mary", "--foil", " Johnny"],
     ["Johnny"]),
    ("lens target not one token", ["lens", "-m", "zoo-4l", "-p", PROMPT, "-t", " Marylin"], ["Marylin"]),
    ("negative temperature", ["sample", "-m", "zoo-4l", "-p", PROMPT, "-t", "-1"], ["-1", "temperature"]),
    ("nan temperature", ["sample", "-m", "zoo-4l", "-p", PROMPT, "-t", "nan"], ["nan", "temperature"]),
    ("empty pairs file", ["direction", "-m", "zoo-4l", "--pairs", "{tmp}/empty.txt"], ["empty.txt"]),
    ("malformed pairs file", ["direction", "-m", "zoo-4l", "--pairs", "{tmp}/bad_pairs.txt"], ["bad_pairs.txt"]),
    ("non-utf8 pairs file", ["direction", "-m", "zoo-4l", "--pairs", "{tmp}/latin1.txt"], ["latin1.txt", "UTF-8"]),
    ("missing pairs file", ["direction", "-m", "zoo-4l", "--pairs", "{tmp}/none.txt"], ["none.txt"]),
    ("empty analogy file", ["analogies", "-m", "zoo-4l", "{tmp}/empty.txt"], ["empty.txt"]),
    ("malformed analogy file", ["analogies", "-m", "zoo-4l", "{tmp}/bad_analogies.txt"], ["bad_analogies.txt"]),
    ("untrained unembedding", ["lens", "-m", "all-MiniLM-L6-v2", "-p", "the king"], ["--allow-untrained"]),
    ("report into non-empty dir", ["report", "-m", "zoo-2l", "-p", PROMPT, "--out", "{tmp}/full"], ["--force"]),
    ("report into unwritable path", ["report", "-m", "zoo-2l", "-p", PROMPT, "--out", "{tmp}/file.txt/sub"],
     ["file.txt"]),
    ("unknown hook", ["cache", "-m", "zoo-2l", "--data", "{tmp}/prompts.txt", "--hooks", "blocks.0.hook_resid_prex",
                      "--out", "{tmp}/cache_out"], ["hook_resid_prex", "did you mean"]),
    ("malformed shard", ["cache", "-m", "zoo-2l", "--data", "{tmp}/prompts.txt", "--hooks", "hook_embed",
                         "--out", "{tmp}/cache_out2", "--shard", "3/2"], ["3/2"]),
    ("missing data file", ["cache", "-m", "zoo-2l", "--data", "{tmp}/nodata.txt", "--hooks", "hook_embed",
                           "--out", "{tmp}/cache_out3"], ["nodata.txt"]),
    ("batch too large for memory", ["cache", "-m", "zoo-2l", "--data", "{tmp}/prompts.txt", "--hooks", "*",
                                    "--out", "{tmp}/cache_out4", "--batch-size", "100000000"], ["batch"]),
    ("unknown cache dtype", ["cache", "-m", "zoo-2l", "--data", "{tmp}/prompts.txt", "--hooks", "hook_embed",
                             "--out", "{tmp}/cache_out5", "--dtype", "float8"], ["float8", "bfloat16"]),
]


@pytest.fixture
def files(tmp_path, tiny_dir):
    (tmp_path / "empty_dir").mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in os.listdir(tiny_dir):
        (corrupt / f).write_bytes((tiny_dir / f).read_bytes())
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bad_pairs.txt").write_text("king queen\njust-one-word\n")
    (tmp_path / "latin1.txt").write_bytes("king reine\nprince princesse\ncaf\xe9 x\n".encode("latin-1"))
    (tmp_path / "bad_analogies.txt").write_text(": family\nking man woman\n")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    (tmp_path / "file.txt").write_text("a file, not a directory")
    (tmp_path / "prompts.txt").write_text("The king ruled the kingdom.\nWhen Mary went to the store.\n")
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(case, files, capsys):
    _, argv, words = case
    before = sorted(p.name for p in files.rglob("*"))
    code = main([a.replace("{tmp}", str(files)) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-500:], err[-500:])
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert sorted(p.name for p in files.rglob("*")) == before, "a refused command left files behind"
    assert (files / "full" / "keep.txt").read_text() == "mine"


def test_table_has_at_least_25_cases():
    assert len(CASES) >= 25
