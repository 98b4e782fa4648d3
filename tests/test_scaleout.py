"""Scaling out: data sets as cache input (parquet, arrow, saved datasets), streamed; caching on Ray."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from interp.cache import cache_file, open_cache, read_lines
from interp.cli import main
from interp.datasets_io import check_data, measure_read
from interp.errors import InterpError
from interp.zoo.corpus import Corpus, text

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]


def _lines(n: int, seed: int = 0) -> list[str]:
    corpus = Corpus(seed)
    return [text(corpus, 8 + i % 13).strip() for i in range(n)]


def _inputs(tmp_path, lines) -> dict:
    """The same prompts as .txt, .jsonl (field "body"), .parquet, .arrow (IPC file) and a datasets dir."""
    import datasets

    paths = {"txt": tmp_path / "d.txt", "jsonl": tmp_path / "d.jsonl", "parquet": tmp_path / "d.parquet",
             "arrow": tmp_path / "d.arrow", "datasets": tmp_path / "ds"}
    paths["txt"].write_text("\n".join(lines) + "\n")
    paths["jsonl"].write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(lines)))
    table = pa.table({"id": list(range(len(lines))), "body": lines})
    pq.write_table(table, paths["parquet"], row_group_size=3)  # several row groups
    with pa.ipc.new_file(str(paths["arrow"]), table.schema) as w:
        for batch in table.to_batches(max_chunksize=4):
            w.write_batch(batch)
    datasets.Dataset.from_dict({"id": list(range(len(lines))), "body": lines}).save_to_disk(str(paths["datasets"]))
    return paths


def test_every_format_reads_the_same_numbered_prompts(tmp_path):
    lines = _lines(9)
    lines[4] = "   "  # blank: skipped, keeps its number
    paths = _inputs(tmp_path, lines)
    want = [(i, t) for i, t in enumerate(lines) if t.strip()]
    for kind, path in paths.items():
        field = "text" if kind == "txt" else "body"
        assert list(read_lines(path, field)) == want, kind
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"body": ["a b", None, "c"]}), nulls)
    assert list(read_lines(nulls, "body")) == [(0, "a b"), (2, "c")]
    stream = tmp_path / "stream.arrow"  # the IPC stream format, as datasets writes its cache files
    with pa.ipc.new_stream(str(stream), pa.schema([("body", pa.string())])) as w:
        w.write_batch(pa.record_batch([pa.array(["x", "y"])], names=["body"]))
    assert list(read_lines(stream, "body")) == [(0, "x"), (1, "y")]


def test_format_mistakes_are_one_line(tmp_path):
    import datasets

    paths = _inputs(tmp_path, _lines(3))
    for path, field, message in [
            (paths["parquet"], "text", (r"d.parquet has no column 'text'; its columns are id, body: "
                                        "choose one with --text-column")),
            (paths["arrow"], "id", r"column 'id' of d.arrow holds int64, not text"),
            (paths["datasets"], "nope", r"has no column 'nope'; its columns are id, body"),
            (paths["txt"], "body", r"--text-field 'body' applies to .jsonl"),
            (tmp_path, "text", r"is a directory but not a dataset saved with datasets' save_to_disk"),
            (tmp_path / "missing.parquet", "text", r"does not exist")]:
        with pytest.raises(InterpError, match=message):
            check_data(path, field)
    with pytest.raises(InterpError, match=r'd.jsonl line 1 is not a JSON object with a string "text" field '
                                          r"\(choose another with --text-field\)"):
        list(read_lines(paths["jsonl"]))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InterpError, match="is not a readable parquet input"):
        check_data(bad)
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InterpError, match=r"is a DatasetDict with splits train: give one split, "
                                          r"e.g. --data .*dd/train"):
        check_data(tmp_path / "dd")
    assert list(read_lines(tmp_path / "dd" / "train")) == [(0, "a")]


def test_every_format_gives_a_byte_identical_cache(zoo2l, tmp_path):
    paths = _inputs(tmp_path, _lines(11))
    indexes = {}
    for kind, path in paths.items():
        field = "text" if kind == "txt" else "body"
        indexes[kind] = cache_file(zoo2l, path, HOOKS, tmp_path / f"c-{kind}", shard_size=4, batch_size=3,
                                   progress=False, text_field=field)
    ref = indexes.pop("txt")
    assert len(ref["shards"]) == 3
    for kind, index in indexes.items():
        assert index == ref, kind  # same settings, data digest, shard checksums, lines and lengths
        for s in ref["shards"]:
            assert (tmp_path / f"c-{kind}" / s["file"]).read_bytes() == (tmp_path / "c-txt" / s["file"]).read_bytes()


def test_cli_reads_a_datasets_directory_and_a_parquet(tmp_path, capsys):
    paths = _inputs(tmp_path, _lines(5))
    for kind in ("datasets", "parquet"):
        argv = ["cache", "-m", "zoo-2l", "--data", str(paths[kind]), "--text-column", "body", "--hooks",
                "blocks.0.hook_resid_post", "--out", str(tmp_path / kind), "--no-progress"]
        assert main(argv) == 0
        assert "5 prompts" in capsys.readouterr().out
    assert open_cache(tmp_path / "datasets").index == open_cache(tmp_path / "parquet").index
    assert main(["cache", "--data", str(paths["parquet"]), "--out", str(tmp_path / "x")]) == 2  # no column "text"
    err = capsys.readouterr().err
    assert "has no column 'text'" in err and err.count("\n") == 1


def _big_inputs(tmp_path, rows: int):
    """`rows` distinct prompts of ~100 characters as an uncompressed parquet and a datasets dir."""
    import datasets

    base = _lines(50)
    texts = [f"{base[i % 50]} {i}" for i in range(rows)]
    table = pa.table({"text": texts})
    pq.write_table(table, tmp_path / "big.parquet", compression="none", row_group_size=20_000)
    datasets.Dataset(table).save_to_disk(str(tmp_path / "bigds"))
    return sum(map(len, texts)) / 2**20


def test_tabular_inputs_stream_with_flat_memory(tmp_path):
    """10x the rows (~4.5 -> ~45 MB of text) grow the reading process's own (anonymous) memory by
    under 30% of the extra text, for a parquet and a datasets directory; a reader that keeps the
    prompts grows by more than their size, so the measurement can see growth."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    small_mb, large_mb = _big_inputs(small, 60_000), _big_inputs(large, 600_000)
    assert large_mb > 40
    for name in ("big.parquet", "bigds"):
        a, b = measure_read(small / name), measure_read(large / name)
        assert b["rows"] == 600_000 and b["chars"] / 2**20 == pytest.approx(large_mb)
        assert b["growth_mb"] - a["growth_mb"] < 0.3 * (large_mb - small_mb), (name, a, b)
    held = measure_read(large / "big.parquet", hold=True)
    assert held["growth_mb"] > large_mb, held


