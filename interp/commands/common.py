"""Shared CLI plumbing: common options and table output."""

from __future__ import annotations

import argparse
import json
import sys

from interp.paths import path_arg


def add_model_args(p: argparse.ArgumentParser, prompt: bool = False) -> None:
    """--model and --device (and --prompt when asked)."""
    from interp.models import DEFAULT_MODEL

    p.add_argument("--model", "-m", default=None, type=path_arg(), help="built-in name, local HF directory, .gguf file or "
                   f"hub id (default: {DEFAULT_MODEL}; `interp models` lists the built-ins)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    if prompt:
        p.add_argument("--prompt", "-p", required=True, help="text to run through the model")


def add_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="output format (default: table)")


def load_model(args):
    """The model named by --model (or the default model), on --device."""
    from interp.models import default_model, load

    return load(args.model or default_model(), device=args.device)


def emit(df, fmt: str, title: str | None = None, file=None) -> None:
    """Print a DataFrame as an aligned table, CSV or a JSON list of objects."""
    file = file or sys.stdout
    if fmt == "csv":
        df.to_csv(file, index=False)
    elif fmt == "json":
        file.write(json.dumps(json.loads(df.to_json(orient="records")), indent=2) + "\n")
    else:
        if title:
            print(title, file=file)
        print(df.to_string(index=False) if len(df) else "(no rows)", file=file)
