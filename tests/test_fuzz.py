"""Fuzzing (Hypothesis) on zoo-2l: no prompt string, token list or numeric flag reaches a traceback.

Each property feeds generated input to the Python API or to `interp.cli.main` in-process and
accepts only two outcomes: a result, or `InterpError` (the CLI: exit 0, or exit 2 with one
line). Anything else that escapes (IndexError, RuntimeError, ...) fails the test with the
smallest input that shows it. Example counts are modest so the module runs in well under 30 s.
"""

from __future__ import annotations

import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp.cli import main
from interp.errors import InterpError

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TEXT = st.text(max_size=60) | st.sampled_from(["", " ", "\n", "\x00", "\ufeff", "king " * 140, "🙂" * 5, "\u0120"])
P = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(autouse=True)
def _one_load(monkeypatch, zoo2l):
    """The CLI's load of zoo-2l returns the session's model (after the same device check)."""
    import interp.models
    from interp.devices import check_device

    real = interp.models.load

    def load(model, device="cpu", **kw):
        if model == "zoo-2l":
            check_device(device)
            return zoo2l
        return real(model, device, **kw)

    monkeypatch.setattr(interp.models, "load", load)


OUTCOMES = ("result", "refused")


def _outcome(fn, *args, **kw) -> str:
    """"result", or "refused" for a one-line InterpError; any other exception propagates (fails)."""
    try:
        fn(*args, **kw)
    except InterpError as e:
        assert "\n" not in str(e), str(e)
        return "refused"
    return "result"


@FAST
@given(prompt=TEXT)
def test_prompts_through_the_api(zoo2l, prompt):
    from interp.activations import capture
    from interp.attention import patterns
    from interp.sampling import top_tokens

    for fn in (lambda: capture(zoo2l, prompt, names="hook_embed"), lambda: patterns(zoo2l, prompt),
               lambda: top_tokens(zoo2l, prompt, k=3)):
        assert _outcome(fn) in OUTCOMES


@FAST
@given(prompts=st.lists(TEXT, max_size=3) | st.lists(st.integers() | st.none() | st.floats(), max_size=3))
def test_prompt_lists(zoo2l, prompts):
    from interp.activations import to_tokens

    assert _outcome(to_tokens, zoo2l, prompts) in OUTCOMES


@FAST
@given(rows=st.lists(st.lists(st.integers(-5, 2100), min_size=0, max_size=8), min_size=0, max_size=3),
       lengths=st.none() | st.lists(st.integers(-2, 10), max_size=4))
def test_token_lists(zoo2l, rows, lengths):
    import torch

    from interp.activations import capture
    from interp.attention import patterns

    width = max((len(r) for r in rows), default=0)
    tokens = torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long).reshape(len(rows), width)
    assert _outcome(capture, zoo2l, tokens, names="blocks.0.hook_resid_post", lengths=lengths) in OUTCOMES
    if rows:
        assert _outcome(patterns, zoo2l, tokens[0]) in OUTCOMES


NUMBER = (st.integers(-3, 200).map(str) | st.floats(allow_nan=True, allow_infinity=True).map(repr)
          | st.sampled_from(["", "x", "1e400", "-0", "0x10", "nan", "inf"]))


@FAST
@given(temperature=NUMBER, n=NUMBER, k=NUMBER, new=NUMBER)
def test_sample_flags(zoo2l, capsys, temperature, n, k, new):
    code = _cli(capsys, ["sample", "-m", "zoo-2l", "-p", P, f"--temperature={temperature}", f"--n={n}", f"--k={k}",
                         f"--max-new-tokens={new}", "--format", "csv"], slow_ok=_small(n) and _small(new))
    assert code in (0, 2, None)


@FAST
@given(layer=NUMBER, head=NUMBER, top=NUMBER)
def test_attention_and_ablate_flags(zoo2l, capsys, layer, head, top):
    assert _cli(capsys, ["attention", "-m", "zoo-2l", "-p", "The king", f"--layer={layer}", f"--head={head}",
                         f"--top={top}", "--format", "csv"]) in (0, 2)
    assert _cli(capsys, ["ablate", "-m", "zoo-2l", "-p", "The king ruled", "-t", " the", f"--layer={layer}",
                         f"--head={head}", f"--top={top}", "--format", "csv"]) in (0, 2)


def _small(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) <= 20
    except ValueError:
        return True


def _cli(capsys, argv, slow_ok: bool = True) -> int | None:
    """The exit status (None: skipped); asserts no traceback and a one-line error on exit 2."""
    if not slow_ok:  # a valid but huge count would only be slow, not wrong
        return None
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    _, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err[-400:])
    assert "Traceback" not in err
    if code == 2:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    return code


@FAST
@given(temperature=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2, 5) | st.none(),
       k=st.integers(-2, 3000) | st.floats(), n=st.integers(-1, 3), new=st.integers(-1, 4), seed=st.integers(-5, 2**70))
def test_numeric_arguments_through_the_api(zoo2l, temperature, k, n, new, seed):
    from interp.sampling import entropy_by_temperature, sample, top_tokens

    assert _outcome(top_tokens, zoo2l, P, temperature, k) in OUTCOMES
    assert _outcome(sample, zoo2l, "The king", n, new, temperature, seed) in OUTCOMES
    assert _outcome(entropy_by_temperature, zoo2l, P, [temperature]) in OUTCOMES
