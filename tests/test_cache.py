"""Streaming cache: round trip, resume, slices and merge, checksums, input checks, paths, memory, CLI."""

import json
from types import SimpleNamespace

import pytest
import torch

from interp.activations import capture
from interp.cache import (batch_bytes, cache_file, check_batch_memory, measure_stream, merge_caches, open_cache,
                          parse_shard, read_lines)
from interp.cli import main
from interp.errors import InterpError
from interp.zoo.corpus import Corpus, text

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z"]


def _lines(n: int, seed: int = 0) -> list[str]:
    corpus = Corpus(seed)
    return [text(corpus, 8 + i % 13).strip() for i in range(n)]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.txt"
    lines = _lines(11)
    lines.insert(3, "")  # blank lines are skipped but keep their number
    path.write_text("\n".join(lines) + "\n")
    return path


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ------------------------------------------------------------------ no model needed


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1) and parse_shard("3/4") == (3, 4)
    for text in ("3/2", "2/2", "-1/2", "0/0", "a/b", "1", "1/2/3", ""):
        with pytest.raises(InterpError, match="--shard"):
            parse_shard(text)


def test_read_lines_numbers_from_zero_and_names_bad_lines(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("one\n\n  \ntwo\r\n")
    assert list(read_lines(good)) == [(0, "one"), (3, "two")]
    jl = tmp_path / "a.jsonl"
    jl.write_text('{"text": "first"}\n\n{"text": "second", "id": 2}\n')
    assert list(read_lines(jl)) == [(0, "first"), (2, "second")]
    jl.write_text('{"text": "first"}\n{"body": "x"}\n')
    with pytest.raises(InterpError, match="a.jsonl line 2 .*\"text\""):
        list(read_lines(jl))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(InterpError, match="bad.txt line 3 is not UTF-8"):
        list(read_lines(bad))
    with pytest.raises(InterpError, match="does not exist"):
        list(read_lines(tmp_path / "missing.txt"))


def test_batch_memory_estimate_refuses_and_suggests():
    cfg = SimpleNamespace(n_heads=12, d_model=768, d_head=64, d_mlp=3072, n_ctx=1024)
    model = SimpleNamespace(cfg=cfg)
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(12)]
    check_batch_memory(model, names, batch_size=8, n_pos=64, free=64 * 2**30)  # 2 * 8*12*64*64*12*4 B: fits
    # 2 copies * 16 prompts * 1024 pos * (12 layers * 12 heads * 1024 keys) * 4 B = 18 GiB > 16 GiB / 2
    with pytest.raises(InterpError, match=r"needs about 18\.00 GiB.*use --batch-size 7$") as refused:
        check_batch_memory(model, names, batch_size=16, n_pos=1024, free=16 * 2**30)
    suggested = int(str(refused.value).rsplit(" ", 1)[1])
    check_batch_memory(model, names, batch_size=suggested, n_pos=1024, free=16 * 2**30)  # the advice works
    with pytest.raises(InterpError, match="fewer hooks"):
        check_batch_memory(model, names, batch_size=1, n_pos=1024, free=2**30)


# ------------------------------------------------------------------ with zoo-2l


def test_memory_estimate_equals_the_captured_bytes(zoo2l):
    acts = capture(zoo2l, ["The king ruled the kingdom", "The queen ruled"])  # every hook point
    n = len(acts.tokens[0])
    assert len(acts.cache) > 30
    for name, value in acts.cache.items():
        assert batch_bytes(zoo2l, [name], 2, n) == value.numel() * value.element_size(), name


