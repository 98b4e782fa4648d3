"""GGUF files (llama.cpp's format): read the header without the weights; dequantize once, cache.

`convert(path)` dequantizes a GGUF file with transformers (`from_pretrained(folder,
gguf_file=name)`, which needs the `gguf` package) and saves the result once as an ordinary
Hugging Face directory: `model.safetensors`, a config.json without `quantization_config`, the
tokenizer, and `interp.json` saying where the weights came from. The directory is
`<cache>/gguf/<sha256 of the file>/`, where `<cache>` is `$INTERP_CACHE` or `~/.cache/interp`; it
is written under a temporary name and renamed when complete, so a failure leaves no cache entry.
Later loads boot from it in seconds. The file's SHA-256 is kept in a small sidecar keyed by path,
size and modification time, so an unchanged file is hashed once.

`read_header(path)` parses the metadata and tensor table only (milliseconds; no weights read):
enough for `interp models` to describe a GGUF model without loading it.

Example:
    >>> from interp import packaged
    >>> from interp.gguf import read_header
    >>> h = read_header(packaged.gguf_file("smollm2-135m"))
    >>> h.arch, h.get("block_count"), h.quantization, h.n_params
    ('llama', 30, 'Q4_1', 134515008)
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import struct
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError

_CHUNK = 1 << 20
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_SMALL_ARRAY = 64  # longer arrays (vocabularies, merges) are skipped; only their length is kept


def cache_root() -> Path:
    """Where interp keeps converted models: $INTERP_CACHE, else ~/.cache/interp."""
    return Path(os.environ.get("INTERP_CACHE") or Path.home() / ".cache" / "interp").expanduser()


def find_gguf(path: str | os.PathLike) -> Path | None:
    """The GGUF file that `path` names: the file itself, or the only .gguf in a folder.

    Returns None when `path` is neither a .gguf file nor a folder holding one.

    Raises:
        InterpError: the folder holds more than one .gguf file.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return path.resolve() if path.suffix.lower() == ".gguf" or _has_magic(path) else None
    if not path.is_dir():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) > 1:
        raise InterpError(f"{str(path)!r} holds {len(found)} .gguf files ({', '.join(p.name for p in found)}): "
                          "pass the one you want as the file path")
    return found[0].resolve() if found else None


def _has_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


# --- header ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    """A GGUF file's metadata (long arrays shortened to their length) and tensor table."""

    meta: dict
    tensor_types: dict  # ggml type name -> number of tensors
    n_params: int

    @property
    def arch(self) -> str:
        return str(self.meta.get("general.architecture", "unknown"))

    @property
    def quantization(self) -> str:
        """The file type llama.cpp records ("Q4_1", "Q4_K_M"), else the commonest tensor type."""
        file_type = self.meta.get("general.file_type")
        if file_type is not None:
            try:
                from gguf.constants import LlamaFileType

                return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
            except (ImportError, ValueError):
                pass
        return max(self.tensor_types, key=self.tensor_types.get) if self.tensor_types else "unknown"

    def get(self, key: str, default=None):
        """An architecture key without its prefix: `get("block_count")` reads `llama.block_count`."""
        return self.meta.get(f"{self.arch}.{key}", default)


def read_header(path: str | os.PathLike) -> Header:
    """Metadata and tensor table of a GGUF file (or of a prefix of one); no weights are read.

    Raises:
        InterpError: not a GGUF file, or the header is cut short.
    """
    path = Path(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise InterpError(f"{str(path)!r} is not a GGUF file (it does not start with 'GGUF'); "
                              "give a .gguf file from llama.cpp or the hub")
        try:
            return _parse(buf)
        except (struct.error, IndexError, UnicodeDecodeError, KeyError) as e:
            raise InterpError(f"{str(path)!r} has a damaged GGUF header ({type(e).__name__}: {e}); "
                              "re-download the file") from None


def _parse(buf) -> Header:
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version not in (2, 3):
        raise struct.error(f"unsupported GGUF version {version}")
    at, meta = 24, {}
    for _ in range(n_kv):
        key, at = _string(buf, at)
        (vtype,), at = struct.unpack_from("<I", buf, at), at + 4
        meta[key], at = _value(buf, at, vtype)
    types, n_params = Counter(), 0
    for _ in range(n_tensors):
        _, at = _string(buf, at)
        (n_dims,) = struct.unpack_from("<I", buf, at)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, at + 4)
        (ttype,) = struct.unpack_from("<I", buf, at + 4 + 8 * n_dims)
        at += 4 + 8 * n_dims + 4 + 8
        types[_type_name(ttype)] += 1
        n_params += _prod(dims)
    return Header(meta, dict(types), n_params)


