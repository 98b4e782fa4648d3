"""Reports: one bundle per page, no external URLs, escaping, atomic writes and --force, CLI."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from interp.cli import main
from interp.errors import InterpError

XSS = "<script>alert(1)</script> Mary"
PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def report(zoo2l, tmp_path_factory):
    from interp.report import write_report

    out = tmp_path_factory.mktemp("rep") / "r"
    write_report(zoo2l, PROMPT, out, target=" Mary", foil=" John", seed=3)
    return out


@pytest.fixture(scope="module")
def xss_page(zoo2l, tmp_path_factory):
    from interp.report import attention_page

    return open(attention_page(zoo2l, XSS, tmp_path_factory.mktemp("a") / "a.html")).read()


def external_refs(html: str) -> list[str]:
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html, flags=re.I)
    return [t for t in tags if re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", t, flags=re.I)]


def test_report_files_and_config(report):
    names = {p.name for p in report.iterdir()}
    assert {"index.html", "README.md", "config.json", "tokens.csv", "attention.csv", "predictions.csv"} <= names
    cfg = json.loads((report / "config.json").read_text())
    assert cfg["model"] == "zoo-2l" and cfg["seed"] == 3 and cfg["prompt"] == PROMPT
    assert all(cfg["versions"][p] for p in ("interp", "torch", "transformer-lens", "transformers"))
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".")], "temporary dir left behind"


def test_page_is_offline_and_has_one_bundle(report, xss_page):
    for html in ((report / "index.html").read_text(), xss_page):
        assert external_refs(html) == []
        assert html.count('id="circuitsvis-bundle"') == 1
        assert html.count("var CircuitsVis=") == 1
        assert len(html.encode()) < 3_000_000
        assert html.count("CircuitsVis.render(") >= 2


def test_every_section_present(report):
    html = (report / "index.html").read_text()
    for sid in ("tokens", "attention") + (("temperature",) if _has("interp.sampling") else ()) \
            + (("mask",) if _has("interp.attention") else ()) + (("dla", "logit-lens") if _has("interp.attribution") else ()) \
            + (("ablation",) if _has("interp.ablation") else ()) + (("embeddings",) if _has("interp.embeddings") else ()):
        assert f'<section id="{sid}">' in html, sid
    readme = (report / "README.md").read_text()
    assert readme.count("\n## ") >= 3 and "Mary" in readme


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_attention_csv_rows_are_distributions(report):
    from interp.report.build import read_csv

    attn = read_csv(report / "attention.csv")
    sums = attn.groupby(["layer", "head", "query"])["value"].sum()
    assert (sums - 1).abs().max() < 1e-4  # causal rows kept whole: each query's weights sum to 1
    toks = read_csv(report / "tokens.csv")
    assert toks["token"].iloc[-1] == " to"


def test_script_prompt_is_escaped(xss_page):
    assert "<script>alert(1)" not in xss_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in xss_page


def test_props_cannot_close_script():
    from interp.report.bundle import props_json, render_call

    html = render_call("AttentionHeads", {"tokens": ["</script><script>alert(1)</script>", "<!--"]}, "v1")
    assert html.count("</script>") == 1 and "<!--" not in html
    assert json.loads(props_json({"t": "</script>"}))["t"] == "</script>"
    with pytest.raises(ValueError):
        render_call("AttentionHeads", {}, 'x" onload="alert(1)')


def test_deferred_props_cannot_close_script():
    from interp.report.bundle import deferred_call

    html = deferred_call("AttentionHeads", {"tokens": ["</script><script>alert(1)</script>", "<!--"]}, "v1")
    assert html.count("</script>") == 1 and "<!--" not in html and 'data-cv="AttentionHeads"' in html
    with pytest.raises(ValueError):
        deferred_call("AttentionHeads", {}, 'x" onload="alert(1)')


def _attn(layers, n_heads=2, n_pos=3):
    rows = [(L, h, q, k, 1.0 / (q + 1)) for L in layers for h in range(n_heads) for q in range(n_pos) for k in range(q + 1)]
    return pd.DataFrame(rows, columns=["layer", "head", "query", "key", "value"])


def test_attention_views_keep_the_layers_given():
    """A table of layer 3 alone (a notebook figure's one layer) still gets its view."""
    from interp.report.sections import attention_views

    html, note = attention_views(_attn([3]), ["a", "b", "c"], prefix="p")
    assert note == "" and 'id="p-layer-3"' in html and ">layer 3</button>" in html
    props = json.loads(re.search(r'id="p-layer-3-props">(.*?)</script>', html)[1])
    assert len(props["attention"]) == 2 and props["attention"][1][2] == [0.333] * 3


def test_attention_views_over_budget_keep_first_layers(monkeypatch):
    from interp.report import sections

    monkeypatch.setattr(sections, "_BUDGET", 2 * 2 * 3 * 3 * 5)  # two layers' worth at 2 decimals
    html, note = sections.attention_views(_attn([5, 6, 7, 8]), ["a", "b", "c"], prefix="p")
    assert re.findall(r'id="p-layer-(\d+)"', html) == ["5", "6"]
    assert note.startswith("Interactive views show layers 5-6 of 4")


def test_picker_draws_only_the_shown_panel():
    from interp.report.html import picker

    html = picker("g-1", ["a", "b"], ["<p>A</p>", "<p>B</p>"])
    assert html.endswith('<script>__pick("g-1",0);</script>') and html.count(" hidden>") == 1
    with pytest.raises(ValueError):
        picker('g");alert(1);("', ["a"], ["x"])


def test_missing_bundle_is_one_line(monkeypatch, tmp_path, capsys, zoo2l):
    import sys

    import circuitsvis

    import interp.commands.attention as cmd
    from interp.report import bundle

    bundle.bundle_js.cache_clear()
    monkeypatch.setattr(circuitsvis, "__file__", str(tmp_path / "circuitsvis" / "__init__.py"))
    with pytest.raises(InterpError, match=r"circuitsvis bundle not found at .*iife\.js: pip install"):
        bundle.bundle_tag()
    monkeypatch.setattr(cmd, "load_model", lambda args: zoo2l)
    assert main(["attention", "--prompt", "hi", "--out", str(tmp_path / "a.html")]) == 2
    err = capsys.readouterr().err
    assert "circuitsvis bundle not found" in err and err.count("\n") == 1 and not (tmp_path / "a.html").exists()
    monkeypatch.setitem(sys.modules, "circuitsvis", None)
    with pytest.raises(InterpError, match="circuitsvis is not installed: pip install"):
        bundle.bundle_path()
    bundle.bundle_js.cache_clear()


def test_packed_attention_round_trips():
    import numpy as np

    from interp.report.bundle import packed_attention, unpack_attention

    rng = np.random.default_rng(0)
    for causal in (True, False):
        a = rng.random((3, 7, 7))
        a = np.tril(a) if causal else a
        a = a / a.sum(-1, keepdims=True)
        back = np.array(unpack_attention(packed_attention(a.tolist(), causal)))
        assert np.abs(back - a).max() <= 0.5 / 65535 + 1e-12
        assert (back[:, ~np.tril(np.ones((7, 7), bool))] == 0).all() if causal else True


def test_bundle_has_no_closing_script_tag():
    from interp.report.bundle import bundle_js

    assert not re.search(r"</script", bundle_js(), flags=re.I)
    assert "sourceMappingURL" not in bundle_js()[-200:]


def test_svg_text_is_escaped():
    from interp.report.plots import bars

    svg = bars(pd.DataFrame({"t": ["<script>x</script>"], "p": [0.5]}), "t", "p", "<b>title</b>")
    assert "<script>" not in svg and "<b>" not in svg


def test_heatmap_values_from_table():
    from interp.report.plots import heatmap

    df = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "v": [1.0, 2.0, 3.0, 4.0]})
    svg = heatmap(df, "layer", "head", "v", "t")
    assert all(f">{x}<" in svg for x in ("1", "2", "3", "4"))


