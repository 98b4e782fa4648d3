"""Activation patching and attribution patching: which activations carry the difference between
a clean and a corrupted prompt.

Two directions, named as in Heimersheim & Nanda (2024, "How to use and interpret activation
patching"):
- **denoising**: run the corrupted prompt and put one clean activation in. A high score means
  the activation is *sufficient* to restore the clean behaviour.
- **noising**: run the clean prompt and put one corrupted activation in. A large drop means
  the activation is *necessary*.

Each row reports the metric on the unpatched clean and corrupted runs, on the patched run, and
normalised = (patched - corrupted) / (clean - corrupted): 1 means the patched run behaves like
the clean one, 0 like the corrupted one, in either direction (means over prompts first).

Targets (`what`): the residual stream (`resid_pre`, `resid_post`), each layer's attention and
MLP output (`attn_out`, `mlp_out`), per layer x position (or all positions at once); per head:
the output z (`heads`), the queries, keys and values (`q`, `k`, `v`) and the attention pattern
(`pattern`, patched per query position with `by_position`), at all positions or per position.
Keys and values are patched per key/value head: on a grouped-query model (SmolLM2: 9 query
heads share 3 kv heads) a `k`/`v` row's `head` is the kv head and `query_heads` names the
query heads that read it. Rotary models patch `hook_q`/`hook_k` before rotation, which the
bridge then rotates (tests/test_patching.py checks the edit reaches the output against plain
Hugging Face). The OPT and GPT-J bridges copy the pattern out of Hugging Face's attention, so an
edited `hook_pattern` changes nothing: `pattern` is refused there (`facts(model).pattern_editable`).

Engines. TransformerLens' `patching.get_act_patch_*` is right on the bridge (its per-head
output numbers equal ours to the bit on smollm2-135m) but runs one full bridge forward per
cell, patches only from a clean cache into a corrupted run, and reads a scalar metric. Here
one base forward records what every decoder block received (`interp.blocks.record_inputs`);
the cells of layer l then replay only blocks l..L-1, with the patching hook attached and the
patched copies stacked along the batch (up to ~512 tokens a replay), and read the metric at
the last position only, per prompt; both directions share one code path. Per-head outputs use
`interp.sweep.fast_sweep`, the downstream-only head engine (README, "Patching", has timings).

Attribution patching (Nanda 2023, "Attribution patching"; Syed et al. 2023) is the first-order
estimate: noising: metric(clean) + (corrupted act - clean act) . d metric / d act at the clean
run; denoising mirrors it at the corrupted run. One forward and one backward for every cell of
every target. It is a linear approximation: trust it for ranking and confirm what matters with
activation patching (README, "Patching", gives its correlation on IOI).

Example:
    >>> import interp
    >>> from interp.patching import activation_patch
    >>> model = interp.load("zoo-2l")
    >>> clean = ["When Mary and John went to the store, John gave a drink to"]
    >>> corrupt = ["When Alice and Bob went to the store, Bob gave a drink to"]
    >>> heads = activation_patch(model, clean, corrupt, " Mary", " John", what="heads", direction="noising")
    >>> len(heads), list(heads.columns[:3])
    (8, ['component', 'layer', 'head'])
    >>> resid = activation_patch(model, clean, corrupt, " Mary", " John", what="resid_pre")
    >>> len(resid) == model.cfg.n_layers * model.to_tokens(clean).shape[1]  # layer x position
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from interp.errors import InterpError, model_name
from interp.progress import bar

What = Literal["heads", "resid_pre", "resid_post", "attn_out", "mlp_out", "q", "k", "v", "pattern"]
Direction = Literal["denoising", "noising"]
Method = Literal["activation", "attribution"]
WHATS = ("heads", "resid_pre", "resid_post", "attn_out", "mlp_out", "q", "k", "v", "pattern")
DIRECTIONS = ("denoising", "noising")
METHODS = ("activation", "attribution")
_RESID = ("resid_pre", "resid_post", "attn_out", "mlp_out")
_TOKENS_PER_FORWARD = 512  # stacked patched copies per forward, in tokens (bounds the logits' memory)


@dataclass
class Pair:
    """Clean and corrupted prompts, tokenised: right-padded ids [batch pos], each prompt's last
    real position [batch], the string tokens of the clean prompts, and the metric."""

    clean: Tensor
    corrupted: Tensor
    last: Tensor
    strs: list
    metric: object

    def shared_prefix(self) -> int:
        """How many leading positions every clean prompt shares with its corruption. A causal
        model's activations there are the same in both runs, so patching them changes nothing."""
        differs = (self.clean != self.corrupted).any(0).nonzero()
        return int(differs[0]) if len(differs) else self.clean.shape[1]

    def replay_start(self) -> int:
        """The first position a replay must recompute: the shared prefix when the metric reads
        each prompt's last position and every last position lies after it, else 0."""
        start = self.shared_prefix()
        return start if self.metric.last_only and 0 < start <= int(self.last.min()) else 0

    def base_source(self, direction: Direction) -> tuple[Tensor, Tensor]:
        """(tokens that run, tokens whose activations go in) for `direction`."""
        return (self.corrupted, self.clean) if direction == "denoising" else (self.clean, self.corrupted)


