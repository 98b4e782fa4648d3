"""Streaming activation cache: run a text file through a model and keep chosen activations on disk.

`cache_file(model, data, hooks, out)` reads `data` (one prompt per line; or `.jsonl`, `.parquet`,
`.arrow` or a saved `datasets` directory, prompts in `text_field`: see `interp.datasets_io`)
streamed, runs it in right-padded batches, and writes the chosen hook points in shards
(`shard-00000.safetensors`, `shard_size` prompts each) plus `index.json`. Prompts are
known by their line number, counted from 0 (blank lines are skipped but keep their number;
error messages count from 1, like an editor).

Activations are stored as float32, or with `dtype="float16"`/`"bfloat16"` (CLI `--dtype`) at
half the disk (the model still runs in float32; float16 keeps ~3 significant digits).

No padding is stored: per shard, each hook is one flat tensor over the shard's real tokens plus
an offsets tensor (the format, reading and merging are in `interp.cache_index`; `open_cache` and
`merge_caches` are re-exported here).

Memory stays flat however long the input: lines are streamed and at most one shard's activations
are held. Each shard is written to a temporary file and renamed into place, then `index.json`
is rewritten the same way, so an interrupted run continues with `resume=True` (CLI `--resume`)
after its last complete shard, skipping the prompts already written (a resume refuses a model with
other weights under the same name: the index keeps a fingerprint of the config and a sample of
the weights; shards that are corrupt, or that no index names, are deleted and computed again;
a directory whose index is gone is refused). The input is checked first
(UTF-8, not empty, every prompt fits the context unless truncated, the batch fits in memory), so
a bad input is refused before anything is written. `open_cache(dir)` memory-maps the shards
lazily and verifies each one's checksum the first time it is opened.

Scale-out: `shard=(i, n)` (CLI `--shard i/n`) processes only the lines whose number is i modulo n
(interleaved, not contiguous, so slices get similar work), so n machines can each cache a slice
into their own directory, e.g. a Slurm array::

    interp cache --data big.txt --hooks 'blocks.*.hook_resid_post' \\
        --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT --out acts-$SLURM_ARRAY_TASK_ID

or n Ray tasks (`interp.ray_cache.cache_on_ray`, CLI `--ray local|ADDRESS --workers n`). A preempted task re-runs the same command
with `--resume`. `merge_caches([dir0, ..., dirN], out)` (CLI `interp cache-merge DIR... --out DIR`)
then writes one index that points at all their shards, by paths relative to `out`: no data is
copied, so keep the slice directories where they are (or move them together with `out`).

Example:
    >>> import tempfile, pathlib, interp
    >>> from interp.cache import cache_file, open_cache
    >>> model = interp.load("zoo-2l")
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "data.txt").write_text("The king ruled the kingdom.\\nWhen Mary went to the store.\\n")
    >>> index = cache_file(model, tmp / "data.txt", "blocks.0.hook_resid_post", tmp / "cache", progress=False)
    >>> cache = open_cache(tmp / "cache")
    >>> cache.get("blocks.0.hook_resid_post", 1).shape  # BOS + 7 tokens ("." is one), d_model
    torch.Size([8, 128])
    >>> len(cache), cache.lines()
    (2, [0, 1])
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from interp.cache_index import (ATTN_HOOKS, FORMAT, INDEX, SHARD_FILE, Cache, atomic_write, merge_caches,
                                open_cache, read_index, save_index, sha256_file)
from interp.errors import InterpError, model_name
from interp.paths import check_path

DTYPES = ("float32", "float16", "bfloat16")
__all__ = ["cache_file", "open_cache", "merge_caches", "Cache", "measure_stream", "parse_shard", "read_lines",
           "batch_bytes", "check_batch_memory", "available_bytes"]


# ------------------------------------------------------------------ input


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n), with n >= 1 and 0 <= i < n.

    Example:
        >>> parse_shard("2/8")
        (2, 8)
    """
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise InterpError(f"--shard {text!r} is malformed: write i/n, e.g. 0/4 for the first of 4 slices") from None
    if n < 1 or not 0 <= i < n:
        good = max(n, 1)
        raise InterpError(f"--shard {text!r} is out of range: i must be 0..n-1 (0/{good} to {good - 1}/{good})")
    return i, n


def read_lines(path: str | Path, text_field: str = "text") -> Iterator[tuple[int, str]]:
    """(number from 0, prompt) for each non-blank prompt of a text, .jsonl, .parquet or .arrow file or
    a saved `datasets` directory, streamed (see `interp.datasets_io`)."""
    from interp.datasets_io import read_prompts

    return read_prompts(path, text_field)


