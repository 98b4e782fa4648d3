"""`interp demo`: the report for the default model on an IOI prompt, in reports/demo/."""

import argparse

from interp.paths import path_arg

EXAMPLE = "example:\n  interp demo            # then open reports/demo/index.html"
PROMPT = "When Mary and John went to the store, John gave a drink to"
TARGET, FOIL = " Mary", " John"


def register(sub) -> None:
    p = sub.add_parser("demo", help="write the demo report (default model, IOI prompt) to reports/demo/",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/demo", type=path_arg(), help="report directory (default: reports/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampled analyses (default: 0)")
    p.set_defaults(run=run)


def run(args) -> None:
    from pathlib import Path

    from interp.errors import InterpError
    from interp.models import default_model, load
    from interp.report.build import write_report

    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").exists():
        raise InterpError(f"{str(out)!r} is not empty and holds no earlier report; choose another --out")
    path = write_report(load(default_model()), PROMPT, out, TARGET, FOIL, force=True, seed=args.seed)
    print(f"report: {path}")
    print(_summary(path.parent / "README.md"))


def _summary(readme) -> str:
    """The first sentence or two of each section of README.md."""
    lines, title = [], None
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("## ") and line != "## Tables":
            title = line[3:]
        elif title and line.strip():
            lines.append(f"- {title}: {line.strip()[:300]}")
            title = None
    return "\n".join(lines)
