"""`interp inspect`: a model's facts, the tokens of a prompt, and every hook point with its shape."""

import argparse

from interp.commands.common import add_format_arg, add_model_args, emit, load_model

EXAMPLE = 'example:\n  interp inspect --model zoo-4l --prompt "When Mary and John went to the store,"'


def register(sub) -> None:
    p = sub.add_parser("inspect", help="hook points and shapes for a prompt", epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--prompt", "-p", default="The cat sat on the mat.", help="prompt whose shapes to show")
    add_format_arg(p)
    p.set_defaults(run=run)


def run(args) -> None:
    from interp.activations import hook_points, to_tokens

    model = load_model(args)
    _, tokens = to_tokens(model, args.prompt)
    df = hook_points(model, args.prompt)
    if args.format == "table":
        info = model.info
        print(f"{info.name} ({info.source}: {info.path})")
        print(f"  weights: {info.weights or 'unknown'}")
        print(f"  {info.n_layers} layers, {info.n_heads} heads, d_model {info.d_model}, d_vocab {info.d_vocab}, "
              f"n_ctx {info.n_ctx}, prepends BOS: {info.prepends_bos}, trained: {info.trained}")
        if info.placement:
            print(f"  offloaded: {info.placement}")
        if not info.trained:
            print(f"  untrained (not in checkpoint): {', '.join(info.untrained_parts)}")
        print(f"  tokens ({len(tokens[0])}): {tokens[0]}\n")
    emit(df, args.format, title=f"{len(df)} hook points")