def _string(buf, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, at)
    end = at + 8 + n
    if end > len(buf):
        raise IndexError("string runs past the end of the file")
    return bytes(buf[at + 8:end]).decode("utf-8"), end


def _value(buf, at: int, vtype: int):
    if vtype == _STRING:
        return _string(buf, at)
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype]
        return struct.unpack_from(fmt, buf, at)[0], at + struct.calcsize(fmt)
    if vtype != _ARRAY:
        raise KeyError(f"unknown GGUF value type {vtype}")
    etype, n = struct.unpack_from("<IQ", buf, at)
    at += 12
    if n > _SMALL_ARRAY and etype in _SCALARS:  # skip without reading
        return {"array_length": n}, at + n * struct.calcsize(_SCALARS[etype])
    if n > _SMALL_ARRAY and etype == _STRING:
        for _ in range(n):
            at += 8 + struct.unpack_from("<Q", buf, at)[0]
        return {"array_length": n}, at
    items = []
    for _ in range(n):
        item, at = _value(buf, at, etype)
        items.append(item)
    return items, at


def _type_name(ttype: int) -> str:
    try:
        from gguf.constants import GGMLQuantizationType

        return GGMLQuantizationType(ttype).name
    except (ImportError, ValueError):
        return f"type{ttype}"


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


# --- hashing --------------------------------------------------------------------------------

def sha256(path: str | os.PathLike, *, compute: bool = True) -> str | None:
    """SHA-256 of a file, streamed in 1 MiB chunks and remembered in a sidecar.

    The sidecar (`<cache>/hashes/`) is keyed by the file's path, size and modification time, so
    an unchanged file is hashed once. With `compute=False`, only a remembered hash is returned
    (None when there is none).
    """
    path = Path(path).resolve()
    stat = path.stat()
    sidecar = cache_root() / "hashes" / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
    stamp = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        kept = json.loads(sidecar.read_text())
        if {k: kept.get(k) for k in stamp} == stamp:
            return kept["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    if not compute:
        return None
    digest = _hash_file(path)
    _write_json(sidecar, {**stamp, "sha256": digest})
    return digest


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


# --- conversion -----------------------------------------------------------------------------

def cached_dir(digest: str) -> Path:
    """The cache directory of the GGUF file with this SHA-256 (it may not exist yet)."""
    return cache_root() / "gguf" / digest


def is_cached(digest: str | None) -> bool:
    return digest is not None and (cached_dir(digest) / "interp.json").exists()


def convert(path: str | os.PathLike, *, digest: str | None = None, progress: bool = True,
            name: str | None = None) -> Path:
    """The cached Hugging Face directory of a GGUF file, dequantizing it first if needed.

    Args:
        path: the .gguf file.
        digest: its SHA-256 when already known (skips hashing).
        progress: show a progress line on stderr while converting.
        name: the file name to record (default: the file's own name).

    Returns:
        The directory: config.json, model.safetensors, tokenizer files and interp.json.

    Raises:
        InterpError: the file is not GGUF, the gguf package is missing, or transformers cannot
            dequantize this architecture.
    """
    path = Path(path)
    header = read_header(path)
    digest = digest or sha256(path)
    target = cached_dir(digest)
    if (target / "interp.json").exists():
        return target
    tmp = target.parent / f".tmp-{digest[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise InterpError(f"cannot write the model cache at {str(target.parent)!r} ({e.strerror}): "
                          "set INTERP_CACHE to a writable directory") from None
    _sweep_stale(target.parent)
    try:
        _convert_into(path, header, tmp, progress, name or path.name, digest)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "interp.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _sweep_stale(root: Path, age_s: float = 86400) -> None:
    """Remove temporary directories left by conversions that were killed a day or more ago."""
    for p in root.glob(".tmp-*"):
        try:
            if time.time() - p.stat().st_mtime > age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _convert_into(path: Path, header: Header, out: Path, progress: bool, name: str, digest: str) -> None:
    from tqdm.auto import tqdm

    from interp.progress import quiet

    n_tensors = sum(header.tensor_types.values())
    with tqdm(total=n_tensors + 2, desc=f"interp: converting {name} (once)", file=sys.stderr,
              disable=not progress or quiet(), unit="step", leave=False) as bar:
        model, tokenizer = _dequantize(path, name, bar)
        bar.set_postfix_str("saving")
        _save(model, tokenizer, out)
        bar.update()
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        record = {"gguf_file": name, "gguf_path": str(path.resolve()), "sha256": digest,
                  "quantization": header.quantization, "tensor_types": header.tensor_types,
                  "dtype": dtype, "n_params": header.n_params, "architecture": header.arch,
                  "add_bos_token": header.meta.get("tokenizer.ggml.add_bos_token")}
        (out / "interp.json").write_text(json.dumps(record, indent=2) + "\n")
        bar.update()


