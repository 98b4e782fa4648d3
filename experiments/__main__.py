"""Run every experiment and index the reports: `python -m experiments` (or `make experiments`).

Each experiment writes reports/<name>/; this writes reports/README.md with one line per
experiment, its finding taken from the run's headline numbers.

Usage: python -m experiments [--only NAME ...] [--reports DIR]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

EXPERIMENTS = ["induction_heads", "ioi_circuit", "gender_direction", "masking", "logit_lens", "temperature",
               "analogies"]


def run(name: str, reports: Path) -> tuple[dict, float]:
    """Run one experiment with its default Config into reports/<name>; (headline, seconds)."""
    module = importlib.import_module(f"experiments.{name}")
    cfg = module.Config(out=str(reports / name))
    start = time.perf_counter()
    headline = module.main(cfg)
    return headline, time.perf_counter() - start


def index(reports: Path) -> str:
    """reports/README.md built from each report's config.json (so it also lists earlier runs)."""
    lines = ["# Experiments\n",
             "Each experiment recovers a known mechanism in the zoo models or a real small model. "
             "Regenerate with `make experiments` (`python -m experiments`); each folder has README.md "
             "(question, method, findings), tidy CSVs, SVG figures, a self-contained index.html and config.json.\n",
             "| experiment | finding |", "|---|---|"]
    for name in EXPERIMENTS:
        cfg = reports / name / "config.json"
        if cfg.exists():
            summary = json.loads(cfg.read_text())["headline"].get("summary", "")
            lines.append(f"| [{name}]({name}/README.md) | {summary.replace('|', '/')} |")
        else:
            lines.append(f"| {name} | not run yet |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run the experiments and index their reports.",
                                epilog="example: python -m experiments --only masking logit_lens")
    p.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=None)
    p.add_argument("--reports", default="reports")
    a = p.parse_args(argv)
    from interp.allocator import tune

    tune()  # reuse freed memory across forwards (interp.allocator)
    reports = Path(a.reports)
    for name in a.only or EXPERIMENTS:
        headline, seconds = run(name, reports)
        print(f"{name}: {seconds:.0f} s: {headline.get('summary', '')}", flush=True)
    (reports / "README.md").write_text(index(reports), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
