"""One-command research reports: tables -> CSVs -> figures and words -> index.html + README.md.

`write_report` runs the prompt once for tokens, predictions and attention, then each analysis
module that is installed (`interp.report.analyses`), writes every table as a CSV, reads the CSVs
back and draws the page and README from them, all inside a temporary directory that is renamed
into place at the end. A progress bar on stderr names each step (`interp.progress.bar`: after
2 s, on a terminal, not under `--quiet`). `attention_page` writes the single attention page of `interp attention`.

Example:
    >>> import interp, tempfile, pathlib
    >>> from interp.report import attention_page
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "attn.html"
    >>> path = attention_page(interp.load("zoo-2l"), "When Mary and John went", out)
    >>> text = pathlib.Path(path).read_text()
    >>> text.count('id="circuitsvis-bundle"'), "https://" in text.split("<script")[0]
    (1, False)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from interp.errors import InterpError
from interp.progress import bar
from interp.report import analyses, sections, tables
from interp.report.bundle import bundle_tag
from interp.report.html import Section, page
from interp.report.write import atomic_dir, atomic_file, check_page_target, check_target
from interp.tokens import token_id

_TEXT_COLUMNS = ("token", "candidate", "query_token", "key_token", "role", "word", "label", "prompt")


def _model(model):
    """A model from `interp.load`, for a name, a path or a bridge booted by hand (gets `.info`)."""
    from interp.models import load

    return load(model)


def _meta(model, prompt: str) -> str:
    i = model.info
    weights = f"; weights: {i.weights}" if getattr(i, "weights", "") else ""
    return f"{i.name} ({i.architecture}): {i.n_layers} layers × {i.n_heads} heads, d_model {i.d_model}, vocab {i.d_vocab}{weights}"


def read_csv(path: Path) -> pd.DataFrame:
    """A report CSV read back exactly: tokens such as 'nan' or 'None' stay strings."""
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for c in df.columns:
        if c in _TEXT_COLUMNS:
            df[c] = df[c].fillna("").astype(str)
    return df


def base_tables(model, prompt: str, target: str | None, foil: str | None) -> tuple[dict, str]:
    """{name: DataFrame} for tokens, predictions, attention (and target_foil), and a note."""
    from interp.models import require_trained

    acts = tables.run(model, prompt)
    out = {"tokens": tables.tokens_table(acts), "attention": tables.attention_table(model, acts)}
    try:
        require_trained(model, "next-token prediction")
    except InterpError as e:
        return out, str(e)
    out["predictions"] = tables.predictions_table(model, acts, k=10)
    if target is not None:
        out["target_foil"] = tables.target_foil_table(model, acts, target, foil)
    return out, ""


def base_sections(t: dict, causal: bool, note: str) -> list[Section]:
    """The sections built from the report's own tables."""
    preds = t.get("predictions", pd.DataFrame(columns=["pos", "token", "rank", "candidate", "prob", "logprob"]))
    return [sections.tokens_section(t["tokens"], preds, t.get("target_foil"), note=note),
            sections.attention_section(t["attention"], t["tokens"]["token"].tolist(), causal)]


def _check_args(prompt: str, target, foil) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InterpError("empty prompt: give a non-empty --prompt")
    if (target is None) != (foil is None):
        raise InterpError("give both --target and --foil (e.g. --target ' Mary' --foil ' John'), or neither")


def write_report(model, prompt: str, out: str | Path, target: str | None = None, foil: str | None = None,
                 force: bool = False, seed: int = 0) -> Path:
    """Write `out/index.html`, `out/README.md`, one CSV per table and `out/config.json`.

    Args:
        model: a model from `interp.load`, or a name to load.
        prompt: the text to analyse.
        out: the report directory (created; an existing non-empty one needs `force=True`).
        target, foil: optional single tokens whose log-prob difference the report explains.
        force: replace an existing non-empty `out`.
        seed: seed for the analyses that sample.

    Returns:
        The path of index.html.

    Raises:
        InterpError: bad prompt/target/foil, `out` not empty without force, or not writable.
    """
    _check_args(prompt, target, foil)
    check_target(out, force)
    model = _model(model)
    if target is not None:
        token_id(model, target, "target"), token_id(model, foil, "foil")
    with bar(len(analyses.available()) + 2, f"report on {model.info.name}", unit="step") as progress:
        progress.set_postfix_str("tokens, predictions, attention")
        base, note = base_tables(model, prompt, target, foil)
        progress.update(1)
        extra = analyses.run_all(model, prompt, target, foil, seed, progress)
        progress.set_postfix_str("writing")
        path = _write(model, prompt, out, target, foil, force, seed, base, note, extra)
        progress.update(1)
    return path