def _dequantize(path: Path, name: str, bar):
    """The float model and tokenizer that transformers makes from the GGUF file."""
    try:
        import gguf  # noqa: F401  (transformers needs it; fail with our message first)
    except ImportError:
        raise InterpError("reading GGUF files needs the gguf package: pip install gguf") from None
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        with _tensor_progress(bar):
            model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                      local_files_only=True)
        bar.set_postfix_str("tokenizer")
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name,
                                                               local_files_only=True)
    except (ValueError, KeyError, OSError, RuntimeError, NotImplementedError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InterpError(f"could not convert {name}: {first}; transformers {transformers.__version__} "
                          "dequantizes only the GGUF architectures it supports") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    return model.eval(), tokenizer


@contextmanager
def _tensor_progress(bar):
    """Route transformers' per-tensor dequantization loop through our one progress line."""
    try:
        from transformers import modeling_gguf_pytorch_utils as utils
    except ImportError:
        utils = None
    original = getattr(utils, "tqdm", None)

    def feed(iterable, *args, **kwargs):
        bar.set_postfix_str("dequantizing")
        for item in iterable:
            yield item
            bar.update()

    if original is not None:
        utils.tqdm = feed
    try:
        yield
    finally:
        if original is not None:
            utils.tqdm = original


def _save(model, tokenizer, out: Path) -> None:
    """state_dict as safetensors (a tied lm_head is dropped; the loader re-ties it), config.json
    without quantization_config, and the tokenizer. `save_pretrained` refuses GGUF-loaded models."""
    import copy

    from safetensors.torch import save_file

    tied = bool(getattr(model.config.get_text_config(), "tie_word_embeddings", False))
    tensors, seen = {}, set()
    for key, t in model.state_dict().items():
        ptr = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if ptr in seen:
            if tied:
                continue
            t = t.clone()
        seen.add(ptr)
        tensors[key] = t.detach().contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out)
    raw = json.loads((out / "config.json").read_text())
    raw.pop("quantization_config", None)
    raw.setdefault("architectures", [type(model).__name__])
    (out / "config.json").write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(out)


def record(directory: str | os.PathLike) -> dict | None:
    """The interp.json of a converted directory, or None for any other directory."""
    try:
        return json.loads((Path(directory) / "interp.json").read_text())
    except (OSError, ValueError):
        return None
