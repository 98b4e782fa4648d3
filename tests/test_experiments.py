"""Every experiment runs on a tiny configuration, writes its report, and is reproducible:
the same seed gives byte-identical CSVs."""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # `experiments` is a folder of scripts at the repo root, not an installed package
    sys.path.insert(0, ROOT)

TINY = {
    "induction_heads": dict(n_tokens=8, n_seqs=3, n_view=4),
    "ioi_circuit": dict(n_select=6, n_eval=6, n_random=5),
    "gender_direction": dict(n_splits=1),
    "masking": dict(n_docs=2, n_tokens=16),
    "logit_lens": dict(n_prompts=4, n_words=6),
    "temperature": dict(temperatures=[0.0, 1.0, 2.0], sample_temperatures=[1.0], n_samples=2, max_new_tokens=3),
    "analogies": dict(max_per_section=3),
}


def _run(name: str, out):
    module = importlib.import_module(f"experiments.{name}")
    return module.main(module.Config(out=str(out), **TINY[name]))


@pytest.fixture(scope="module")
def shared_models():
    """Each model is loaded once for the whole module (MiniLM takes a while): `interp.load` is
    wrapped in a cache while these tests run. The experiments leave models unchanged, so sharing is safe."""
    import interp

    cache: dict = {}
    original = interp.load

    def load(name, *args, **kwargs):
        if args or kwargs:
            return original(name, *args, **kwargs)
        if name not in cache:
            cache[name] = original(name)
        return cache[name]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(interp, "load", load)
        yield cache


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_writes_a_reproducible_report(name, tmp_path, shared_models, unchanged):
    headline = _run(name, tmp_path / "a")
    out = tmp_path / "a"
    for f in ("README.md", "index.html", "config.json"):
        assert (out / f).is_file(), f
    csvs = sorted(p.name for p in out.glob("*.csv"))
    assert csvs, "no CSV written"
    for c in csvs:
        assert len(pd.read_csv(out / c).columns) > 0
    svgs = list(out.glob("*.svg"))
    assert svgs and all(p.read_text().startswith("<svg") for p in svgs)
    readme = (out / "README.md").read_text()
    assert "## Findings" in readme and all(f"({p.name})" in readme for p in svgs)
    config = json.loads((out / "config.json").read_text())
    assert config["versions"]["torch"] and config["headline"]["summary"] == headline["summary"]
    page = (out / "index.html").read_text()  # the bundle once, and only on a page with attention views
    assert page.count('id="circuitsvis-bundle"') == int('class="cv-view"' in page)
    with contextlib.ExitStack() as stack:  # the rerun leaves every model it used unchanged, no hooks left
        for model in list(shared_models.values()):
            stack.enter_context(unchanged(model))
        _run(name, tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").glob("*.csv")) == csvs
    for c in csvs:
        assert (out / c).read_bytes() == (tmp_path / "b" / c).read_bytes(), f"{c} differs between runs"


def test_tidy_rounds_and_sorts():
    from experiments.common import tidy

    df = tidy(pd.DataFrame({"k": [2, 1], "v": [1 / 3, -1e-9]}), ["k"])
    assert df.k.tolist() == [1, 2]
    assert df.v.tolist() == [0.0, 0.333333]
    assert str(df.v.iloc[0]) == "0.0"  # -0.0 would print as "-0.0"


def test_index_lists_every_experiment(tmp_path):
    from experiments.__main__ import EXPERIMENTS, MODELS, OPTIONAL, index

    (tmp_path / "masking").mkdir()
    (tmp_path / "masking" / "config.json").write_text(json.dumps({"model": "zoo-4l", "headline": {"summary": "a | b"}}))
    (tmp_path / "smollm2-135m" / "masking").mkdir(parents=True)
    (tmp_path / "smollm2-135m" / "masking" / "config.json").write_text(
        json.dumps({"model": "smollm2-135m", "headline": {"summary": "c"}}))
    text = index(tmp_path)
    assert all(name in text for name in EXPERIMENTS)
    assert "[masking](masking/README.md) | zoo-4l | a / b |" in text
    assert "[masking](smollm2-135m/masking/README.md) | smollm2-135m | c |" in text
    assert text.count("not run yet") == len(EXPERIMENTS) * len(MODELS) + sum(map(len, OPTIONAL.values())) - 2


def test_random_draws_avoid_top_heads_and_keep_layers():
    from experiments.ioi_circuit import random_draws

    top = [(3, 2), (1, 5), (0, 7)]
    draws = random_draws(top, 8, 50, seed=0)
    assert draws == random_draws(top, 8, 50, seed=0)
    for d in draws:
        assert [l for l, _ in d] == [3, 1, 0] and not set(d) & set(top)


def test_induction_copy_slices_skip_first_words():
    from experiments.induction_heads import copy_slices

    first, repeat = copy_slices(5)  # BOS + 5 + 5 tokens -> 10 next-token losses
    assert list(range(10))[first] == [1, 2, 3, 4] and list(range(10))[repeat] == [6, 7, 8, 9]


def test_parse_config_maps_every_field():
    from experiments import ioi_circuit, temperature
    from experiments.common import parse_config

    cfg = parse_config(ioi_circuit.Config, ioi_circuit.__doc__, "x", ["--n-eval", "7", "--mode", "zero", "--out", "o"],
                       choices={"mode": ("zero", "mean")})
    assert (cfg.n_eval, cfg.mode, cfg.out, cfg.n_random) == (7, "zero", "o", ioi_circuit.Config().n_random)
    t = parse_config(temperature.Config, temperature.__doc__, "x", ["--temperatures", "0", "1.5"])
    assert t.temperatures == [0.0, 1.5] and t.sample_temperatures == temperature.Config().sample_temperatures
    with pytest.raises(SystemExit) as e:
        parse_config(ioi_circuit.Config, ioi_circuit.__doc__, "x", ["--mode", "half"], choices={"mode": ("zero", "mean")})
    assert e.value.code == 2