# ---------------------------------------------------------------------------------------------
# Inputs


def prepare(model, clean, corrupted, target, foil=None, metric=None) -> Pair:
    """Tokenise the pairs and build the metric (logit diff of target - foil, or log p(target)).

    Raises:
        InterpError: unequal numbers of prompts, or a pair of unequal token lengths.
    """
    from interp.activations import to_tokens
    from interp.sweep import logit_diff, logprob

    clean, corrupted = _as_list(clean), _as_list(corrupted)
    if len(clean) != len(corrupted):
        raise InterpError(f"{len(clean)} clean prompts but {len(corrupted)} corrupted ones; give one corrupted "
                          "prompt per clean prompt")
    ct, cs = to_tokens(model, clean)
    xt, xs = to_tokens(model, corrupted)
    for i, (a, b) in enumerate(zip(cs, xs)):
        if len(a) != len(b):
            raise InterpError(f"pair {i}: the clean prompt is {len(a)} tokens and the corrupted one {len(b)}; "
                              "patching needs equal token lengths, pairwise (pick names of one token each)")
    if metric is None and target is None:
        raise InterpError("no target token: give target (and a foil for a logit difference) or a metric")
    if metric is None:
        metric = logit_diff(model, target, foil, len(clean)) if foil is not None else logprob(model, target, len(clean))
    last = torch.tensor([len(s) - 1 for s in cs], device=ct.device)
    return Pair(ct, xt, last, cs, metric)


def _as_list(prompts) -> list:
    return [prompts] if isinstance(prompts, str) else list(prompts)


def check_target(model, what: str, direction: str, method: str = "activation") -> None:
    """Raise one line for an unknown target, direction or method, or a pattern the bridge ignores."""
    from interp.arch import facts
    from interp.errors import closest

    for value, name, choices in ((what, "target", WHATS), (direction, "direction", DIRECTIONS),
                                 (method, "method", METHODS)):
        if value not in choices:
            raise InterpError(f"unknown patching {name} {value!r}{closest(str(value), choices)}; "
                              f"choose one of {', '.join(choices)}")
    if what == "pattern" and not facts(model).pattern_editable:
        raise InterpError(f"{model_name(model)} ({facts(model).family}) copies its attention pattern out of Hugging "
                          "Face's attention, so an edited hook_pattern never reaches the output; patch q, k, v "
                          "or heads instead")


# ---------------------------------------------------------------------------------------------
# Cells: what one patch replaces


def hook_name(what: str, layer: int) -> str:
    if what in _RESID:
        return f"blocks.{layer}.hook_{what}"
    return f"blocks.{layer}.attn.hook_{'z' if what == 'heads' else what}"


def n_heads_of(model, what: str) -> int:
    """Heads a target has per layer: kv heads for k and v, query heads otherwise."""
    from interp.arch import facts

    return facts(model).n_kv_heads if what in ("k", "v") else model.cfg.n_heads


