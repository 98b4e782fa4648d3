"""Linear probes: where a model represents a word property (Alain & Bengio, 2016, "Understanding
intermediate layers using linear classifier probes").

A probe is an L2-regularised logistic regression (plain torch, full-batch L-BFGS on standardised
features) fitted on a seeded, stratified split of labelled words; the headline number is the
held-out accuracy, next to chance (the majority label's share of the held-out words). Training
accuracy is reported too, but only to show over-fitting: with d_model features and tens of words
it is nearly always 1.

`probe_words` probes static vectors (W_E rows or W_U columns); `probe_residual` probes the
residual stream at the word's position in a context ("The {word}") after the embedding and
after every block, all on the same split: a table of layer -> held-out accuracy.
Its first row is the bridge's `hook_embed`, the row-centred embedding on LayerNorm models, so
it equals `probe_words(..., centre=True)`; on RMSNorm models both copies are the same.

Example:
    >>> import interp
    >>> from interp.embeddings import probe_residual
    >>> from interp.zoo.lexicon import gender_pairs
    >>> model = interp.load("zoo-4l")
    >>> pairs = gender_pairs("train")
    >>> groups = {"male": [m for m, _ in pairs], "female": [f for _, f in pairs]}
    >>> table = probe_residual(model, groups, seed=0)
    >>> table["hook"].tolist()[:2], len(table)
    (['hook_embed', 'blocks.0.hook_resid_post'], 5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from interp.embeddings.directions import Direction
from interp.embeddings.vectors import Space, vectors, word_token
from interp.errors import InterpError


@dataclass
class Probe:
    """A fitted probe: held-out accuracy is the headline; `heldout` lists each held-out word."""

    labels: tuple[str, ...]
    heldout_accuracy: float
    train_accuracy: float
    chance: float
    n_train: int
    n_test: int
    heldout: "pandas.DataFrame"
    direction: Direction | None = None  # binary probes: the weight vector as a Direction


def check_groups(groups: Mapping[str, Sequence[str]]) -> tuple[list[str], list[int], tuple[str, ...]]:
    """(words, label index per word, labels); each of at least two labels needs two or more words.

    Raises:
        InterpError: fewer than two labels, a label with fewer than two words, or a repeated word.
    """
    if not isinstance(groups, Mapping) or len(groups) < 2:
        raise InterpError("groups must map at least two labels to word lists, e.g. "
                          "{'male': ['king', 'man'], 'female': ['queen', 'woman']}")
    small = next((k for k, ws in groups.items() if isinstance(ws, str) or len(ws) < 2), None)
    if small is not None:
        raise InterpError(f"label {small!r} has fewer than 2 words: give each label a list of 2 or more words")
    words = [w for ws in groups.values() for w in ws]
    dup = next((w for w in words if words.count(w) > 1), None)
    if dup is not None:
        raise InterpError(f"word {dup!r} appears more than once in the groups: give each word one label")
    return words, [i for i, ws in enumerate(groups.values()) for _ in ws], tuple(groups)


def split(y, test_fraction: float, seed: int):
    """Stratified (train, test) index tensors: a seeded share of each label is held out.

    Raises:
        InterpError: test_fraction outside (0, 1).
    """
    import torch

    if not 0 < test_fraction < 1:
        raise InterpError(f"test_fraction {test_fraction!r} must be between 0 and 1, e.g. 0.3")
    g = torch.Generator().manual_seed(int(seed))
    train, test = [], []
    for label in y.unique().tolist():
        idx = (y == label).nonzero()[:, 0]
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = min(max(1, round(len(idx) * test_fraction)), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def given_split(names: list[str], y, heldout: Sequence[str]):
    """(train, test) index tensors with exactly the `heldout` words in test (e.g. whole word pairs).

    Raises:
        InterpError: a held-out word not among the words, or a label left without training words.
    """
    import torch

    missing = next((w for w in heldout if w not in names), None)
    if missing is not None:
        raise InterpError(f"held-out word {missing!r} is not one of the probed words: hold out words from the groups")
    test = torch.tensor(sorted(names.index(w) for w in set(heldout)), dtype=torch.long)
    train = torch.tensor([i for i in range(len(names)) if i not in set(test.tolist())], dtype=torch.long)
    if len(train) == 0 or len(test) == 0 or len(y[train].unique()) < len(y.unique()):
        raise InterpError("the held-out words leave a label with no training word (or nothing to test): "
                          "hold out fewer words")
    return train, test


def fit_logistic(X, y, n_classes: int, l2: float = 1e-2, steps: int = 100):
    """Fit softmax regression on standardised `X` [n d]; returns (W [d C], b [C]) in X's units."""
    import torch

    X = X.detach().double()
    mean, std = X.mean(0), X.std(0).clamp_min(1e-8) if len(X) > 1 else torch.ones(X.shape[1])
    Z = (X - mean) / std
    W = torch.zeros(X.shape[1], n_classes, dtype=torch.double, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Z @ W + b, y) + l2 * (W ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    W_raw = (W / std[:, None]).detach()
    return W_raw, (b - mean @ W_raw).detach()


def fit_probe(X, y, labels: tuple[str, ...], names: list[str], test_fraction: float = 0.3, seed: int = 0,
              l2: float = 1e-2, space: str = "embed", heldout: Sequence[str] | None = None) -> Probe:
    """Tensor core: fit on a seeded split of `X` [n d] with labels `y` [n] (or on every row but the
    `heldout` names), score held-out rows."""
    import pandas as pd

    train, test = split(y, test_fraction, seed) if heldout is None else given_split(names, y, heldout)
    W, b = fit_logistic(X[train], y[train], len(labels), l2)
    pred = (X.double() @ W + b).argmax(-1)
    correct = pred == y
    counts = y[test].bincount(minlength=len(labels))
    heldout = pd.DataFrame({"word": [names[i] for i in test.tolist()],
                            "label": [labels[i] for i in y[test].tolist()],
                            "predicted": [labels[i] for i in pred[test].tolist()]})
    return Probe(labels, correct[test].double().mean().item(), correct[train].double().mean().item(),
                 counts.max().item() / len(test), len(train), len(test), heldout,
                 _as_direction(W, b, labels, space) if len(labels) == 2 else None)


def _as_direction(W, b, labels, space) -> Direction:
    """Binary probe as a Direction: x @ w + c > 0 <=> projection on unit(w) > -c / |w|."""
    w, c = W[:, 1] - W[:, 0], (b[1] - b[0]).item()
    norm = w.norm().clamp_min(1e-12)
    return Direction((w / norm).float(), -c / norm.item(), tuple(labels), space)


def probe_words(model, groups: Mapping[str, Sequence[str]], space: Space = "embed", test_fraction: float = 0.3,
                seed: int = 0, l2: float = 1e-2, allow_untrained: bool = False, centre: bool = False,
                heldout: Sequence[str] | None = None) -> Probe:
    """Probe labelled single-token words' static vectors (W_E rows, or W_U columns).

    Args:
        groups: label -> words, e.g. {"male": ["king", ...], "female": ["queen", ...]}.
        test_fraction: share of each label's words held out; `seed` fixes which.
        l2: weight penalty on standardised features.
        centre: probe the row-centred input embedding (`interp.embeddings.vectors`).
        heldout: words to hold out (all others train), instead of a seeded split, e.g. whole pairs.
    """
    import torch

    words, y, labels = check_groups(groups)
    E = vectors(model, space, allow_untrained, centre)
    X = E[[word_token(model, w) for w in words]].float()
    return fit_probe(X, torch.tensor(y), labels, words, test_fraction, seed, l2, space, heldout)


def _contexts(model, words: list[str], template: str) -> tuple[list[str], list[int]]:
    """Prompts with each word filled in, and the word's token position in each."""
    if not isinstance(template, str) or template.count("{word}") != 1:
        raise InterpError(f"template {template!r} must contain '{{word}}' exactly once, e.g. 'The {{word}}'")
    from interp.activations import to_tokens

    prompts = [template.replace("{word}", w) for w in words]
    tokens, _ = to_tokens(model, prompts)
    positions = []
    for w, row, p in zip(words, tokens, prompts):
        hits = (row == word_token(model, w)).nonzero()[:, 0]
        if not len(hits):
            raise InterpError(f"{w!r} is not a token of {p!r}: put {{word}} where a whole word stands")
        positions.append(int(hits[0]))
    return prompts, positions


def probe_residual(model, groups: Mapping[str, Sequence[str]], template: str = "The {word}",
                   test_fraction: float = 0.3, seed: int = 0, l2: float = 1e-2,
                   heldout: Sequence[str] | None = None) -> "pandas.DataFrame":
    """Held-out probe accuracy at the word's position after the embedding and after each block.

    `heldout` names the words to hold out (e.g. both words of some pairs) instead of a seeded split.

    Returns:
        DataFrame with columns hook, layer (NA for hook_embed), heldout_accuracy, train_accuracy,
        chance, n_train, n_test; one row per hook point, in forward order.
    """
    import pandas as pd
    import torch

    from interp.activations import capture

    words, y, labels = check_groups(groups)
    prompts, pos = _contexts(model, words, template)
    hooks = ["hook_embed"] + [f"blocks.{L}.hook_resid_post" for L in range(model.cfg.n_layers)]
    acts = capture(model, prompts, names=hooks)
    y, rows, idx = torch.tensor(y), [], torch.arange(len(words))
    for layer, hook in enumerate(hooks, -1):
        X = acts[hook][idx, torch.tensor(pos)].float().cpu()
        p = fit_probe(X, y, labels, words, test_fraction, seed, l2, heldout=heldout)
        rows.append({"hook": hook, "layer": None if layer < 0 else layer, "heldout_accuracy": p.heldout_accuracy,
                     "train_accuracy": p.train_accuracy, "chance": p.chance, "n_train": p.n_train, "n_test": p.n_test})
    table = pd.DataFrame(rows)
    table["layer"] = table["layer"].astype("Int64")
    return table
