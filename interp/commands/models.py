"""`interp models`: the built-in and installed models."""

from interp.commands.common import add_format_arg, emit

EXAMPLE = "example:\n  interp models --format json"


def register(sub) -> None:
    p = sub.add_parser("models", help="list built-in models with size, trained status and metrics",
                       epilog=EXAMPLE, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    add_format_arg(p)
    p.set_defaults(run=run)


def run(args) -> None:
    import pandas as pd

    from interp.models import builtin_names, describe

    df = pd.DataFrame([describe(n) for n in builtin_names()])
    emit(df, args.format, title="built-in models (load by name; a local HF directory works too)")