# ------------------------------------------------------------------ Ray


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster with 2 CPUs for this module's tests."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 2**20)
    yield ray
    ray.shutdown()


def _assert_same_cache(a, b, tol, relative=False):
    """Same prompts, tokens and hooks; every value within `tol` (times the tensor's largest
    magnitude when `relative`)."""
    assert a.lines() == b.lines() and a.hooks == b.hooks
    for line in a.lines():
        assert torch.equal(a.tokens(line), b.tokens(line))
        for hook in a.hooks:
            x, y = a.get(hook, line), b.get(hook, line)
            scale = max(1.0, x.abs().max().item()) if relative else 1.0
            assert x.shape == y.shape and (x - y).abs().max() <= tol * scale, (hook, line)


@pytest.mark.slow
def test_ray_cache_equals_one_process_and_survives_a_killed_worker(local_ray, zoo2l, tmp_path):
    from interp.ray_cache import cache_on_ray

    data = tmp_path / "d.txt"
    data.write_text("\n".join(_lines(14)) + "\n")
    hooks = "blocks.*.hook_resid_post"
    kw = {"batch_size": 1, "shard_size": 2}  # one prompt per forward: the same shapes as one process
    single = cache_file(zoo2l, data, hooks, tmp_path / "one", progress=False, **kw)
    marker = tmp_path / "killed"
    index = cache_on_ray("zoo-2l", data, hooks, tmp_path / "ray", workers=2, _kill_once=marker, **kw)
    killed = int(marker.read_text())  # task 0 wrote one shard, then SIGKILLed its own worker
    assert killed > 0 and index["complete"] and index["weights_sha256"] == single["weights_sha256"]
    assert sorted(index["sources"]) == ["slice-0", "slice-1"]
    # same shapes, but the workers may run other intra-op thread counts than this process (other
    # summation orders): 1e-6 of each tensor's largest value (float32 rounding; CI saw 3.1e-6 at |x| ~ 8)
    _assert_same_cache(open_cache(tmp_path / "one"), open_cache(tmp_path / "ray"), 1e-6, relative=True)
    with pytest.raises(InterpError, match="not empty: pass --resume"):
        cache_on_ray("zoo-2l", data, hooks, tmp_path / "ray", workers=2, **kw)
    again = cache_on_ray("zoo-2l", data, hooks, tmp_path / "ray", workers=2, force=True, **kw)
    assert sorted(line for s in again["shards"] for line in s["lines"]) == list(range(14))