def cells(model, what: str, n_pos: int, by_position: bool) -> list[tuple[int, int | None, int | None]]:
    """(layer, head or None, pos or None) of every patch, layer-major."""
    layers = range(model.cfg.n_layers)
    positions = list(range(n_pos)) if by_position else [None]
    if what in _RESID:
        return [(l, None, p) for l in layers for p in positions]
    return [(l, h, p) for l in layers for h in range(n_heads_of(model, what)) for p in positions]


def index(what: str, head: int | None, pos: int | None) -> tuple:
    """Index into an activation after its batch axis: resid [pos d_model], q/k/v/z
    [pos head d_head], pattern [head query key] (a pattern's pos is the query)."""
    every = slice(None)
    if what in _RESID:
        return () if pos is None else (pos,)
    if what == "pattern":
        return (head,) if pos is None else (head, pos)
    return (every, head) if pos is None else (pos, head)


def cache(model, tokens: Tensor, names: Sequence[str]) -> dict:
    """The activations `names` of one forward [batch ...], and the logits under "logits"."""
    wanted = set(names)
    missing = wanted - set(model.hook_dict)
    if missing:
        raise InterpError(f"{model_name(model)} has no hook point {min(missing)}; this target does not "
                          "exist on its architecture")
    with torch.no_grad():
        logits, acts = model.run_with_cache(tokens, names_filter=lambda n: n in wanted)
    return {**{n: acts[n] for n in names}, "logits": logits}


def read(metric, logits: Tensor, tokens: Tensor, last: Tensor, n_prompts: int) -> Tensor:
    """The metric per row of logits stacked as copies of the prompts [n_copies * batch]."""
    copies = len(logits) // n_prompts
    last_all, tokens_all = last.repeat(copies), tokens.repeat(copies, 1)
    if metric.last_only:
        rows = torch.arange(len(logits), device=logits.device)
        return metric.at_last(logits[rows, last_all], rows % n_prompts)
    return metric(logits, tokens_all, last_all)


# ---------------------------------------------------------------------------------------------
# Activation patching


