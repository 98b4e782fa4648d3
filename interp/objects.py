"""Models the user built: a `TransformerBridge` or a Hugging Face model object, made loadable.

`interp.load(bridge)` uses the bridge as it is (no re-boot): it enables compatibility mode if the
bridge is not in it yet (calling `enable_compatibility_mode()` again would only log that the
weights are already processed), puts it in eval mode and attaches `.info`.
`interp.load(hf_model, tokenizer=tok)` boots a bridge around the model object itself (no copy:
compatibility mode folds its layer norms into the weights, which leaves its outputs unchanged).

Example:
    >>> import interp
    >>> from transformer_lens.model_bridge import TransformerBridge
    >>> from interp.models import ZOO_DIR
    >>> bridge = TransformerBridge.boot_transformers(str(ZOO_DIR / "zoo-2l"), device="cpu")
    >>> model = interp.load(bridge)
    >>> model is bridge, model.info.source, model.info.n_layers
    (True, 'object', 2)
"""

from __future__ import annotations

from pathlib import Path

from interp.arch import COMPATIBILITY
from interp.errors import InterpError


def adopt(obj, tokenizer=None):
    """`obj` as an interp model: a bridge gets `.info`, a Hugging Face model is booted first.

    Raises:
        InterpError: `obj` is neither kind, or a Hugging Face model comes without a tokenizer.
    """
    from transformer_lens.model_bridge import TransformerBridge

    if isinstance(obj, TransformerBridge):
        if tokenizer is not None:
            raise InterpError("tokenizer= goes with a Hugging Face model object; a TransformerBridge "
                              "carries its own (bridge.tokenizer)")
        return _adopt_bridge(obj)
    import transformers

    if isinstance(obj, transformers.PreTrainedModel):
        return _adopt_hf(obj, tokenizer)
    raise InterpError(f"cannot load a {type(obj).__name__}: give a built-in name, a local directory or "
                      ".gguf file, a hub id, a TransformerBridge, or a Hugging Face model with tokenizer=")


def _adopt_bridge(bridge):
    if bridge.__dict__.get("info") is not None:
        return bridge  # already loaded by interp
    if not getattr(bridge, "compatibility_mode", False):
        bridge.enable_compatibility_mode(**COMPATIBILITY)
    bridge.eval()
    where = _name_or_path(bridge.original_model) or str(bridge.cfg.model_name)
    return _attach(bridge, where, f"a TransformerBridge passed to interp.load (booted from {where})")


def _adopt_hf(hf_model, tokenizer):
    from interp.models import boot

    where = _name_or_path(hf_model)
    if tokenizer is None:
        tokenizer = _local_tokenizer(where)
    try:
        device = str(next(hf_model.parameters()).device)
    except StopIteration:
        device = "cpu"
    hf_model.eval()
    bridge = boot(hf_model, tokenizer, where or type(hf_model).__name__, device=device)
    kind = type(hf_model).__name__
    return _attach(bridge, where, f"a {kind} object passed to interp.load" + (f" (from {where})" if where else ""))


def _name_or_path(hf_model) -> str:
    return str(getattr(getattr(hf_model, "config", None), "_name_or_path", "") or "")


def _local_tokenizer(where: str):
    """The tokenizer saved beside a model loaded from a local directory."""
    if where and Path(where).is_dir():
        import transformers

        try:
            return transformers.AutoTokenizer.from_pretrained(where, local_files_only=True)
        except (OSError, ValueError):
            pass
    raise InterpError("a Hugging Face model object needs its tokenizer: interp.load(model, tokenizer=tokenizer)")


def _attach(bridge, where: str, weights: str):
    from interp.gguf import record
    from interp.models import make_info

    local = bool(where) and Path(where).is_dir()
    rec = (record(where) or _gguf_source(bridge.original_model, where)) if local else None
    name = Path(where).name if local else (where or type(bridge.original_model).__name__)
    if rec:
        weights += f"; GGUF {rec['quantization']} ({rec['gguf_file']}), dequantized to {rec['dtype']}"
    bridge.info = make_info(bridge, name, "object", where if local else "", (),
                            weights=weights, origin=where, record=rec)
    return bridge


def _gguf_source(hf_model, where: str) -> dict | None:
    """What a model that transformers loaded from a GGUF file (`gguf_file=`) was read from."""
    from interp.gguf import read_header

    qc = getattr(hf_model.config, "quantization_config", None)
    qc = qc if isinstance(qc, dict) else getattr(qc, "__dict__", {})
    file = qc.get("gguf_file")
    if not file or not (Path(where) / file).is_file():
        return None
    dtype = str(next(hf_model.parameters()).dtype).removeprefix("torch.")
    return {"quantization": read_header(Path(where) / file).quantization, "gguf_file": file, "dtype": dtype}
