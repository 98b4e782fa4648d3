"""`interp attribute` (direct logit attribution) and `interp lens` (the logit lens)."""

import argparse

ATTRIBUTE_EXAMPLE = """examples:
  interp attribute --model zoo-4l --prompt "When Mary and John went to the store, John gave a drink to" \\
      --target Mary --foil John --top 10
  interp attribute --prompt "The king said that" --target he --neurons 3 --top 5

A target or foil is one token: "Mary" and " Mary" both mean the token " Mary" (a word after a
space); a word without a single spaced token is used as given."""

LENS_EXAMPLE = """example:
  interp lens --model zoo-4l --prompt "When Mary and John went to the store, John gave a drink to" \\
      --target Mary --k 3"""


def register(sub) -> None:
    p = sub.add_parser("attribute", help="direct logit attribution of every head, MLP and embedding",
                       epilog=ATTRIBUTE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p, target_required=True)
    p.add_argument("--foil", "-f", default=None, help="token to subtract: attribute logit(target) - logit(foil)")
    p.add_argument("--neurons", type=int, default=None, metavar="LAYER",
                   help="split this layer's MLP into one row per neuron (plus its bias)")
    p.add_argument("--top", type=int, default=None, metavar="K",
                   help="show only the K components with the largest |value| (default: all, in model order)")
    p.set_defaults(run=run_attribute)
    q = sub.add_parser("lens", help="logit lens: top tokens read from the residual stream after each layer",
                       epilog=LENS_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(q, target_required=False)
    q.add_argument("--k", type=int, default=5, help="top tokens per layer (default: 5)")
    q.set_defaults(run=run_lens)


def add_common(p, target_required: bool) -> None:
    from interp.commands.common import add_format_arg, add_model_args

    add_model_args(p, prompt=True)
    p.add_argument("--target", "-t", required=target_required,
                   help="one token, e.g. Mary (= ' Mary')" + ("" if target_required else ": follow its rank"))
    p.add_argument("--pos", type=int, default=-1, help="position to read (default: -1, the last token)")
    p.add_argument("--allow-untrained", action="store_true",
                   help="run even though the model's unembedding was not in its checkpoint")
    add_format_arg(p)


def _header(model, args, tokens) -> None:
    from interp.tokens import token_id, token_text

    print(f"{model.info.name}: tokens {tokens}")
    for what in ("target", "foil"):
        value = getattr(args, what, None)
        if value is not None:
            i = token_id(model, value, what)
            print(f"  {what} {value!r} -> token {token_text(model.tokenizer, i)!r} (id {i})")


def run_attribute(args) -> None:
    from interp.attribution import attribute, attribution_totals
    from interp.commands.common import emit, load_model
    from interp.errors import InterpError

    if args.top is not None and args.top < 1:
        raise InterpError(f"--top {args.top} must be at least 1")
    model = load_model(args)
    df = attribute(model, args.prompt, args.target, args.foil, pos=args.pos, neurons=args.neurons,
                   allow_untrained=args.allow_untrained)
    totals = attribution_totals(df)
    shown = df.drop(columns="prompt")
    if args.top is not None:
        shown = shown.reindex(shown["value"].abs().sort_values(ascending=False).index).head(args.top)
    if args.format == "table":
        _print_context(model, args, df)
        what = "logit(target) - logit(foil)" if args.foil else "logit(target)"
        print(f"  {what} = {totals['model'][0]:.4f}; sum of the {len(df)} parts = {totals['total'][0]:.4f}\n")
    emit(shown, args.format)


def _print_context(model, args, df) -> None:
    from interp.activations import to_tokens

    _, tokens = to_tokens(model, args.prompt)
    _header(model, args, tokens[0])
    print(f"  position {df.attrs['positions'][0]} ({df.attrs['position_tokens'][0]!r})")


def run_lens(args) -> None:
    from interp.activations import to_tokens
    from interp.attribution import logit_lens
    from interp.commands.common import emit, load_model

    model = load_model(args)
    df = logit_lens(model, args.prompt, target=args.target, k=args.k, pos=args.pos,
                    allow_untrained=args.allow_untrained)
    if args.format == "table":
        _, tokens = to_tokens(model, args.prompt)
        _header(model, args, tokens[0])
        print("  layer 0 = embeddings, layer L+1 = after block L; ranks start at 1\n")
    emit(df.drop(columns="prompt"), args.format)
