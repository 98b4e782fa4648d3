"""interp: an offline-first mechanistic interpretability toolkit for transformer language models.

Public API (imported lazily, so `import interp` is instant):

    load(name_or_path, device="cpu")      -> TransformerBridge with `.info` (models.py)
    hook_points(model)                    -> DataFrame of every hook point (activations.py)
    capture(model, prompts, names=None)   -> Activations: every chosen activation + tokens
    InterpError                           -> the one user-facing error type (errors.py)
    tune_allocator()                      -> keep freed memory for reuse (allocator.py; faster CPU sweeps)

Analyses, one module each, each returning tidy pandas DataFrames:
    interp.embeddings   nearest neighbours, analogies, directions and probes
    interp.ablation     zero / mean / resample head ablation (sweeps via interp.sweep)
    interp.attention    attention with and without the causal mask, mask removal
    interp.heads        head classes: previous-token, induction, duplicate-token, BOS
    interp.attribution  direct logit attribution and the logit lens
    interp.patching     activation and attribution patching (denoising / noising), any target
    interp.path_patching  path patching from sender heads to receivers' q/k/v or the logits
    interp.sampling     temperature, entropy and seeded sampling

Plumbing: interp.engine (plain-torch GPT-2 forward for fast capture and sweeps), interp.sweep
(downstream-only head sweeps and patching), interp.cache (streaming activation cache to
safetensors shards), interp.tokens (one resolver for user-given tokens), interp.report (offline
HTML pages and research reports), interp.display (notebook views of attention, DLA, sweeps, the
logit lens and patching; the circuitsvis bundle once per notebook).

Dimension names follow TransformerLens: batch, pos, d_model, layer, head, d_head, d_vocab,
query (= pos of the attending token), key (= pos attended to).
"""

__version__ = "0.1.0"
__all__ = ["load", "hook_points", "capture", "InterpError", "tune_allocator", "__version__"]

_LAZY = {
    "load": ("interp.models", "load"),
    "hook_points": ("interp.activations", "hook_points"),
    "capture": ("interp.activations", "capture"),
    "InterpError": ("interp.errors", "InterpError"),
    "tune_allocator": ("interp.allocator", "tune"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