def patch_cells(model, base: Tensor, source: dict, pair: Pair, what: str, todo: list) -> Tensor:
    """The metric [cell batch] with each cell's slice of the base run replaced by the source
    run's. Downstream only: one base forward records every block's inputs (`interp.blocks`), then
    the cells of layer l run blocks l..L-1 only, copies stacked along the batch, with the hooks
    that patch them attached."""
    from interp.blocks import record_inputs

    B = base.shape[0]
    per = max(1, _TOKENS_PER_FORWARD // base.numel())
    inputs, _, logits = record_inputs(model, base)
    check_replay(model, inputs, pair, base, logits)
    out = torch.empty(len(todo), B)
    chunks = [(l, [i for i, c in enumerate(todo) if c[0] == l]) for l in range(model.cfg.n_layers)]
    with bar(len(todo), f"patching {what}", unit="patch") as progress, torch.no_grad():
        for l, rows in chunks:
            for start in range(0, len(rows), per):
                chunk = rows[start:start + per]
                items = [(i, index(what, *todo[j][1:])) for i, j in enumerate(chunk)]
                with model.hooks(fwd_hooks=[(hook_name(what, l), _setter(items, source[hook_name(what, l)], B))]):
                    out[chunk] = downstream(model, inputs, l, len(chunk), base, pair).reshape(len(chunk), B).cpu()
                progress.update(len(chunk))
    return out


def downstream(model, inputs, layer: int, n: int, base: Tensor, pair: Pair, start: int = 0) -> Tensor:
    """Metric [n * batch] of n stacked copies of the base run, replaying blocks layer..L-1.
    With start > 0 (a last-position metric), `inputs` are cut to positions start.. and the
    caller supplies the keys and values of earlier positions (`interp.blocks.record_tails`,
    `interp.kv.attending`)."""
    from interp.blocks import final_logits, hidden, run_blocks

    x0 = hidden(*inputs[layer])
    x = run_blocks(model, inputs, layer, x0.repeat(n, 1, 1), n, base.shape[0])
    if pair.metric.last_only:  # the final norm and unembedding at the last positions only
        rows = torch.arange(len(x), device=x.device)
        return pair.metric.at_last(final_logits(model, x[rows, (pair.last - start).repeat(n)]), rows % base.shape[0])
    return read(pair.metric, final_logits(model, x), base, pair.last, base.shape[0])


def check_replay(model, inputs, pair: Pair, base: Tensor, logits: Tensor) -> None:
    """Replaying the last block must give the bridge's own metric (a guard against a block whose
    recorded inputs do not suffice)."""
    with torch.no_grad():
        want = read(pair.metric, logits, base, pair.last, base.shape[0])
        got = downstream(model, inputs, model.cfg.n_layers - 1, 1, base, pair)
    err = (want - got).abs().max().item()
    if not err <= 1e-3 * max(1.0, want.abs().max().item()):
        raise RuntimeError(f"replaying the last block disagrees with the bridge by {err:.2g}; report this as a bug")


def _setter(items: list, src: Tensor, n_prompts: int):
    """Hook: in copy i of the stacked batch, the slice `idx` takes the source run's value."""

    def hook(act, hook=None):
        act = act.clone()
        for i, idx in items:
            rows = slice(i * n_prompts, (i + 1) * n_prompts)
            act[(rows, *idx)] = src[(slice(None), *idx)].to(act.dtype)
        return act

    return hook


def _head_sweep(model, base: Tensor, source_z: Tensor, pair: Pair, todo: list) -> Tensor:
    """Per-head outputs through `interp.sweep.fast_sweep` (downstream-only), one sweep per position.
    A head patched at every position is patched from the first position where the pair differs
    on (the same result: before it the two runs agree), so the earlier positions are never
    recomputed (`interp.blocks.block_sweep`'s prefix replay)."""
    from interp.sweep import fast_sweep

    lengths = (pair.last + 1).tolist()
    first, n_pos = pair.shared_prefix(), base.shape[1]
    every = list(range(first, n_pos)) if 0 < first < n_pos else None
    out = {}
    for p in sorted({c[2] for c in todo}, key=lambda p: -1 if p is None else p):
        _, values = fast_sweep(model, base, source_z, pair.metric, lengths, every if p is None else [p])
        for l in range(values.shape[0]):
            for h in range(values.shape[1]):
                out[(l, h, p)] = values[l, h]
    return torch.stack([out[c] for c in todo])


def _use_fast(model) -> bool:
    from interp.engine import hooked
    from interp.sweep import supports_fast

    return supports_fast(model) and not hooked(model)


# ---------------------------------------------------------------------------------------------
# Attribution patching


def attribute_cells(model, base: Tensor, source: dict, pair: Pair, what: str, todo: list,
                    base_metric: Tensor) -> Tensor:
    """First-order estimate [cell batch] of each cell's patched metric: metric(base) +
    (source act - base act) . d metric / d act, the gradient taken at the base run."""
    names = sorted({hook_name(what, l) for l, _, _ in todo})
    grads, acts = gradients(model, base, pair, names)
    effect = {n: ((source[n] - acts[n]) * grads[n]).detach() for n in names}
    rows = []
    for l, h, p in todo:
        part = effect[hook_name(what, l)][(slice(None), *index(what, h, p))]
        rows.append(base_metric + part.reshape(part.shape[0], -1).sum(-1))
    return torch.stack(rows).cpu()


def gradients(model, tokens: Tensor, pair: Pair, names: Sequence[str]) -> tuple[dict, dict]:
    """d metric / d act and act for each hook point in `names`, at a run of `tokens`.

    A zero tensor is added at each hook point and differentiated (torch.autograd.grad), so the
    model's parameters get no .grad and the gradient flows through every path."""
    zeros, acts = {}, {}

    def adder(name):  # keyed by the name asked for (the bridge may call it by an alias)
        def add(act, hook=None):
            acts[name] = act.detach()
            zeros[name] = torch.zeros_like(act, requires_grad=True)
            return act + zeros[name]
        return add

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(n, adder(n)) for n in names])
        value = read(pair.metric, logits, tokens, pair.last, tokens.shape[0]).sum()
        got = torch.autograd.grad(value, [zeros[n] for n in names], allow_unused=True)
    return {n: (torch.zeros_like(acts[n]) if g is None else g) for n, g in zip(names, got)}, acts


