"""`interp patch`: activation (or attribution) patching between a clean and a corrupted prompt."""

import argparse

from interp.commands.common import add_model_args, emit, load_model

WHATS = ["heads", "resid", "resid_pre", "resid_post", "attn_out", "mlp_out", "q", "k", "v", "pattern", "path"]
EXAMPLE = """denoising runs the corrupted prompt and puts one clean activation in; noising the reverse.
normalised = (patched - corrupted) / (clean - corrupted): 1 = behaves like the clean run.

examples:
  interp patch --model zoo-2l --clean "When Mary and John went to the store, John gave a drink to" \\
      --corrupted "When Alice and Bob went to the store, Bob gave a drink to" \\
      --target " Mary" --foil " John" --what heads --direction denoising
  interp patch --model zoo-2l --clean "When Mary and John went to the store, John gave a drink to" \\
      --corrupted "When Alice and Bob went to the store, Bob gave a drink to" \\
      --target " Mary" --foil " John" --what resid --method attribution --csv
  interp patch --model zoo-2l --clean "When Mary and John went to the store, John gave a drink to" \
      --corrupted "When Alice and Bob went to the store, Bob gave a drink to" \
      --target " Mary" --foil " John" --what path --receiver L1H0 --component q --direction noising"""


def register(sub) -> None:
    p = sub.add_parser("patch", help="activation / attribution patching: which activations carry a prediction",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--clean", "-c", action="append", required=True, help="clean prompt (repeat for several)")
    p.add_argument("--corrupted", "-x", action="append", required=True,
                   help="corrupted prompt, same token length as its clean prompt (repeat, one per --clean)")
    p.add_argument("--target", "-t", required=True, help="the clean run's answer, e.g. ' Mary'")
    p.add_argument("--foil", "-f", default=None, help="competing token: the metric is logit(target) - logit(foil) "
                   "(default: log-prob of target)")
    p.add_argument("--what", "-w", choices=WHATS, default="heads",
                   help="what to patch (resid = resid_pre; k/v are per kv head; default: heads)")
    p.add_argument("--direction", "-d", choices=["denoising", "noising"], default="denoising",
                   help="denoising: corrupted run, clean activation in; noising: the reverse (default: denoising)")
    p.add_argument("--method", choices=["activation", "attribution"], default="activation",
                   help="activation (exact) or attribution (gradient estimate, one backward; default: activation)")
    p.add_argument("--by-position", dest="by_position", action="store_true", default=None,
                   help="one patch per position (default for resid, attn_out, mlp_out)")
    p.add_argument("--all-positions", dest="by_position", action="store_false",
                   help="patch every position at once (default for heads, q, k, v, pattern)")
    p.add_argument("--receiver", action="append", default=None, metavar="LxHy",
                   help="--what path: a receiver head, e.g. L9H6 (repeat; a kv head for --component k/v; "
                   "default: the logits)")
    p.add_argument("--component", choices=["q", "k", "v"], default="q",
                   help="--what path: which input of the receivers is patched (default: q)")
    p.add_argument("--top", "-k", type=int, default=None, help="rows to show, by |normalised| (default: all)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.set_defaults(run=run)


def run(args) -> None:
    from interp.errors import InterpError
    from interp.models import require_trained
    from interp.patching import check_target

    if args.top is not None and args.top < 1:
        raise InterpError(f"--top {args.top} must be at least 1")
    if len(args.clean) != len(args.corrupted):
        raise InterpError(f"{len(args.clean)} --clean but {len(args.corrupted)} --corrupted prompts; give one "
                          "--corrupted per --clean")
    what = "resid_pre" if args.what == "resid" else args.what
    receivers = _receivers(args.receiver) if what == "path" else None
    if what == "path" and args.method != "activation":
        raise InterpError("--what path runs activation path patching only; drop --method attribution")
    model = load_model(args)
    check_target(model, "heads" if what == "path" else what, args.direction, args.method)
    require_trained(model, "patching")
    df = _patch(model, args, what, receivers)
    if args.top is not None:
        df = df.reindex(df["normalised"].abs().sort_values(ascending=False).index).head(args.top)
    metric = f"logit({args.target!r}) - logit({args.foil!r})" if args.foil else f"log p({args.target!r})"
    first = df.iloc[0]
    if what == "path":
        to = "logits" if receivers == "logits" else f"{args.component} of " + " ".join(f"L{l}H{h}" for l, h in receivers)
        shown = f"path patching to {to}"
    else:
        shown = f"{args.method} patching of {what}"
    title = (f"{shown} ({args.direction}): {metric}; clean {first['clean']:.4g}, "
             f"corrupted {first['corrupted']:.4g}")
    if args.csv:
        emit(df, "csv")
    else:  # the table leaves out the constant columns and those that do not apply
        emit(df.drop(columns=["clean", "corrupted"]).dropna(axis=1, how="all"), "table", title)


def _patch(model, args, what: str, receivers):
    from interp.patching import activation_patch

    if what == "path":
        from interp.path_patching import path_patch

        return path_patch(model, args.clean, args.corrupted, args.target, args.foil, receivers=receivers,
                          component=args.component, direction=args.direction)
    return activation_patch(model, args.clean, args.corrupted, args.target, args.foil, what=what,
                            direction=args.direction, method=args.method, by_position=args.by_position)


def _receivers(given):
    """[(layer, head)] from "L9H6" strings, or "logits" when none were given."""
    import re

    from interp.errors import InterpError

    if not given:
        return "logits"
    out = []
    for text in given:
        m = re.fullmatch(r"[Ll](\d+)[Hh](\d+)", text.strip())
        if not m:
            raise InterpError(f"--receiver {text!r} is not a head; write it as L<layer>H<head>, e.g. L9H6")
        out.append((int(m[1]), int(m[2])))
    return out
