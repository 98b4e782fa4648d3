"""Activation, attribution and path patching, checked against plain Hugging Face hooks.

The references never go through the bridge: each is the same tiny random model (tests/archs.py)
loaded as a plain eager transformers model, with torch hooks written here that replace one slice
of one module's input or output by the other run's value:
- head outputs z: the attention output projection's input (archs.replace_heads);
- resid_pre / resid_post: the decoder layer's input / output at one position;
- attn_out / mlp_out: the attention module's / MLP's output at one position (Gemma's post-norms
  and GPT-2's centred weights act per position, so patching before them is the same patch);
- q / k / v: the head's slice of the q/k/v projection's output (before rotary and q/k norms,
  which also act per head and position); on grouped-query models k/v slices are kv heads.
Path patching is compared with a two-pass version written here with the same plain hooks.
"""

from __future__ import annotations

from contextlib import contextmanager

import archs
import pytest
import torch

PROMPT = "f ba cb dc ed fe gf hg"
CORRUPTED = "e hh gg ff ee dd cc bb"  # same token count
SHARED = "f ba cb dc ee dd cc bb"  # a corruption that keeps the first four words
TARGET, FOIL = "ab", "ca"
TOL = 2e-4
pytestmark = pytest.mark.usefixtures("one_thread")
MATRIX = ("gpt2", "llama", "neox", "gemma3", "opt")  # learned/rotary, GQA (llama 4:2, gemma3 4:1), parallel



class Twin:
    """A tiny random model as interp's bridge and as plain Hugging Face, with both prompts' ids."""

    def __init__(self, name, path):
        import interp

        self.name, self.path = name, path
        self.tok, self.hf = archs.load_tokenizer(path), archs.load_hf(path)
        self.model = interp.load(str(path))
        bos = self.model.info.prepends_bos
        self.clean, self.corrupted = archs.encode(self.tok, PROMPT, bos), archs.encode(self.tok, CORRUPTED, bos)
        self.ids = {CORRUPTED: self.corrupted, SHARED: archs.encode(self.tok, SHARED, bos)}
        vocab = self.tok.get_vocab()
        self.target, self.foil = vocab["Ġ" + TARGET], vocab["Ġ" + FOIL]

    def diff(self, ids) -> float:
        return archs.logit_diff(self.hf, ids, self.target, self.foil)


@pytest.fixture(scope="module", params=MATRIX, ids=MATRIX)
def twin(request, tmp_path_factory) -> Twin:
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return Twin(request.param, archs.build(request.param, tmp_path_factory.mktemp(request.param)))
    finally:
        transformers.logging.set_verbosity(verbosity)


# ---------------------------------------------------------------- plain HF hooks


def _replace_output(module, fn):
    """Forward hook: the module's (first) output x becomes fn(x)."""

    def hook(mod, args, out):
        if isinstance(out, tuple):
            return (fn(out[0]), *out[1:])
        return fn(out)

    return module.register_forward_hook(hook)


