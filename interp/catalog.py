"""Rows about the built-in models for `interp models`, read from files: no weights are loaded.

A zoo model's row comes from its config.json and card.json (with the measured metrics); a
packaged GGUF model's from its GGUF header (`interp.gguf.read_header`); MiniLM's from its
config.json and the tensor names in its safetensors header. Listing takes well under 2 s.

Example:
    >>> from interp.catalog import describe
    >>> describe("zoo-4l")["n_layers"]
    4
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from interp import gguf, packaged
from interp.models import ENCODERS, builtin_names, default_model, resolve, zoo_card

_HEADS = ("cls.", "lm_head.", "vocab_projector.", "vocab_transform.", "generator_lm_head.", "predictions.")


def describe(name: str) -> dict:
    """A row about a built-in model: size, trained status, provenance (and zoo metrics)."""
    if name in packaged.PACKAGED:
        row = _gguf_row(name)
    else:
        name, source, location = resolve(name)
        row = _directory_row(name, source, Path(location))
    return {"name": name, "default": name == default_model(), **row}


def _directory_row(name: str, source: str, path: Path) -> dict:
    c = json.loads((path / "config.json").read_text())
    keys, n_params = _safetensors_header(path)
    untrained = _untrained_head(c, keys)
    row = {"source": source, "architecture": c.get("model_type", "?"), "n_layers": _first(c, "num_hidden_layers", "n_layer"),
           "n_heads": _first(c, "num_attention_heads", "n_head"), "d_model": _first(c, "hidden_size", "n_embd"),
           "d_vocab": c.get("vocab_size"), "n_params": n_params, "trained": not untrained,
           "untrained_parts": untrained, "quantization": "none",
           "weights": "trained by interp (zoo)" if source == "zoo" else f"safetensors from {path}"}
    if source == "zoo":
        card = zoo_card(name)
        metrics = card.get("metrics", {})
        row["n_params"] = card.get("n_params", n_params)
        row["induction_repeat_ratio"] = metrics.get("induction", {}).get("vocab", {}).get("repeat_ratio")
        row["ioi_heldout_acc"] = metrics.get("ioi", {}).get("heldout_structures", {}).get("accuracy")
        row["gender_heldout_acc"] = metrics.get("gender", {}).get("heldout_direction_accuracy")
    return row


def _first(config: dict, *keys):
    return next((config[k] for k in keys if k in config), None)


def _safetensors_header(path: Path) -> tuple[list[str], int]:
    """Tensor names and parameter count from the safetensors headers (the first bytes only)."""
    keys, n = [], 0
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for k, v in header.items():
            if k != "__metadata__":
                keys.append(k)
                n += _prod(v["shape"]) if v["dtype"].startswith(("F", "BF")) else 0  # not int buffers
    return keys, n


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _untrained_head(config: dict, keys: list[str]) -> str:
    """'cls.predictions' (or the like) when an encoder's checkpoint has no masked-LM head: the
    loader then initialises it at random (what the loading report says on `load`)."""
    if config.get("model_type") not in ENCODERS or not keys:
        return ""
    if any(k.split(".", 1)[-1].startswith(_HEADS) or k.startswith(_HEADS) for k in keys):
        return ""
    return "cls.predictions" if config.get("model_type") == "bert" else "masked-LM head"


def _gguf_row(name: str) -> dict:
    """From the GGUF header; whether the converted cache exists already, without hashing."""
    h = gguf.read_header(packaged.header_file(name))
    digest = packaged.known_sha256(name) or gguf.sha256(packaged.gguf_file(name), compute=False)
    vocab = h.get("vocab_size") or h.meta.get("tokenizer.ggml.tokens", {}).get("array_length")
    return {"source": "package", "architecture": h.arch, "n_layers": h.get("block_count"),
            "n_heads": h.get("attention.head_count"), "d_model": h.get("embedding_length"), "d_vocab": vocab,
            "n_params": h.n_params, "trained": True, "untrained_parts": "", "quantization": h.quantization,
            "weights": f"GGUF {h.quantization} ({packaged.PACKAGED[name].file}), dequantized to float32",
            "converted": gguf.is_cached(digest)}


def describe_all() -> list[dict]:
    """Rows for every built-in name: installed packaged models, the zoo, then MiniLM."""
    return [describe(n) for n in builtin_names()]
