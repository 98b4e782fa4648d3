"""The example notebook executes (nbclient), its saved outputs carry the circuitsvis bundle once and
render offline in headless Chromium, and a notebook of 10 attention cells stays under 3 MB."""

import json
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' (nbclient, nbformat, ipykernel)")
nbclient = pytest.importorskip("nbclient")

EXAMPLE = Path(__file__).parent.parent / "examples" / "quickstart.ipynb"
BUNDLE = 'id="circuitsvis-bundle"'
PROMPTS = ["When Mary and John went to the store, John gave a drink to", "The cat sat on the mat because it",
           "Alice handed Bob the keys, and Bob thanked", "One two three four five six seven", "In the morning the sun",
           "She opened the door and saw", "The capital of France is", "If it rains tomorrow we will",
           "My favourite colour is blue and his is", "The old man and the sea"]


def execute(nb, tmp: Path):
    """Run every cell in a fresh kernel of this interpreter (one torch thread, bars off)."""
    import os

    os.environ.update(OMP_NUM_THREADS="1", INTERP_QUIET="1")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}).execute()
    return nb


def html_outputs(nb) -> list[str]:
    return ["".join(o["data"]["text/html"]) for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "text/html" in o.get("data", {})]


def as_page(nb) -> str:
    """The notebook's HTML outputs in order in one document, as a notebook front end shows them."""
    body = "\n".join(f'<div class="output">{h}</div>' for h in html_outputs(nb))
    return f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb")
    nb = execute(nbformat.read(EXAMPLE, as_version=4), tmp)
    path = tmp / "executed.ipynb"
    nbformat.write(nb, path)
    return nb, path


def test_example_notebook_executes(executed):
    nb, _ = executed
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for c in code for o in c.get("outputs", [])]
    assert any(t.startswith("Activations(") for t in texts)  # the capture's compact repr
    assert any(t.startswith("Attention: layers 0-1 x 4 heads") for t in texts)
    assert any(t.startswith("DLA:") for t in texts) and any(t.startswith("Sweep:") for t in texts)
    assert any(t.startswith("Logit lens:") for t in texts)
    assert max(map(len, texts)) < 2000  # no tensor or HTML dumped as text


def test_saved_notebook_has_the_bundle_once(executed):
    _, path = executed
    text = path.read_text()
    saved = nbformat.read(path, as_version=4)
    outputs = html_outputs(saved)
    assert sum(h.count(BUNDLE) for h in outputs) == 1
    assert text.count('id=\\"circuitsvis-bundle\\"') == 1 and text.count("var CircuitsVis=") == 1
    views = sum(len(re.findall(r'class="cv-root"', h)) for h in outputs)
    assert views == 3  # three attention cells: one carries the bundle, two draw from it
    assert not re.search(r"""(src|href)=["']?https?://""", text)


@pytest.mark.parametrize("model", ["zoo-2l", pytest.param("smollm2-135m", marks=pytest.mark.slow)])
def test_ten_attention_cells_under_3_mb(tmp_path, model):
    """Measured: zoo-2l 1,431,224 bytes; smollm2-135m (30 layers x 9 heads, every layer) 1,865,335 bytes."""
    load = f"import interp\nfrom interp import display\nmodel = interp.load({model!r}, progress=False)"
    cells = [nbformat.v4.new_code_cell(load)] + [nbformat.v4.new_code_cell(f"display.attention(model, {p!r})")
                                                 for p in PROMPTS]
    nb = execute(nbformat.v4.new_notebook(cells=cells), tmp_path)
    path = tmp_path / "ten.ipynb"
    nbformat.write(nb, path)
    size = path.stat().st_size
    print(f"10 attention cells of {model}: {size} bytes")
    assert size < 3_000_000, f"{size} bytes"
    assert sum(h.count(BUNDLE) for h in html_outputs(nb)) == 1
    assert len(html_outputs(nb)) == 10


@pytest.mark.browser
def test_saved_outputs_render_offline(executed, tmp_path):
    """Every attention view in the saved notebook draws (the later ones from the first's bundle),
    and every layer of a view that did not carry the bundle draws when picked."""
    from test_browser import browse

    nb = nbformat.read(executed[1], as_version=4)
    page = tmp_path / "nb.html"
    page.write_text(as_page(nb), encoding="utf-8")
    groups = re.findall(r'<button type="button" data-group="(attn-\w+)"', page.read_text())
    got = browse(page, tmp_path, groups[-1])  # the last view: drawn from an earlier cell's bundle
    assert got["errors"] == []
    notes = re.findall(r'<p class="cv-note"[^>]*>([^<]*)', got["dom"])
    assert notes == []
    assert got["layers"] and all(x["ink"] > 1000 for x in got["layers"]), got["layers"]


@pytest.mark.browser
def test_cleared_bundle_cell_is_reported(executed, tmp_path):
    """With the output that carried the bundle cleared, the other views say what to run."""
    from test_browser import browse

    nb = nbformat.read(executed[1], as_version=4)
    for cell in nb.cells:
        if any(BUNDLE in "".join(o.get("data", {}).get("text/html", "")) for o in cell.get("outputs", [])):
            cell.outputs = []
    page = tmp_path / "cleared.html"
    page.write_text(as_page(nb), encoding="utf-8")
    groups = re.findall(r'<button type="button" data-group="(attn-\w+)"', page.read_text())
    got = browse(page, tmp_path, groups[-1])  # waits 10 s for views that never draw
    notes = re.findall(r'<p class="cv-note"[^>]*>([^<]*)', got["dom"])
    assert len(notes) == 2 and all("interp.display.bundle()" in n for n in notes), notes
    assert got["errors"] == []


def test_example_is_saved_without_outputs():
    nb = json.loads(EXAMPLE.read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
