"""`make bench` end to end on zoo-2l at a tiny size: every row present, the equality checks it
reports hold, and the summary states each target. (Speeds are the benchmark's business, not a test's.)"""

import re

import pandas as pd

from interp.bench import Config, bench_model, write_report


def test_bench_model_rows_checks_and_summary(tmp_path):
    cfg = Config(batch=2, prompts_per_row=1, repeats=1, out=tmp_path)
    df = pd.DataFrame(bench_model("zoo-2l", "zoo-2l", cfg, "as found"))
    notes = dict(zip(df["measure"], df["note"]))
    assert float(re.search(r"= (\S+)$", notes["interp fast sweep (zero ablation)"]).group(1)) < 1e-4
    assert float(re.search(r"= (\S+)$", notes["interp fast sweep (patching)"]).group(1)) < 1e-4
    assert notes["sampling 4 x 60 tokens, key/value cache"] == "same tokens as the rerun: True"
    bound = df.set_index("measure").loc["downstream-only bound 1 + sum_l H(L-l)/L", "forward_equivalents"]
    assert bound == 1 + 4 * (2 + 1) / 2  # zoo-2l: 2 layers x 4 heads
    assert (df.dropna(subset=["seconds"])["seconds"] > 0).all()
    text = (write_report(df, cfg) / "README.md").read_text()
    assert "### zoo-2l, allocator: as found" in text and "target >= 5x" in text and "target <= 1.3x" in text
    assert (tmp_path / "results.csv").exists()
