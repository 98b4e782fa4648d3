"""The analyses a report includes: each one's tables (computed) and its section (drawn from CSVs).

An entry names its analysis module; when that module is not installed the report leaves its
section out (no placeholder data). When an analysis refuses the model or prompt (an
`InterpError`, e.g. untrained unembedding), its section says why in one line.

Example:
    >>> from interp.report.analyses import available
    >>> isinstance(available(), list)
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from interp.errors import InterpError
from interp.report.html import Section, esc


@dataclass
class Entry:
    """An analysis wired into the report."""

    key: str
    title: str
    module: str  # the analysis module that must import for the section to appear
    compute: Callable  # (model, prompt, target, foil, seed) -> {csv name: DataFrame}
    section: Callable  # ({csv name: DataFrame read back}) -> Section or [Section, ...]


@dataclass
class Result:
    entry: Entry
    tables: dict = field(default_factory=dict)
    error: str = ""


_PARTS = ("sampling", "attention", "ablation", "attribution", "embeddings")  # interp.report.parts.<name>, in page order


def _entries() -> list[Entry]:
    """Every analysis section wired into the report, in page order."""
    out = []
    for name in _PARTS:
        part = importlib.import_module(f"interp.report.parts.{name}")
        out.append(Entry(part.KEY, part.TITLE, part.MODULE, part.compute, part.section))
    return out


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def available() -> list[str]:
    """Keys of the analysis sections whose modules are installed."""
    return [e.key for e in _entries() if _installed(e.module)]


def run_all(model, prompt: str, target: str | None, foil: str | None, seed: int, bar=None) -> list[Result]:
    """Compute every installed analysis; a refusal becomes a one-line note in its section.
    `bar` (an `interp.progress.bar`) advances one step per analysis, named as it runs."""
    results = []
    for e in _entries():
        if not _installed(e.module):
            continue
        if bar is not None:
            bar.set_postfix_str(e.key)
        try:
            results.append(Result(e, e.compute(model, prompt, target, foil, seed)))
        except InterpError as err:
            results.append(Result(e, error=str(err)))
        if bar is not None:
            bar.update(1)
    return results


ORDER = ("tokens", "temperature", "attention", "mask", "ablation", "dla", "logit-lens", "embeddings")


def ordered(secs: list[Section]) -> list[Section]:
    """Sections in page order (unknown ids last, in their given order)."""
    return sorted(secs, key=lambda s: ORDER.index(s.id) if s.id in ORDER else len(ORDER))


def sections(results: list[Result], back: dict[str, pd.DataFrame]) -> list[Section]:
    """Each analysis's section, drawn from its CSVs as read back."""
    out = []
    for r in results:
        if r.error:
            out.append(Section(r.entry.key, r.entry.title, f'<p class="note">not run: {esc(r.error)}</p>',
                               f"Not run: {r.error}"))
        else:
            made = r.entry.section({k: back[k] for k in r.tables})
            out.extend(made if isinstance(made, list) else [made])
    return out


def mask_sections(model, prompt: str, layer: int | None, head: int | None) -> list[Section]:
    """The masked-vs-unmasked comparison for the attention page (when interp.attention exists)."""
    if not _installed("interp.attention"):
        return []
    from interp.report.parts import attention

    try:
        return attention.page_sections(model, prompt, layer, head)
    except InterpError as err:
        return [Section(attention.KEY, attention.TITLE, f'<p class="note">not run: {esc(str(err))}</p>')]
