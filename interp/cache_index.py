"""The on-disk format of an activation cache: index, shards, checksums; reading and merging.

A cache directory (written by `interp.cache.cache_file`) holds `index.json` and shard files
`shard-00000.safetensors`, ... . In a shard, `tokens` [n_tokens] holds the real tokens of its
prompts back to back, `offsets` [n_prompts + 1] where each prompt starts, `lines` [n_prompts]
their line numbers; a per-position hook is one tensor [n_tokens, ...]; an attention hook
(`hook_pattern`, `hook_attn_scores`: [head, query, key] per prompt) is one 1-D tensor of the
prompts' flattened patterns, back to back. No padding is stored.

`index.json` holds the settings (model, weights fingerprint, hooks, per-hook shapes, dtype, slice,
interp version)
and, per shard, its file name, SHA-256, line numbers and prompt lengths. A merged index
(`merge_caches`) adds `sources`, the slice directories relative to it, and each shard says
which source it lives in. Shard files are only ever named `shard-NNNNN.safetensors` inside the
cache (or a source) directory; an index naming anything else is refused.

Example:
    >>> import tempfile, pathlib, interp
    >>> from interp.cache import cache_file
    >>> from interp.cache_index import open_cache
    >>> model = interp.load("zoo-2l")
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "data.txt").write_text("The king ruled the kingdom.\\nThe queen ruled.\\n")
    >>> _ = cache_file(model, tmp / "data.txt", "blocks.1.attn.hook_pattern", tmp / "c", progress=False)
    >>> cache = open_cache(tmp / "c")
    >>> cache.get("blocks.1.attn.hook_pattern", 1).shape  # head query key
    torch.Size([4, 5, 5])
    >>> [line for line, acts in cache]
    [0, 1]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from interp.errors import InterpError, closest

INDEX = "index.json"
FORMAT = 1
ATTN_HOOKS = ("hook_pattern", "hook_attn_scores")
SHARD_FILE = re.compile(r"^shard-(\d{5,})\.safetensors$")


# ------------------------------------------------------------------ writing files


FIX = "free space or choose another --out"


def atomic_write(path: Path, data) -> None:
    """One file through interp's writer (temporary, fsync, rename; cleaned up on any error or
    signal; a full or read-only disk is one InterpError line)."""
    from interp.report.write import atomic_write as write

    write(path, data, fix=FIX)


def save_index(out: Path, index: dict) -> None:
    """index.json with one line per setting and one line per shard (readable, still plain JSON)."""
    head = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in index.items() if k != "shards"]
    shards = ",\n".join(f"  {json.dumps(s)}" for s in index["shards"])
    text = "{\n" + ",\n".join(head) + f',\n "shards": [\n{shards}\n ]\n}}\n'
    atomic_write(out / INDEX, text.encode())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ reading


def read_index(path: Path) -> dict:
    """The index of cache directory `path`, checked for the shape interp writes."""
    try:
        index = json.loads((path / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InterpError(f"{str(path)!r} is not an interp cache: {INDEX} is missing") from None
    except NotADirectoryError:
        raise InterpError(f"{str(path)!r} is a file, not a cache directory") from None
    except IsADirectoryError:
        raise InterpError(f"{str(path / INDEX)!r} is a directory, not a cache index: re-run the cache") from None
    except (ValueError, UnicodeDecodeError):
        raise InterpError(f"{str(path / INDEX)!r} is not valid JSON: re-run the cache or the merge") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise InterpError(f"{str(path)!r} holds cache format {found!r}, this interp reads {FORMAT}: re-run the cache")
    problem = _shape_problem(index)
    if problem:
        raise InterpError(f"{str(path / INDEX)!r} is damaged ({problem}): re-run the cache with --force")
    for s in index["shards"]:
        if not SHARD_FILE.match(str(s.get("file"))):
            raise InterpError(f"{str(path / INDEX)!r} names shard file {s.get('file')!r}: only "
                              "shard-NNNNN.safetensors inside the cache is allowed")
    return index


def _ints(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _shape_problem(index: dict) -> str:
    """What is wrong with an index's structure ('' when it has the shape interp writes)."""
    hooks, shards = index.get("hooks"), index.get("shards")
    if not isinstance(hooks, list) or not hooks or not all(isinstance(h, str) for h in hooks):
        return "'hooks' is not a non-empty list of hook names"
    if not isinstance(index.get("n_heads"), int) or not isinstance(shards, list):
        return "'n_heads' or 'shards' is missing"
    if "sources" in index and not (isinstance(index["sources"], list)
                                   and all(isinstance(s, str) for s in index["sources"])):
        return "'sources' is not a list of directories"
    for k, s in enumerate(shards):
        if not isinstance(s, dict) or not isinstance(s.get("file"), str) or not isinstance(s.get("sha256"), str):
            return f"shard entry {k} lacks a file name or checksum"
        if not _ints(s.get("lines")) or not _ints(s.get("lengths")) or len(s["lines"]) != len(s["lengths"]):
            return f"shard entry {k} has malformed lines or lengths"
        if "source" in s and not (isinstance(s["source"], int) and 0 <= s["source"] < len(index.get("sources", []))):
            return f"shard entry {k} names an unknown source"
    return ""