def test_round_trip_equals_direct_capture(zoo2l, data, tmp_path, unchanged):
    with unchanged(zoo2l):
        index = cache_file(zoo2l, data, HOOKS, tmp_path / "c", batch_size=4, shard_size=5, progress=False)
    assert index["complete"] and [len(s["lines"]) for s in index["shards"]] == [5, 5, 1]
    cache = open_cache(tmp_path / "c")
    assert cache.lines() == [0, 1, 2, *range(4, 12)]  # line 3 was blank
    text = data.read_text().splitlines()
    for line in cache.lines():
        direct = capture(zoo2l, text[line], names=HOOKS)
        n = direct.lengths[0]
        assert cache.tokens(line).tolist() == zoo2l.to_tokens(text[line])[0].tolist()
        for hook in HOOKS:
            want = direct[hook][0][:, :n, :n] if "pattern" in hook else direct[hook][0][:n]
            got = cache.get(hook, line)
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), (hook, line)
    seen = dict(iter(cache))
    assert sorted(seen) == cache.lines() and all(set(acts) == set(HOOKS) for acts in seen.values())
    assert torch.equal(seen[5][HOOKS[2]], cache.get(HOOKS[2], 5))
    with pytest.raises(InterpError, match="prompt 3 is not in this cache"):
        cache.get(HOOKS[0], 3)
    with pytest.raises(InterpError, match="did you mean 'blocks.0.hook_resid_post'"):
        cache.get("blocks.0.hook_resid_pst", 0)


def _interrupt_after(monkeypatch, k):
    """Make the k+1-th shard write fail, as a crash or a kill would."""
    import interp.cache as mod

    real, calls = mod._write_shard, []

    def flaky(*args, **kwargs):
        if len(calls) == k:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "_write_shard", flaky)


def test_resume_after_a_crash_equals_an_uninterrupted_run(zoo2l, data, tmp_path, monkeypatch):
    kw = dict(batch_size=2, shard_size=3, progress=False)
    full = cache_file(zoo2l, data, HOOKS, tmp_path / "full", **kw)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            cache_file(zoo2l, data, HOOKS, tmp_path / "part", **kw)
    part = json.loads((tmp_path / "part" / "index.json").read_text())
    assert len(part["shards"]) == 2 and not part["complete"]
    with pytest.raises(InterpError, match="not empty: pass --resume"):
        cache_file(zoo2l, data, HOOKS, tmp_path / "part", **kw)
    with pytest.raises(InterpError, match="cannot resume .*shard_size=3, not 4"):
        cache_file(zoo2l, data, HOOKS, tmp_path / "part", resume=True, **{**kw, "shard_size": 4})
    (tmp_path / "part" / ".shard-00002.safetensors.tmp").write_bytes(b"half a shard")  # cut short by the crash
    edited = tmp_path / "edited.txt"
    edited.write_text(data.read_text().replace("The", "A", 1))
    with pytest.raises(InterpError, match="prompts changed since that run"):
        cache_file(zoo2l, edited, HOOKS, tmp_path / "part", resume=True, **kw)
    resumed = cache_file(zoo2l, data, HOOKS, tmp_path / "part", resume=True, **kw)
    assert not list((tmp_path / "part").glob(".*.tmp"))
    assert resumed["complete"]
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in full["shards"]]  # byte-identical
    a, b = open_cache(tmp_path / "full"), open_cache(tmp_path / "part")
    for line in a.lines():
        for hook in HOOKS:
            assert torch.equal(a.get(hook, line), b.get(hook, line))


def test_max_shards_stops_and_resume_finishes(zoo2l, data, tmp_path):
    part = cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=4, max_shards=1, progress=False)
    assert len(part["shards"]) == 1 and not part["complete"]
    done = cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=4, resume=True, progress=False)
    assert sorted(line for s in done["shards"] for line in s["lines"]) == open_cache(tmp_path / "c").lines()
    assert len(open_cache(tmp_path / "c")) == 11


def test_corrupt_shard_is_named_and_resume_repairs_it(zoo2l, data, tmp_path):
    cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=4, progress=False)
    shard = tmp_path / "c" / "shard-00001.safetensors"
    good = shard.read_bytes()
    raw = bytearray(good)
    raw[-5] ^= 0xFF
    shard.write_bytes(bytes(raw))
    cache = open_cache(tmp_path / "c")
    first = cache.get(HOOKS[0], 0)  # shard 0 is intact
    line = cache.index["shards"][1]["lines"][0]
    with pytest.raises(InterpError, match=r"^shard-00001\.safetensors is corrupt \(checksum mismatch\): re-run the "
                                          "same interp cache command with --resume, which computes it again$"):
        cache.get(HOOKS[0], line)
    cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=4, resume=True, progress=False)  # as the error says
    repaired = open_cache(tmp_path / "c")
    assert len(repaired) == 11 and torch.equal(repaired.get(HOOKS[0], 0), first)
    assert repaired.get(HOOKS[0], line).shape[0] == len(repaired.tokens(line))
    on_disk = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert on_disk == sorted(["index.json"] + [s["file"] for s in repaired.index["shards"]])  # the corrupt one is gone
    (tmp_path / "c" / repaired.index["shards"][0]["file"]).unlink()
    with pytest.raises(InterpError, match="shard-00000.safetensors is missing"):
        open_cache(tmp_path / "c").get(HOOKS[0], 0)


