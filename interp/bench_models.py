"""Benchmark rows for real checkpoints (smollm2-135m, gemma3-270m): interp against the hooked
TransformerLens loop, nnsight and TL's patching, on one batch of IOI prompts, in one process.

Measured by `python -m interp.bench` (see `interp.bench`), on the same batch (IOI prompts of one
token length, per-prompt IO - S logit difference at the last position):

- forwards: a plain eager transformers forward, the bridge forward (the unit of
  forward-equivalents; for a sweep, the bridge forwards timed right before and after it, so a
  shared machine's load changes both alike), and `interp.capture` of every hook point;
- zero ablation of every head alone: the hooked loop (`interp.sweep.naive_sweep`, one
  `run_with_hooks` per head zeroing its `hook_z`), nnsight 0.8.1 (`nnsight.TransformersModel`
  around the plain transformers model, one trace per head zeroing that head's slice of the
  attention output projection's input), interp's fast sweep (`interp.sweep.fast_sweep`; on
  Llama-family models `interp.rotary_sweep`, on the rest `interp.blocks.block_sweep`), and the same
  replacing the last position only;
- head patching on an ABC-corrupted batch (every name replaced by another, no name repeated):
  `interp.sweep.patch_heads` against `transformer_lens.patching.get_act_patch_attn_head_out_all_pos`;
- peak memory of capturing every hook point of 16 x 128 tokens, in a fresh process (peak
  resident memory above the loaded model on CPU, the torch CUDA allocator's peak on a GPU).

Equality: fast vs loop, nnsight vs loop and patch_heads vs TL, as max |difference| of the
metric and that divided by the largest |reference| (relative; checked <= 1e-4). nnsight runs the
plain transformers model, whose raw logits differ from compatibility mode's by a constant per
position: logit differences are compared, never raw logits.
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
import time
from pathlib import Path

REAL_MODELS = ("smollm2-135m", "gemma3-270m")
NNSIGHT_PIP = "pip install --no-deps nnsight==0.8.1 greenlet==3.5.6 'cloudpickle>=3.0' (make bench does)"
TOL = 1e-4
_OUT_PROJ = ("model.layers.{l}.self_attn.o_proj", "transformer.h.{l}.attn.c_proj",
             "gpt_neox.layers.{l}.attention.dense", "model.decoder.layers.{l}.self_attn.out_proj")


# ---------------------------------------------------------------------------------------------
# The batch


def ioi_batch(model, n: int, seed: int = 0, pool: int = 400):
    """n IOI prompts of one token length (the most common one), their ABC corruptions (every
    name replaced by another, same token length), and each prompt's io and s names.

    Returns:
        (clean tokens [n pos], corrupted tokens [n pos], io names, s names).
    """
    import torch

    from interp.activations import to_tokens
    from interp.zoo.corpus import ioi_prompts
    from interp.zoo.lexicon import ioi_names

    rng = random.Random(seed)
    names = [nm for nm in ioi_names("train") if _one_token(model, " " + nm)]
    by_len: dict[int, list] = {}
    for it in ioi_prompts("train", pool, seed):
        if _one_token(model, it["io"]) and _one_token(model, it["s"]):
            by_len.setdefault(to_tokens(model, it["prompt"])[0].shape[1], []).append(it)
    width, items = max(by_len.items(), key=lambda kv: len(kv[1]))
    chosen = []
    for it in items:
        abc = _abc(it, names, rng, model, width)
        if abc is not None:
            chosen.append((it, abc))
        if len(chosen) == n:
            break
    if len(chosen) < n:
        raise RuntimeError(f"only {len(chosen)} IOI prompts of {width} tokens with ABC corruptions; want {n}")
    clean = torch.cat([to_tokens(model, it["prompt"])[0] for it, _ in chosen])
    corrupt = torch.cat([to_tokens(model, abc)[0] for _, abc in chosen])
    return clean, corrupt, [it["io"] for it, _ in chosen], [it["s"] for it, _ in chosen]


def _one_token(model, text: str) -> bool:
    return len(model.tokenizer(text, add_special_tokens=False)["input_ids"]) == 1


def _abc(item: dict, names: list[str], rng, model, width: int, tries: int = 20) -> str | None:
    """`item`'s prompt with io -> A, the first s -> B, the second s -> C (three fresh names), of
    `width` tokens; None if no draw keeps the width."""
    from interp.activations import to_tokens

    io, s = item["io"].strip(), item["s"].strip()
    for _ in range(tries):
        a, b, c = rng.sample([nm for nm in names if nm not in (io, s)], 3)
        text = re.sub(rf"\b{io}\b", a, item["prompt"])
        text = re.sub(rf"\b{s}\b", b, text, count=1)
        text = re.sub(rf"\b{s}\b", c, text, count=1)
        if to_tokens(model, text)[0].shape[1] == width:
            return text
    return None


# ---------------------------------------------------------------------------------------------
# Comparators


def nnsight_sweep(nn_model, tokens, metric, n_layers: int, n_heads: int, d_head: int, layers=None):
    """[layer head batch]: one nnsight trace per head, zeroing that head's slice of the attention
    output projection's input (the heads' outputs z, concatenated), reading the last position."""
    import torch

    rows = torch.arange(tokens.shape[0], device=tokens.device)
    path = _out_proj_path(nn_model._module)
    out = torch.full((n_layers, n_heads, tokens.shape[0]), float("nan"))
    with torch.no_grad():
        for l in (range(n_layers) if layers is None else layers):
            for h in range(n_heads):
                with nn_model.trace(tokens):
                    _envoy(nn_model, path.format(l=l)).input[..., h * d_head:(h + 1) * d_head] = 0
                    last = nn_model.output.logits[:, -1].save()
                out[l, h] = metric.at_last(last, rows).cpu()
    return out


def _out_proj_path(hf) -> str:
    names = {n for n, _ in hf.named_modules()}
    for path in _OUT_PROJ:
        if path.format(l=0) in names:
            return path
    raise RuntimeError(f"no attention output projection found in {type(hf).__name__}")


def _envoy(nn_model, path: str):
    env = nn_model
    for part in path.split("."):
        env = env[int(part)] if part.isdigit() else getattr(env, part)
    return env


def wrap_nnsight(hf, tok):
    """`nnsight.TransformersModel` around a loaded transformers model (LanguageModel is its
    deprecated alias in 0.8.1), or None when nnsight is not installed."""
    try:
        import nnsight
    except ImportError:
        return None
    return nnsight.TransformersModel(hf, tokenizer=tok)


def tl_patch(model, clean, corrupt, metric):
    """[layer head]: TL's head patching of the corrupted run's z into the clean run (mean metric)."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from transformer_lens import patching

    last = torch.full((clean.shape[0],), clean.shape[1] - 1, device=clean.device)
    with torch.no_grad():
        _, cache = model.run_with_cache(corrupt)
        out = patching.get_act_patch_attn_head_out_all_pos(model, clean, cache,
                                                           lambda lg: metric(lg, clean, last).mean())
    return (out if isinstance(out, torch.Tensor) else out.values).float().cpu()