def test_force_rules(tmp_path):
    from interp.report.write import atomic_dir, check_target

    out = tmp_path / "r"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(InterpError, match="--force"):
        check_target(out)
    with atomic_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("y")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    (tmp_path / "f").write_text("")
    with pytest.raises(InterpError, match="is a file"):
        check_target(tmp_path / "f")


def test_interrupted_write_leaves_old_report(tmp_path):
    from interp.report.write import atomic_dir

    out = tmp_path / "r"
    out.mkdir()
    (out / "index.html").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(out, force=True) as tmp:
            (tmp / "index.html").write_text("half")
            raise KeyboardInterrupt
    assert (out / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_unwritable_output_is_one_line(tmp_path):
    from interp.report.write import atomic_dir, atomic_file

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InterpError, match="cannot write"):
        with atomic_dir(blocker / "sub"):
            pass
    with pytest.raises(InterpError, match="cannot write"):
        atomic_file(blocker / "x.html", "hi")


def test_read_csv_keeps_token_strings(tmp_path):
    from interp.report.build import read_csv

    pd.DataFrame({"token": ["nan", "None", " x"], "value": [1.0, None, 2.0]}).to_csv(tmp_path / "t.csv", index=False)
    back = read_csv(tmp_path / "t.csv")
    assert back["token"].tolist() == ["nan", "None", " x"] and back["value"].isna().tolist() == [False, True, False]