def test_slices_merge_into_the_whole(zoo2l, data, tmp_path):
    for i in range(3):
        cache_file(zoo2l, data, HOOKS[:2], tmp_path / f"s{i}", shard=(i, 3), shard_size=2, progress=False)
        assert all(line % 3 == i for line in open_cache(tmp_path / f"s{i}").lines())
    merged = merge_caches([tmp_path / f"s{i}" for i in range(3)], tmp_path / "all")
    assert merged["complete"] and _files(tmp_path / "all") == ["index.json"]  # no data copied
    cache_file(zoo2l, data, HOOKS[:2], tmp_path / "whole", progress=False)
    whole = open_cache(tmp_path / "whole")
    m = open_cache(tmp_path / "all")
    assert m.lines() == whole.lines()
    for line in whole.lines():
        for hook in HOOKS[:2]:
            assert torch.allclose(m.get(hook, line), whole.get(hook, line), atol=1e-5)
    with pytest.raises(InterpError, match="line 0 is already in another input"):
        merge_caches([tmp_path / "s0", tmp_path / "whole"], tmp_path / "again")
    with pytest.raises(InterpError, match="holds shards of its own"):
        merge_caches([tmp_path / "s1"], tmp_path / "s0")


def test_input_checks_write_nothing(zoo2l, tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("ok line\n" + " ".join(["king"] * 300) + "\n")
    with pytest.raises(InterpError, match="long.txt line 2 is 301 tokens but zoo-2l takes at most 129.*--truncate"):
        cache_file(zoo2l, long, HOOKS, tmp_path / "out", progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(InterpError, match="has no prompts"):
        cache_file(zoo2l, empty, HOOKS, tmp_path / "out", progress=False)
    with pytest.raises(InterpError, match="did you mean 'blocks.0.hook_resid_post'"):
        cache_file(zoo2l, long, "blocks.0.hook_resid_pots", tmp_path / "out", progress=False)
    with pytest.raises(InterpError, match="--max-tokens-per-prompt 500 out of range"):
        cache_file(zoo2l, long, HOOKS, tmp_path / "out", max_tokens=500, progress=False)
    assert not (tmp_path / "out").exists()
    index = cache_file(zoo2l, long, HOOKS[:1], tmp_path / "out", truncate=True, progress=False)
    assert index["shards"][0]["lengths"][1] == zoo2l.cfg.n_ctx
    index = cache_file(zoo2l, long, HOOKS[:1], tmp_path / "out5", max_tokens=5, progress=False)
    assert index["shards"][0]["lengths"] == [3, 5]


def test_output_directory_checks(zoo2l, data, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InterpError, match="cannot write .*afile.*a parent of it is a file"):
        cache_file(zoo2l, data, HOOKS[:1], tmp_path / "afile" / "sub", progress=False)
    with pytest.raises(InterpError, match="is a file, not a directory"):
        cache_file(zoo2l, data, HOOKS[:1], tmp_path / "afile", progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(InterpError, match="--force will not clear .*'notes.txt'"):
        cache_file(zoo2l, data, HOOKS[:1], mine, force=True, progress=False)
    assert (mine / "notes.txt").read_text() == "keep me"
    cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=4, progress=False)
    index = cache_file(zoo2l, data, HOOKS[:1], tmp_path / "c", shard_size=20, force=True, progress=False)
    assert len(index["shards"]) == 1 and _files(tmp_path / "c") == ["index.json", "shard-00000.safetensors"]


def test_nothing_escapes_the_output_directory(zoo2l, tmp_path, monkeypatch):
    odd = tmp_path / "in" / "..%2f..%2fevil ...txt"  # a hostile-looking data file name
    odd.parent.mkdir()
    odd.write_text("The king ruled.\nThe queen ruled.\n")
    monkeypatch.chdir(tmp_path / "in")
    before = _files(tmp_path)
    cache_file(zoo2l, odd.name, "blocks.*.hook_resid_post", "out", shard_size=1, progress=False)
    created = sorted(set(_files(tmp_path)) - set(before))
    assert all(p.startswith("in/out") for p in created), created
    index = json.loads((tmp_path / "in" / "out" / "index.json").read_text())
    index["shards"][0]["file"] = "../../../etc/passwd"
    (tmp_path / "in" / "out" / "index.json").write_text(json.dumps(index))
    with pytest.raises(InterpError, match="only shard-NNNNN.safetensors inside the cache"):
        open_cache(tmp_path / "in" / "out")


def test_cli_cache_merge_and_errors(data, tmp_path, capsys):
    base = ["cache", "-m", "zoo-2l", "--data", str(data), "--hooks", "hook_embed,blocks.0.hook_resid_post",
            "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a"), "--shard", "0/2"]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--shard", "1/2"]) == 0
    assert "6 prompts" in capsys.readouterr().out
    assert main(["cache-merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    assert "11 prompts in" in capsys.readouterr().out
    assert open_cache(tmp_path / "m").hooks == ["hook_embed", "blocks.0.hook_resid_post"]
    for argv, message in [([*base, "--out", str(tmp_path / "x"), "--shard", "3/2"], "--shard '3/2' is out of range"),
                          ([*base, "--out", str(tmp_path / "a")], "is not empty: pass --resume"),
                          (["cache", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "y")],
                           "does not exist"),
                          (["cache-merge", str(tmp_path / "nope"), "--out", str(tmp_path / "z")],
                           "is not an interp cache")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exited:  # argparse: exclusive options
        main(["cache", "--truncate", "--max-tokens-per-prompt", "3", "--out", "o"])
    assert exited.value.code == 2 and "not allowed with" in capsys.readouterr().err


@pytest.mark.slow
def test_peak_memory_is_flat_in_input_length():
    """10x the lines, at most 10% more peak memory, measured in the caching process alone: this
    process holds 2 GiB meanwhile, which Linux's ru_maxrss would hand down to the child (and so
    hide any growth); the measurement must not see it."""
    hold = torch.ones(2**29)  # 2 GiB, resident
    small = measure_stream("zoo-2l", 200, ["blocks.1.hook_resid_post"])
    large = measure_stream("zoo-2l", 2000, ["blocks.1.hook_resid_post"])
    del hold
    assert large["n_tokens"] > 9 * small["n_tokens"] and large["tokens_per_s"] > 0
    assert small["peak_rss_mb"] < 1500, small  # the child's own peak (~0.5 GB), not this process's
    assert large["peak_rss_mb"] <= 1.10 * small["peak_rss_mb"], (small, large)


@pytest.mark.parametrize("dtype, tol", [("float16", 2e-3), ("bfloat16", 1e-2)])
def test_half_precision_cache_matches_float32_at_half_the_size(zoo2l, data, tmp_path, dtype, tol):
    full = cache_file(zoo2l, data, HOOKS, tmp_path / "f32", shard_size=4, progress=False)
    half = cache_file(zoo2l, data, HOOKS, tmp_path / dtype, shard_size=4, progress=False, dtype=dtype)
    assert full["dtype"] == "float32" and half["dtype"] == dtype
    a, b = open_cache(tmp_path / "f32"), open_cache(tmp_path / dtype)
    for name in HOOKS:
        for line in a.lines():
            x, y = a.get(name, line), b.get(name, line)
            assert y.dtype == getattr(torch, dtype) and x.shape == y.shape
            assert ((y.float() - x).abs() <= tol * x.abs().clamp(min=1)).all()
    size = lambda d: sum(p.stat().st_size for p in d.glob("shard-*.safetensors"))  # noqa: E731
    assert size(tmp_path / dtype) < 0.6 * size(tmp_path / "f32")
    with pytest.raises(InterpError, match="dtype='float32', not 'float16'"):  # resuming with another dtype is refused
        cache_file(zoo2l, data, HOOKS, tmp_path / "f32", shard_size=4, progress=False, resume=True, dtype="float16")
