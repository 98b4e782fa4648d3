"""`interp sample`: next-token probabilities at a temperature, entropy, and seeded continuations."""

import argparse

from interp.commands.common import add_format_arg, add_model_args, emit, load_model

EXAMPLE = ('example:\n  interp sample --model zoo-4l --prompt "When Mary and John went to the store, John gave a drink to"'
           " --temperature 0.8 --n 3 --seed 0\n  (--temperature 0 is greedy; the same --seed gives the same text)")


def register(sub) -> None:
    p = sub.add_parser("sample", help="temperature, entropy and seeded sampling", epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, prompt=True)
    p.add_argument("--temperature", "-t", type=float, default=1.0, help="T >= 0; 0 = greedy (default 1)")
    p.add_argument("--n", type=int, default=3, help="number of continuations (default 3)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--max-new-tokens", type=int, default=20, help="tokens per continuation (default 20)")
    p.add_argument("--k", type=int, default=10, help="how many top next tokens to show (default 10)")
    p.add_argument("--allow-untrained", action="store_true", help="sample from an untrained unembedding")
    add_format_arg(p)
    p.set_defaults(run=run)


def run(args) -> None:
    from interp.sampling import check_counts, check_temperature, entropy_by_temperature, sample, top_tokens

    t = check_temperature(args.temperature)
    check_counts(args.n, args.max_new_tokens)
    model = load_model(args)
    top = top_tokens(model, args.prompt, t, args.k, args.allow_untrained)
    samples = sample(model, args.prompt, args.n, args.max_new_tokens, t, args.seed, args.allow_untrained)
    if args.format != "table":  # one table per run in csv/json: the continuations
        emit(samples, args.format)
        return
    temps = sorted({0.0, 0.5, 1.0, 2.0, t})
    entropy = entropy_by_temperature(model, args.prompt, temps, args.allow_untrained)
    emit(top, "table", title=f"next token after {args.prompt!r} at T={t:g} ({model.info.name}):")
    print()
    emit(entropy, "table", title="entropy of the next-token distribution:")
    print()
    emit(samples, "table", title=f"{args.n} samples (seed {args.seed}, T={t:g}):")
