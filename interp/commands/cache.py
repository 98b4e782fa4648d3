"""`interp cache`: stream a text file through a model and store activations in shards."""

import argparse

from interp.commands.common import add_model_args

EXAMPLE = """examples:
  interp cache --model zoo-4l --data prompts.txt --hooks 'blocks.*.hook_resid_post' --out acts/
  interp cache ... --shard 0/4 --out acts-0/     (one slice of four, e.g. a Slurm array task)
  interp cache --merge acts-0 acts-1 acts-2 acts-3 --out acts/"""


def register(sub) -> None:
    p = sub.add_parser("cache", help="stream a text file through a model; activations to safetensors shards",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--data", help="text file, one prompt per line (or .jsonl with a 'text' field)")
    p.add_argument("--hooks", default="blocks.*.hook_resid_post", help="hook names or a glob (default: %(default)s)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--shard-size", type=int, default=256, help="prompts per shard file")
    p.add_argument("--shard", default="0/1", help="process slice i of n (lines numbered i mod n), e.g. 2/8")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.add_argument("--truncate", action="store_true", help="cut prompts longer than the context")
    p.add_argument("--merge", nargs="+", metavar="DIR", help="merge slice directories into --out (no model run)")
    p.set_defaults(run=run)


def run(args) -> None:
    from interp.cache import cache_file, merge_caches, parse_shard
    from interp.errors import InterpError

    if args.merge:
        index = merge_caches(args.merge, args.out)
        print(f"{args.out}: {len(index['prompts'])} prompts in {len(index['shards'])} shards from {len(args.merge)} dirs")
        return
    if not args.data:
        raise InterpError("--data is required (or --merge DIR ...): give a text file with one prompt per line")
    shard = parse_shard(args.shard)
    from interp.commands.common import load_model

    model = load_model(args)
    index = cache_file(model, args.data, args.hooks, args.out, batch_size=args.batch_size,
                       shard_size=args.shard_size, shard=shard, resume=args.resume, force=args.force,
                       truncate=args.truncate)
    n_tok = sum(len(p["tokens"]) for p in index["prompts"].values())
    print(f"{args.out}: {len(index['prompts'])} prompts, {n_tok} tokens, {len(index['hooks'])} hooks, "
          f"{len(index['shards'])} shards")
