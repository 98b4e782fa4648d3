"""`interp ablate`: which heads matter for a prediction (zero / mean / resample head ablation)."""

import argparse

from interp.commands.common import add_format_arg, add_model_args, emit, load_model

EXAMPLE = """examples:
  interp ablate --model zoo-4l --prompt "When Mary and John went to the store, John gave a drink to" \\
      --target " Mary" --foil " John" --top 5
  interp ablate --prompt "When Mary and John went to the store, John gave a drink to" --target " Mary" \\
      --foil " John" --layer 2 --head 3 --mode mean --reference "When Adam and Anna went to the park, Anna gave a ball to\""""


def register(sub) -> None:
    p = sub.add_parser("ablate", help="ablate attention heads and rank them by their effect on a prediction",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--prompt", "-p", action="append", required=True, help="prompt (repeat for several)")
    p.add_argument("--target", "-t", required=True, help="the expected next token, e.g. ' Mary'")
    p.add_argument("--foil", "-f", default=None, help="a competing token: the metric becomes logit(target) - logit(foil) "
                   "(default: log-prob of target)")
    p.add_argument("--mode", choices=["zero", "mean", "resample"], default="zero", help="ablation (default: zero)")
    p.add_argument("--reference", "-r", action="append", default=None,
                   help="reference prompt for mean/resample ablation (repeat for several)")
    p.add_argument("--layer", "-l", type=int, default=None, help="ablate one layer's heads (with --head: one head)")
    p.add_argument("--head", type=int, default=None, help="head to ablate (needs --layer)")
    p.add_argument("--top", "-k", type=int, default=10, help="heads to show, by |delta| (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="resample seed (default: 0)")
    add_format_arg(p)
    p.set_defaults(run=run)


def run(args) -> None:
    from interp.ablation import ablate, sweep
    from interp.errors import InterpError, check_range
    from interp.models import require_trained

    if args.head is not None and args.layer is None:
        raise InterpError(f"--head {args.head} needs --layer: give the head's layer too")
    if args.top < 1:
        raise InterpError(f"--top {args.top} must be at least 1")
    if args.reference and args.mode == "zero":
        raise InterpError("--reference goes with --mode mean or resample; zero ablation uses no reference: "
                          "drop --reference or add --mode mean")
    model = load_model(args)
    info = model.info
    if args.layer is not None:
        check_range("layer", args.layer, info.n_layers, info.name)
    if args.head is not None:
        check_range("head", args.head, info.n_heads, info.name)
    require_trained(model, "head ablation")
    common = dict(mode=args.mode, reference=args.reference, seed=args.seed)
    metric = f"logit({args.target!r}) - logit({args.foil!r})" if args.foil else f"log p({args.target!r})"
    if args.head is not None:
        df = ablate(model, args.prompt, [(args.layer, args.head)], args.target, args.foil, **common)
        emit(df, args.format, title=f"{args.mode}-ablating L{args.layer}H{args.head}: {metric}")
        return
    layers = None if args.layer is None else [args.layer]
    df = sweep(model, args.prompt, args.target, args.foil, layers=layers, **common)
    df = df.reindex(df["delta"].abs().sort_values(ascending=False).index).head(args.top)
    emit(df, args.format, title=f"top {len(df)} heads by |delta| ({args.mode} ablation): {metric}")
