"""Streaming activation cache: run a text file through a model and keep chosen activations on disk.

`cache_file(model, data, hooks, out)` reads `data` (one prompt per line, or `.jsonl` with a
"text" field) line by line, runs it in batches, and writes the chosen hook points in shards
(`shard-00000.safetensors`, `shard_size` prompts each) plus `index.json`. No padding is stored:
each prompt's activation is its own tensor (`"{hook}|{line}"`) of its real length, e.g.
`blocks.0.hook_resid_post|17` is `[pos d_model]` and `blocks.0.attn.hook_pattern|17` is
`[head query key]`. Memory stays flat however long the input: at most one shard is held.

Robustness: the file is checked first (UTF-8, not empty, every prompt fits the context unless
`truncate`), so a bad input is refused before anything is written. Each shard is written to a
temporary file and renamed; `index.json` is rewritten atomically after every shard with the
shard's SHA-256, so an interrupted run continues with `resume=True` after its last complete
shard. `open_cache(dir)` memory-maps shards lazily and checks each one's checksum on first use.

Scale-out: `shard=(i, n)` processes only the lines whose number is i modulo n, so n machines (a
Slurm array with `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`, or n Ray tasks) can each
cache a slice into its own directory; `merge_caches([dir0, ..., dirN], out)` then writes one
index that points at all their shards (no data is copied).

Example:
    >>> import tempfile, pathlib, interp
    >>> from interp.cache import cache_file, open_cache
    >>> model = interp.load("zoo-2l")
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "data.txt").write_text("The king ruled the kingdom.\\nWhen Mary went to the store.\\n")
    >>> index = cache_file(model, tmp / "data.txt", "blocks.0.hook_resid_post", tmp / "cache", progress=False)
    >>> cache = open_cache(tmp / "cache")
    >>> cache.get("blocks.0.hook_resid_post", 1).shape  # BOS + 7 tokens (the period too), d_model
    torch.Size([8, 128])
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from interp.errors import InterpError

INDEX = "index.json"
_ATTN = ("hook_pattern", "hook_attn_scores")


# ------------------------------------------------------------------ input


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n), with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InterpError(f"--shard {text!r} is malformed: write i/n, e.g. 0/4 for the first of 4 slices") from None
    if not 0 <= i < n:
        raise InterpError(f"--shard {text!r}: i must be in 0..n-1 (e.g. 0/{max(n, 1)} to {max(n, 1) - 1}/{max(n, 1)})")
    return i, n


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, prompt) for each non-empty line (or jsonl "text"), streamed."""
    path = Path(path)
    if not path.is_file():
        raise InterpError(f"data file {str(path)!r} does not exist: give a text file with one prompt per line")
    jsonl = path.suffix == ".jsonl"
    with path.open("rb") as f:
        for number, raw in enumerate(f):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise InterpError(f"{path.name} line {number + 1} is not UTF-8: re-encode the file as UTF-8") from None
            if jsonl and line.strip():
                try:
                    line = json.loads(line)["text"]
                except (ValueError, KeyError, TypeError):
                    raise InterpError(f"{path.name} line {number + 1} is not a JSON object with a \"text\" field") from None
            if line.strip():
                yield number, line


def _tokenize(model, text: str, truncate: bool, where: str):
    tokens = model.to_tokens(text, truncate=False)[0]
    if len(tokens) > model.cfg.n_ctx:
        if not truncate:
            raise InterpError(f"{where} is {len(tokens)} tokens but {model.info.name} takes at most {model.cfg.n_ctx}; "
                              "shorten it or pass --truncate")
        tokens = tokens[:model.cfg.n_ctx]
    return tokens


def _check_input(model, data, shard, truncate) -> int:
    """Validate the whole file before writing anything; returns how many prompts this slice has."""
    i, n = shard
    count = 0
    for number, text in read_lines(data):
        if number % n == i:
            _tokenize(model, text, truncate, f"{Path(data).name} line {number + 1}")
            count += 1
    if count == 0:
        raise InterpError(f"data file {Path(data).name!r} has no prompts" + (f" in slice {i}/{n}" if n > 1 else "")
                          + ": give one prompt per line")
    return count


def bytes_per_batch(model, names: Sequence[str], batch_size: int, n_pos: int) -> int:
    """Estimated bytes of the chosen activations for one batch (float32), attention hooks included."""
    c, total = model.cfg, 0
    for name in names:
        if name.endswith(_ATTN):
            per = c.n_heads * n_pos
        elif name.endswith("hook_result"):
            per = c.n_heads * c.d_model
        elif name.endswith(("hook_q", "hook_k", "hook_v", "hook_z")):
            per = c.n_heads * c.d_head
        elif name.endswith(("mlp.hook_pre", "mlp.hook_post")):
            per = c.d_mlp
        elif name.endswith("hook_unembed"):
            per = c.d_vocab
        else:
            per = c.d_model
        total += per
    return 4 * batch_size * n_pos * total


