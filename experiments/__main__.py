"""Run every experiment and index the reports: `python -m experiments` (or `make experiments`).

Each experiment runs on its default (zoo) model into reports/<name>/ and on every real model
named by --models into reports/<model>/<name>/ (`out_dir`); this writes reports/README.md with one
line per experiment and model, its finding taken from the run's headline numbers.

Usage: python -m experiments [--only NAME ...] [--models zoo smollm2-135m ...] [--reports DIR]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

EXPERIMENTS = ["induction_heads", "ioi_circuit", "gender_direction", "masking", "logit_lens", "temperature",
               "analogies"]


ZOO = "zoo"  # stands for each experiment's own default model(s)
MODELS = [ZOO, "smollm2-135m"]
OPTIONAL = {"gemma3-270m": ["induction_heads", "ioi_circuit"]}  # run by default when its extra is installed


def default_models() -> list[str]:
    """The zoo and smollm2-135m, plus each optional model whose package is installed."""
    from interp.packaged import installed

    return MODELS + [m for m in OPTIONAL if m in installed()]


def planned(model: str, only: list[str] | None) -> list[str]:
    """The experiments to run on `model` (an optional model runs only its subset)."""
    names = only or EXPERIMENTS
    return [n for n in names if n in OPTIONAL.get(model, EXPERIMENTS)]


def out_dir(reports: Path, name: str, model: str) -> Path:
    """reports/<name> for the zoo defaults, reports/<model>/<name> for a real model."""
    return reports / name if model == ZOO else reports / model / name


def run(name: str, reports: Path, model: str = ZOO) -> tuple[dict, float]:
    """Run one experiment (default Config, or `model=` plus the module's REAL_MODEL_CONFIG for
    a real model) into `out_dir`; (headline, seconds)."""
    module = importlib.import_module(f"experiments.{name}")
    kwargs = {} if model == ZOO else {"model": model, **getattr(module, "REAL_MODEL_CONFIG", {})}
    cfg = module.Config(out=str(out_dir(reports, name, model)), **kwargs)
    start = time.perf_counter()
    headline = module.main(cfg)
    return headline, time.perf_counter() - start


def index(reports: Path, models: list[str] | None = None) -> str:
    """reports/README.md built from each report's config.json (so it also lists earlier runs)."""
    lines = ["# Experiments\n",
             "Each experiment recovers a known mechanism in the zoo models or a real small model. "
             "Regenerate with `make experiments` (`python -m experiments`); each folder has README.md "
             "(question, method, findings), tidy CSVs, SVG figures, a self-contained index.html and config.json.\n",
             "| experiment | model | finding |", "|---|---|---|"]
    models = models or MODELS + list(OPTIONAL)
    for name in EXPERIMENTS:
        for model in models:
            if name not in OPTIONAL.get(model, EXPERIMENTS):
                continue
            folder = out_dir(reports, name, model)
            rel = folder.relative_to(reports).as_posix()
            cfg = folder / "config.json"
            if cfg.exists():
                data = json.loads(cfg.read_text())
                shown = data.get("model", model)
                shown = " + ".join(shown) if isinstance(shown, list) else shown
                summary = data["headline"].get("summary", "")
                lines.append(f"| [{name}]({rel}/README.md) | {shown} | {summary.replace('|', '/')} |")
            else:
                lines.append(f"| {name} | {model} | not run yet |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run the experiments and index their reports.",
                                epilog="example: python -m experiments --only masking logit_lens")
    p.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=None)
    p.add_argument("--models", nargs="*", default=None,
                   help=f"'{ZOO}' (each experiment's zoo default) and/or real model names; default: {' '.join(MODELS)}, "
                        f"plus {' '.join(OPTIONAL)} when installed")
    p.add_argument("--reports", default="reports")
    a = p.parse_args(argv)
    from interp.allocator import tune

    tune()  # reuse freed memory across forwards (interp.allocator)
    reports = Path(a.reports)
    total = time.perf_counter()
    for model in a.models or default_models():
        for name in planned(model, a.only):
            headline, seconds = run(name, reports, model)
            print(f"{name} [{model}]: {seconds:.0f} s: {headline.get('summary', '')}", flush=True)
    print(f"all: {time.perf_counter() - total:.0f} s", flush=True)
    (reports / "README.md").write_text(index(reports), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
