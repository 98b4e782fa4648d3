"""`interp zoo train|evaluate NAME`: reproduce a zoo model, or recompute its held-out metrics."""

import argparse

from interp.paths import path_arg

EXAMPLE = "examples:\n  interp zoo evaluate zoo-4l\n  interp zoo train zoo-2l --out /tmp/zoo-2l"


def register(sub) -> None:
    p = sub.add_parser("zoo", help="train or evaluate the built-in models", epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    zsub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True,
                            parser_class=type(p))
    from interp.zoo.train import RECIPES  # light: no torch at import

    t = zsub.add_parser("train", help="train a zoo model from its recipe (progress bar, loss log)")
    t.add_argument("name", choices=sorted(RECIPES))
    t.add_argument("--out", default=None, type=path_arg(), help="output directory (default: ./NAME)")
    t.add_argument("--force", action="store_true", help="replace a non-empty --out")
    t.add_argument("--device", default="cpu")
    t.add_argument("--workers", type=int, default=2, help="processes generating the corpus")
    t.set_defaults(run=run_train)
    e = zsub.add_parser("evaluate", help="recompute a zoo model's held-out metrics")
    e.add_argument("name", help="zoo name or model directory")
    e.add_argument("--n", type=int, default=200, help="prompts per IOI split")
    e.add_argument("--write-card", action="store_true", help="store the metrics in card.json and MODEL_CARD.md")
    e.set_defaults(run=run_evaluate)


def run_train(args) -> None:
    from interp.errors import InterpError
    from interp.zoo.train import train

    if args.workers < 1:
        raise InterpError(f"--workers {args.workers} must be at least 1")
    print(train(args.name, args.out, args.device, workers=args.workers, force=args.force))


def run_evaluate(args) -> None:
    import json

    from interp.errors import InterpError
    from interp.models import resolve, zoo_names
    from interp.zoo.card import write_card
    from interp.zoo.evaluate import evaluate

    if args.n < 1:
        raise InterpError(f"--n {args.n} must be at least 1 (prompts per IOI split)")
    name, source, location = resolve(args.name)
    if source not in ("zoo", "local"):
        raise InterpError(f"interp zoo evaluate takes a zoo name ({', '.join(zoo_names())}) or a zoo model "
                          f"directory, not {args.name!r}")
    metrics = evaluate(location, n=args.n)
    print(json.dumps(metrics, indent=2))
    if args.write_card:
        print(write_card(location, metrics))
