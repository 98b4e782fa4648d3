"""`interp report`: a self-contained research report (HTML, README, CSVs, config) for one prompt."""

import argparse

from interp.commands.common import add_model_args
from interp.paths import path_arg

EXAMPLE = ('example:\n  interp report --model zoo-4l --prompt "When Mary and John went to the store, '
           'John gave a drink to" --target " Mary" --foil " John" --out reports/ioi')


def register(sub) -> None:
    p = sub.add_parser("report", help="write an offline HTML report with every analysis for a prompt",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, prompt=True)
    p.add_argument("--target", default=None, help="correct next token, e.g. ' Mary' (needs --foil)")
    p.add_argument("--foil", default=None, help="competing next token, e.g. ' John' (needs --target)")
    p.add_argument("--out", "-o", required=True, type=path_arg(), help="report directory (index.html, README.md, CSVs)")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out directory")
    p.add_argument("--seed", type=int, default=0, help="seed for sampled analyses (default: 0)")
    p.set_defaults(run=run)


def check(args) -> None:
    """Argument mistakes that need no model: fail before loading one."""
    from interp.errors import InterpError
    from interp.report.write import check_target

    if not args.prompt.strip():
        raise InterpError("empty --prompt: give the text to analyse")
    if (args.target is None) != (args.foil is None):
        raise InterpError("give both --target and --foil (e.g. --target ' Mary' --foil ' John'), or neither")
    check_target(args.out, args.force)


def run(args) -> None:
    from interp.commands.common import load_model
    from interp.report.build import write_report

    check(args)
    path = write_report(load_model(args), args.prompt, args.out, args.target, args.foil, args.force, args.seed)
    print(path)
