"""`interp models`: the built-in and installed models, described from their files (no weights)."""

from interp.commands.common import add_format_arg, emit

EXAMPLE = "example:\n  interp models --format json"


def register(sub) -> None:
    p = sub.add_parser("models", help="list built-in models with size, provenance, trained status and metrics",
                       epilog=EXAMPLE, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    add_format_arg(p)
    p.set_defaults(run=run)


def run(args) -> None:
    import pandas as pd

    from interp.catalog import describe_all

    df = pd.DataFrame(describe_all())
    emit(df, args.format, title="built-in models (load by name; a local HF directory or .gguf file works too)")