class Cache:
    """A cache directory opened for reading: shards are memory-mapped lazily, checked on first use.

    `get(hook, line)` is one prompt's activation ([pos, ...]; attention hooks [head, query, key],
    as one row of `capture`); `tokens(line)` its token ids; iterating yields
    `(line, {hook: tensor})` shard by shard.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.index = read_index(self.path)
        self.hooks: list[str] = self.index["hooks"]
        self._where = {line: (k, j) for k, s in enumerate(self.index["shards"]) for j, line in enumerate(s["lines"])}
        self._open: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self._where)

    def lines(self) -> list[int]:
        """Line numbers (from 0) of the cached prompts, sorted."""
        return sorted(self._where)

    def shard_path(self, k: int) -> Path:
        """Where shard `k` of the index lives (merged caches point into their slice directories)."""
        s = self.index["shards"][k]
        base = self.path / self.index["sources"][s["source"]] if "source" in s else self.path
        return base / s["file"]

    def _shard(self, k: int):
        if k not in self._open:
            from safetensors import safe_open

            file = self.shard_path(k)
            if not file.is_file():
                raise InterpError(f"{file.name} is missing from {str(file.parent)!r}: re-run the same interp cache "
                                  "command with --resume, which computes it again")
            if sha256_file(file) != self.index["shards"][k]["sha256"]:
                raise InterpError(f"{file.name} is corrupt (checksum mismatch): re-run the "
                                  "same interp cache command with --resume, which computes it again")
            self._open[k] = safe_open(str(file), framework="pt")
        return self._open[k]

    def _locate(self, line: int) -> tuple[int, int]:
        if line not in self._where:
            raise InterpError(f"prompt {line} is not in this cache; it holds {len(self)} prompts "
                              "(numbered by line from 0; see .lines())")
        return self._where[line]

    def tokens(self, line: int):
        """Token ids [pos] of prompt `line` (BOS included when the model prepends it)."""
        k, j = self._locate(line)
        f = self._shard(k)
        a, b = f.get_slice("offsets")[j:j + 2].tolist()
        return f.get_slice("tokens")[a:b]

    def get(self, hook: str, line: int):
        """Activation of `hook` for prompt `line`: [pos, ...] ([head, query, key] for attention)."""
        if hook not in self.hooks:
            raise InterpError(f"hook {hook!r} is not in this cache{closest(hook, self.hooks)}; it holds "
                              f"{', '.join(self.hooks[:4])}{' ...' if len(self.hooks) > 4 else ''}")
        k, j = self._locate(line)
        f, lengths = self._shard(k), self.index["shards"][k]["lengths"]
        if hook.endswith(ATTN_HOOKS):
            heads, n = self.index["n_heads"], lengths[j]
            start = heads * sum(m * m for m in lengths[:j])
            return f.get_slice(hook)[start:start + heads * n * n].reshape(heads, n, n)
        a = sum(lengths[:j])
        return f.get_slice(hook)[a:a + lengths[j]]

    def __iter__(self):
        for k, s in enumerate(self.index["shards"]):
            for line in s["lines"]:
                yield line, {h: self.get(h, line) for h in self.hooks}


def open_cache(path: str | Path) -> Cache:
    """Open a cache directory written by `cache_file` or `merge_caches`."""
    return Cache(path)


# ------------------------------------------------------------------ merging slices


def merge_caches(dirs: Sequence[str | Path], out: str | Path) -> dict:
    """Write one index in `out` over the shards of several caches (slices); no data is copied.

    The merged index refers to each input directory by its path relative to `out`. Inputs must
    cache the same model and hooks, and no prompt (line) may be in two of them.

    Raises:
        InterpError: no inputs, an input that is not a cache, mismatched settings, overlapping
            slices, or an `out` that already holds a cache's shards.
    """
    from interp.paths import check_path

    if not dirs:
        raise InterpError("nothing to merge: give at least one cache directory")
    out = Path(check_path(out, "--out"))
    if out.exists() and not out.is_dir():
        raise InterpError(f"output {str(out)!r} is a file, not a directory: choose another --out")
    if out.is_dir() and any(SHARD_FILE.match(p.name) for p in out.iterdir()):
        raise InterpError(f"{str(out)!r} holds shards of its own: merge into a new or empty directory")
    from interp.report.write import check_writable

    check_writable(out / INDEX, FIX)
    merged = _merged(dirs, out)
    _write_merged(out, merged)
    return merged


def _write_merged(out: Path, merged: dict) -> None:
    """index.json into `out`: a new or empty `out` appears with its index or not at all."""
    from interp.report.write import atomic_dir

    if out.is_dir() and any(out.iterdir()):
        save_index(out, merged)  # replaces an earlier merge's index.json atomically
        return
    with atomic_dir(out, force=False, fix=FIX) as tmp:
        save_index(tmp, merged)


def _merged(dirs: Sequence[str | Path], out: Path) -> dict:
    """The merged index, every input checked; nothing is written."""
    merged, seen = None, set()
    for d in map(Path, dirs):
        cache = Cache(d)
        merged = merged or {**cache.index, "shards": [], "sources": [], "slice": [0, 1], "complete": True}
        _check_same(merged, cache.index, d)
        overlap = seen.intersection(cache.lines())
        if overlap:
            raise InterpError(f"cannot merge {str(d)!r}: line {min(overlap)} is already in another input")
        seen.update(cache.lines())
        for k, s in enumerate(cache.index["shards"]):
            merged["shards"].append({**s, "source": _source(merged, cache.shard_path(k).parent, out)})
        merged["complete"] = merged["complete"] and cache.index.get("complete", False)
    return merged


def _check_same(merged: dict, index: dict, d: Path) -> None:
    for key in ("model", "weights_sha256", "hooks", "max_tokens", "prepend_bos", "dtype"):
        if index.get(key) != merged.get(key):
            raise InterpError(f"cannot merge {str(d)!r}: its {key} is {index.get(key)!r}, not {merged.get(key)!r}")


def _source(merged: dict, directory: Path, out: Path) -> int:
    rel = os.path.relpath(directory.resolve(), out.resolve())
    if rel not in merged["sources"]:
        merged["sources"].append(rel)
    return merged["sources"].index(rel)