# ---------------------------------------------------------------------------------------------
# Public entry point


def activation_patch(model, clean, corrupted, target=None, foil=None, what: What = "heads",
                     direction: Direction = "denoising", method: Method = "activation",
                     by_position: bool | None = None, metric=None):
    """Patch every layer (x head) (x position) of one target between clean and corrupted runs.

    Args:
        model: a model from `interp.load`.
        clean, corrupted: prompts, equal token lengths pairwise.
        target, foil: the metric is logit(target) - logit(foil) at the last position, or
            log p(target) without a foil. Or pass `metric` (an `interp.sweep.Metric`).
        what: one of WHATS (see the module docstring).
        direction: "denoising" (corrupted run, clean activation in) or "noising" (the reverse).
        method: "activation" (exact) or "attribution" (gradient estimate, one backward).
        by_position: one patch per position (default: yes for resid/attn_out/mlp_out, no for heads).

    Returns:
        DataFrame: component, layer, head, query_heads, pos, token, direction, method, clean,
        corrupted, patched, normalised (head, pos: <NA> where not applicable; pos <NA> means
        every position at once). Values are means over prompts.

    Raises:
        InterpError: a bad target/direction/method, unequal pairs, or `pattern` on a bridge
            whose pattern edits do not reach the output.
    """
    check_target(model, what, direction, method)
    pair = prepare(model, clean, corrupted, target, foil, metric)
    by_position = what in _RESID if by_position is None else by_position
    todo = cells(model, what, pair.clean.shape[1], by_position)
    names = sorted({hook_name(what, l) for l, _, _ in todo})
    base, _ = pair.base_source(direction)
    runs = {"clean": cache(model, pair.clean, names), "corrupted": cache(model, pair.corrupted, names)}
    ends = {k: read(pair.metric, r["logits"], getattr(pair, k), pair.last, len(pair.last)) for k, r in runs.items()}
    source = runs["clean" if direction == "denoising" else "corrupted"]
    if method == "attribution":
        base_metric = ends["corrupted" if direction == "denoising" else "clean"]
        values = attribute_cells(model, base, source, pair, what, todo, base_metric)
    elif what == "heads" and _use_fast(model):
        z = torch.stack([source[hook_name("heads", l)] for l in range(model.cfg.n_layers)])
        values = _head_sweep(model, base, z, pair, todo)
    else:
        values = patch_cells(model, base, source, pair, what, todo)
    return table(model, what, direction, method, todo, values, ends, pair.strs[0])


def table(model, what, direction, method, todo, values: Tensor, ends: dict, strs: list):
    """The tidy result table (one row per cell, means over prompts)."""
    import pandas as pd

    from interp.arch import facts

    f = facts(model)
    clean, corrupted = ends["clean"].mean().item(), ends["corrupted"].mean().item()
    patched = values.mean(-1).tolist()
    group = f.n_heads // f.n_kv_heads
    rows = [{"component": what, "layer": l, "head": h,
             "query_heads": None if h is None else (f"{h * group}-{h * group + group - 1}" if what in ("k", "v")
                                                    and group > 1 else str(h)),
             "pos": p, "token": None if p is None or p >= len(strs) else strs[p], "direction": direction,
             "method": method, "clean": clean, "corrupted": corrupted, "patched": v}
            for (l, h, p), v in zip(todo, patched)]
    df = pd.DataFrame(rows)
    for col in ("head", "pos"):
        df[col] = df[col].astype("Int64")
    gap = clean - corrupted
    df["normalised"] = (df["patched"] - corrupted) / gap if gap != 0 else float("nan")
    return df
