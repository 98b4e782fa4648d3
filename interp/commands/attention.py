"""`interp attention`: attention with and without the causal mask, head classes, mask removal."""

import argparse

from interp.commands.common import add_format_arg, add_model_args, emit, load_model
from interp.paths import path_arg

EXAMPLE = """examples:
  interp attention --model zoo-2l --prompt "When Mary and John went to the store, John gave a drink to"
  interp attention --model zoo-4l --prompt "The king said that he was tired." --layer 3 --head 1
  interp attention --model zoo-4l --prompt "The king said that he was tired." --remove-mask --format csv
  interp attention --model zoo-4l --prompt "The king said that he was tired." --out attention.html

--format csv|json prints one table: the loss table with --remove-mask, else the per-head table
(future mass, JS divergence and the four head-class scores)."""


def register(sub) -> None:
    p = sub.add_parser("attention", help="attention with and without the causal mask; head classes",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, prompt=True)
    p.add_argument("--layer", "-l", type=int, default=None, help="show only this layer")
    p.add_argument("--head", type=int, default=None, help="show only this head (with --layer: per-query rows)")
    p.add_argument("--remove-mask", action="store_true",
                   help="also run with the causal mask removed (each layer, and all) and report loss/accuracy")
    p.add_argument("--top", type=int, default=3, help="heads listed per class (default: 3)")
    p.add_argument("--out", "-o", default=None, type=path_arg(),
                   help="write an offline HTML page (every layer's and head's pattern) to this .html file")
    p.add_argument("--force", action="store_true", help="with --out: replace a file interp did not write")
    add_format_arg(p)
    p.set_defaults(run=run)


def run(args) -> None:
    from interp import attention as A
    from interp import heads as classes
    from interp.errors import InterpError

    if args.top < 1:
        raise InterpError(f"--top {args.top} must be at least 1")
    _check_out(args)
    model = load_model(args)
    if args.out:
        from interp.report import attention_page

        print(attention_page(model, args.prompt, args.out, args.layer, args.head, args.force))
        return
    pats = A.patterns(model, args.prompt)
    heads = A.head_table(pats, args.layer, args.head)
    scores = classes.head_scores(model)
    effect = A.mask_removal_effect(model, args.prompt) if args.remove_mask else None
    if args.format != "table":
        wide = scores.pivot(index=["layer", "head"], columns="kind", values="score").reset_index()
        emit(effect if effect is not None else heads.merge(wide, on=["layer", "head"]), args.format)
        return
    _print_text(args, model, pats, heads, scores, effect)


def _check_out(args) -> None:
    """--out writes a page: refuse the flags that only shape the terminal output, and a target that
    cannot be written, before the model loads."""
    from interp.errors import InterpError

    if not args.out:
        if args.force:
            raise InterpError("--force goes with --out (it replaces an existing page): add --out FILE.html or drop it")
        return
    for flag, given in (("--remove-mask", args.remove_mask), ("--format", args.format != "table"),
                        ("--top", args.top != 3)):
        if given:
            raise InterpError(f"{flag} shapes the terminal output, which --out does not print: drop {flag} or --out")
    from interp.report.write import check_page_target

    check_page_target(args.out, args.force)


def _print_text(args, model, pats, heads, scores, effect) -> None:
    from interp import attention as A
    from interp import heads as classes

    print(f"{model.info.name}: {len(pats.tokens)} tokens: {pats.tokens}")
    if not pats.causal:
        print(f"note: {model.info.name} is an encoder with no causal mask: masked and unmasked patterns are the "
              "same (JS 0); future_mass is the attention it pays to later tokens anyway")
    title = ("per head, mean over queries: future_mass = unmasked attention on later keys, "
             "js = Jensen-Shannon(masked, unmasked) in bits")
    emit(heads.round(4), "table", title=title)
    if args.layer is not None and args.head is not None:
        rows = A.query_table(pats, args.layer, args.head).drop(columns=["layer", "head"])
        print()
        emit(rows.round(4), "table", title=f"layer {args.layer} head {args.head}, per query")
    print()
    top = classes.top_heads(scores, args.top)
    emit(top.round(4), "table", title="top heads by class (on a random word sequence repeated once, seed 0)")
    if effect is not None:
        print()
        emit(effect.round(4), "table", title="next-token loss (nats) and accuracy with the causal mask removed")