def _limit(model, max_tokens: int | None, truncate: bool) -> int | None:
    """Tokens kept per prompt (None: refuse prompts longer than the context)."""
    n_ctx = model.cfg.n_ctx
    if max_tokens is not None and not 1 <= max_tokens <= n_ctx:
        raise InterpError(f"--max-tokens-per-prompt {max_tokens} out of range: {model_name(model)} takes 1-{n_ctx}")
    return max_tokens if max_tokens is not None else (n_ctx if truncate else None)


def _tokenize(model, text: str, limit: int | None, where: str):
    tokens = model.to_tokens(text, truncate=False)[0]
    if limit is None and len(tokens) > model.cfg.n_ctx:
        raise InterpError(f"{where} is {len(tokens)} tokens but {model_name(model)} takes at most {model.cfg.n_ctx}; "
                          "shorten it or pass --truncate (or --max-tokens-per-prompt N)")
    return tokens[:limit] if limit is not None else tokens


def _scan(model, data, shard, limit, text_field="text") -> tuple[int, int, str]:
    """Check the whole slice before writing anything.

    Returns:
        (number of prompts, longest prompt in tokens, SHA-256 of the slice's numbered prompts).
    """
    i, n = shard
    count = longest = 0
    digest = hashlib.sha256()
    for number, text in read_lines(data, text_field):
        if number % n == i:
            longest = max(longest, len(_tokenize(model, text, limit, f"{Path(data).name} line {number + 1}")))
            digest.update(f"{number}\t{text}\n".encode())
            count += 1
    if count == 0:
        where = f" in slice {i}/{n}" if n > 1 else ""
        raise InterpError(f"data file {Path(data).name!r} has no prompts{where}: give one prompt per line")
    return count, longest, digest.hexdigest()


# ------------------------------------------------------------------ memory


def _per_token(model, name: str, n_pos: int) -> int:
    """Numbers one position of hook `name` holds (attention hooks: one query row of every head)."""
    c = model.cfg
    if name.endswith(ATTN_HOOKS):
        return c.n_heads * n_pos
    if name.endswith("hook_result"):
        return c.n_heads * c.d_model
    if name.endswith(("hook_q", "hook_k", "hook_v", "hook_z")):
        return c.n_heads * c.d_head
    if name.endswith(("mlp.hook_pre", "mlp.hook_post")):
        return c.d_mlp
    if name.endswith("hook_scale"):
        return 1
    if name.endswith("hook_unembed"):
        return c.d_vocab
    return c.d_model


def batch_bytes(model, names: Sequence[str], batch_size: int, n_pos: int) -> int:
    """Estimated bytes (float32) of the chosen activations for one batch of `n_pos`-token prompts.

    Example:
        >>> import interp
        >>> model = interp.load("zoo-2l")
        >>> batch_bytes(model, ["blocks.0.hook_resid_post"], batch_size=2, n_pos=10)  # 4 * 2 * 10 * 128
        10240
    """
    return 4 * batch_size * n_pos * sum(_per_token(model, n, n_pos) for n in names)


