"""Reports: self-contained offline HTML pages and research reports built from analysis tables.

    write_report(model, prompt, out, target=None, foil=None, force=False, seed=0) -> index.html path
    attention_page(model, prompt, out, layer=None, head=None)                  -> page path
    figures.attention(model, prompt), figures.predictions(...), ...            -> notebook objects

The circuitsvis JavaScript bundle is inlined once per page (no CDN); every token and prompt
string is escaped; a report directory is written to a temporary sibling and renamed into place.
Modules: bundle (circuitsvis), html (page, escaping), plots (matplotlib from tables), tables
(tokens, predictions, attention), sections, analyses (which analysis feeds which section),
write (atomic writes), build (the two entry points), figures (notebook API).
"""

__all__ = ["write_report", "attention_page", "figures"]


def __getattr__(name):
    import importlib

    if name in ("write_report", "attention_page"):
        return getattr(importlib.import_module("interp.report.build"), name)
    if name == "figures":
        return importlib.import_module("interp.report.figures")
    raise AttributeError(f"module 'interp.report' has no attribute {name!r}")
