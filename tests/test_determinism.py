"""Determinism: the same seed gives byte-identical report CSVs and the same sampled text."""

from interp import sampling
from interp.report import write_report

PROMPT = "When Mary and John went to the store, John gave a drink to"


def test_same_seed_same_report_csv_bytes(zoo2l, tmp_path):
    a = write_report(zoo2l, PROMPT, tmp_path / "a", target=" Mary", foil=" John", seed=3)
    b = write_report(zoo2l, PROMPT, tmp_path / "b", target=" Mary", foil=" John", seed=3)
    csvs = sorted(p.name for p in (tmp_path / "a").glob("*.csv"))
    assert len(csvs) >= 8, csvs
    for name in csvs:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a != b


def test_same_seed_same_samples_other_seed_other_samples(zoo4l):
    one = sampling.sample(zoo4l, PROMPT, n=4, max_new_tokens=12, temperature=1.5, seed=7)
    two = sampling.sample(zoo4l, PROMPT, n=4, max_new_tokens=12, temperature=1.5, seed=7)
    other = sampling.sample(zoo4l, PROMPT, n=4, max_new_tokens=12, temperature=1.5, seed=8)
    assert one["text"].tolist() == two["text"].tolist()
    assert one["text"].tolist() != other["text"].tolist()