@pytest.mark.slow
def test_cli_ray_local_writes_the_single_process_cache(local_ray, tmp_path, capsys):
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": _lines(12)}), data)
    base = ["cache", "--model", "zoo-2l", "--data", str(data), "--hooks", "blocks.*.hook_resid_post",
            "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    assert main([*base, "--out", str(tmp_path / "ray"), "--ray", "local", "--workers", "2"]) == 0
    assert "12 prompts" in capsys.readouterr().out
    # batches hold other prompts (other padding) than in one process: float32 rounding only
    _assert_same_cache(open_cache(tmp_path / "one"), open_cache(tmp_path / "ray"), 1e-5, relative=True)
    for extra, message in [(["--hooks", "blocks.0.hook_resid_pots"], "did you mean 'blocks.0.hook_resid_post'"),
                           (["--shard", "1/2"], "--ray makes its own slices"),
                           (["--workers", "0"], "--workers 0 must be at least 1")]:
        assert main([*base, "--out", str(tmp_path / "bad"), "--ray", "local", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main([*base, "--out", str(tmp_path / "bad"), "--workers", "2"]) == 2
    assert "--workers needs --ray" in capsys.readouterr().err


# ------------------------------------------------------------------ placement by accelerate


@pytest.mark.slow
def test_device_map_auto_gives_the_in_memory_dla(zoo4l):
    import interp
    from interp.attribution import direct_logit_attribution

    prompt, target = "When Mary and John went to the store, John gave a drink to", " Mary"
    placed = interp.load("zoo-4l", device_map="auto", max_memory={"cpu": "4GB"})
    a = direct_logit_attribution(zoo4l, prompt, target)
    b = direct_logit_attribution(placed, prompt, target)
    assert a.labels == b.labels and a.tokens == b.tokens
    assert (a.values - b.values).abs().max() < 1e-4 and (a.model_value - b.model_value).abs().max() < 1e-4


# ------------------------------------------------------------------ offload to disk (interp.offload)

PROMPTS = ["When Mary and John went to the store, John gave a drink to",
           "The king said that he was tired because the queen"]


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory):
    """zoo-4l with a 1 MB budget: most of its modules on disk."""
    import interp

    folder = tmp_path_factory.mktemp("offload")
    return interp.load("zoo-4l", device_map="auto", max_memory={"cpu": "1MB"}, offload_folder=folder), folder


def test_offloaded_model_keeps_most_weights_on_disk_and_matches_plain_transformers(offloaded):
    from transformers import GPT2LMHeadModel

    from interp.models import ZOO_DIR
    from interp.offload import placement

    model, folder = offloaded
    tiers = list(placement(model).values())
    assert tiers.count("disk") > len(tiers) / 2 and set(tiers) == {"cpu", "disk"}
    assert any(folder.glob("*.dat")) and (folder / "index.json").exists()
    assert model.info.placement.startswith(f"{tiers.count('disk')} of {len(tiers)} units (embeddings, blocks, final")
    assert all(placement(model)[f"blocks.{i}"] == "disk" for i in range(4))
    assert sum(p.is_meta for p in model.parameters()) > 0.6 * len(list(model.parameters()))
    hf = GPT2LMHeadModel.from_pretrained(ZOO_DIR / "zoo-4l", attn_implementation="eager").eval()
    tokens = model.to_tokens(PROMPTS[0])
    with torch.no_grad():
        ours, theirs = model(tokens).log_softmax(-1), hf(tokens).logits.log_softmax(-1)
    assert (ours - theirs).abs().max() < 1e-4  # compatibility mode shifts logits by a constant per position
    assert sum(p.is_meta for p in model.parameters()) > 0.6 * len(list(model.parameters()))  # offloaded again


def test_offloaded_analyses_equal_the_in_memory_model(offloaded, zoo4l):
    """DLA (with neurons), logit lens, activations and the head sweep (which falls back from the
    GPT-2 engine to the blocks path on an offloaded model) within 1e-4 of the in-memory model."""
    from interp.activations import capture
    from interp.attribution import attribute, logit_lens
    from interp.engine import supports
    from interp.sweep import fast_sweep, logit_diff, naive_sweep, zero_replacement

    model, _ = offloaded
    for kw in ({}, {"neurons": 2}):
        a, b = attribute(zoo4l, PROMPTS, " Mary", " John", **kw), attribute(model, PROMPTS, " Mary", " John", **kw)
        assert a[["component", "prompt"]].equals(b[["component", "prompt"]])
        assert (a["value"] - b["value"]).abs().max() < 1e-4
    a, b = logit_lens(zoo4l, PROMPTS), logit_lens(model, PROMPTS)
    assert a["token"].equals(b["token"]) and (a["logit"] - b["logit"]).abs().max() < 1e-4
    hooks = ["blocks.2.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.3.mlp.hook_post"]
    a, b = capture(zoo4l, PROMPTS, names=hooks), capture(model, PROMPTS, names=hooks)
    assert max((a[h] - b[h]).abs().max().item() for h in hooks) < 1e-4
    assert supports(zoo4l) and not supports(model)
    tokens = model.to_tokens(PROMPTS, padding_side="right")
    lengths = [len(model.to_tokens(p)[0]) for p in PROMPTS]
    metric = logit_diff(model, " Mary", " John", len(PROMPTS))
    _, mem = fast_sweep(zoo4l, tokens, zero_replacement(zoo4l, tokens), metric, lengths=lengths)
    _, off = fast_sweep(model, tokens, zero_replacement(model, tokens), metric, lengths=lengths)
    _, naive = naive_sweep(model, tokens, zero_replacement(model, tokens), metric, lengths=lengths)
    assert (mem - off).abs().max() < 1e-4 and (off - naive).abs().max() < 1e-4


def test_offloaded_interventions_equal_the_in_memory_model(offloaded, zoo4l):
    """Head ablation, causal-mask removal and activation patching (exact and attribution)."""
    import pandas as pd

    from interp.ablation import ablate
    from interp.attention import mask_removal_effect
    from interp.patching import activation_patch

    model, _ = offloaded
    clean, corrupt = PROMPTS[0], "When Mary and John went to the store, Mary gave a drink to"

    def same(a, b):
        if isinstance(a, pd.DataFrame):
            num = [c for c in a.columns if a[c].dtype.kind == "f"]
            assert a.drop(columns=num).equals(b.drop(columns=num))
            assert max((a[c] - b[c]).abs().max() for c in num) < 1e-4
        else:
            assert abs(a - b) < 1e-4 if isinstance(a, float) else all(abs(x - y) < 1e-4 for x, y in zip(a, b))

    same(ablate(zoo4l, clean, [(3, 5), (2, 7)], " Mary", " John"), ablate(model, clean, [(3, 5), (2, 7)], " Mary", " John"))
    same(mask_removal_effect(zoo4l, PROMPTS), mask_removal_effect(model, PROMPTS))
    for method in ("activation", "attribution"):
        same(activation_patch(zoo4l, clean, corrupt, " Mary", " John", what="heads", method=method),
             activation_patch(model, clean, corrupt, " Mary", " John", what="heads", method=method))


def test_resident_brings_only_the_asked_parts_and_puts_them_back(offloaded):
    from interp.offload import resident

    model, _ = offloaded
    assert model.unembed.original_component.weight.is_meta
    with resident(model, "unembed", "blocks.*.attn.o"):
        assert not model.W_U.is_meta and not model.W_O.is_meta
        assert model.blocks[1].mlp.out.original_component.weight.is_meta
        assert model.blocks[1].attn.q.original_component.weight.is_meta
        model(model.to_tokens(PROMPTS[0]))  # a forward inside leaves them resident
        assert not model.W_U.is_meta
    assert model.unembed.original_component.weight.is_meta
    with pytest.raises(ValueError, match="no module 'blocks.9.attn'"):
        with resident(model, "blocks.9.attn"):
            pass


def test_offload_errors_are_one_line_and_leave_nothing(tmp_path, offloaded):
    import interp

    _, used = offloaded
    with pytest.raises(InterpError, match="needs max_memory"):
        interp.load("zoo-4l", device_map="auto", offload_folder=tmp_path / "a")
    with pytest.raises(InterpError, match=r"max_memory\['cpu'\] = 'lots' is not a size"):
        interp.load("zoo-4l", device_map="auto", max_memory={"cpu": "lots"}, offload_folder=tmp_path / "b")
    with pytest.raises(InterpError, match="already holds offloaded weights"):
        interp.load("zoo-4l", device_map="auto", max_memory={"cpu": "1MB"}, offload_folder=used)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InterpError, match="cannot write offloaded weights to"):
        interp.load("zoo-4l", device_map="auto", max_memory={"cpu": "1MB"}, offload_folder=blocker / "sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    with pytest.raises(InterpError, match=r"^model 'zoo-4l' does not fit max_memory: accelerate offloaded \d+ of its "
                                          r"\d+ modules to disk, .*pass offload_folder=DIR"):
        interp.load("zoo-4l", device_map="auto", max_memory={"cpu": "1MB"})
    with pytest.raises(InterpError, match="max_memory and offload_folder go with device_map"):
        interp.load("zoo-4l", max_memory={"cpu": "1MB"})


@pytest.mark.slow
@pytest.mark.parametrize("data_format", ["parquet", "datasets"])
def test_caching_a_table_has_flat_peak_memory(data_format):
    """10x the rows, at most 10% more peak memory of the caching process (its own VmHWM)."""
    from interp.cache import measure_stream

    small = measure_stream("zoo-2l", 200, ["blocks.1.hook_resid_post"], data_format=data_format)
    large = measure_stream("zoo-2l", 2000, ["blocks.1.hook_resid_post"], data_format=data_format)
    assert large["n_tokens"] > 9 * small["n_tokens"]
    assert large["peak_rss_mb"] <= 1.10 * small["peak_rss_mb"], (small, large)
