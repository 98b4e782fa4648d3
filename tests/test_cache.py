"""Streaming cache: round trip, resume, slices and merge, checksums, flat memory, CLI."""

import json
import subprocess
import sys

import pytest
import torch

from interp.activations import capture
from interp.cache import cache_file, merge_caches, open_cache, parse_shard
from interp.cli import main
from interp.errors import InterpError
from interp.zoo.corpus import Corpus

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]


def _lines(n: int, seed: int = 0) -> list[str]:
    corpus = Corpus(seed)
    return ["".join(t.replace("Ġ", " ") for t in corpus.document(8 + i % 13)).strip() for i in range(n)]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.txt"
    lines = _lines(11)
    lines.insert(3, "")  # blank lines are skipped but keep their number
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip_equals_direct_capture(zoo2l, data, tmp_path, unchanged):
    with unchanged(zoo2l):
        index = cache_file(zoo2l, data, HOOKS, tmp_path / "c", batch_size=4, shard_size=5, progress=False)
    assert index["complete"] and len(index["shards"]) == 3 and "3" not in index["prompts"]
    cache = open_cache(tmp_path / "c")
    text = data.read_text().splitlines()
    for line in (0, 4, 11):
        direct = capture(zoo2l, text[line], names=HOOKS)
        n = direct.lengths[0]
        assert torch.allclose(cache.get(HOOKS[0], line), direct[HOOKS[0]][0, :n], atol=1e-5)
        assert torch.allclose(cache.get(HOOKS[1], line), direct[HOOKS[1]][0, :, :n, :n], atol=1e-5)
        assert cache.tokens(line) == zoo2l.to_tokens(text[line])[0].tolist()


def test_resume_continues_after_the_last_complete_shard(zoo2l, data, tmp_path):
    full = cache_file(zoo2l, data, HOOKS, tmp_path / "full", batch_size=2, shard_size=4, progress=False)
    part = cache_file(zoo2l, data, HOOKS, tmp_path / "part", batch_size=2, shard_size=4, progress=False, max_shards=1)
    assert len(part["shards"]) == 1 and not part.get("complete")
    with pytest.raises(InterpError, match="--resume"):
        cache_file(zoo2l, data, HOOKS, tmp_path / "part", progress=False)
    resumed = cache_file(zoo2l, data, HOOKS, tmp_path / "part", batch_size=2, shard_size=4, resume=True, progress=False)
    assert resumed["prompts"] == full["prompts"]
    a, b = open_cache(tmp_path / "full"), open_cache(tmp_path / "part")
    for line in a.prompts():
        assert torch.equal(a.get(HOOKS[1], line), b.get(HOOKS[1], line))


def test_slices_merge_into_the_whole(zoo2l, data, tmp_path):
    for i in range(3):
        cache_file(zoo2l, data, HOOKS[:1], tmp_path / f"s{i}", shard=(i, 3), shard_size=2, progress=False)
    merged = merge_caches([tmp_path / f"s{i}" for i in range(3)], tmp_path / "all")
    whole = cache_file(zoo2l, data, HOOKS[:1], tmp_path / "whole", progress=False)
    assert sorted(merged["prompts"], key=int) == sorted(whole["prompts"], key=int)
    m, w = open_cache(tmp_path / "all"), open_cache(tmp_path / "whole")
    for line in w.prompts():
        assert torch.allclose(m.get(HOOKS[0], line), w.get(HOOKS[0], line), atol=1e-5)


def test_corrupt_shard_is_named(zoo2l, data, tmp_path):
    cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=4, progress=False)
    shard = tmp_path / "c" / "shard-00001.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0xFF
    shard.write_bytes(bytes(raw))
    cache = open_cache(tmp_path / "c")
    cache.get(HOOKS[0], 0)  # shard 0 is intact
    with pytest.raises(InterpError, match="shard-00001.safetensors is corrupt"):
        cache.get(HOOKS[0], 5)


def test_input_checks_write_nothing(zoo2l, tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("ok line\n" + " ".join(["king"] * 300) + "\n")
    with pytest.raises(InterpError, match="long.txt line 2 is 301 tokens"):
        cache_file(zoo2l, long, HOOKS, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    index = cache_file(zoo2l, long, HOOKS[:1], tmp_path / "out", truncate=True, progress=False)
    assert len(index["prompts"]["1"]["tokens"]) == zoo2l.cfg.n_ctx
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(InterpError, match="bad.txt line 2 is not UTF-8"):
        cache_file(zoo2l, bad, HOOKS, tmp_path / "out2", progress=False)
    assert not (tmp_path / "out2").exists()
    for text in ("3/2", "a/b", "1"):
        with pytest.raises(InterpError, match="shard"):
            parse_shard(text)


def test_cli_cache_and_merge(data, tmp_path, capsys):
    assert main(["cache", "-m", "zoo-2l", "--data", str(data), "--hooks", "hook_embed", "--out",
                 str(tmp_path / "a"), "--shard", "0/2"]) == 0
    assert main(["cache", "-m", "zoo-2l", "--data", str(data), "--hooks", "hook_embed", "--out",
                 str(tmp_path / "b"), "--shard", "1/2"]) == 0
    assert main(["cache", "--merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "11 prompts in" in out
    assert len(json.loads((tmp_path / "m" / "index.json").read_text())["prompts"]) == 11


PEAK = """
import resource, sys, pathlib, interp
from interp.cache import cache_file
model = interp.load("zoo-2l")
cache_file(model, sys.argv[1], "blocks.1.hook_resid_post", sys.argv[2], batch_size=16, shard_size=64, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure_peak_kb(path, out) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK, str(path), str(out)], capture_output=True, text=True,
                            check=True)
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_is_flat_in_input_length(tmp_path):
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    lines = _lines(2000, seed=3)
    small.write_text("\n".join(lines[:200]) + "\n")
    large.write_text("\n".join(lines) + "\n")
    peak_small = measure_peak_kb(small, tmp_path / "cs")
    peak_large = measure_peak_kb(large, tmp_path / "cl")
    assert peak_large <= 1.10 * peak_small, (peak_small, peak_large)
