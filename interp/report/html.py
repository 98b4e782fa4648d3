"""Page assembly: escaping, tables, figures and the page shell (one bundle, an error trap).

Every string that comes from a user or a tokenizer goes through `esc` (HTML text) or
`bundle.props_json` (script data). The page registers a `window.onerror` handler before any
other script; errors land in `<pre id="js-errors">`, where a reader (or the browser test) sees them.

Example:
    >>> from interp.report.html import esc, table
    >>> esc('<script>alert(1)</script>')
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> import pandas as pd
    >>> print(table(pd.DataFrame({"word": ["<b>"], "p": [0.5]})))  # doctest: +NORMALIZE_WHITESPACE
    <table><thead><tr><th>word</th><th>p</th></tr></thead><tbody><tr><td>&lt;b&gt;</td><td class="num">0.500</td></tr></tbody></table>
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pandas as pd

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:0 24px 48px}
header{background:#1d2330;color:#fff;padding:20px 24px}header h1{margin:0 0 6px;font-size:24px}
header .prompt{font:16px ui-monospace,Menlo,Consolas,monospace;background:#2c3445;padding:6px 10px;border-radius:4px;
display:inline-block;white-space:pre-wrap}header .meta{color:#b8c0d0;font-size:13px;margin-top:6px}
nav{margin:16px 0;font-size:14px}nav a{margin-right:14px;color:#2456b3;text-decoration:none}
section{background:#fff;border:1px solid #e1e4ea;border-radius:6px;padding:16px 20px;margin:18px 0}
h2{margin:0 0 8px;font-size:20px}h3{font-size:16px;margin:16px 0 6px}
p.lead{color:#465066;margin:0 0 12px}figure{margin:12px 0}figcaption{color:#465066;font-size:13px;margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{padding:3px 10px;border-bottom:1px solid #e8eaef;text-align:left}
th{background:#f0f2f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.tokens span{display:inline-block;font:14px ui-monospace,Menlo,Consolas,monospace;background:#eef1f7;border:1px solid #d5dae5;
border-radius:3px;padding:1px 5px;margin:2px;white-space:pre}.tokens sub{color:#8a93a6;font-size:10px;margin-left:3px}
.picker button{margin:0 6px 6px 0;padding:4px 12px;border:1px solid #b9c2d3;background:#fff;border-radius:4px;cursor:pointer}
.picker button.on{background:#2456b3;color:#fff;border-color:#2456b3}.layer[hidden]{display:none}
.note{color:#8a5a00;background:#fff7e6;border:1px solid #f0d9a8;padding:6px 10px;border-radius:4px;font-size:13px}
#js-errors:empty{display:none}#js-errors{color:#a00;background:#fee;padding:8px}
.grid{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
"""

_TRAP = """<script>
window.__jsErrors = [];
function __report(msg){window.__jsErrors.push(msg);var el=document.getElementById('js-errors');
 if(el){el.textContent=window.__jsErrors.join('\\n');}}
window.onerror=function(m,src,line,col){__report('error: '+m+' at line '+line+':'+col);};
window.addEventListener('unhandledrejection',function(e){__report('promise: '+e.reason);});
</script>"""

# Shows panel i of a group; the shown panel's deferred circuitsvis views draw now that they are
# visible (`bundle.deferred_call`: a view drawn while hidden keeps a 0x0 canvas).
PICKER = """<script>
function __pick(group, i){document.querySelectorAll('[data-group="'+group+'"]').forEach(function(el){
 var on=el.dataset.index===String(i); if(el.tagName==='BUTTON'){el.classList.toggle('on',on);}else{el.hidden=!on;
 if(on&&window.__cvDraw){__cvDraw(el);}}});}
</script>"""


def esc(text) -> str:
    """HTML-escape any value as text (quotes too, so it is safe inside attributes)."""
    return html.escape(str(text), quote=True)


def show_token(token: str) -> str:
    """A token as visible, escaped text: spaces as '·', newlines as '⏎'."""
    return esc(str(token).replace(" ", "·").replace("\n", "⏎"))


_GROUP = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_TOKEN_COLUMNS = {"token", "candidate", "query_token", "key_token", "top next token"}


def _cell(v, is_token: bool = False) -> str:
    if is_token and isinstance(v, str):
        return f"<td><code>{show_token(v)}</code></td>"
    if isinstance(v, float):
        return f'<td class="num">{v:.3f}</td>' if abs(v) >= 1e-3 or v == 0 else f'<td class="num">{v:.2e}</td>'
    if isinstance(v, int) and not isinstance(v, bool):
        return f'<td class="num">{v}</td>'
    return f"<td>{esc(v)}</td>"


def table(df: pd.DataFrame, max_rows: int = 40) -> str:
    """An escaped HTML table of the first `max_rows` rows (the CSV has them all)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    tok = [c in _TOKEN_COLUMNS for c in df.columns]
    rows = "".join("<tr>" + "".join(_cell(v.item() if hasattr(v, "item") else v, t) for v, t in zip(row, tok)) + "</tr>"
                   for row in df.head(max_rows).itertuples(index=False))
    more = f'<p class="note">first {max_rows} of {len(df)} rows; all in the CSV</p>' if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def tokens_strip(tokens: list[str]) -> str:
    """The prompt's tokens as boxes with their positions."""
    spans = "".join(f"<span>{show_token(t)}<sub>{i}</sub></span>" for i, t in enumerate(tokens))
    return f'<div class="tokens">{spans}</div>'


def figure(svg_or_html: str, caption: str) -> str:
    """A figure with a caption that says what it shows."""
    return f"<figure>{svg_or_html}<figcaption>{esc(caption)}</figcaption></figure>"


def picker(group: str, labels: list[str], panels: list[str]) -> str:
    """Buttons that show one of `panels` at a time (the first at load, which draws its views)."""
    if not _GROUP.match(group):
        raise ValueError(f"picker group {group!r} must be letters, digits, '-' or '_'")
    buttons = "".join(f'<button type="button" data-group="{esc(group)}" data-index="{i}" class="{"on" if i == 0 else ""}" '
                      f'onclick="__pick(\'{esc(group)}\',{i})">{esc(label)}</button>' for i, label in enumerate(labels))
    divs = "".join(f'<div class="layer" data-group="{esc(group)}" data-index="{i}"{"" if i == 0 else " hidden"}>{p}</div>'
                   for i, p in enumerate(panels))
    return f'<div class="picker">{buttons}</div>{divs}<script>__pick("{group}",0);</script>'


@dataclass
class Section:
    """One report section: an anchor id, a heading, and its (already escaped) HTML body."""

    id: str
    title: str
    body: str
    summary: str = ""  # the same finding in words, for README.md

    def html(self) -> str:
        return f'<section id="{esc(self.id)}"><h2>{esc(self.title)}</h2>{self.body}</section>'


def page(title: str, prompt: str, meta: str, sections: list[Section], bundle: str = "") -> str:
    """A complete self-contained HTML document; `bundle` is the one circuitsvis script tag."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(s.html() for s in sections)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="generator" content="interp">'
            f"<title>{esc(title)}</title><style>{_CSS}</style>{_TRAP}{PICKER}</head>\n<body>"
            f'<header><h1>{esc(title)}</h1><div class="prompt">{esc(prompt)}</div>'
            f'<div class="meta">{esc(meta)}</div></header><main><pre id="js-errors"></pre>'
            f"<nav>{nav}</nav>\n{bundle}\n{body}\n</main></body></html>\n")
