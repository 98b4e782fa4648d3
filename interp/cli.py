"""The `interp` command: one subcommand per task; `interp SUBCOMMAND --help` shows an example.

User mistakes (an `InterpError`) print one line and exit with status 2; no traceback.
Heavy imports happen inside each subcommand, so `interp --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from interp.commands import MODULES


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other user mistake
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="interp", description=__doc__.splitlines()[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"interp {_version()}")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars (also INTERP_QUIET=1)")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    for name in MODULES:
        importlib.import_module(f"interp.commands.{name}").register(sub)
    return parser


def _version() -> str:
    from interp import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from interp.allocator import tune
    from interp.errors import InterpError

    tune()  # reuse freed activation memory (interp.allocator); the command is the whole process
    if args.quiet:
        import os

        from interp.progress import QUIET_ENV

        os.environ[QUIET_ENV] = "1"
    try:
        args.run(args)
    except InterpError as e:
        print(f"interp {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interp {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
