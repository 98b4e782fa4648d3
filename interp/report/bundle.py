"""The circuitsvis JavaScript bundle, inlined once per page, and safe render calls into it.

circuitsvis' own HTML imports its bundle from a CDN (blank offline) or pastes the 1.3 MB bundle
into every figure. Here the page carries the installed package's `dist/cdn/iife.js` once, in one
`<script id="circuitsvis-bundle">`, and each view is a `<div>` plus a one-line call to
`CircuitsVis.render` with JSON props in which every `<` is written `\\u003c`, so no token text can
close the script or start markup.

A view that starts hidden (one layer of a layer picker) is deferred: its props wait in a JSON
`<script>` and `__cvDraw(panel)` renders it once the panel is shown. circuitsvis measures its
zoomed pattern when it renders, and a view rendered inside a hidden panel keeps a 0x0 canvas;
`__cvDraw` also redraws such a view (the panel was hidden again before React drew it), and does
nothing while `CircuitsVis` is not defined yet (a notebook cell drawn before the one that carries
the bundle, `interp.report.notebook`).

Example:
    >>> from interp.report.bundle import deferred_call, props_json, render_call
    >>> props_json({"tokens": ["</script>", "<b>"]})
    '{"tokens": ["\\\\u003c/script>", "\\\\u003cb>"]}'
    >>> print(render_call("AttentionHeads", {"tokens": ["a"]}, "view-1"))  # doctest: +ELLIPSIS
    <div id="view-1" class="cv-view"></div><script>CircuitsVis.render("view-1", CircuitsVis.AttentionHeads, {"tokens": ["a"]});</script>
    >>> print(deferred_call("AttentionHeads", {"tokens": ["a"]}, "view-2"))
    <div id="view-2" class="cv-view" data-cv="AttentionHeads"></div><script type="application/json" id="view-2-props">{"tokens": ["a"]}</script>
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

BUNDLE_ID = "circuitsvis-bundle"
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_ELEMENTS = ("AttentionHeads", "AttentionPattern", "AttentionPatterns", "ColoredTokens", "TopkTokens")
_REINSTALL = "pip install --force-reinstall 'circuitsvis>=1.43.3,<1.44'"

# Renders the deferred views inside `root` that have not drawn, or drew into a 0x0 canvas;
# `__cvUnpack` turns packed attention (`packed_attention`) back into nested arrays first.
_DRAW = """<script>
function __cvUnpack(p){var k=p.packedAttention;if(!k){return p;}var b=atob(k.data),o=0,out=[];
 for(var h=0;h<k.heads;h++){var m=[];for(var i=0;i<k.n;i++){var r=[];for(var j=0;j<k.n;j++){
  if(k.causal&&j>i){r.push(0);}else{r.push((b.charCodeAt(o)|(b.charCodeAt(o+1)<<8))/65535);o+=2;}}m.push(r);}out.push(m);}
 delete p.packedAttention;p.attention=out;return p;}
function __cvDraw(root){if(!window.CircuitsVis){return;}root.querySelectorAll('.cv-view[data-cv]').forEach(function(v){
 var blank=[].some.call(v.querySelectorAll('canvas'),function(c){return !c.width||!c.height;});
 if(v.dataset.drawn&&!blank){return;}
 if(v.dataset.drawn){var fresh=v.cloneNode(false);v.replaceWith(fresh);v=fresh;}
 v.dataset.drawn='1';
 var props=__cvUnpack(JSON.parse(document.getElementById(v.id+'-props').textContent));
 CircuitsVis.render(v.id,CircuitsVis[v.dataset.cv],props);});}
</script>"""


def bundle_path() -> Path:
    """Where the installed circuitsvis keeps its self-contained browser bundle.

    Raises:
        InterpError: circuitsvis is not installed, or its bundle file is missing.
    """
    from interp.errors import InterpError

    try:
        import circuitsvis
    except ImportError:
        raise InterpError(f"circuitsvis is not installed: {_REINSTALL}") from None
    path = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    if not path.is_file():
        raise InterpError(f"circuitsvis bundle not found at {path}: {_REINSTALL}")
    return path


@lru_cache(maxsize=1)
def bundle_js() -> str:
    """The bundle's source, safe to put between `<script>` tags (defines `window.CircuitsVis`)."""
    text = bundle_path().read_text(encoding="utf-8")
    text = re.sub(r"//# sourceMappingURL=\S+\s*$", "", text)  # no request for a .map file
    # `<\/` is `</` inside JS strings and regexes, but the HTML parser no longer sees a closing tag.
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I).replace("<!--", "<\\!--")


def bundle_tag() -> str:
    """The one `<script>` element that defines `CircuitsVis` for the whole page, and `__cvDraw`."""
    return f'<script id="{BUNDLE_ID}">\n{bundle_js()}\n</script>{_DRAW}'


def draw_script() -> str:
    """`__cvDraw` alone (a notebook cell whose page got the bundle from an earlier cell)."""
    return _DRAW


def packed_attention(attention, causal: bool) -> dict:
    """Attention [head][query][key] (values in 0-1) as base64 of little-endian uint16 (1/65535
    steps), only key <= query when `causal`: about a third of the JSON text's size. A deferred
    view's props carry it as `packedAttention`; `__cvDraw` unpacks it into `attention`."""
    import base64

    import numpy as np

    arr = np.clip(np.asarray(attention, dtype=np.float64), 0.0, 1.0)
    n = arr.shape[-1]
    keep = np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)
    values = np.rint(arr[:, keep] * 65535).astype("<u2")  # head, kept cells in row-major order
    return {"heads": int(arr.shape[0]), "n": int(n), "causal": bool(causal),
            "data": base64.b64encode(values.tobytes()).decode("ascii")}


def unpack_attention(packed: dict) -> list:
    """The nested [head][query][key] lists back from `packed_attention` (what `__cvUnpack` does)."""
    import base64

    import numpy as np

    n, heads = packed["n"], packed["heads"]
    keep = np.tril(np.ones((n, n), dtype=bool)) if packed["causal"] else np.ones((n, n), dtype=bool)
    out = np.zeros((heads, n, n))
    out[:, keep] = np.frombuffer(base64.b64decode(packed["data"]), dtype="<u2").reshape(heads, -1) / 65535
    return out.tolist()


def props_json(props: dict) -> str:
    """JSON for a script element: `</` and `<!--` cannot end the script or open a comment."""
    return json.dumps(props, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")


def _check(element: str, view_id: str) -> None:
    if element not in _ELEMENTS:
        raise ValueError(f"unknown circuitsvis element {element!r}; one of {', '.join(_ELEMENTS)}")
    if not _ID.match(view_id):
        raise ValueError(f"view id {view_id!r} must be letters, digits, '-' or '_'")


def render_call(element: str, props: dict, view_id: str) -> str:
    """A `<div>` and the script that renders circuitsvis `element` into it with `props` now."""
    _check(element, view_id)
    call = f'CircuitsVis.render("{view_id}", CircuitsVis.{element}, {props_json(props)});'
    return f'<div id="{view_id}" class="cv-view"></div><script>{call}</script>'


def deferred_call(element: str, props: dict, view_id: str) -> str:
    """A `<div>` that `__cvDraw` renders later (when its panel is shown), and its props as JSON."""
    _check(element, view_id)
    return (f'<div id="{view_id}" class="cv-view" data-cv="{element}"></div>'
            f'<script type="application/json" id="{view_id}-props">{props_json(props)}</script>')