def available_bytes() -> int:
    """Memory the OS can give this process now (psutil, else /proc/meminfo, else sysconf)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_batch_memory(model, names, batch_size: int, n_pos: int, free: int | None = None) -> None:
    """Refuse a batch whose activations (x2: the run's own and the per-prompt copies) would take
    more than half of the free memory, suggesting a --batch-size that fits."""
    need = 2 * batch_bytes(model, names, batch_size, n_pos)
    free = available_bytes() if free is None else free
    if need > free // 2:
        fit = batch_size * (free // 2) // need
        hint = f"use --batch-size {fit}" if fit >= 1 else "even --batch-size 1 is too large: choose fewer hooks"
        raise InterpError(f"a batch of {batch_size} prompts of up to {n_pos} tokens needs about "
                          f"{need / 2**30:.2f} GiB for these hooks, more than half the "
                          f"{free / 2**30:.2f} GiB free: {hint}")


# ------------------------------------------------------------------ output directory


def _ours(name: str) -> bool:
    from interp.report.write import TMP

    return name == INDEX or bool(SHARD_FILE.match(name)) or (name.startswith(".") and
                                                             (name.endswith(".tmp") or f".{TMP}-" in name))


def _prepare_out(out: Path, resume: bool, force: bool) -> None:
    """Create `out`, or check that it may be continued (resume) or cleared (force)."""
    if out.exists() and not out.is_dir():
        raise InterpError(f"output {str(out)!r} is a file, not a directory: choose another --out")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if entries and not resume:
        if not force:
            raise InterpError(f"output directory {str(out)!r} is not empty: pass --resume to continue it or "
                              "--force to replace it")
        foreign = [e for e in entries if not _ours(e)]
        if foreign:
            raise InterpError(f"--force will not clear {str(out)!r}: it holds {foreign[0]!r}, which interp "
                              "did not write; choose an empty --out")
        for e in entries:
            (out / e).unlink()
    from interp.report.write import check_writable, write_errors

    with write_errors(out, "choose a writable --out"):
        out.mkdir(parents=True, exist_ok=True)
    check_writable(out / INDEX, "choose a writable --out")


# ------------------------------------------------------------------ writing


def _shapes(model, names) -> dict:
    """Per-hook shape of one prompt's activation, "pos" standing for its length."""
    probe = _run(model, [model.to_tokens("a", truncate=False)[0]], names)[0][1]
    return {n: (["head", "pos", "pos"] if n.endswith(ATTN_HOOKS) else ["pos", *t.shape[1:]]) for n, t in probe.items()}


def _new_index(model, settings: dict) -> dict:
    from interp import __version__

    return {"format": FORMAT, "interp": __version__, **settings, "shapes": _shapes(model, settings["hooks"]),
            "n_heads": model.cfg.n_heads, "prepend_bos": bool(model.cfg.default_prepend_bos),
            "complete": False, "shards": []}


def cache_file(model, data: str | Path, hooks, out: str | Path, batch_size: int = 16, shard_size: int = 256,
               shard: tuple[int, int] = (0, 1), resume: bool = False, force: bool = False, truncate: bool = False,
               max_tokens: int | None = None, progress: bool = True, max_shards: int | None = None,
               dtype: str = "float32", text_field: str = "text") -> dict:
    """Stream `data` through `model` and write the chosen activations in shards under `out`.

    Args:
        model: a model from `interp.load`.
        data: text file (one prompt per line), `.jsonl` (a `text_field` per line), `.parquet` or
            `.arrow` file or saved `datasets` directory (column `text_field`); streamed.
        hooks: hook names, a glob ("blocks.*.hook_resid_post") or a predicate, as in `capture`.
        out: output directory (created; must be empty unless `resume` or `force`).
        batch_size: prompts per forward pass.
        shard_size: prompts per shard file.
        shard: (i, n) to process only the lines whose number is i modulo n.
        resume: continue a run in `out` after its last complete shard.
        force: clear a non-empty `out` (only files interp wrote there).
        truncate: cut prompts longer than the context instead of refusing them.
        max_tokens: cut every prompt to at most this many tokens (implies truncation).
        progress: show a tqdm progress bar.
        max_shards: stop after writing this many shards in this call (tests, chunked jobs).
        dtype: storage type: "float32", "float16" or "bfloat16".
        text_field: the .jsonl field or the table column that holds the prompts.

    Returns:
        The index, as written to `out/index.json`.

    Raises:
        InterpError: missing, empty or non-UTF-8 data; unknown hook; prompt too long; output
            directory not empty or not writable; a batch too large for the free memory.
    """
    out = Path(check_path(out, "out"))
    if resume and force:
        raise InterpError("--resume continues --out and --force clears it: pass one of them, not both")
    names, shard, limit = _check_args(model, hooks, batch_size, shard_size, shard, max_tokens, truncate, dtype)
    total, longest, digest = _scan(model, data, shard, limit, text_field)
    check_batch_memory(model, names, batch_size, longest)
    _prepare_out(out, resume, force)
    settings = {"model": model_name(model), "weights_sha256": fingerprint(model), "hooks": list(names), "slice": list(shard), "shard_size": shard_size,
                "max_tokens": limit, "dtype": dtype, "data_sha256": digest}
    index = _resume(out, settings) if resume else None
    index = index or _new_index(model, settings)
    done = {line for s in index["shards"] for line in s["lines"]}
    todo = ((num, text) for num, text in read_lines(data, text_field) if num % shard[1] == shard[0] and num not in done)
    bar = _bar(progress, total, len(done), model_name(model))
    written = 0
    for group in _chunks(todo, shard_size):  # one shard's prompts at a time: memory stays flat
        _write_shard(model, out, index, group, names, limit, batch_size, bar)
        written += 1
        if max_shards is not None and written >= max_shards:
            break
    else:
        index["complete"] = True
        save_index(out, index)
    bar.close()
    return index


def _check_args(model, hooks, batch_size, shard_size, shard, max_tokens, truncate, dtype):
    from interp.activations import select_names

    if dtype not in DTYPES:
        raise InterpError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    names = select_names(model, hooks)
    if not names:
        raise InterpError(f"hooks {hooks!r} choose no hook point: give a name, a glob such as "
                          "'blocks.*.hook_resid_post', or comma-separated names")
    if batch_size < 1 or shard_size < 1:
        raise InterpError(f"batch size {batch_size} and shard size {shard_size} must both be at least 1")
    shard = parse_shard(f"{shard[0]}/{shard[1]}") if not isinstance(shard, str) else parse_shard(shard)
    return names, shard, _limit(model, max_tokens, truncate)


def _bar(progress: bool, total: int, initial: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"cache {name}", unit="prompt", disable=not progress,
                file=sys.stderr)


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_shard(model, out: Path, index: dict, group, names, limit, batch_size: int, bar) -> None:
    """Run one shard's prompts in batches, write the shard atomically, then the index."""
    import torch
    from safetensors.torch import save_file

    rows, parts = [], {n: [] for n in names}
    for batch in _chunks(group, batch_size):
        tokens = [_tokenize(model, text, limit, f"line {num + 1}") for num, text in batch]
        for row, acts in _run(model, tokens, names, index["dtype"]):
            rows.append(row)
            for n in names:
                parts[n].append(acts[n].flatten() if n.endswith(ATTN_HOOKS) else acts[n])
        bar.update(len(batch))
    lengths = [len(r) for r in rows]
    tensors = {"tokens": torch.cat(rows), "lines": torch.tensor([num for num, _ in group], dtype=torch.long),
               "offsets": torch.tensor([0, *lengths], dtype=torch.long).cumsum(0)}
    tensors.update({n: torch.cat(parts.pop(n)).contiguous() for n in names})
    file = f"shard-{_next_number(index):05d}.safetensors"
    atomic_write(out / file, functools.partial(save_file, tensors))  # straight to disk: no second copy in memory
    del tensors
    digest = sha256_file(out / file)
    index["shards"].append({"file": file, "sha256": digest, "lines": [num for num, _ in group], "lengths": lengths})
    save_index(out, index)


def _next_number(index: dict) -> int:
    used = [int(SHARD_FILE.match(s["file"]).group(1)) for s in index["shards"]]
    return max(used) + 1 if used else 0


def _run(model, rows: list, names: list[str], dtype: str = "float32") -> list:
    """[(token ids, {hook: activation of that prompt without padding})] for one batch."""
    import torch

    from interp.activations import capture

    pad = model.tokenizer.pad_token_id or 0
    tokens = torch.full((len(rows), max(len(r) for r in rows)), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = r
    acts = capture(model, tokens.to(model.cfg.device), names=names, lengths=[len(r) for r in rows])
    return [(r.cpu(), {n: _unpad(n, acts[n][i], len(r), dtype) for n in names}) for i, r in enumerate(rows)]


def _unpad(name: str, act, n: int, dtype: str = "float32"):
    """One prompt's activation without its padding positions, on the CPU, in `dtype`."""
    import torch

    act = act[:, :n, :n] if name.endswith(ATTN_HOOKS) else act[:n]
    return act.detach().to("cpu", dtype=getattr(torch, dtype)).clone()


def _resume(out: Path, settings: dict) -> dict | None:
    """The index to continue: settings and data must match; missing or corrupt shards are dropped
    (and deleted, with any shard file the index does not name)."""
    if not (out / INDEX).exists():
        if any(SHARD_FILE.match(p.name) for p in out.iterdir()):
            raise InterpError(f"cannot resume {str(out)!r}: its {INDEX} is missing, so its shards cannot be "
                              "trusted; run without --resume and with --force to start over")
        return None
    index = read_index(out)
    if "weights_sha256" not in index:
        raise InterpError(f"cannot resume {str(out)!r}: an older interp made it without a weights fingerprint; "
                          "run without --resume and with --force to start over")
    if index["weights_sha256"] != settings["weights_sha256"]:
        raise InterpError(f"cannot resume {str(out)!r}: it was made with other weights than this "
                          f"{settings['model']} (weights fingerprint differs); use another --out, or --force "
                          "without --resume")
    for key, want in settings.items():
        if key not in ("data_sha256", "weights_sha256") and index.get(key) != want:
            raise InterpError(f"cannot resume {str(out)!r}: it was made with {key}={index.get(key)!r}, "
                              f"not {want!r}; use another --out or the same settings")
    if index.get("data_sha256") != settings["data_sha256"]:
        raise InterpError(f"cannot resume {str(out)!r}: the data file's prompts changed since that run; "
                          "use a new --out (or --force without --resume to start over)")
    for stale in out.glob(".*.tmp"):  # a shard or index write that a crash cut short (older interp)
        stale.unlink()
    from interp.report.write import sweep_stale

    sweep_stale(out)
    good = [s for s in index["shards"] if (out / s["file"]).is_file() and sha256_file(out / s["file"]) == s["sha256"]]
    for bad in (s for s in index["shards"] if s not in good):
        print(f"interp cache: {bad['file']} is missing or corrupt; its prompts will be cached again", file=sys.stderr)
    kept = {s["file"] for s in good}
    for p in out.iterdir():  # corrupt shards and shards a crash wrote before its index: computed again
        if SHARD_FILE.match(p.name) and p.name not in kept:
            p.unlink()
    index.update(shards=good, complete=False)
    return index


def fingerprint(model) -> str:
    """SHA-256 of a model's config and a sample of its weights (the first 4096 numbers of about
    eight parameters, first and last included): a resume or merge refuses other weights under
    the same name."""
    import torch

    h = hashlib.sha256(json.dumps(_config_facts(model), sort_keys=True, default=str).encode())
    params = list(model.named_parameters())
    step = max(1, len(params) // 8)
    for name, p in params[::step] + params[-1:]:
        sample = p.detach().reshape(-1)[:4096].to("cpu", torch.float32)
        h.update(f"{name}:{tuple(p.shape)}:".encode() + sample.numpy().tobytes())
    return h.hexdigest()


def _config_facts(model) -> dict:
    c = model.cfg
    return {k: getattr(c, k, None) for k in ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx")}


# ------------------------------------------------------------------ measuring


_MEASURE = r"""
import json, resource, sys, time, tempfile, pathlib
import interp
from interp.cache import cache_file
from interp.zoo.corpus import Corpus, text
name, n_lines, hooks, fmt = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
tmp = pathlib.Path(tempfile.mkdtemp(prefix="interp-measure-"))
corpus = Corpus(0)
with open(tmp / "data.txt", "w") as f:
    for i in range(n_lines):
        f.write(text(corpus, 8 + i % 17).strip() + "\n")
data = tmp / "data.txt"
if fmt != "text":  # the same lines as a table, written before the model loads
    import pyarrow as pa, pyarrow.parquet as pq
    table = pa.table({"text": data.read_text().splitlines()})
    data = tmp / ("data.parquet" if fmt == "parquet" else "data-ds")
    if fmt == "parquet":
        pq.write_table(table, data, row_group_size=256)
    else:
        import datasets
        datasets.Dataset(table).save_to_disk(str(data))
    del table
model = interp.load(name)
start = time.perf_counter()
index = cache_file(model, data, hooks, tmp / "cache", progress=False)
seconds = time.perf_counter() - start
n_tokens = sum(sum(s["lengths"]) for s in index["shards"])
def peak_rss_mb():
    # VmHWM belongs to this program's own address space; ru_maxrss would also count the parent's
    # resident memory at fork time, which Linux carries across exec
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n_lines": n_lines, "n_tokens": n_tokens, "seconds": seconds,
                  "tokens_per_s": n_tokens / seconds, "peak_rss_mb": peak_rss_mb()}))
import shutil; shutil.rmtree(tmp)
"""


def measure_stream(model_name: str, n_lines: int, hooks="blocks.0.hook_resid_post", data_format: str = "text") -> dict:
    """Cache `n_lines` lines of zoo corpus text in a fresh Python process and measure it.

    For the benchmark and the flat-memory test. `hooks` is a name, a glob or a list of names.
    `data_format` "parquet" or "datasets" stores the lines as that input (column "text") first.

    Runs in a subprocess so that the peak resident memory belongs to this job only: on Linux it
    is the child's VmHWM (its own address space; `ru_maxrss` would report at least the parent's
    resident size at fork time, because Linux carries it across exec); elsewhere `ru_maxrss`.
    It includes the interpreter, torch and the model. Lines are written to a temporary file and
    deleted afterwards.

    Returns:
        dict with n_lines, n_tokens, seconds (the caching only), tokens_per_s, peak_rss_mb.
    """
    import subprocess

    hooks = hooks if isinstance(hooks, str) else list(hooks)  # a glob string stays a glob
    result = subprocess.run([sys.executable, "-c", _MEASURE, model_name, str(n_lines), json.dumps(hooks),
                             data_format],
                            capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        prefix = "interp.errors.InterpError: "
        if last.startswith(prefix):
            raise InterpError(last[len(prefix):])
        raise RuntimeError(f"measure_stream failed in its subprocess: {last}")
    return json.loads(result.stdout.strip().splitlines()[-1])
