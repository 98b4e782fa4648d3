"""What every experiment shares: its output directory, tidy CSVs, figures, README, index.html.

An experiment computes DataFrames, hands them to `Report.table` (rounded, sorted, written as
CSV and read back), draws its figures from the read-back tables (`Report.figure`), says its
findings in Markdown built from those tables, and calls `Report.write`, which assembles
`index.html` with `interp.report.html.page`, `README.md` and `config.json`, and renames the
directory into place atomically.

Figures are static SVG. `Report.attention(name, model, prompts, heads, caption)` adds an
interactive circuitsvis view of the named heads (one tab per prompt, at most 8) to the page; its
patterns are kept as `name.csv` like any table, and the page then carries the circuitsvis
bundle once (a page without attention views has none).

Long steps show progress on stderr: `steps(items, "what")` wraps a loop, `progress(total, "what")`
is a bar to `.update()`; both come from `interp.progress.bar` (silent for the first 2 s, off the
terminal and with INTERP_QUIET=1 or `interp --quiet`).

`cli(main, Config, ...)` is each script's command line: one --option per Config field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

DECIMALS = 6
PACKAGES = ("interp", "torch", "transformer-lens", "transformers", "pandas", "numpy", "matplotlib", "gensim")


def parse_config(config_cls, doc: str, example: str, argv=None, choices: dict | None = None):
    """A Config from the command line: one --option per field (`n_eval` -> `--n-eval`), typed
    and defaulted like the field; a list field takes several values; `choices` limits fields."""
    intro = " ".join(doc.strip().split("\n\n")[0].split())  # the first paragraph, one line
    p = argparse.ArgumentParser(description=intro, epilog=f"example: {example}")
    default = config_cls()
    for f in dataclasses.fields(config_cls):
        value = getattr(default, f.name)
        opt = "--" + f.name.replace("_", "-")
        if isinstance(value, list):
            p.add_argument(opt, nargs="+", type=type(value[0]), default=value)
        else:
            p.add_argument(opt, type=type(value), default=value, choices=(choices or {}).get(f.name))
    return config_cls(**vars(p.parse_args(argv)))


def cli(main, config_cls, doc: str, example: str, argv=None, choices: dict | None = None) -> None:
    """Run one experiment as a script: parse its Config, keep freed memory for reuse
    (`interp.tune_allocator`), print the headline `main` returns."""
    from interp.allocator import tune

    cfg = parse_config(config_cls, doc, example, argv, choices)
    tune()
    print(main(cfg))


def versions() -> dict:
    """Installed versions of the packages that produced a report."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def tidy(df: pd.DataFrame, sort: list[str] | None = None) -> pd.DataFrame:
    """Floats rounded to DECIMALS (and -0.0 made 0.0), rows in a fixed order, a fresh index."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].round(DECIMALS) + 0.0
    if sort:
        df = df.sort_values(sort, kind="mergesort")
    return df.reset_index(drop=True)


def is_zoo(model_name: str) -> bool:
    """Whether `model_name` is one of interp's own zoo models (they speak their training corpus)."""
    return model_name.startswith("zoo-")


def fmt(x, digits: int = 3) -> str:
    """A number for prose: integers as is, floats to `digits` significant figures."""
    if isinstance(x, (int,)) or (hasattr(x, "is_integer") and float(x).is_integer() and abs(x) >= 10):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def progress(total: int, desc: str, unit: str = "step"):
    """A progress bar for `total` steps of an experiment (a context manager; call `.update(n)`)."""
    from interp.progress import bar

    return bar(total, desc, unit)


def steps(items, desc: str, unit: str = "step"):
    """Iterate over `items` with a progress bar (silent under INTERP_QUIET=1 and off a terminal)."""
    items = list(items)
    with progress(len(items), desc, unit) as b:
        for item in items:
            yield item
            b.update(1)