def _write(model, prompt, out, target, foil, force, seed, base, note, extra) -> Path:
    """The CSVs, read back, drawn into index.html and README.md, and config.json (atomically)."""
    with atomic_dir(out, force) as tmp:
        for name, df in {**base, **{k: v for r in extra for k, v in r.tables.items()}}.items():
            df.to_csv(tmp / f"{name}.csv", index=False)
        back = {p.stem: read_csv(p) for p in tmp.glob("*.csv")}
        secs = analyses.ordered(base_sections(back, tables.is_causal(model), note) + analyses.sections(extra, back))
        title = f"interp report: {model.info.name}"
        (tmp / "index.html").write_text(page(title, prompt, _meta(model, prompt), secs, bundle_tag()), encoding="utf-8")
        (tmp / "README.md").write_text(readme(title, prompt, secs, sorted(back)), encoding="utf-8")
        (tmp / "config.json").write_text(json.dumps(config(model, prompt, target, foil, seed), indent=2) + "\n")
    return Path(out) / "index.html"


def readme(title: str, prompt: str, secs: list[Section], csvs: list[str]) -> str:
    """The report's findings in words and numbers, one paragraph per section."""
    parts = [f"# {title}\n", "Prompt:\n", "~~~text\n" + prompt.replace("~~~", "~ ~ ~") + "\n~~~\n",
             "Open `index.html` (works offline) for the interactive figures.\n"]
    parts += [f"## {s.title}\n\n{s.summary}\n" for s in secs]
    parts.append("## Tables\n\n" + "\n".join(f"- `{c}.csv`" for c in csvs) + "\n")
    return "\n".join(parts)


def config(model, prompt: str, target, foil, seed: int) -> dict:
    """What produced the report: model, prompt, seed and package versions."""
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    return {"model": model.info.name, "model_path": model.info.path, "weights": getattr(model.info, "weights", ""),
            "architecture": model.info.architecture, "prompt": prompt, "target": target,
            "foil": foil, "seed": seed, "sections": analyses.available(),
            "versions": {p: v(p) for p in ("interp", "torch", "transformer-lens", "transformers", "circuitsvis")}}


def attention_page(model, prompt: str, out: str | Path, layer: int | None = None, head: int | None = None,
                   force: bool = False) -> str:
    """Write one self-contained page with every layer's and head's attention for `prompt`.

    Args:
        model: a model from `interp.load`, or a name to load.
        prompt: the text to show.
        out: the .html file to write (replaced atomically; an existing file only if interp wrote it,
            or with `force`).
        layer, head: the head whose pattern with and without the causal mask is compared
            (when `interp.attention` is installed; default: the head with the most future mass).

    Returns:
        The path written, as a string.
    """
    from interp.errors import check_range

    _check_args(prompt, None, None)
    check_page_target(out, force)
    model = _model(model)
    if layer is not None:
        check_range("layer", layer, model.cfg.n_layers, model.info.name)
    if head is not None:
        check_range("head", head, model.cfg.n_heads, model.info.name)
    acts = tables.run(model, prompt)
    toks = acts.tokens[0]
    attn = tables.attention_table(model, acts)
    secs = [sections.tokens_section(tables.tokens_table(acts), pd.DataFrame(), note="Tokens as the model saw them."),
            sections.attention_section(attn, toks, tables.is_causal(model))]
    secs += analyses.mask_sections(model, prompt, layer, head)
    text = page(f"Attention: {model.info.name}", prompt, _meta(model, prompt), secs, bundle_tag())
    return str(atomic_file(out, text, force))
