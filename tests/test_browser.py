"""The report renders in headless Chromium with the network off: circuitsvis views, every
section, no JavaScript error, a non-trivial screenshot, and every layer of the attention picker
draws its zoomed pattern once its button is clicked (driven over the DevTools pipe, tests/cdp.py)."""

import base64
import re
import shutil
import struct
from pathlib import Path

import pytest

from cdp import Browser

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PROMPT = "When Mary and John went to the store, John gave a drink to"

# Resolves once every visible circuitsvis view has drawn (or after 10 s).
SETTLE_JS = """new Promise(done => { const t0 = Date.now();
  const drawn = v => v.offsetParent === null || (v.children.length && ![...v.querySelectorAll('canvas')]
                                                 .some(c => !c.width || !c.height));
  (function poll() { if ([...document.querySelectorAll('.cv-view')].every(drawn) || Date.now() - t0 > 10000) {
    requestAnimationFrame(() => setTimeout(done, 50)); } else { setTimeout(poll, 50); } })(); })"""

# Clicks every layer button of the picker `group`; for each, the panel's canvases (width, height)
# and the number of drawn (not blank, not white) pixels of its largest canvas, the zoomed pattern.
LAYERS_JS = """(async group => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const out = [];
  for (const btn of document.querySelectorAll(`button[data-group="${group}"]`)) {
    btn.click();
    const panel = document.querySelector(`div.layer[data-group="${group}"][data-index="${btn.dataset.index}"]`);
    const sizes = () => [...panel.querySelectorAll('canvas')].map(c => [c.width, c.height]);
    for (let t = 0; t < 100 && !(sizes().length && sizes().every(([w, h]) => w && h)); t++) { await sleep(50); }
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)));
    const cs = [...panel.querySelectorAll('canvas')].sort((a, b) => b.width * b.height - a.width * a.height);
    let ink = 0;
    if (cs.length && cs[0].width && cs[0].height) {
      const d = cs[0].getContext('2d').getImageData(0, 0, cs[0].width, cs[0].height).data;
      for (let i = 0; i < d.length; i += 4) { if (d[i + 3] && (d[i] < 245 || d[i + 1] < 245 || d[i + 2] < 245)) ink++; }
    }
    out.push({label: btn.textContent, shown: !panel.hidden, sizes: sizes(), ink});
  }
  return out;
})"""


def flags(tmp: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
            f"--user-data-dir={tmp / 'profile'}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,3000"]


def browse(page: Path, tmp: Path, group: str) -> dict:
    """Load `page`, let it draw, and return its DOM, a screenshot, every layer's drawing, and errors."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make test` (as root it installs it) or apt-get install -y chromium")
    with Browser(CHROMIUM, flags(tmp)) as b:
        b.open(page.as_uri())
        b.eval(SETTLE_JS)
        dom = b.eval("document.documentElement.outerHTML")
        png = base64.b64decode(b.send("Page.captureScreenshot", format="png")["data"])
        layers = b.eval(f"({LAYERS_JS})({group!r})")
        trapped = b.eval("window.__jsErrors || []")  # a notebook page has no trap of its own
        return {"dom": dom, "png": png, "layers": layers, "errors": b.errors() + trapped, "page": page.read_text()}


@pytest.fixture(scope="module")
def rendered(zoo4l, tmp_path_factory):
    from interp.report import write_report

    tmp = tmp_path_factory.mktemp("browser")
    index = write_report(zoo4l, "<script>alert(1)</script> " + PROMPT, tmp / "report", target=" Mary", foil=" John")
    return browse(index, tmp, "attn")


def picker_group(fig) -> str:
    """The layer picker's group name in a notebook figure (unique per figure)."""
    found = re.search(r'<button type="button" data-group="(attn-\w+)"', fig.html)
    assert found, "the figure has no layer picker"
    return found[1]


def assert_every_layer_draws(layers: list[dict], n_layers: int) -> None:
    assert [x["label"] for x in layers] == [f"layer {i}" for i in range(n_layers)]
    for x in layers:
        assert x["shown"] and x["sizes"], f"{x['label']}: panel hidden or without a canvas"
        assert all(w and h for w, h in x["sizes"]), f"{x['label']}: 0x0 canvas {x['sizes']}"
        assert x["ink"] > 1000, f"{x['label']}: zoomed pattern is blank ({x['ink']} drawn pixels)"


