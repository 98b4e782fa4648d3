"""`interp cache`: stream a text file or data set through a model into safetensors shards; `interp cache-merge`."""

import argparse

from interp.commands.common import add_model_args
from interp.paths import path_arg

EXAMPLE = """examples:
  interp cache --model zoo-4l --data prompts.txt --hooks 'blocks.*.hook_resid_post' --out acts/
  interp cache ... --out acts/ --resume            (continue after the last complete shard)
  interp cache ... --data corpus.parquet --text-column body --out acts/   (.arrow, datasets dirs too)
  interp cache ... --ray local --workers 2 --out acts/    (Ray tasks, one slice each, merged)
  interp cache ... --shard 0/4 --out acts-0/       (lines 0, 4, 8, ...: one task of a Slurm array)
  interp cache-merge acts-0 acts-1 acts-2 acts-3 --out acts/"""

MERGE_EXAMPLE = """example:
  interp cache-merge acts-0 acts-1 acts-2 acts-3 --out acts/
(the merged index points into the slice directories; no data is copied)"""


def register(sub) -> None:
    p = sub.add_parser("cache", help="stream a text file through a model; activations to safetensors shards",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--data", type=path_arg(), help="text file, one prompt per line; or .jsonl, .parquet, .arrow, "
                   "or a directory saved by datasets' save_to_disk (streamed)")
    p.add_argument("--text-field", "--text-column", dest="text_field", default="text", metavar="NAME",
                   help="the .jsonl field or table column holding the prompts (default: %(default)s)")
    p.add_argument("--hooks", default="blocks.*.hook_resid_post",
                   help="hook name, glob, or comma-separated names (default: %(default)s)")
    p.add_argument("--out", required=True, type=path_arg(), help="output directory")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per forward pass (default: 16)")
    p.add_argument("--shard-size", type=int, default=256, help="prompts per shard file (default: 256)")
    p.add_argument("--shard", default="0/1", help="process slice i of n: the lines numbered i mod n, e.g. 2/8")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--force", action="store_true", help="clear a non-empty --out (only files interp wrote)")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--truncate", action="store_true", help="cut prompts longer than the context")
    cut.add_argument("--max-tokens-per-prompt", type=int, metavar="N", help="cut every prompt to N tokens")
    p.add_argument("--merge", nargs="+", metavar="DIR", help="same as `interp cache-merge DIR... --out DIR`")
    p.add_argument("--dtype", default="float32", help="storage type: float32 (default), float16 or bfloat16 "
                   "(half the disk; the model still runs in float32)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--ray", metavar="ADDRESS", help="cache on Ray: 'local' starts a local cluster, else a "
                   "ray.init address ('auto', 'ray://host:10001'); data and --out on a shared file system")
    p.add_argument("--workers", type=int, help="with --ray: number of tasks, one slice each (default: 2)")
    p.set_defaults(run=run)
    m = sub.add_parser("cache-merge", help="join the indexes of cache slices into one (no data copied)",
                       epilog=MERGE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("dirs", nargs="+", metavar="DIR", help="cache directories (e.g. one per --shard slice)")
    m.add_argument("--out", required=True, type=path_arg(), help="directory for the merged index.json")
    m.set_defaults(run=run_merge)


def _hooks(text: str):
    return [h.strip() for h in text.split(",") if h.strip()] if "," in text else text


def run(args) -> None:
    from interp.cache import cache_file, parse_shard
    from interp.errors import InterpError

    if args.merge:
        args.dirs = args.merge
        return run_merge(args)
    if not args.data:
        raise InterpError("--data is required: give a text file with one prompt per line (or --merge DIR ...)")
    shard = parse_shard(args.shard)
    from interp.commands.common import load_model
    from interp.datasets_io import check_data

    check_data(args.data, args.text_field)  # before the model loads: a typo should fail fast
    if args.ray:
        return run_ray(args, shard)
    if args.workers is not None:
        raise InterpError("--workers needs --ray (local or a cluster address); without it one process caches")

    model = load_model(args)
    index = cache_file(model, args.data, _hooks(args.hooks), args.out, batch_size=args.batch_size,
                       shard_size=args.shard_size, shard=shard, resume=args.resume, force=args.force,
                       truncate=args.truncate, max_tokens=args.max_tokens_per_prompt,
                       progress=not args.no_progress, dtype=args.dtype, text_field=args.text_field)
    _summary(args.out, index)


def run_ray(args, shard) -> None:
    from interp.errors import InterpError
    from interp.models import default_model
    from interp.ray_cache import cache_on_ray

    if shard != (0, 1):
        raise InterpError("--ray makes its own slices (one per worker): drop --shard, or drop --ray")
    workers = 2 if args.workers is None else args.workers
    index = cache_on_ray(args.model or default_model(), args.data, _hooks(args.hooks), args.out,
                         workers=workers, address=args.ray, device=args.device, resume=args.resume,
                         force=args.force, batch_size=args.batch_size, shard_size=args.shard_size,
                         truncate=args.truncate, max_tokens=args.max_tokens_per_prompt, dtype=args.dtype,
                         text_field=args.text_field)
    _summary(args.out, index, f" from {workers} Ray workers")


def _summary(out, index, where: str = "") -> None:
    n_prompts = sum(len(s["lines"]) for s in index["shards"])
    n_tokens = sum(sum(s["lengths"]) for s in index["shards"])
    print(f"{out}: {n_prompts} prompts, {n_tokens} tokens, {len(index['hooks'])} hooks, "
          f"{len(index['shards'])} shards{where}")


def run_merge(args) -> None:
    from interp.cache import merge_caches

    index = merge_caches(args.dirs, args.out)
    n_prompts = sum(len(s["lines"]) for s in index["shards"])
    print(f"{args.out}: {n_prompts} prompts in {len(index['shards'])} shards from {len(args.dirs)} dirs")
