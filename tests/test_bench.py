"""`make bench` end to end on zoo-2l at a tiny size: every row present, the equality checks it
reports hold, and the summary states each target. (Speeds are the benchmark's business, not a test's.)"""

import importlib.util
import re

import pandas as pd
import pytest

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


@pytest.mark.slow
def test_bench_real_rows_and_checks(tmp_path):
    """The real-checkpoint rows on zoo-2l (the comparators, not the checkpoint, are under test):
    every row present, fast / nnsight / patching agree with the loop and TL, the summary renders."""
    from interp.bench_models import bench_real, cli_rows

    cfg = Config(real_batch=2, repeats=1, peak_batch=2, peak_pos=16, out=tmp_path)
    df = pd.DataFrame(bench_real("zoo-2l", cfg, "as found") + cli_rows("as found", best_of=1))
    notes = dict(zip(df["measure"], df["note"]))
    checked = ["interp fast sweep (zero ablation)", "interp fast sweep (zero ablation, last position only)",
               "interp patch_heads (ABC-corrupted)"]
    if importlib.util.find_spec("nnsight"):
        checked.append("nnsight sweep (one trace per head)")
    for measure in checked:
        assert notes[measure].endswith(": ok)"), notes[measure]
    for measure in ("naive sweep (run_with_hooks per head)", "TL get_act_patch_attn_head_out_all_pos",
                    "capture all: peak memory", "interp --help", "interp models"):
        assert measure in notes
    assert df.set_index("measure").loc["capture all: peak memory", "peak_mb"] > 0
    skipped = bench_real("not-a-model", cfg, "as found")
    assert skipped[0]["measure"] == "skipped"
    text = (write_report(pd.concat([df, pd.DataFrame(skipped)]), cfg) / "README.md").read_text()
    assert "| interp fast sweep (zero ablation) |" in text and "`interp --help`" in text and "not-a-model" in text