def test_cli_errors_without_model(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "a").write_text("")
    assert main(["report", "--prompt", "hi", "--out", str(full)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert main(["report", "--prompt", "hi", "--target", " a", "--out", str(tmp_path / "x")]) == 2
    assert "--foil" in capsys.readouterr().err
    assert main(["report", "--prompt", " ", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_cli_report(tmp_path, capsys, zoo2l, monkeypatch):
    import interp.commands.common as common

    monkeypatch.setattr(common, "load_model", lambda args: zoo2l)
    out = tmp_path / "cli"
    assert main(["report", "--model", "zoo-2l", "--prompt", "When Mary and John went", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("index.html")
    assert main(["report", "--model", "zoo-2l", "--prompt", "When Mary", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["report", "--model", "zoo-2l", "--prompt", "When Mary", "--out", str(out), "--force",
                 "--target", " Mary", "--foil", " went to"]) == 2
    assert "2 tokens" in capsys.readouterr().err
    assert "When Mary and John went" in (out / "index.html").read_text()  # the failed run left the old report


def test_demo_refuses_foreign_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "no earlier report" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").exists()


def test_notebook_figure(zoo2l, tmp_path, unchanged):
    from interp.report import figures, notebook

    notebook.reset()
    with unchanged(zoo2l):
        fig = figures.attention(zoo2l, "When Mary and John went", layer=1)
    html = fig._repr_html_()
    assert html.count("var CircuitsVis=") == 1 and set(fig.table["layer"]) == {1}
    again = fig._repr_html_()  # the notebook has the bundle now: the second view only draws from it
    assert "var CircuitsVis=" not in again and "__cvDraw" in again and len(again) < len(html) / 20
    assert "CircuitsVis" not in repr(fig) and len(repr(fig)) < 300
    views = re.findall(r'<div id="(attn-\w+-layer-\d+)" class="cv-view"', html)
    assert len(views) == 1 and views[0].endswith("-layer-1")  # the chosen layer's view, with data
    props = json.loads(re.search(views[0] + r'-props">(.*?)</script>', html)[1])
    assert props["packedAttention"]["heads"] == zoo2l.cfg.n_heads and "attention" not in props  # a third the size
    page = open(fig.save(tmp_path / "f.html")).read()
    assert page.count('id="circuitsvis-bundle"') == 1 and external_refs(page) == []
    with pytest.raises(InterpError, match="layer 5 out of range"):
        figures.attention(zoo2l, "When Mary", layer=5)


def test_cli_attention_out(tmp_path, capsys, zoo2l, monkeypatch):
    import interp.commands.attention as cmd

    monkeypatch.setattr(cmd, "load_model", lambda args: zoo2l)
    out = tmp_path / "a.html"
    assert main(["attention", "--prompt", XSS, "--out", str(out), "--layer", "1", "--head", "2"]) == 0
    html = out.read_text()
    assert capsys.readouterr().out.strip() == str(out)
    assert html.count('id="circuitsvis-bundle"') == 1 and "<script>alert(1)" not in html
    assert 'id="mask-L1H2"' in html  # the masked-vs-unmasked view of the chosen head
    assert main(["attention", "--prompt", "hi", "--out", str(out), "--layer", "9"]) == 2
    assert "layer 9 out of range" in capsys.readouterr().err


def test_research_report_attention_checks_heads(zoo2l):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from experiments.common import Report

    rep = Report("demo", "Demo", "q", "m")
    with pytest.raises(InterpError, match="head 9 out of range"):
        rep.attention("att", zoo2l, "When Mary", [(0, 9)], "bad head")
    with pytest.raises(InterpError, match="at least one head"):
        rep.attention("att", zoo2l, "When Mary", [], "no heads")
    assert rep.views == [] and 'id="circuitsvis-bundle"' not in rep.html({})  # no view, no bundle
    rep.attention("att", zoo2l, ["When Mary", "When John and Mary"], [(1, 0)], "one head")
    assert set(rep.tables) == {"att"} and rep.html({}).count('id="circuitsvis-bundle"') == 1


SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(svg: str) -> list[dict]:
    """Every text element of an SVG: its string (tspans joined), x, y, size and anchor, and the
    id of the nearest tick group it sits in (xtick_N / ytick_N)."""
    import xml.etree.ElementTree as ET

    out = []

    def walk(el, group):
        gid = el.get("id", "")
        group = gid if gid.startswith(("xtick_", "ytick_")) else group
        if el.tag == SVG + "text":
            style = el.get("style", "")
            size = re.search(r"font(?:-size)?: ([\d.]+)px", style)
            size = float(size[1]) if size else 0.0
            anchor = re.search(r"text-anchor: (\w+)", style)
            text = "".join(part.strip() for part in el.itertext())
            moved = re.search(r"translate\(([-\d.]+) ([-\d.]+)\)", el.get("transform", ""))
            x, y = (float(moved[1]), float(moved[2])) if moved and el.get("x") is None else \
                (float(el.get("x", 0)), float(el.get("y", 0)))
            out.append({"text": text, "x": x, "y": y, "size": size,
                        "anchor": anchor[1] if anchor else "start", "group": group})
        for child in el:
            walk(child, group)

    walk(ET.fromstring(svg), "")
    return out


def text_width(text: str, size: float) -> float:
    """Width of `text` in DejaVu Sans at `size` px, from the font's own glyph metrics."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    return TextPath((0, 0), text, size=size, prop=FontProperties(family="DejaVu Sans")).get_extents().width


def svg_width(svg: str) -> float:
    return float(re.search(r'viewBox="0 0 ([\d.]+) ', svg)[1])


def grid(n_rows: int, n_cols: int, scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame([{"layer": r, "head": c, "delta": scale * ((r * n_cols + c) % 7 - 3) / 7}
                         for r in range(n_rows) for c in range(n_cols)])


@pytest.mark.parametrize("n_cols", [2, 12])
def test_heatmap_title_is_whole_and_inside(n_cols):
    from interp.report.plots import heatmap

    title = "change in logit diff (IO − S) when each head is zeroed, mean over 64 prompts of the IOI task"
    svg = heatmap(grid(4, n_cols), "layer", "head", "delta", title)
    texts = svg_texts(svg)
    lines = [t for t in texts if " " in t["text"] and t["text"] in title]
    assert " ".join(t["text"] for t in sorted(lines, key=lambda t: t["y"])) == title
    for t in lines:
        w = text_width(t["text"], t["size"])
        left = {"start": t["x"], "middle": t["x"] - w / 2, "end": t["x"] - w}[t["anchor"]]
        assert left >= 0 and left + w <= svg_width(svg), f"title line clipped: {t} ({w:.1f} wide)"


def test_colour_bar_label_has_units():
    from interp.report.plots import UNITS, heatmap

    texts = [t["text"] for t in svg_texts(heatmap(grid(3, 4), "layer", "head", "delta", "sweep"))]
    assert UNITS["delta"] in texts and "delta" not in texts
    texts = [t["text"] for t in svg_texts(heatmap(grid(3, 4), "layer", "head", "delta", "s", cbar="Δ loss (nats)"))]
    assert "Δ loss (nats)" in texts


def test_layer_ticks_are_integers_and_probabilities_log():
    from interp.report.plots import lines

    df = pd.DataFrame({"layer": range(3), "target_prob": [2e-4, 3e-2, 0.9]})
    texts = svg_texts(lines(df, "layer", "target_prob", "p by layer"))
    xticks = [t["text"] for t in texts if t["group"].startswith("xtick_") and t["text"]]
    assert xticks and all(re.fullmatch(r"\d+", t) for t in xticks), xticks
    yticks = [t["text"] for t in texts if t["group"].startswith("ytick_") and t["text"]]
    assert yticks and all(re.fullmatch(r"10−?\d", t) for t in yticks), yticks  # 10^-4 ... 10^0
    linear = svg_texts(lines(df.assign(target_prob=[0.2, 0.5, 0.9]), "layer", "target_prob", "p"))
    assert not any(t["text"].startswith("10") for t in linear if t["group"].startswith("ytick_"))


def test_heatmap_annotations_fit_their_cells():
    from interp.report.plots import heatmap

    for rows, cols, scale in ((3, 4, 1.0), (4, 12, 1.0), (4, 12, 0.0004), (6, 40, 1.0)):
        svg = heatmap(grid(rows, cols, scale), "layer", "head", "delta", "t")
        texts = svg_texts(svg)
        ticks = sorted(t["x"] for t in texts if t["group"].startswith("xtick_") and t["text"])
        pitch = (ticks[-1] - ticks[0]) / (cols - 1)  # one cell's width
        cells = [t for t in texts if not t["group"] and re.fullmatch(r"−?-?\d+\.\d+|−?-?\d+", t["text"])
                 and t["anchor"] == "middle" and t["size"] == 7]
        if cols >= 40:
            assert cells == [], "a 40-column grid has no room for numbers"
            continue
        assert len(cells) == rows * cols, (rows, cols, len(cells))
        assert all(text_width(t["text"], t["size"]) < pitch - 2 for t in cells), "numbers run into each other"
        assert not any(re.fullmatch(r"[-−]0\.0*", t["text"]) for t in cells), "a zero printed with a minus sign"


def test_bar_labels_sit_past_the_bar():
    from interp.report.plots import bars

    df = pd.DataFrame({"candidate": [" a", " b", " c"], "prob": [0.9, 0.0004, 0.05]})
    texts = svg_texts(bars(df, "candidate", "prob", "next token"))
    assert {"0.9", "0.0004", "0.05"} <= {t["text"] for t in texts}
    assert any(t["text"] == "probability" for t in texts)
    assert all(not t["text"].startswith(" ") for t in texts)


def test_report_progress_names_every_step(zoo2l, tmp_path, monkeypatch):
    """`interp report` advances one bar step for its own tables, each analysis and the writing."""
    from contextlib import contextmanager

    import interp.report.build as build
    from interp.report import analyses

    seen = {"total": None, "steps": 0, "names": []}

    class Bar:
        def update(self, n=1):
            seen["steps"] += n

        def set_postfix_str(self, s):
            seen["names"].append(s)

    @contextmanager
    def fake_bar(total, desc, unit="head"):
        seen["total"], seen["desc"] = total, desc
        yield Bar()

    monkeypatch.setattr(build, "bar", fake_bar)
    build.write_report(zoo2l, "When Mary and John went to the store, John gave a drink to", tmp_path / "r",
                       target=" Mary", foil=" John")
    assert seen["total"] == seen["steps"] == len(analyses.available()) + 2
    assert seen["names"][1:-1] == analyses.available() and seen["desc"] == "report on zoo-2l"


def test_experiment_steps_are_quiet_under_interp_quiet(monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from experiments.common import progress, steps

    monkeypatch.setenv("INTERP_QUIET", "1")
    assert list(steps(range(5), "prompts")) == [0, 1, 2, 3, 4]
    with progress(3, "x") as b:
        assert b.disable is True  # off even on a terminal
