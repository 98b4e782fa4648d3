"""Notebook views: objects Jupyter shows inline (`_repr_html_`), with the circuitsvis bundle once.

A `View` is HTML plus the tidy table it was drawn from and a one-line summary (its `repr`: names,
shapes, tokens, never the HTML). Static views (SVG figures) are plain HTML. Interactive views
(circuitsvis attention) need the 1.3 MB bundle, which goes into the notebook once:

- the first interactive view shown in a kernel carries `<script id="circuitsvis-bundle">`; later
  views carry only their data and a small script that draws them as soon as `CircuitsVis` is
  defined on the page. Saved outputs keep that order, so a saved notebook reopened offline draws
  every view from the one copy (no CDN, no kernel needed).
- the bundle goes out again when the cell that carried it runs again (its old output, and the
  bundle with it, is replaced) or was deleted, where the front end says so (JupyterLab sends the
  cell id and the deleted cells with each execution), and after a kernel restart.
- a cleared or deleted carrier the kernel cannot see is reported in the page: a view whose page
  has no bundle says so after a few seconds, and a view drawn from a bundle whose element left the
  page warns that the saved notebook will not draw it. Either way the fix is one cell,
  `interp.display.bundle()`, which always carries the bundle.
- `bundle_mode("every")` puts the bundle in every interactive view, for front ends that show each
  output in its own frame (Google Colab); `reset()` forgets which cell carried it.

Example:
    >>> from interp.report.notebook import View, reset
    >>> reset()
    >>> v = View("demo", "<p>hi</p>", summary="demo view")
    >>> v._repr_html_(), repr(v)
    ('<p>hi</p>', 'demo view')
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from interp.report.bundle import BUNDLE_ID, bundle_tag, draw_script
from interp.report.html import PICKER, Section, page

# The layer picker's buttons in a notebook (a report page has these in its own style sheet).
_STYLE = ("<style>.cv-root .picker button{margin:0 6px 6px 0;padding:3px 10px;border:1px solid #b9c2d3;"
          "background:#fff;border-radius:4px;cursor:pointer}.cv-root .picker button.on{background:#2456b3;"
          "color:#fff;border-color:#2456b3}.cv-root .note{color:#8a5a00}</style>")

# Draws the visible panels of view `root` once CircuitsVis is defined; says so on the page when
# it never is (the bundle's cell was cleared) or when its bundle element left the page.
_WAIT = """<script>(function(){var root=document.getElementById("%s"),t0=Date.now(),note=null;
function say(m){if(!note){note=document.createElement('p');note.className='cv-note';
 note.style.cssText='color:#8a5a00;background:#fff7e6;padding:4px 8px';root.prepend(note);}note.textContent=m;}
function draw(){var ps=[].filter.call(root.querySelectorAll('.layer'),function(p){return !p.hidden;});
 (ps.length?ps:[root]).forEach(__cvDraw);}
(function wait(){if(window.CircuitsVis){if(note){note.remove();note=null;}draw();
  if(!document.getElementById('%s')){say('This view drew from a circuitsvis bundle that is no longer on the '+
  'page (its cell output was cleared): the saved notebook will not draw it. Run interp.display.bundle() in a cell.');}
  return;}
 if(Date.now()-t0>4000){say('The circuitsvis bundle is not on this page (the output that carried it was cleared '+
  'or deleted): run interp.display.bundle() in a cell above, then re-run this one.');}
 if(Date.now()-t0<600000){setTimeout(wait,100);}})();})();</script>"""


@dataclass
class _Ledger:
    """Which cell carried the bundle in this kernel: (cell id or None, execution count)."""

    carrier: tuple | None = None
    every: bool = False

    def take(self) -> bool:
        """Whether the view being shown now carries the bundle (and becomes the carrier)."""
        cell, count, deleted = _cell()
        rerun = self.carrier is not None and self.carrier[0] is not None and (
            self.carrier[0] in deleted or (self.carrier[0] == cell and self.carrier[1] != count))
        if self.every or self.carrier is None or rerun:
            self.carrier = (cell, count)
            return True
        return False


_LEDGER = _Ledger()


def _cell() -> tuple[str | None, int | None, list]:
    """The running cell's id (JupyterLab sends it), execution count and the cells deleted since."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None, None, []
    ip = get_ipython()
    if ip is None:
        return None, None, []
    meta = (getattr(ip, "parent_header", None) or {}).get("metadata", {}) or {}
    return meta.get("cellId"), getattr(ip, "execution_count", None), list(meta.get("deletedCells") or [])


def reset() -> None:
    """Forget which cell carried the bundle: the next interactive view carries it again."""
    _LEDGER.carrier = None


def bundle_mode(mode: Literal["once", "every"]) -> None:
    """"once" (default): the bundle in one cell per notebook; "every": in every interactive view."""
    from interp.errors import InterpError

    if mode not in ("once", "every"):
        raise InterpError(f"bundle mode {mode!r} must be 'once' or 'every'")
    _LEDGER.every = mode == "every"


@dataclass(repr=False)
class View:
    """HTML that Jupyter shows inline, the table it was drawn from, and a one-line summary.

    Attributes:
        title: what the view shows.
        html: the view's HTML without the circuitsvis bundle.
        table: the tidy DataFrame it was drawn from (None for the bundle itself).
        interactive: it holds circuitsvis views (needs the bundle on the page).
        summary: the repr: names, shapes and tokens, never the HTML.
    """

    title: str
    html: str
    table: pd.DataFrame | None = None
    interactive: bool = False
    summary: str = ""
    root: str = field(default_factory=lambda: f"view-{uuid.uuid4().hex[:10]}")

    def _repr_html_(self) -> str:
        if not self.interactive:
            return self.html
        carry = bundle_tag() if _LEDGER.take() else draw_script()
        return (f'{carry}{PICKER}{_STYLE}<div id="{self.root}" class="cv-root">{self.html}</div>'
                + _WAIT % (self.root, BUNDLE_ID))

    def __repr__(self) -> str:
        return self.summary or f"View({self.title!r})"

    def save(self, path: str | Path) -> str:
        """Write the view as a self-contained page (the bundle inlined if it needs it), atomically."""
        from interp.report.write import atomic_file

        body = Section("figure", self.title, self.html)
        return str(atomic_file(path, page(self.title, "", "", [body], bundle_tag() if self.interactive else "")))


@dataclass(repr=False)
class _Bundle(View):
    """The circuitsvis bundle alone: put it back on a page whose carrier cell was cleared."""

    def _repr_html_(self) -> str:
        _LEDGER.carrier = _cell()[:2]
        return bundle_tag()


def bundle() -> View:
    """A view that always carries the circuitsvis bundle (and becomes the notebook's carrier)."""
    return _Bundle("circuitsvis bundle", "", summary="circuitsvis bundle (1 per notebook)")