def agreement(got, want, label: str) -> str:
    """'max |label| = 3.1e-06, relative 5.2e-07 (<= 1e-4: ok)'."""
    err = (got - want).abs().max().item()
    rel = err / max(want.abs().max().item(), 1e-12)
    return f"max |{label}| = {err:.1e}, relative {rel:.1e} (<= {TOL:g}: {'ok' if rel <= TOL else 'FAILED'})"


# ---------------------------------------------------------------------------------------------
# Peak memory, in a fresh process


def capture_peak(name: str, device: str, batch: int, pos: int, seed: int = 0) -> dict:
    """Capture every hook point of a random [batch pos] batch; the peak memory above the loaded
    model (CPU: resident memory, VmHWM after resetting it through /proc/self/clear_refs, above the
    resident memory once the free heap that loading left is handed back with malloc_trim, which
    the capture would otherwise reuse unseen; CUDA: the torch allocator's peak), the bytes
    captured, and the time. Run it in a fresh process."""
    import gc

    import torch

    import interp

    model = interp.load(name, device=device, progress=False)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.cfg.d_vocab, (batch, pos), generator=gen).to(device)
    with torch.no_grad():
        model(tokens[:1, :8])
    gc.collect()
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        trimmed = _trim()
        base, reset = _status("VmRSS"), _reset_hwm()
    t = time.perf_counter()
    acts = interp.capture(model, tokens)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() if cuda else _status("VmHWM")
    how = ("torch CUDA allocator peak above the loaded model" if cuda else
           "peak resident memory (VmHWM) above the loaded model's" + (", free heap trimmed first" if trimmed else "")
           + ("" if reset else "; VmHWM could not be reset, so it may include loading"))
    return {"peak_mb": (peak - base) / 2**20, "captured_mb": acts.nbytes() / 2**20, "seconds": seconds,
            "hook_points": len(acts), "how": how}


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _trim() -> bool:
    """Hand the free heap back to the system (glibc's malloc_trim); False without glibc."""
    from interp.allocator import glibc

    libc = glibc()
    return bool(libc is not None and libc.malloc_trim(0) is not None)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_capture_peak(name: str, device: str, batch: int, pos: int) -> dict:
    """`capture_peak` in a fresh Python process (so no earlier run's memory is reused)."""
    code = ("import json, sys; from interp.bench_models import capture_peak; "
            f"print('PEAK ' + json.dumps(capture_peak({name!r}, {device!r}, {batch}, {pos})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(next(ln for ln in out.splitlines() if ln.startswith("PEAK "))[5:])


def cli_times(best_of: int = 3) -> dict:
    """Best-of wall time of `interp --help` and `interp models` (fresh processes)."""
    script = Path(sys.executable).parent / "interp"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "interp.cli"]
    out = {}
    for label, args in (("interp --help", ["--help"]), ("interp models", ["models"])):
        times = []
        for _ in range(best_of):
            t = time.perf_counter()
            subprocess.run(cmd + args, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
        out[label] = min(times)
    return out


# ---------------------------------------------------------------------------------------------
# One model


def bench_real(name: str, cfg, allocator: str) -> list[dict]:
    """Rows (model, allocator, measure, seconds, ratio_to_raw_forward, forward_equivalents,
    peak_mb, note) for one real checkpoint; one 'skipped' row when it is not installed."""
    from interp.models import builtin_names

    if name not in builtin_names():
        return [{"model": name, "allocator": allocator, "measure": "skipped",
                 "note": f"{name} is not installed (interp models; for gemma3-270m: make gemma)"}]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import interp
    from interp import sweep as sw
    from interp.bench import time_interleaved

    model = interp.load(name, device=cfg.device, progress=False)
    hf = AutoModelForCausalLM.from_pretrained(model.info.path, attn_implementation="eager").to(cfg.device).eval()
    tokens, corrupt, io, s = ioi_batch(model, cfg.real_batch, cfg.seed)
    metric = sw.logit_diff(model, io, s, len(io))
    with torch.no_grad():
        t = time_interleaved({"raw HF forward": lambda: hf(tokens),
                              "interp forward": lambda: model(tokens),
                              "capture all": lambda: interp.capture(model, tokens)}, cfg.repeats)
    nn_model = wrap_nnsight(hf, AutoTokenizer.from_pretrained(model.info.path))
    sweeps, res = _sweeps(model, nn_model, tokens, corrupt, metric)
    _warm(model, nn_model, tokens, corrupt, metric)
    with torch.no_grad():
        swept, unit, load = time_sweeps(sweeps, lambda: model(tokens), cfg.sweep_rounds)
    notes = _real_checks(model, tokens, metric, res)
    peak = measure_capture_peak(name, cfg.device, cfg.peak_batch, cfg.peak_pos)
    rows = _real_rows(name, allocator, model, {**t, **swept}, notes, peak, tokens.shape, cfg, nn_model is not None)
    for r in rows:  # a sweep's forward-equivalents count the bridge forwards timed next to it
        if r["measure"] in unit:
            r.update(forward_equivalents=r["seconds"] / unit[r["measure"]], unit_forward_s=unit[r["measure"]],
                     load_1min=load[r["measure"]])
    return rows


def time_sweeps(sweeps: dict, forward, rounds: int) -> tuple[dict, dict, dict]:
    """Median seconds of each sweep over `rounds` interleaved rounds; the median seconds of the
    bridge forwards timed right before and after it (3 each side), the unit of its
    forward-equivalents, so both are taken under the same load on a shared machine; and the
    1-minute load average after it."""
    import os
    import statistics

    from interp.bench import time_interleaved

    times, units, load = {k: [] for k in sweeps}, {k: [] for k in sweeps}, {}
    for _ in range(rounds):
        for k, fn in sweeps.items():
            before = time_interleaved({"forward": forward}, 3, warmup=False)["forward"]
            times[k].append(time_interleaved({k: fn}, 1, warmup=False)[k])
            after = time_interleaved({"forward": forward}, 3, warmup=False)["forward"]
            units[k].append((before + after) / 2)
            load[k] = os.getloadavg()[0]
    med = lambda d: {k: statistics.median(v) for k, v in d.items()}  # noqa: E731
    return med(times), med(units), load


_LOOP, _NN, _FAST, _LAST = ("naive sweep (run_with_hooks per head)", "nnsight sweep (one trace per head)",
                            "interp fast sweep (zero ablation)", "interp fast sweep (zero ablation, last position only)")
_PATCH, _TL = "interp patch_heads (ABC-corrupted)", "TL get_act_patch_attn_head_out_all_pos"


def _sweeps(model, nn_model, tokens, corrupt, metric) -> tuple[dict, dict]:
    """The timed sweeps (each keeps its first result in `res`)."""
    from interp import sweep as sw

    c, zero = model.cfg, sw.zero_replacement(model, tokens)
    res: dict = {}

    def keep(key, fn):
        return lambda: res.setdefault(key, fn())

    fns = {_LOOP: keep("loop", lambda: sw.naive_sweep(model, tokens, zero, metric)[1]),
           _NN: keep("nnsight", lambda: nnsight_sweep(nn_model, tokens, metric, c.n_layers, c.n_heads, c.d_head)),
           _FAST: keep("fast", lambda: sw.fast_sweep(model, tokens, zero, metric)[1]),
           _LAST: keep("last", lambda: sw.fast_sweep(model, tokens, zero, metric, positions=[-1])[1]),
           _PATCH: keep("patch", lambda: sw.patch_heads(model, tokens, corrupt, metric)),
           _TL: keep("tl", lambda: tl_patch(model, tokens, corrupt, metric))}
    if nn_model is None:
        del fns[_NN]
    return fns, res


def _warm(model, nn_model, tokens, corrupt, metric) -> None:
    """One layer of each sweep (the code paths and buffer shapes), so no timed round pays for
    first use; TL's patching shares the bridge's hooked forward with the loop (its module is
    imported here, not in the timed call)."""
    from transformer_lens import patching  # noqa: F401

    from interp import sweep as sw

    c, zero = model.cfg, sw.zero_replacement(model, tokens)
    sw.naive_sweep(model, tokens, zero, metric, layers=[c.n_layers - 1])
    sw.fast_sweep(model, tokens, zero, metric, layers=[0])
    sw.fast_sweep(model, tokens, zero, metric, positions=[-1], layers=[0])
    if nn_model is not None:
        nnsight_sweep(nn_model, tokens, metric, c.n_layers, c.n_heads, c.d_head, layers=[c.n_layers - 1])


def _real_checks(model, tokens, metric, res: dict) -> dict:
    """Agreement notes: fast and nnsight against the loop, last-position fast against the loop
    replacing the last position (first and last layer), patch_heads against TL."""
    from interp import sweep as sw

    L, H = model.cfg.n_layers, model.cfg.n_heads
    layers = [0, L - 1]
    _, last_loop = sw.naive_sweep(model, tokens, sw.zero_replacement(model, tokens), metric, positions=[-1],
                                  layers=layers)
    patched = res["patch"]["patched"].to_numpy().reshape(L, H)
    import torch

    notes = {_FAST: agreement(res["fast"], res["loop"], "fast - loop"),
             _LAST: agreement(res["last"][layers], last_loop[layers], "fast - loop, layers 0 and L-1"),
             _PATCH: agreement(torch.tensor(patched, dtype=torch.float32), res["tl"], "patch_heads - TL")}
    if "nnsight" in res:
        notes[_NN] = agreement(res["nnsight"], res["loop"], "nnsight - loop")
    return notes


def _real_rows(name, allocator, model, t, notes, peak, shape, cfg, has_nnsight) -> list[dict]:
    fwd, raw = t["interp forward"], t["raw HF forward"]
    key = {"model": name, "allocator": allocator}
    rows = [{**key, "measure": k, "seconds": v, "ratio_to_raw_forward": v / raw, "forward_equivalents": v / fwd,
             "unit_forward_s": fwd, "note": notes.get(k, "")} for k, v in t.items()]
    if not has_nnsight:
        rows.append({**key, "measure": _NN, "note": f"nnsight is not installed: {NNSIGHT_PIP}"})
    L, H = model.cfg.n_layers, model.cfg.n_heads
    rows.append({**key, "measure": "capture all: peak memory", "seconds": peak["seconds"], "peak_mb": peak["peak_mb"],
                 "note": f"batch {cfg.peak_batch} x {cfg.peak_pos} tokens, {peak['hook_points']} hook points, "
                         f"{peak['captured_mb']:.0f} MB captured; {peak['how']}"})
    rows.append({**key, "measure": "naive count L*H + 1", "forward_equivalents": L * H + 1,
                 "note": f"{L} layers x {H} heads ({model.info.architecture})"})
    rows.append({**key, "measure": "downstream-only bound 1 + sum_l H(L-l)/L",
                 "forward_equivalents": 1 + sum(H * (L - l) / L for l in range(L)),
                 "note": f"batch {shape[0]} x {shape[1]} tokens"})
    return rows


def cli_rows(allocator: str, best_of: int = 3) -> list[dict]:
    return [{"model": "cli", "allocator": allocator, "measure": k, "seconds": v, "note": f"best of {best_of}"}
            for k, v in cli_times(best_of).items()]


# ---------------------------------------------------------------------------------------------
# Report lines


def is_real(g) -> bool:
    """Whether the rows `g` of one model came from `bench_real`."""
    return bool(g["measure"].isin(["skipped", _PATCH]).any())


_TABLE = ((_LOOP, "hooked TL loop (`run_with_hooks` per head)", _FAST), (_NN, "nnsight 0.8.1, one trace per head", _FAST),
          (_FAST, "interp fast sweep (zero ablation)", None), (_LAST, "interp fast sweep, last position only", None),
          (_TL, "TL `get_act_patch_attn_head_out_all_pos`", _PATCH), (_PATCH, "interp `patch_heads`", None))
_COUNT, _BOUND = "naive count L*H + 1", "downstream-only bound 1 + sum_l H(L-l)/L"


def summary_lines(g) -> list[str]:
    """Markdown for one real model's rows `g`: a table of times, forward-equivalents and
    speed-ups, then the capture lines."""
    v = {r["measure"]: r for r in g.to_dict("records")}
    name, allocator = g["model"].iloc[0], g["allocator"].iloc[0]
    if "skipped" in v:
        return [f"### {name}", "", f"- skipped: {v['skipped']['note']}", ""]
    lines = [f"### {name}, allocator: {allocator}", "",
             f"{v[_COUNT]['note']}; {v[_BOUND]['note']}; one bridge forward {_get(v, 'interp forward'):.3f} s, "
             f"one plain transformers forward {_get(v, 'raw HF forward'):.3f} s.", "",
             "A sweep's forward-equivalents divide its time by the bridge forwards timed right before and after it "
             "(shown, with the 1-minute load average after it), so both are taken under the same load.", "",
             "| method | seconds | forward-equivalents | time / interp's | agreement | forward next to it, load |",
             "|---|---|---|---|---|---|"]
    for m, label, base in _TABLE:
        if _get(v, m) != _get(v, m):  # not run (NaN)
            lines.append(f"| {label} | | | | {_cell(v.get(m, {}).get('note', 'not run'))} | |")
            continue
        ratio = f"**{_get(v, m) / _get(v, base):.1f}x**" if base else ""
        lines.append(f"| {label} | {_get(v, m):.2f} | {_get(v, m, 'forward_equivalents'):.1f} | {ratio} | "
                     f"{_cell(v[m]['note'])} | {_get(v, m, 'unit_forward_s'):.3f} s, {_get(v, m, 'load_1min'):.1f} |")
    return lines + ["", *_capture_lines(v)]


def _cell(text) -> str:
    return ("" if isinstance(text, float) and math.isnan(text) else str(text)).replace("|", "\\|")  # a bare | splits a cell


def _get(v: dict, measure: str, column: str = "seconds") -> float:
    return v.get(measure, {}).get(column, float("nan"))


def _capture_lines(v: dict) -> list[str]:
    peak = v["capture all: peak memory"]
    return [f"- counts: naive {_get(v, _COUNT, 'forward_equivalents'):.0f}, downstream-only bound "
            f"{_get(v, _BOUND, 'forward_equivalents'):.1f} forward-equivalents; loop / last-position-only sweep: "
            f"{_get(v, _LOOP) / _get(v, _LAST):.1f}x",
            f"- capture all: {_get(v, 'capture all', 'ratio_to_raw_forward'):.2f}x a plain transformers forward "
            f"({_get(v, 'capture all', 'forward_equivalents'):.2f} bridge forwards); bridge forward "
            f"{_get(v, 'interp forward', 'ratio_to_raw_forward'):.2f}x",
            f"- capture all, peak memory: **{peak['peak_mb']:.0f} MB** ({peak['note']}; {peak['seconds']:.1f} s)", ""]


def cli_lines(g) -> list[str]:
    t = dict(zip(g["measure"], g["seconds"]))
    how = g["note"].iloc[0]
    return [f"### command line (fresh processes, {how})", "",
            f"- `interp --help`: {t['interp --help']:.2f} s; `interp models`: {t['interp models']:.2f} s", ""]