def head_patterns(model, prompts, heads) -> pd.DataFrame:
    """prompt, layer, head, query, key, query_token, key_token, value: the attention patterns of
    the named heads [(layer, head), ...] on each prompt (a string, a list, or a token tensor).

    Raises:
        InterpError: a layer or head out of range, or no heads.
    """
    from interp.activations import capture
    from interp.errors import InterpError, check_range, model_name
    from interp.report.tables import is_causal, pattern_table

    if not heads:
        raise InterpError("attention view: name at least one head as (layer, head)")
    name = model_name(model)
    heads = [(check_range("layer", int(l), model.cfg.n_layers, name), check_range("head", int(h), model.cfg.n_heads, name))
             for l, h in heads]
    layers = sorted({l for l, _ in heads})
    acts = capture(model, [prompts] if isinstance(prompts, str) else prompts,
                   names=[f"blocks.{l}.attn.hook_pattern" for l in layers])
    frames = []
    for b, (toks, n) in enumerate(zip(acts.tokens, acts.lengths)):
        df = pattern_table({l: acts[f"blocks.{l}.attn.hook_pattern"][b] for l in layers}, toks[:n], is_causal(model))
        frames.append(df[df.set_index(["layer", "head"]).index.isin(heads)].assign(prompt=b))
    cols = ["prompt", "layer", "head", "query", "key", "query_token", "key_token", "value"]
    return pd.concat(frames, ignore_index=True)[cols]


def pct(x) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * float(x):.1f}%"


@dataclass
class Report:
    """Collects one experiment's tables, figures and findings, then writes them in one go.

    Args:
        name: the experiment's name (the folder under reports/).
        title: the page title.
        question: what the experiment asks, one paragraph.
        method: how it answers, Markdown.

    `table` keeps a CSV, `figure` an SVG, `show` a table on the page, and
    `attention(name, model, prompts, heads=[(layer, head), ...], caption)` an interactive
    circuitsvis view of those heads on each prompt (the page then inlines the bundle once), e.g.
    `rep.findings.append(rep.attention("attention_name_movers", model, prompts[:4], [(9, 6), (9, 9)],
    "name movers attend from the end to the indirect object"))`.
    """

    name: str
    title: str
    question: str
    method: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, tuple[str, str]] = field(default_factory=dict)  # file -> (svg, caption)
    findings: list[str] = field(default_factory=list)
    html_tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    views: list[tuple[str, str]] = field(default_factory=list)  # (html, caption) of attention views

    def table(self, name: str, df: pd.DataFrame, sort: list[str] | None = None) -> pd.DataFrame:
        """Keep `df` as `name.csv` (rounded, sorted) and return it as read back from CSV text."""
        import io

        from interp.report.build import read_csv

        text = tidy(df, sort).to_csv(index=False, lineterminator="\n")
        self.tables[name] = text
        return read_csv(io.StringIO(text))

    def figure(self, name: str, svg: str, caption: str) -> str:
        """Keep a figure as `name.svg`; returns the Markdown that shows it."""
        self.figures[f"{name}.svg"] = (svg, caption)
        return f"![{caption}]({name}.svg)"

    def attention(self, name: str, model, prompt, heads: list[tuple[int, int]], caption: str) -> str:
        """Put an interactive attention view of `heads` [(layer, head), ...] on the page: one tab
        per prompt (`prompt` a string, a list or a token tensor; the first 8 shown), patterns
        kept as `name.csv`. Returns Markdown for the findings that points to the page."""
        from interp.report.sections import head_views
        from interp.report.tables import is_causal

        back = self.table(name, head_patterns(model, prompt, heads), sort=["prompt", "layer", "head", "query", "key"])
        group = "view-" + "".join(c if c.isalnum() else "-" for c in name)
        self.views.append((head_views(back, group, is_causal(model)), caption))
        names = ", ".join(f"L{l}H{h}" for l, h in heads)
        return f"Interactive attention of {names} on {back['prompt'].nunique()} prompt(s): `index.html` ({caption})"

    def show(self, caption: str, df: pd.DataFrame) -> None:
        """Show a (small) table on the HTML page."""
        self.html_tables.append((caption, df))

    def write(self, out: str | Path, config: dict, headline: dict) -> Path:
        """Write README.md, index.html, config.json, the CSVs and figures to `out` (replaced)."""
        from interp.report.write import atomic_dir

        out = Path(out)
        with atomic_dir(out, force=True) as tmp:
            for name, text in self.tables.items():
                (tmp / f"{name}.csv").write_text(text, encoding="utf-8")
            for name, (svg, _) in self.figures.items():
                (tmp / name).write_text(svg, encoding="utf-8")
            (tmp / "README.md").write_text(self.readme(), encoding="utf-8")
            (tmp / "index.html").write_text(self.html(config), encoding="utf-8")
            (tmp / "config.json").write_text(json.dumps({**config, "headline": headline}, indent=2,
                                                        sort_keys=True) + "\n", encoding="utf-8")
        return out

    def readme(self) -> str:
        parts = [f"# {self.title}\n", f"## Question\n\n{self.question}\n", f"## Method\n\n{self.method}\n",
                 "## Findings\n", *[f"{f}\n" for f in self.findings],
                 "## Files\n", "\n".join([f"- `{n}.csv`" for n in sorted(self.tables)] +
                                         ["- `index.html` (self-contained page)", "- `config.json`"]) + "\n"]
        return "\n".join(parts)

    def html(self, config: dict) -> str:
        from interp.report.bundle import bundle_tag
        from interp.report.html import Section, figure, page, table

        secs = [Section("question", "Question", _para(self.question)),
                Section("method", "Method", _para(self.method)),
                Section("findings", "Findings", "".join(_para(f) for f in self.findings if not f.startswith("!["))),
                Section("figures", "Figures", "".join(figure(svg, cap) for svg, cap in self.figures.values())),
                Section("attention", "Attention", "".join(figure(v, cap) for v, cap in self.views)),
                Section("tables", "Tables", "".join(f"<h3>{_esc(c)}</h3>" + table(df) for c, df in self.html_tables))]
        meta = f"model {config.get('model')}, seed {config.get('seed')}"
        return page(self.title, self.name, meta, [s for s in secs if s.body], bundle_tag() if self.views else "")


