"""The report renders in headless Chromium with the network off: circuitsvis views, every
section, no JavaScript error, and a non-trivial screenshot."""

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PROMPT = "When Mary and John went to the store, John gave a drink to"


def chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (as .ci/run does)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
             f"--user-data-dir={tmp / 'profile'}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000", "--window-size=1200,3000"]
    return subprocess.run([CHROMIUM, *flags, *extra, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(zoo2l, tmp_path_factory):
    from interp.report import write_report

    tmp = tmp_path_factory.mktemp("browser")
    index = write_report(zoo2l, "<script>alert(1)</script> " + PROMPT, tmp / "report", target=" Mary", foil=" John")
    dom = chromium(index, tmp, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = chromium(index, tmp, f"--screenshot={tmp / 'report.png'}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    return dom.stdout, tmp / "report.png", index.read_text()


def test_no_javascript_error(rendered):
    dom, _, _ = rendered
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', dom, flags=re.S)
    assert errors is not None, "error trap element missing"
    assert errors.group(1).strip() == "", errors.group(1)[:2000]


def test_circuitsvis_views_rendered(rendered):
    dom, _, page = rendered
    views = re.findall(r'<div id="([\w-]+)" class="cv-view">(.{0,80})', dom, flags=re.S)
    assert views, "no circuitsvis view in the page"
    assert len(views) == page.count('class="cv-view"')
    empty = [v for v, inner in views if not inner.startswith("<")]
    assert not empty, f"views that circuitsvis did not render: {empty}"
    assert "Head Selector" in dom  # text that only the circuitsvis component writes


def test_every_section_in_dom(rendered):
    dom, _, page = rendered
    ids = re.findall(r'<section id="([\w-]+)"', page)
    assert {"tokens", "attention"} <= set(ids)
    for sid in ids:
        assert f'<section id="{sid}">' in dom


def test_prompt_script_did_not_run(rendered):
    dom, _, _ = rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script>alert(1)" not in dom


def test_screenshot_is_not_blank(rendered):
    _, png, _ = rendered
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 3000)
    assert len(data) > 50_000  # a blank page compresses to a few kB
