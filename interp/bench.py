"""Benchmark: forward, capture and head-sweep costs as ratios, written to reports/bench/.

Run `python -m interp.bench` (or `make bench`). For each model (zoo-4l, and a random model of
GPT-2-small shape with the zoo tokenizer, built in a temporary directory) it times, in one run
and on the same batch: a raw transformers forward, the interp (bridge) forward, capturing every
hook point and a filtered set (interp's engine, and the bridge's `run_with_cache` for comparison), the naive per-head `run_with_hooks` sweep, TransformerLens'
`patching.get_act_patch_attn_head_out_all_pos`, and interp's fast sweep (zero ablation and
patching), and sampling with and without the decoder's key/value cache. Sweeps are reported in forward-equivalents (time / bridge forward) next to the
naive count L*H + 1 and the downstream-only bound 1 + sum_l H*(L-l)/L. It also checks that the
fast sweep equals the naive one and TL's patching. Everything is measured twice in the same
process: first with glibc's default allocator settings (INTERP_TUNE_ALLOCATOR=0; the 12-layer
model without its minutes-long sweeps), then after `interp.tune_allocator()` (see
`interp.allocator`), which interp applies by default. Last, the streaming cache's throughput and peak resident memory on two
input sizes 10x apart (each in a fresh `interp cache` process).

Real checkpoints (smollm2-135m, and gemma3-270m when its package is installed) are measured
after that, with interp's default allocator settings, by `interp.bench_models`: the hooked
loop, nnsight 0.8.1 (one trace per head) and interp's fast sweep on one batch of IOI prompts,
head patching against TL's, capture of every hook point and its peak memory, and the CLI's
start-up. `--models` chooses what runs (default: all of MODELS), `--device` where (every model
is loaded there).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

OUT = Path("reports/bench")
BIG = "gpt2-small-random"  # the random GPT-2-small-shaped model built in a temporary directory
MODELS = ("zoo-4l", BIG, "smollm2-135m", "gemma3-270m")


@dataclass
class Config:
    batch: int = 8
    prompts_per_row: int = 4  # IOI sentences joined per row (~60 tokens)
    repeats: int = 5
    big_layers: int = 12
    stream_lines: int = 200
    out: Path = OUT
    seed: int = 0
    device: str = "cpu"
    models: tuple[str, ...] = MODELS
    real_batch: int = 4  # IOI prompts (one sentence each, ~15 tokens) for the real checkpoints
    sweep_rounds: int = 1  # interleaved rounds of the real checkpoints' sweeps (minutes each)
    peak_batch: int = 16  # capture-all peak memory: batch x pos random tokens
    peak_pos: int = 128


def _time(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up."""
    return time_interleaved({"fn": fn}, repeats)["fn"]