def _esc(text: str) -> str:
    from interp.report.html import esc

    return esc(text)


def _para(markdown: str) -> str:
    """Markdown paragraphs as escaped HTML paragraphs (formatting marks kept as plain text)."""
    blocks = [b.strip() for b in markdown.split("\n\n") if b.strip()]
    return "".join(f"<p>{_esc(b.replace('**', '').replace('`', ''))}</p>" for b in blocks)


def config_dict(cfg, model: str | list[str]) -> dict:
    """config.json content: the Config's fields, the model(s) and package versions."""
    d = asdict(cfg)
    d.pop("out", None)
    return {"config": d, "model": model, "seed": getattr(cfg, "seed", None), "versions": versions()}


def clean_out(out: Path) -> None:
    """Remove a stale output directory (used by tests)."""
    shutil.rmtree(out, ignore_errors=True)


def histogram(values, title: str, xlabel: str, marks: dict[str, float] | None = None, bins: int = 30) -> str:
    """An SVG histogram of `values`, with labelled vertical lines at `marks` (label -> x).

    A helper for the experiments (interp.report.plots has no histogram yet).
    """
    import io

    import matplotlib
    from matplotlib.figure import Figure

    style = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
             "svg.hashsalt": "interp"}
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(5.6, 3.2), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.hist(list(values), bins=bins, color="#2456b3", alpha=0.8)
        for i, (label, x) in enumerate((marks or {}).items()):
            ax.axvline(x, color=("#c0392b", "#27ae60", "#8e44ad")[i % 3], lw=1.4, ls="--", label=label)
        if marks:
            ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        ax.set_title(title)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]
