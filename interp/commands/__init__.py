"""CLI subcommands: one module each, with `register(subparsers)` and `run(args)`.

`interp.cli` imports these modules at start-up, so they must import nothing heavy at module
level (torch, transformer_lens): do it inside `run`.
"""

# Module names, in the order `interp --help` lists them.
MODULES = ["models", "inspect", "zoo", "attribute", "report", "demo", "embed", "sample", "attention", "ablate", "cache", "patch"]
