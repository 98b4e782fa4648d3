"""`interp analogy`, `neighbors`, `direction`, `analogies`: the embedding-space analyses."""

import argparse

from interp.commands.common import add_format_arg, add_model_args, emit, load_model
from interp.paths import path_arg

EXAMPLES = {
    "analogy": "example:\n  interp analogy king man woman --model zoo-4l --k 5   # king - man + woman",
    "neighbors": "example:\n  interp neighbors king --model zoo-4l --k 10\n"
                 "  interp neighbors paris --model all-MiniLM-L6-v2",
    "direction": "example:\n  interp direction --pairs pairs.txt --model zoo-4l --project prince,princess,monk,nun\n"
                 "  interp direction --pairs pairs.txt --model zoo-4l --layers   # where is the difference represented?\n"
                 "pairs.txt holds one 'male female' pair a line, e.g. 'king queen'; # starts a comment",
    "analogies": "example:\n  interp analogies questions.txt --model zoo-4l\n"
                 "  interp analogies questions-words --model all-MiniLM-L6-v2   # gensim's standard file",
}


def _parser(sub, name: str, help_: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--space", choices=["embed", "unembed"], default="embed",
                   help="input embedding W_E (default) or unembedding W_U")
    p.add_argument("--allow-untrained", action="store_true", help="run --space unembed on an untrained unembedding")
    add_format_arg(p)
    return p


def register(sub) -> None:
    p = _parser(sub, "analogy", "words closest to a - b + c in embedding space")
    p.add_argument("words", nargs=3, metavar="WORD", help="a b c, read a - b + c")
    p.add_argument("--k", type=int, default=5, help="how many answers (default 5)")
    p.set_defaults(run=run_analogy)
    p = _parser(sub, "neighbors", "nearest word tokens by cosine")
    p.add_argument("word", help="a single-token word")
    p.add_argument("--k", type=int, default=10, help="how many neighbours (default 10)")
    p.set_defaults(run=run_neighbors)
    p = _parser(sub, "direction", "diff-of-means direction from word pairs, and projections on it")
    p.add_argument("--pairs", required=True, type=path_arg(), help="file with one 'first second' word pair a line")
    p.add_argument("--project", default=None, help="comma-separated words to project onto the direction (csv/json: print only these)")
    p.add_argument("--labels", default="first,second", help="names of the two sides (default first,second)")
    p.add_argument("--layers", action="store_true", help="also probe the residual stream after the embedding and "
                   "every block for first-vs-second words (held-out accuracy per layer; csv/json: only this table)")
    p.add_argument("--template", default="The {word}", help="context for --layers (default 'The {word}')")
    p.set_defaults(run=run_direction)
    p = _parser(sub, "analogies", "accuracy on a questions-words analogy file, per section")
    p.add_argument("file", help="analogy file (': section' lines, then 'a b c d' lines), "
                                "or 'questions-words' for the standard file shipped by gensim")
    p.add_argument("--show-skipped", action="store_true", help="also list the skipped questions (csv/json: list them instead)")
    p.set_defaults(run=run_analogies)


def run_analogy(args) -> None:
    from interp.embeddings import analogy

    model = load_model(args)
    a, b, c = args.words
    df = analogy(model, a, b, c, k=args.k, space=args.space, allow_untrained=args.allow_untrained)
    emit(df, args.format, title=f"{a} - {b} + {c} ({model.info.name}, {args.space}):")


def run_neighbors(args) -> None:
    from interp.embeddings import neighbors

    model = load_model(args)
    df = neighbors(model, args.word, k=args.k, space=args.space, allow_untrained=args.allow_untrained)
    emit(df, args.format, title=f"nearest to {args.word!r} ({model.info.name}, {args.space}):")


def parse_pairs(text: str, source: str) -> list[tuple[str, str]]:
    """Word pairs of a pairs file: two words a line; blank lines and # comments are skipped."""
    from interp.errors import InterpError

    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) != 2:
            raise InterpError(f"{source} line {n} has {len(words)} words ({line[:60]!r}): "
                              "write one pair a line, e.g. 'king queen'")
        pairs.append((words[0], words[1]))
    if not pairs:
        raise InterpError(f"{source} has no word pairs: write one pair a line, e.g. 'king queen'")
    return pairs


def _split_words(value: str, what: str) -> list[str]:
    from interp.errors import InterpError

    words = [w.strip() for w in value.split(",") if w.strip()]
    if not words:
        raise InterpError(f"{what} {value!r} has no words: give comma-separated words, e.g. king,queen")
    return words


def run_direction(args) -> None:
    from interp.embeddings import pair_direction, project
    from interp.embeddings.analogies import read_text
    from interp.errors import InterpError

    pairs = parse_pairs(read_text(args.pairs, "pairs file"), f"pairs file {args.pairs!r}")
    labels = _split_words(args.labels, "--labels")
    if len(labels) != 2:
        raise InterpError(f"--labels {args.labels!r} must name two sides, e.g. male,female")
    words = _split_words(args.project, "--project") if args.project is not None else None
    model = load_model(args)
    d = pair_direction(model, pairs, space=args.space, labels=tuple(labels), allow_untrained=args.allow_untrained)
    projections = project(model, words, d, allow_untrained=args.allow_untrained) if words else None
    layers = _layer_probe(model, pairs, labels, args.template) if args.layers else None
    if args.format != "table":  # one table per run in csv/json: the layer probe or projections when asked for
        emit(next(t for t in (layers, projections, d.pairs) if t is not None), args.format)
        return
    emit(d.pairs, "table", title=f"{len(pairs)} pairs, consistency (mean leave-one-out cosine) "
                                 f"{d.consistency:.3f}, threshold {d.threshold:.4f}:")
    if projections is not None:
        print()
        emit(projections, "table", title="projections:")
    if layers is not None:
        print()
        emit(layers, "table", title=f"linear probe {labels[0]} vs {labels[1]} on {args.template!r} "
                                    "(seed 0, 30% of each side held out):")


def _layer_probe(model, pairs, labels, template):
    from interp.embeddings import probe_residual

    groups = {labels[0]: [a for a, _ in pairs], labels[1]: [b for _, b in pairs]}
    return probe_residual(model, groups, template=template, seed=0)


def run_analogies(args) -> None:
    from interp.embeddings import evaluate_analogies, questions_words_path, read_questions

    path = questions_words_path() if args.file == "questions-words" else args.file
    questions = read_questions(path)
    model = load_model(args)
    scores = evaluate_analogies(model, questions, space=args.space, allow_untrained=args.allow_untrained)
    skipped = scores.skipped[["section", "line", "a", "b", "c", "expected", "skipped"]]
    if args.format != "table":  # one table per run in csv/json: the skipped questions when asked for
        emit(skipped if args.show_skipped else scores.sections, args.format)
        return
    overall = scores.sections.iloc[-1]
    emit(scores.sections, "table", title=f"{model.info.name} on {path}: {overall.n_correct}/"
                                         f"{overall.n_evaluated} correct, {overall.n_skipped} skipped")
    if args.show_skipped and len(skipped):
        print()
        emit(skipped, "table", title="skipped questions:")
    elif len(skipped):
        words = sorted(set(scores.skipped["skipped"].str.split(" ", n=1).str[0]))
        print(f"skipped words ({len(words)}): {', '.join(words[:20])}{' ...' if len(words) > 20 else ''}"
              " (--show-skipped lists the questions)")