def time_interleaved(fns: dict, repeats: int, warmup: bool = True) -> dict:
    """Median wall time of each of `fns` over `repeats` rounds, every round running each once in
    turn (after one warm-up each, unless `warmup` is False), so a machine that speeds up or slows
    down meanwhile shifts them all alike. GPU work is waited for before a clock is read."""
    if warmup:
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync()
            t = time.perf_counter()
            fn()
            _sync()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _prompts(cfg: Config, offset: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Rows of IOI sentences, the io and s name of each row's last sentence."""
    from interp.zoo.corpus import ioi_prompts

    items = ioi_prompts("train", cfg.batch * cfg.prompts_per_row, cfg.seed + offset)
    rows = [items[i * cfg.prompts_per_row:(i + 1) * cfg.prompts_per_row] for i in range(cfg.batch)]
    texts = [" ".join(it["prompt"] for it in row) for row in rows]
    return texts, [row[-1]["io"] for row in rows], [row[-1]["s"] for row in rows]


def _big_model_dir(tmp: str, layers: int) -> str:
    """A random GPT-2-small-shaped model (d_model 768, 12 heads) with the zoo tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.zoo.train import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    conf = GPT2Config(vocab_size=len(tok), n_positions=129, n_embd=768, n_layer=layers, n_head=12,
                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    GPT2LMHeadModel(conf).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    return tmp


def _equal_length(model, clean: list[str], corrupted: list[str]):
    """Token tensors of the clean and corrupted rows cut to a common width."""
    from interp.activations import to_tokens

    a, b = to_tokens(model, clean)[0], to_tokens(model, corrupted)[0]
    width = min(a.shape[1], b.shape[1])
    return a[:, :width], b[:, :width]


def bench_model(name: str, path: str, cfg: Config, allocator: str, sweeps: bool = True) -> list[dict]:
    """Rows (model, allocator, measure, seconds, ratio_raw, forward_equivalents, note) for one
    model: forwards and captures, and (if `sweeps`) the naive, TL and fast head sweeps."""
    import torch
    from transformers import GPT2LMHeadModel

    import interp
    from interp import sweep as sw
    from interp.activations import capture

    model = interp.load(path, device=cfg.device)
    raw = GPT2LMHeadModel.from_pretrained(model.info.path, attn_implementation="eager").to(cfg.device).eval()
    texts, io, s = _prompts(cfg)
    tokens, corrupt = _equal_length(model, texts, _prompts(cfg, offset=1)[0])
    # the metric reads the last position of the cut rows: compare two fixed names there
    metric = sw.logit_diff(model, io, s, len(texts))
    L, H = model.cfg.n_layers, model.cfg.n_heads
    with torch.no_grad():
        t = time_interleaved({
            "raw HF forward": lambda: raw(tokens),
            "interp forward": lambda: model(tokens),
            "capture all": lambda: capture(model, tokens, engine="auto"),
            "capture filtered (resid_post)": lambda: capture(model, tokens, names="blocks.*.hook_resid_post",
                                                             engine="auto"),
            "capture all via the bridge (run_with_cache)": lambda: capture(model, tokens, engine="bridge"),
        }, cfg.repeats)
    if not sweeps:
        return _rows(name, allocator, t, L, H, {}, tokens.shape)
    zero = sw.zero_replacement(model, tokens)
    res = {}
    fast_repeats = max(1, cfg.repeats // 2)  # cheap enough to warm up and repeat
    naive = lambda: res.__setitem__("naive", sw.naive_sweep(model, tokens, zero, metric))  # noqa: E731
    # a small model's naive loop is timed like the fast sweep; a large one's once (minutes)
    t["naive sweep (run_with_hooks per head)"] = _time(naive, fast_repeats) if L * H <= 64 else _once(naive)
    t["interp fast sweep (zero ablation)"] = _time(lambda: res.__setitem__("fast", sw.fast_sweep(model, tokens, zero, metric)),
                                                   fast_repeats)
    t["interp fast sweep (zero ablation, last position only)"] = _time(
        lambda: sw.fast_sweep(model, tokens, zero, metric, positions=[-1]), fast_repeats)
    z_clean, _ = sw.clean_run(model, tokens)
    t["interp fast sweep (patching)"] = _time(lambda: res.__setitem__("patch", sw.fast_sweep(model, corrupt, z_clean, metric)),
                                              fast_repeats)
    t["TL get_act_patch_attn_head_out_all_pos"] = _once(lambda: res.setdefault("tl", _tl_patch(model, tokens, corrupt, metric)))
    for cache, label in ((False, "sampling 4 x 60 tokens, full rerun per step"), (True, "sampling 4 x 60 tokens, key/value cache")):
        t[label] = _time(lambda: res.__setitem__(cache, _sample(model, tokens[:4, :16], cache)[0]), fast_repeats)
    notes = _checks(res)
    notes["sampling 4 x 60 tokens, key/value cache"] = f"same tokens as the rerun: {bool(torch.equal(res[True], res[False]))}"
    return _rows(name, allocator, t, L, H, notes, tokens.shape)


def _sample(model, prompt, cache: bool):
    """60 new tokens for each prompt row at T = 1 (seeded), with or without the decoder's cache."""
    import torch

    from interp.sampling import generate

    return generate(model, prompt, 1.0, 60, torch.Generator().manual_seed(0), cache=cache)


def _once(fn) -> float:
    _sync()
    t = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t


def _tl_patch(model, clean, corrupt, metric):
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from transformer_lens import patching

    last = torch.full((clean.shape[0],), clean.shape[1] - 1, device=clean.device)
    with torch.no_grad():
        _, cache = model.run_with_cache(clean)
        out = patching.get_act_patch_attn_head_out_all_pos(model, corrupt, cache, lambda lg: metric(lg, corrupt, last).mean())
    return (out if isinstance(out, torch.Tensor) else out.values).cpu()


def _checks(res: dict) -> dict:
    """Max |fast - naive| and |fast patching - TL patching| (means over the batch)."""
    fast_vs_naive = (res["fast"][1] - res["naive"][1]).abs().max().item()
    tl = res["tl"].reshape(res["patch"][1].shape[:2]).float()
    patch_vs_tl = (res["patch"][1].mean(-1) - tl).abs().max().item()
    return {"interp fast sweep (zero ablation)": f"max |fast - naive| = {fast_vs_naive:.1e}",
            "interp fast sweep (patching)": f"max |fast - TL patching| = {patch_vs_tl:.1e}"}


def _rows(name, allocator, t, L, H, notes, shape) -> list[dict]:
    fwd, raw = t["interp forward"], t["raw HF forward"]
    key = {"model": name, "allocator": allocator}
    rows = [{**key, "measure": k, "seconds": v, "ratio_to_raw_forward": v / raw,
             "forward_equivalents": v / fwd, "note": notes.get(k, "")} for k, v in t.items()]
    bound = 1 + sum(H * (L - l) / L for l in range(L))
    rows.append({**key, "measure": "naive count L*H + 1", "forward_equivalents": L * H + 1,
                 "note": f"{L} layers x {H} heads"})
    rows.append({**key, "measure": "downstream-only bound 1 + sum_l H(L-l)/L", "forward_equivalents": bound,
                 "note": f"batch {shape[0]} x {shape[1]} tokens"})
    return rows


def _summary(df) -> list[str]:
    """Headline lines: targets against what was measured, per model and allocator setting."""
    from interp.bench_models import cli_lines, is_real, summary_lines

    lines = []
    for (name, allocator), g in df.groupby(["model", "allocator"], sort=False):
        if name == "cli" or is_real(g):
            lines += cli_lines(g) if name == "cli" else summary_lines(g)
            continue
        v = dict(zip(g["measure"], g["forward_equivalents"]))
        r = dict(zip(g["measure"], g["ratio_to_raw_forward"]))
        lines += [f"### {name}, allocator: {allocator}", ""]
        if "interp fast sweep (zero ablation)" in v:
            naive, fast = v["naive sweep (run_with_hooks per head)"], v["interp fast sweep (zero ablation)"]
            bound = v["downstream-only bound 1 + sum_l H(L-l)/L"]
            lines += [f"- fast sweep vs naive loop: **{naive / fast:.1f}x faster** (target >= 5x: "
                      f"{'met' if naive / fast >= 5 else 'NOT met'})",
                      f"- fast sweep cost: {fast:.1f} forward-equivalents vs bound {bound:.1f} and naive count "
                      f"{v['naive count L*H + 1']:.0f} ({'at or below' if fast <= bound else 'ABOVE'} the bound)",
                      f"- the same sweep replacing only the last position: {v['interp fast sweep (zero ablation, last position only)']:.1f} "
                      "forward-equivalents (positions before it are never recomputed)",
                      f"- TL patching: {v['TL get_act_patch_attn_head_out_all_pos']:.1f} forward-equivalents; "
                      f"fast patching {v['interp fast sweep (patching)']:.1f}",
                      f"- sampling 4 x 60 tokens: key/value cache "
                      f"{v['sampling 4 x 60 tokens, full rerun per step'] / v['sampling 4 x 60 tokens, key/value cache']:.1f}x "
                      "faster than a full rerun per step"]
        lines += [f"- capture all: {r['capture all']:.2f}x raw forward (target <= 1.3x: "
                  f"{'met' if r['capture all'] <= 1.3 else 'NOT met'}); filtered: "
                  f"{r['capture filtered (resid_post)']:.2f}x (target <= 1.05x: "
                  f"{'met' if r['capture filtered (resid_post)'] <= 1.05 else 'NOT met'}); "
                  f"bridge forward: {r['interp forward']:.2f}x", ""]
    return lines


def _machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, Python {platform.python_version()}")


def bench_stream(cfg: Config):
    """Streaming-cache throughput and peak RSS for two input sizes (10x apart), each in a fresh process."""
    import pandas as pd

    from interp.cache import measure_stream

    rows = [{"model": "zoo-4l", "hooks": "blocks.*.hook_resid_post", **measure_stream("zoo-4l", n, "blocks.*.hook_resid_post")}
            for n in (cfg.stream_lines, 10 * cfg.stream_lines)]
    df = pd.DataFrame(rows)
    df["peak_rss_growth"] = df["peak_rss_mb"] / df["peak_rss_mb"].iloc[0]
    return df


def write_report(df, cfg: Config, stream=None) -> Path:
    cfg.out.mkdir(parents=True, exist_ok=True)
    if stream is not None:
        stream.to_csv(cfg.out / "stream.csv", index=False)
    df = df.reindex(columns=[*df.columns.drop("note", errors="ignore"), "note"])
    df.to_csv(cfg.out / "results.csv", index=False)
    rounded = {c: df[c].round(d) for c, d in (("seconds", 4), ("ratio_to_raw_forward", 2), ("forward_equivalents", 2),
                                              ("peak_mb", 0), ("unit_forward_s", 4), ("load_1min", 2)) if c in df}
    table = df.assign(**rounded).astype(object).fillna("")
    text = ["# interp benchmark", "",
            f"Run {datetime.date.today().isoformat()} by `python -m interp.bench` on {_machine()}.",
            f"Batch {cfg.batch} rows of {cfg.prompts_per_row} IOI sentences; forwards and captures are the median of "
            f"{cfg.repeats} rounds after a warm-up, each round running every variant once in turn; sweeps on zoo-4l (naive and fast) the median of {max(1, cfg.repeats // 2)} after a warm-up; "
            "on the 12-layer model the naive loop and TL patching run once each. "
            f"Real checkpoints: batch {cfg.real_batch} IOI prompts of one token length (per-prompt IO - S logit "
            f"difference), forwards as above, sweeps timed in {cfg.sweep_rounds} interleaved round(s) after a "
            "one-layer warm-up of each, each between bridge forwards that are its forward-equivalents' unit. "
            "Ratios, not seconds, are the result: the machine is shared.",
            "`forward_equivalents` = time / interp (bridge) forward; `ratio_to_raw_forward` = time / plain "
            "transformers forward.", "", *_summary(df), *_stream_summary(stream), "## All measurements", "",
            table.to_markdown(index=False) if _has_tabulate() else "```\n" + table.to_string(index=False) + "\n```", ""]
    (cfg.out / "README.md").write_text("\n".join(text))
    return cfg.out


def _stream_summary(stream) -> list[str]:
    if stream is None or not len(stream):
        return []
    small, large = stream.iloc[0], stream.iloc[-1]
    growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    return ["### streaming cache (`interp cache`, zoo-4l, every resid_post)", "",
            f"- {int(small['n_lines'])} lines: {small['tokens_per_s']:.0f} tokens/s, peak RSS {small['peak_rss_mb']:.0f} MB; "
            f"{int(large['n_lines'])} lines: {large['tokens_per_s']:.0f} tokens/s, peak RSS {large['peak_rss_mb']:.0f} MB",
            f"- peak RSS for 10x the input grows {100 * growth:.1f}% (target <= 10%: {'met' if growth <= 0.10 else 'NOT met'})",
            ""]


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def main(cfg: Config) -> Path:
    """Measure the GPT-2-style models with glibc's default allocator settings first, then with
    `interp.tune_allocator()` (a process-wide change that cannot be undone, hence this order),
    then the real checkpoints, the command line's start-up and the streaming cache."""
    os.environ["TQDM_DISABLE"] = "1"
    import pandas as pd

    from interp.allocator import ENV, tune
    from interp.bench_models import REAL_MODELS, bench_real, cli_rows

    unknown = sorted(set(cfg.models) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown benchmark model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    gpt2 = [m for m in ("zoo-4l", BIG) if m in cfg.models]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big = f"random GPT-2-small shape ({cfg.big_layers} layers)"
        where = {"zoo-4l": ("zoo-4l", "zoo-4l"),
                 BIG: (big, _big_model_dir(tmp, cfg.big_layers) if BIG in gpt2 else None)}
        os.environ[ENV] = "0"  # the engine would otherwise tune the allocator on first use
        for m in gpt2:  # the 12-layer model's sweeps take minutes: only in the tuned pass
            rows += bench_model(*where[m], cfg, "glibc default", sweeps=m != BIG)
        del os.environ[ENV]
        allocator = "tuned (interp.tune_allocator)" if tune() else "glibc default (tuning unavailable)"
        for m in gpt2:
            rows += bench_model(*where[m], cfg, allocator)
    for m in REAL_MODELS:
        if m in cfg.models:
            rows += bench_real(m, cfg, allocator)
    rows += cli_rows(allocator)
    out = write_report(pd.DataFrame(rows), cfg, bench_stream(cfg) if "zoo-4l" in cfg.models else None)
    print((out / "README.md").read_text())
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=Config.batch)
    p.add_argument("--repeats", type=int, default=Config.repeats)
    p.add_argument("--big-layers", type=int, default=Config.big_layers, help="layers of the GPT-2-small-shaped model")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), metavar="MODEL",
                   help=f"what to measure (default: all of {', '.join(MODELS)})")
    p.add_argument("--device", default=Config.device, help="torch device every model is loaded on (cpu, cuda, ...)")
    p.add_argument("--sweep-rounds", type=int, default=Config.sweep_rounds,
                   help="interleaved rounds of the real checkpoints' sweeps")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    main(Config(batch=a.batch, repeats=a.repeats, big_layers=a.big_layers, out=a.out, device=a.device,
                models=tuple(a.models), sweep_rounds=a.sweep_rounds))