def _replace_input(module, fn):
    """Forward pre-hook: the module's hidden_states input x becomes fn(x)."""

    def pre(mod, args, kwargs):
        if args:
            return (fn(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": fn(kwargs["hidden_states"])}

    return module.register_forward_pre_hook(pre, with_kwargs=True)


def _record(module, store, key, pre=False):
    def keep(x):
        store[key] = x.detach().clone()
        return x

    return _replace_input(module, keep) if pre else _replace_output(module, keep)


def _mlp(hf, layer):
    block = archs.decoder_layers(hf)[layer]
    return block.mlp if hasattr(block, "mlp") else block.fc2  # OPT has no MLP module


def _site(hf, what, layer):
    """(module, is-input) where the HF twin of interp's `what` lives."""
    block = archs.decoder_layers(hf)[layer]
    return {"resid_pre": (block, True), "resid_post": (block, False), "attn_out": (archs.attention(hf, layer), False),
            "mlp_out": (_mlp(hf, layer), False)}[what]


def _projection(hf, layer, comp, head):
    """(module, column slice) of head `head`'s q, k or v in the projection's output."""
    attn, dh = archs.attention(hf, layer), archs.d_head(hf, layer)
    if hasattr(attn, "c_attn"):  # GPT-2: [q | k | v], each d_model wide
        off = "qkv".index(comp) * hf.config.hidden_size
        return attn.c_attn, slice(off + head * dh, off + (head + 1) * dh)
    if hasattr(attn, "query_key_value"):  # NeoX: per head [q k v]
        off = head * 3 * dh + "qkv".index(comp) * dh
        return attn.query_key_value, slice(off, off + dh)
    return getattr(attn, f"{comp}_proj"), slice(head * dh, (head + 1) * dh)


def _run(twin, ids, handles) -> float:
    with archs.hooks(*handles):
        return twin.diff(ids)


def _hf_patch(twin, what, layer, head, pos, base, src) -> float:
    """HF logit difference of `base` with one slice taken from the run of `src`."""
    hf, sl = twin.hf, slice(None) if pos is None else slice(pos, pos + 1)
    if what == "heads":
        z, dh = archs.head_z(hf, src)[layer], archs.d_head(hf, layer)
        with _z_patch(hf, layer, slice(head * dh, (head + 1) * dh), sl, z):
            return twin.diff(base)
    if what in ("q", "k", "v"):
        module, cols = _projection(hf, layer, what, head)
        store: dict = {}
        with archs.hooks(_record(module, store, "x")):
            twin.diff(src)
        return _run(twin, base, [_replace_output(module, _put(store["x"], sl, cols))])
    module, is_input = _site(hf, what, layer)
    store = {}
    with archs.hooks(_record(module, store, "x", pre=is_input)):
        twin.diff(src)
    make = _replace_input if is_input else _replace_output
    return _run(twin, base, [make(module, _put(store["x"], sl, slice(None)))])


@contextmanager
def _z_patch(hf, layer, cols, sl, z):
    """Head slice `cols` of the output projection's input at positions `sl` := z's."""

    def pre(module, args):
        x = args[0].clone()
        x[:, sl, cols] = z[:, sl, cols]
        return (x, *args[1:])

    with archs.hooks(archs.out_proj(hf, layer).register_forward_pre_hook(pre)):
        yield


def _put(value, sl, cols):
    def fn(x):
        x = x.clone()
        flat = x.dim() == 2  # OPT runs its MLP on [batch * pos, d_model]; batch is 1 here
        x, v = (x[None], value[None]) if flat else (x, value)
        x[:, sl, cols] = v[:, sl, cols]
        return x[0] if flat else x

    return fn


def _check(twin, what, direction, by_position, corruption=CORRUPTED):
    import pandas as pd

    from interp.patching import activation_patch

    df = activation_patch(twin.model, [PROMPT], [corruption], TARGET, FOIL, what=what, direction=direction,
                          by_position=by_position)
    bad = twin.ids[corruption]
    base, src = (bad, twin.clean) if direction == "denoising" else (twin.clean, bad)
    clean, corrupted = twin.diff(twin.clean), twin.diff(bad)
    assert abs(clean - corrupted) > 1e-2, "clean and corrupted agree: the test could not fail"
    assert df["clean"].iloc[0] == pytest.approx(clean, abs=TOL)
    assert df["corrupted"].iloc[0] == pytest.approx(corrupted, abs=TOL)
    got, want = [], []
    for row in df.itertuples():
        head = None if pd.isna(row.head) else int(row.head)
        pos = None if pd.isna(row.pos) else int(row.pos)
        got.append(row.patched)
        want.append(_hf_patch(twin, what, int(row.layer), head, pos, base, src))
    got, want = torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64)
    err = (got - want).abs().max().item()
    assert err <= TOL, f"{twin.name} {what} {direction}: off by {err:.3g} from plain HF"
    assert (want - df["corrupted" if direction == "denoising" else "clean"].iloc[0]).abs().max() > 1e-3, \
        "no patch changed the reference: the test could not fail"
    expected = (want - corrupted) / (clean - corrupted)
    assert torch.allclose(torch.tensor(df["normalised"].to_numpy(), dtype=torch.float64), expected,
                          atol=10 * TOL / abs(clean - corrupted))
    return df


# ---------------------------------------------------------------- activation patching against HF


@pytest.mark.parametrize("direction", ["denoising", "noising"])
@pytest.mark.parametrize("what, by_position", [("heads", False), ("heads", True), ("resid_pre", True),
                                               ("resid_post", True), ("attn_out", True), ("mlp_out", True),
                                               ("q", False), ("k", False), ("v", False)])
def test_activation_patching_matches_hf(twin, what, by_position, direction, unchanged):
    with unchanged(twin.model):
        df = _check(twin, what, direction, by_position)
    if what in ("k", "v"):
        from interp.arch import facts

        f = facts(twin.model)
        assert len(df) == f.n_layers * f.n_kv_heads  # one row per kv head, not per query head
        if f.n_kv_heads < f.n_heads:
            group = f.n_heads // f.n_kv_heads
            assert df["query_heads"].iloc[0] == f"0-{group - 1}"


@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_head_patching_with_a_shared_prefix_matches_hf(twin, direction, unchanged):
    """Pairs that agree on their first words: every head is patched from the first differing
    position on (its prefix replay); the result must still be HF's all-position patch."""
    from interp.patching import prepare

    assert prepare(twin.model, [PROMPT], [SHARED], TARGET, FOIL).shared_prefix() >= 4
    with unchanged(twin.model):
        _check(twin, "heads", direction, False, SHARED)


@contextmanager
def _eager_patterns(hf, store: dict, patch: tuple | None = None):
    """Wrap the HF module's own eager attention: record each layer's pattern [batch head query key]
    into `store`, or with patch = (layer, head, query slice, pattern), recompute that layer's
    output with the head's pattern rows replaced (kv heads repeated for grouped-query models)."""
    import sys

    module = sys.modules[type(hf).__module__]
    original = module.eager_attention_forward

    def wrapped(attn, query, key, value, attention_mask, *args, **kwargs):
        out, weights = original(attn, query, key, value, attention_mask, *args, **kwargs)
        store[attn.layer_idx] = weights.detach().clone()
        if patch is None or attn.layer_idx != patch[0]:
            return out, weights
        _, head, rows, source = patch
        weights = weights.clone()
        weights[:, head, rows] = source[:, head, rows]
        v = value.repeat_interleave(weights.shape[1] // value.shape[1], dim=1)
        return (weights @ v).transpose(1, 2), weights

    module.eager_attention_forward = wrapped
    try:
        yield
    finally:
        module.eager_attention_forward = original


@pytest.mark.parametrize("direction", ["denoising", "noising"])
@pytest.mark.parametrize("by_position", [False, True])
def test_pattern_patching_matches_hf(twin, direction, by_position, unchanged):
    from interp.patching import activation_patch

    if twin.name not in ("gpt2", "llama"):
        pytest.skip("the eager-attention wrapper reference is written for GPT-2 and Llama")
    with unchanged(twin.model):
        df = activation_patch(twin.model, [PROMPT], [CORRUPTED], TARGET, FOIL, what="pattern", direction=direction,
                              by_position=by_position)
    base, src = (twin.corrupted, twin.clean) if direction == "denoising" else (twin.clean, twin.corrupted)
    source: dict = {}
    with _eager_patterns(twin.hf, source):
        twin.diff(src)
    want = []
    for row in df.itertuples():
        rows = slice(None) if pd_na(row.pos) else slice(int(row.pos), int(row.pos) + 1)
        with _eager_patterns(twin.hf, {}, (int(row.layer), int(row.head), rows, source[int(row.layer)])):
            want.append(twin.diff(base))
    want = torch.tensor(want, dtype=torch.float64)
    got = torch.tensor(df["patched"].to_numpy(), dtype=torch.float64)
    assert (want - twin.diff(base)).abs().max() > 1e-3, "no pattern patch changed the reference"
    err = (got - want).abs().max().item()
    assert err <= TOL, f"{twin.name} pattern {direction}: off by {err:.3g} from plain HF"


def pd_na(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_pattern_refused_where_edits_do_not_reach(twin):
    from interp.errors import InterpError
    from interp.patching import activation_patch

    if twin.name != "opt":
        df = activation_patch(twin.model, [PROMPT], [CORRUPTED], TARGET, FOIL, what="pattern")
        assert (df["patched"] - df["corrupted"]).abs().max() > 1e-3  # the edit reaches the output
        return
    with pytest.raises(InterpError, match="hook_pattern never reaches the output") as e:
        activation_patch(twin.model, [PROMPT], [CORRUPTED], TARGET, FOIL, what="pattern")
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- path patching against a hand-written two-pass


def _hf_path(twin, senders, receivers, comp, base, src) -> float:
    """Wang et al.'s path patching on plain HF: (b) base run, every head's output-projection input
    frozen at the base run's except the senders' (from src), receivers' q/k/v projections
    recorded; (c) base run with only those receiver slices replaced."""
    hf = twin.hf
    zb, zs = archs.head_z(hf, base), archs.head_z(hf, src)
    n_layers = hf.config.num_hidden_layers

    def frozen(layer):
        dh = archs.d_head(hf, layer)
        value = zb[layer].clone()
        for l, h in senders:
            if l == layer:
                value[..., h * dh:(h + 1) * dh] = zs[layer][..., h * dh:(h + 1) * dh]
        return lambda module, args: (value, *args[1:])

    freeze = [archs.out_proj(hf, l).register_forward_pre_hook(frozen(l)) for l in range(n_layers)]
    if receivers == "logits":
        return _run(twin, base, freeze)
    store: dict = {}
    sites = {(l, h): _projection(hf, l, comp, h) for l, h in receivers}
    record = [_record(module, store, key) for key, (module, _) in sites.items()]
    _run(twin, base, freeze + record)
    put = [_replace_output(module, _put(store[key], slice(None), cols)) for key, (module, cols) in sites.items()]
    return _run(twin, base, put)


@pytest.mark.parametrize("corruption", [CORRUPTED, SHARED], ids=["all-differ", "shared-prefix"])
@pytest.mark.parametrize("comp", ["q", "k", "v", "logits"])
@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_path_patching_matches_two_pass(twin, comp, direction, corruption, unchanged):
    """Against a hand-written two-pass version on plain HF; with a shared prefix interp replays
    positions from the first differing one only, HF recomputes every position."""
    from interp.path_patching import path_patch

    if twin.name not in ("gpt2", "llama", "gemma3"):
        pytest.skip("path patching is checked on one learned-position and two rotary GQA models")
    from interp.patching import n_heads_of

    receivers = "logits" if comp == "logits" else [(1, h) for h in range(n_heads_of(twin.model, comp))]
    senders = [(0, 0), (0, 3), [(0, 1), (0, 2)], [(0, h) for h in range(4)], (1, 2), [(0, 1), (1, 3)]]
    with unchanged(twin.model):
        df = path_patch(twin.model, [PROMPT], [corruption], TARGET, FOIL, receivers=receivers, component=comp,
                        senders=senders, direction=direction)
    bad = twin.ids[corruption]
    base, src = (twin.clean, bad) if direction == "noising" else (bad, twin.clean)
    sets = [[s] if isinstance(s, tuple) else s for s in senders]
    want = torch.tensor([_hf_path(twin, heads, receivers, comp, base, src) for heads in sets], dtype=torch.float64)
    got = torch.tensor(df["patched"].to_numpy(), dtype=torch.float64)
    effect = (want - twin.diff(base)).abs().max().item()
    assert effect > 2e-5, "no path changed the reference: the test could not fail"
    tol = min(TOL, 0.05 * effect)  # below the effect: a path patch that did nothing fails
    err = (got - want).abs().max().item()
    assert err <= tol, f"{twin.name} path to {comp} ({direction}): off by {err:.3g} (effect {effect:.3g})"


def test_path_patching_is_not_activation_patching(twin):
    """Freezing the other heads matters: sender -> logits differs from patching the sender alone
    (which also moves the later heads that read it)."""
    from interp.path_patching import path_patch

    if twin.name != "gpt2":
        pytest.skip("one architecture suffices")
    path = path_patch(twin.model, [PROMPT], [CORRUPTED], TARGET, FOIL, senders=[(0, 0)])
    total = _hf_patch(twin, "heads", 0, 0, None, twin.clean, twin.corrupted)
    assert abs(path["patched"].iloc[0] - total) > 1e-3


# ---------------------------------------------------------------- attribution against activation patching

IOI = [("When Mary and John went to the store, John gave a drink to",
        "When Mary and John went to the store, Susan gave a drink to", " Mary", " John"),
       ("When Thomas and Sarah went to the park, Thomas gave a ball to",
        "When Thomas and Sarah went to the park, Emma gave a ball to", " Sarah", " Thomas"),
       ("When Anna and David went to the office, David gave a book to",
        "When Anna and David went to the office, Paul gave a book to", " Anna", " David"),
       ("After Lisa and Mark went to the restaurant, Mark gave a gift to",
        "After Lisa and Mark went to the restaurant, James gave a gift to", " Lisa", " Mark")]


def _pearson(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.mark.parametrize("direction", ["denoising", "noising"])
@pytest.mark.parametrize("what, by_position, bound", [("heads", False, 0.98), ("heads", True, 0.98),
                                                      ("v", False, 0.98), ("resid_pre", True, 0.95)])
def test_attribution_tracks_activation_patching(zoo2l, direction, what, by_position, bound):
    """The gradient estimate correlates with exact patching on IOI prompts with an ABC corruption."""
    from interp.patching import activation_patch

    clean, corrupted, target, foil = map(list, zip(*IOI))
    kw = {"what": what, "direction": direction, "by_position": by_position}
    exact = activation_patch(zoo2l, clean, corrupted, target, foil, **kw)
    approx = activation_patch(zoo2l, clean, corrupted, target, foil, method="attribution", **kw)
    assert exact["clean"].iloc[0] - exact["corrupted"].iloc[0] > 1, "the corruption does not move the metric"
    r = _pearson(exact["patched"], approx["patched"])
    assert r > bound, f"attribution vs activation patching of {what} ({direction}): r = {r:.3f}"


def test_attribution_leaves_no_gradients(zoo2l, unchanged):
    from interp.patching import activation_patch

    clean, corrupted, target, foil = IOI[0]
    with unchanged(zoo2l):
        activation_patch(zoo2l, clean, corrupted, target, foil, what="resid_post", method="attribution")
    assert all(p.grad is None for p in zoo2l.parameters())


# ---------------------------------------------------------------- input checks and the CLI


def test_unequal_lengths_one_line(zoo2l):
    from interp.errors import InterpError
    from interp.patching import activation_patch

    with pytest.raises(InterpError, match="pair 0: the clean prompt is 15 tokens and the corrupted one 13") as e:
        activation_patch(zoo2l, IOI[0][0], "When Mary went to the store, Susan gave a drink to", " Mary", " John")
    assert "\n" not in str(e.value)
    with pytest.raises(InterpError, match="2 clean prompts but 1 corrupted"):
        activation_patch(zoo2l, [IOI[0][0], IOI[1][0]], [IOI[0][1]], " Mary", " John")
    with pytest.raises(InterpError, match="unknown patching target 'head'.*did you mean 'heads'"):
        activation_patch(zoo2l, IOI[0][0], IOI[0][1], " Mary", " John", what="head")


def test_cli_happy_path(capsys, zoo2l):
    import csv
    import io

    from interp.cli import main
    from interp.sweep import logit_diff

    clean, corrupted, target, foil = IOI[0]
    args = ["patch", "--model", "zoo-2l", "--clean", clean, "--corrupted", corrupted, "--target", target,
            "--foil", foil, "--what", "heads", "--direction", "noising"]
    assert main(["-q", *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("activation patching of heads (noising)")
    assert len(out.splitlines()) == 2 + 8  # title, header, 2 layers x 4 heads
    assert main(["-q", *args, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 8 and {"layer", "head", "patched", "normalised", "direction"} <= set(rows[0])
    with torch.no_grad():  # the clean metric, from one plain forward
        tokens = zoo2l.to_tokens(clean)
        want = logit_diff(zoo2l, target, foil, 1)(zoo2l(tokens), tokens, torch.tensor([tokens.shape[1] - 1]))
    assert float(rows[0]["clean"]) == pytest.approx(want.item(), abs=1e-4)


@pytest.mark.parametrize("extra, message", [
    (["--corrupted", "When Mary went to the store, Susan gave a drink to"], "equal token lengths"),
    (["--corrupted", IOI[0][1], "--corrupted", IOI[1][1]], "1 --clean but 2 --corrupted"),
    (["--corrupted", IOI[0][1], "--what", "nope"], "invalid choice: 'nope'"),
    (["--corrupted", IOI[0][1], "--target", " Mary Mary"], "not a single token"),
    (["--corrupted", IOI[0][1], "--top", "0"], "--top 0 must be at least 1"),
])
def test_cli_errors_one_line_exit_2(capsys, extra, message):
    from interp.cli import main

    argv = ["patch", "--model", "zoo-2l", "--clean", IOI[0][0], "--target", " Mary", "--foil", " John", *extra]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors (one line too, see interp.cli._Parser)
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err


def test_cli_refuses_pattern_on_opt(capsys, tmp_path):
    import transformers

    from interp.cli import main

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        path = archs.build("opt", tmp_path / "opt")
    finally:
        transformers.logging.set_verbosity(verbosity)
    capsys.readouterr()
    argv = ["patch", "--model", str(path), "--clean", PROMPT, "--corrupted", CORRUPTED, "--target", TARGET,
            "--foil", FOIL, "--what", "pattern"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "hook_pattern never reaches the output" in err and "\n" not in err


@pytest.mark.slow
def test_attribution_tracks_activation_patching_on_smollm2(smollm2):
    """Per-head outputs on SmolLM2-135M (270 heads), denoising: README's "Patching" quotes r."""
    from interp.patching import activation_patch

    clean, corrupted, target, foil = map(list, zip(*IOI))
    exact = activation_patch(smollm2, clean, corrupted, target, foil, what="heads")
    approx = activation_patch(smollm2, clean, corrupted, target, foil, what="heads", method="attribution")
    assert exact["clean"].iloc[0] - exact["corrupted"].iloc[0] > 1, "the corruption does not move the metric"
    r = _pearson(exact["patched"], approx["patched"])
    assert r > 0.9, f"attribution vs activation patching of heads on smollm2-135m: r = {r:.3f}"


@pytest.mark.parametrize("what, method", [("heads", "activation"), ("resid_post", "activation"),
                                          ("q", "attribution")])
def test_pairs_of_different_lengths_batch_like_one_by_one(zoo2l, what, method):
    """Right padding is invisible: pairs of different lengths patched together give the mean
    of the pairs patched one at a time (positions past a shorter prompt change nothing)."""
    from interp.patching import activation_patch

    pairs = [IOI[0], ("When Mary and John went to the big store, John gave a drink to",
                      "When Mary and John went to the big store, Susan gave a drink to", " Mary", " John")]
    kw = {"what": what, "method": method, "by_position": what == "resid_post"}
    together = activation_patch(zoo2l, *map(list, zip(*pairs)), **kw)
    alone = [activation_patch(zoo2l, c, x, t, f, **kw) for c, x, t, f in pairs]
    assert len(together) == len(alone[1]) > len(alone[0]) or not kw["by_position"]
    one = alone[0].set_index(["layer", "head", "pos"], drop=False)["patched"]
    two = alone[1].set_index(["layer", "head", "pos"], drop=False)["patched"]
    # a cell past the shorter prompt's end leaves it at its base metric
    base0 = alone[0]["corrupted"].iloc[0]  # denoising runs the corrupted prompt
    want = (one.reindex(two.index).fillna(base0) + two) / 2
    got = together.set_index(["layer", "head", "pos"], drop=False)["patched"]
    assert (got - want).abs().max() < 1e-4


def test_cli_path_patching(capsys):
    from interp.cli import main

    clean, corrupted, target, foil = IOI[0]
    base = ["-q", "patch", "--model", "zoo-2l", "--clean", clean, "--corrupted", corrupted, "--target", target,
            "--foil", foil, "--what", "path", "--direction", "noising"]
    assert main([*base, "--receiver", "L1H0", "--component", "v"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("path patching to v of L1H0 (noising)") and len(out) == 2 + 4  # the 4 layer-0 heads
    assert main([*base, "--receiver", "9.6"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--receiver '9.6' is not a head" in err and "\n" not in err
    assert main([*base, "--receiver", "L7H0"]) == 2
    assert "layer 7 out of range" in capsys.readouterr().err