def test_no_javascript_error(rendered):
    assert rendered["errors"] == []
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', rendered["dom"], flags=re.S)
    assert errors is not None, "error trap element missing"
    assert errors.group(1).strip() == "", errors.group(1)[:2000]


def test_every_layer_draws_its_zoomed_pattern(rendered):
    assert_every_layer_draws(rendered["layers"], 4)


def test_circuitsvis_views_rendered(rendered):
    dom, page = rendered["dom"], rendered["page"]
    views = re.findall(r'<div id="([\w-]+)" class="cv-view"[^>]*>(.{0,80})', dom, flags=re.S)
    assert views, "no circuitsvis view in the page"
    assert len(views) == page.count('class="cv-view"')
    hidden_layers = {f"attn-layer-{i}" for i in range(1, 4)}  # drawn when their button is clicked
    empty = [v for v, inner in views if not inner.startswith("<") and v not in hidden_layers]
    assert not empty, f"views that circuitsvis did not render: {empty}"
    assert "Head Selector" in dom  # text that only the circuitsvis component writes


def test_every_section_in_dom(rendered):
    dom, page = rendered["dom"], rendered["page"]
    ids = re.findall(r'<section id="([\w-]+)"', page)
    assert {"tokens", "attention"} <= set(ids)
    for sid in ids:
        assert f'<section id="{sid}">' in dom


def test_prompt_script_did_not_run(rendered):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered["dom"]
    assert "<script>alert(1)" not in rendered["dom"]


def test_screenshot_is_not_blank(rendered):
    data = rendered["png"]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 3000)
    assert len(data) > 50_000  # a blank page compresses to a few kB


def test_one_layer_figure_draws(zoo4l, tmp_path):
    from interp.report import figures

    fig = figures.attention(zoo4l, PROMPT, layer=2)
    got = browse(Path(fig.save(tmp_path / "fig.html")), tmp_path, picker_group(fig))
    assert got["errors"] == []
    assert [x["label"] for x in got["layers"]] == ["layer 2"]
    assert got["layers"][0]["ink"] > 1000


@pytest.mark.slow
def test_real_model_every_layer_draws(smollm2, tmp_path):
    """All 30 layers of smollm2-135m's attention figure (the report's picker and views) draw
    (~25 s once the model is loaded; the full report would add the mask-removal sweep)."""
    from interp.report import figures

    fig = figures.attention(smollm2, PROMPT)
    got = browse(Path(fig.save(tmp_path / "fig.html")), tmp_path, picker_group(fig))
    assert got["errors"] == []
    assert_every_layer_draws(got["layers"], smollm2.cfg.n_layers)


def test_research_report_attention_view_draws(zoo4l, tmp_path):
    """`Report.attention` puts the named heads' patterns on an experiment page: one bundle, a tab
    per prompt, every tab draws, and the view holds the model's own patterns for those heads."""
    import json
    import sys

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from experiments.common import Report

    prompts, heads = [PROMPT, "The cat sat on the mat because it was"], [(1, 2), (3, 0)]
    rep = Report("demo", "Demo", "Where do two heads look?", "Capture their patterns.")
    rep.findings.append(rep.attention("attention_heads", zoo4l, prompts, heads, "two heads"))
    out = rep.write(tmp_path / "rep", {"model": "zoo-4l", "seed": 0}, {"summary": ""})
    page = (out / "index.html").read_text()
    assert page.count('id="circuitsvis-bundle"') == 1 and (out / "attention_heads.csv").is_file()
    got = browse(out / "index.html", tmp_path, "view-attention-heads")
    assert got["errors"] == []
    assert [x["label"] for x in got["layers"]] == ["prompt 0", "prompt 1"]
    assert all(x["shown"] and x["ink"] > 1000 for x in got["layers"]), got["layers"]
    props = json.loads(re.search(r'id="view-attention-heads-p0-props">(.*?)</script>', page)[1])
    assert props["attentionHeadNames"] == ["L1H2", "L3H0"]
    _, cache = zoo4l.run_with_cache(PROMPT, names_filter=lambda n: n.endswith("hook_pattern"))
    for got_head, (layer, head) in zip(props["attention"], heads):
        want = cache[f"blocks.{layer}.attn.hook_pattern"][0, head]
        assert np.abs(np.array(got_head) - want.numpy()).max() < 6e-4  # 3 decimals on the page