def _available_bytes() -> int:
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_memory(model, names, batch_size) -> None:
    need = bytes_per_batch(model, names, batch_size, model.cfg.n_ctx) * 3  # activations, model work, copies
    free = _available_bytes()
    if need > free // 2:
        fit = max(1, int(batch_size * (free // 2) / need))
        raise InterpError(f"batch of {batch_size} needs about {need / 2**30:.1f} GiB for these hooks but "
                          f"{free / 2**30:.1f} GiB is free: use --batch-size {fit} or fewer hooks")


def _check_out(out: Path, resume: bool, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InterpError(f"output {str(out)!r} is a file, not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not resume:
        if not force:
            raise InterpError(f"output directory {str(out)!r} is not empty: pass --resume to continue it or "
                              "--force to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InterpError(f"cannot create output directory {str(out)!r}: {e.strerror}") from None
    if not os.access(out.parent, os.W_OK):
        raise InterpError(f"cannot write to {str(out.parent)!r}: choose a writable --out")


# ------------------------------------------------------------------ writing


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_shard(out: Path, k: int, tensors: dict) -> dict:
    from safetensors.torch import save

    name = f"shard-{k:05d}.safetensors"
    data = save({key: t.contiguous() for key, t in tensors.items()})
    _atomic_write(out / name, data)
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest()}


def _save_index(out: Path, index: dict) -> None:
    _atomic_write(out / INDEX, (json.dumps(index, indent=1) + "\n").encode())


def _new_index(model, names, shard, shard_size, truncate) -> dict:
    from interp import __version__

    return {"interp": __version__, "model": model.info.name, "hooks": list(names), "slice": list(shard),
            "shard_size": shard_size, "truncate": truncate, "dtype": "float32", "shards": [], "prompts": {}}


def _per_prompt(name: str, act, length: int):
    """One prompt's activation without padding."""
    if name.endswith(_ATTN):
        return act[:, :length, :length].clone()
    return act[:length].clone()


def cache_file(model, data: str | Path, hooks, out: str | Path, batch_size: int = 16, shard_size: int = 256,
               shard: tuple[int, int] = (0, 1), resume: bool = False, force: bool = False, truncate: bool = False,
               progress: bool = True, max_shards: int | None = None) -> dict:
    """Stream `data` through `model` and write the chosen activations in shards under `out`.

    Args:
        hooks: hook names, a glob ("blocks.*.hook_resid_post") or a predicate, as in `capture`.
        shard: (i, n) to process only lines whose number is i modulo n.
        resume: continue a run in `out` after its last complete shard.
        force: replace a non-empty `out`.
        max_shards: stop after writing this many shards in this call (for tests and chunked jobs).

    Returns:
        The index (also written to `out/index.json`).
    """
    from tqdm.auto import tqdm

    from interp.activations import select_names

    out = Path(out)
    names = select_names(model, hooks)
    shard = tuple(shard)
    if batch_size < 1 or shard_size < 1:
        raise InterpError(f"--batch-size {batch_size} and shard size {shard_size} must be at least 1")
    _check_memory(model, names, batch_size)
    _check_out(out, resume, force)
    total = _check_input(model, data, shard, truncate)
    index = _resume_index(out, model, names, shard, shard_size, truncate) if resume else None
    if index is None:
        if out.exists() and force:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        index = _new_index(model, names, shard, shard_size, truncate)
    done = {int(k) for k in index["prompts"]}
    todo = ((num, text) for num, text in read_lines(data) if num % shard[1] == shard[0] and num not in done)
    bar = tqdm(total=total, initial=len(done), desc=f"cache {model.info.name}", unit="prompt", disable=not progress)
    written = 0
    for group in _batches(todo, shard_size):  # one shard's prompts at a time: memory stays flat
        buffer = {}
        for batch in _batches(group, batch_size):
            for (num, _), (tokens, per_hook) in zip(batch, _run(model, [t for _, t in batch], names, truncate, data)):
                index["prompts"][str(num)] = {"shard": len(index["shards"]), "tokens": tokens}
                buffer.update({f"{name}|{num}": t for name, t in per_hook.items()})
            bar.update(len(batch))
        _flush(out, index, buffer)
        written += 1
        if max_shards is not None and written >= max_shards:
            bar.close()
            return index
    bar.close()
    index["complete"] = True
    _save_index(out, index)
    return index


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run(model, texts: list[str], names: list[str], truncate: bool, data) -> list:
    """[(token ids, {hook: activation without padding})] for a batch of prompts."""
    import torch

    from interp.activations import capture

    rows = [_tokenize(model, t, truncate, Path(data).name) for t in texts]
    pad = model.tokenizer.pad_token_id or 0
    tokens = torch.full((len(rows), max(len(r) for r in rows)), pad, dtype=torch.long, device=model.cfg.device)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = r
    acts = capture(model, tokens, names=names, lengths=[len(r) for r in rows])
    return [(r.tolist(), {n: _per_prompt(n, acts[n][i].cpu(), len(r)) for n in names}) for i, r in enumerate(rows)]


def _flush(out: Path, index: dict, buffer: dict) -> None:
    index["shards"].append(_write_shard(out, len(index["shards"]), buffer))
    _save_index(out, index)


def _resume_index(out: Path, model, names, shard, shard_size, truncate) -> dict | None:
    path = out / INDEX
    if not path.exists():
        return None
    index = json.loads(path.read_text())
    mine = _new_index(model, names, shard, shard_size, truncate)
    for key in ("model", "hooks", "slice", "shard_size", "truncate"):
        if index.get(key) != mine[key]:
            raise InterpError(f"cannot resume {str(out)!r}: it was made with {key}={index.get(key)!r}, not {mine[key]!r}")
    n_shards = len(index["shards"])
    index["prompts"] = {k: v for k, v in index["prompts"].items() if v["shard"] < n_shards}
    index.pop("complete", None)
    return index


# ------------------------------------------------------------------ reading and merging


class Cache:
    """A cache directory opened for reading: shards are memory-mapped on first use."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / INDEX).exists():
            raise InterpError(f"{str(self.path)!r} is not an interp cache: {INDEX} is missing")
        self.index = json.loads((self.path / INDEX).read_text())
        self.hooks = self.index["hooks"]
        self._open: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.index["prompts"])

    def prompts(self) -> list[int]:
        """Line numbers of the cached prompts, in order."""
        return sorted(int(k) for k in self.index["prompts"])

    def tokens(self, line: int) -> list[int]:
        return self._entry(line)["tokens"]

    def _entry(self, line: int) -> dict:
        entry = self.index["prompts"].get(str(line))
        if entry is None:
            raise InterpError(f"prompt {line} is not in this cache; it holds {len(self)} prompts")
        return entry

    def _shard(self, k: int):
        if k not in self._open:
            from safetensors import safe_open

            meta = self.index["shards"][k]
            file = self.path / meta["file"]
            digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else None
            if digest != meta["sha256"]:
                what = "missing" if digest is None else "corrupt (checksum mismatch)"
                raise InterpError(f"{file.name} is {what}: delete it and re-run with --resume")
            self._open[k] = safe_open(str(file), framework="pt")
        return self._open[k]

    def get(self, hook: str, line: int):
        """The activation of `hook` for prompt `line`: [pos, ...] (attention: [head query key])."""
        if hook not in self.hooks:
            from interp.errors import closest

            raise InterpError(f"hook {hook!r} is not in this cache{closest(hook, self.hooks)}")
        return self._shard(self._entry(line)["shard"]).get_tensor(f"{hook}|{line}")


def open_cache(path: str | Path) -> Cache:
    """Open a cache directory written by `cache_file` or `merge_caches`."""
    return Cache(path)


def merge_caches(dirs: Sequence[str | Path], out: str | Path) -> dict:
    """One index in `out` over the shards of several slice directories (no data is copied)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged = None
    for d in map(Path, dirs):
        index = Cache(d).index
        if merged is None:
            merged = {**index, "shards": [], "prompts": {}, "slice": [0, 1], "merged_from": []}
        elif (index["model"], index["hooks"]) != (merged["model"], merged["hooks"]):
            raise InterpError(f"cannot merge {str(d)!r}: it caches {index['model']} {index['hooks']}, "
                              f"not {merged['model']} {merged['hooks']}")
        base = len(merged["shards"])
        rel = os.path.relpath(d, out)
        merged["shards"] += [{**s, "file": f"{rel}/{s['file']}"} for s in index["shards"]]
        merged["prompts"].update({k: {**v, "shard": v["shard"] + base} for k, v in index["prompts"].items()})
        merged["merged_from"].append(str(d))
    if merged is None:
        raise InterpError("nothing to merge: give at least one cache directory")
    _save_index(out, merged)
    return merged
