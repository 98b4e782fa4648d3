"""Prompts from a data file or data set, streamed: text, .jsonl, .parquet, .arrow, a saved `datasets` directory.

`read_prompts(path, text_field="text")` yields `(number, prompt)` for every non-blank prompt,
without reading the whole input into memory:

- a text file: one prompt per line, numbered by line from 0 (blank lines are skipped but keep
  their number);
- `.jsonl`: one JSON object per line, the prompt in field `text_field`;
- `.parquet`: column `text_field`, read one record batch at a time (`ParquetFile.iter_batches`);
- `.arrow`: an Arrow IPC file or stream (as `datasets` writes), memory-mapped, batch by batch;
- a directory written by `datasets.Dataset.save_to_disk`: loaded memory-mapped with
  `datasets.load_from_disk` and iterated in Arrow batches (a `DatasetDict` directory is refused:
  give one split's subdirectory).

In the tabular formats prompts are numbered by row from 0; a null or blank value is skipped but
keeps its number, like a blank line. So the same prompts give the same numbers, and the same
cache, whatever the format.

Example:
    >>> import tempfile, pathlib
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"body": ["The king ruled.", None, "The queen ruled."]}), tmp / "d.parquet")
    >>> list(read_prompts(tmp / "d.parquet", text_field="body"))
    [(0, 'The king ruled.'), (2, 'The queen ruled.')]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from interp.errors import InterpError

TABULAR = (".parquet", ".arrow")
BATCH_ROWS = 1024
__all__ = ["check_data", "data_kind", "measure_read", "read_prompts"]


def data_kind(path: str | Path) -> str:
    """'text', 'jsonl', 'parquet', 'arrow' or 'datasets' (a `save_to_disk` directory).

    Raises:
        InterpError: the path does not exist, or is a directory that `datasets` did not save.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = sorted(p.name for p in path.iterdir() if (p / "state.json").is_file())
            raise InterpError(f"data directory {str(path)!r} is a DatasetDict with splits {', '.join(splits)}: "
                              f"give one split, e.g. --data {path / (splits or ['train'])[0]!s}")
        if (path / "state.json").is_file():
            return "datasets"
        raise InterpError(f"data {str(path)!r} is a directory but not a dataset saved with "
                          "datasets' save_to_disk: give a text, .jsonl, .parquet or .arrow file, or such a directory")
    if not path.is_file():
        raise InterpError(f"data file {str(path)!r} does not exist: give a text file with one prompt per line "
                          "(or .jsonl, .parquet, .arrow, or a saved datasets directory)")
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".parquet": "parquet", ".arrow": "arrow"}.get(suffix, "text")


def check_data(path: str | Path, text_field: str = "text") -> str:
    """Check that `path` can be read (before a model loads): its kind, and for the tabular kinds
    that column `text_field` exists and holds strings. Returns the kind."""
    kind = data_kind(path)
    if kind == "text" and text_field != "text":
        raise InterpError(f"--text-field {text_field!r} applies to .jsonl, .parquet, .arrow or a datasets "
                          f"directory, not to the plain text file {Path(path).name!r}: drop it")
    if kind in ("parquet", "arrow", "datasets"):
        _check_column(Path(path), _schema(Path(path), kind), text_field)
    return kind


def read_prompts(path: str | Path, text_field: str = "text") -> Iterator[tuple[int, str]]:
    """(number from 0, prompt) for every non-blank prompt of `path`, streamed (see the module doc)."""
    kind = check_data(path, text_field)
    path = Path(path)
    if kind in ("text", "jsonl"):
        yield from _lines(path, text_field if kind == "jsonl" else None)
        return
    number = 0
    for column in _columns(path, kind, text_field):
        for value in column.to_pylist():  # one batch of BATCH_ROWS values at a time
            if value is not None and value.strip():
                yield number, value
            number += 1


# ------------------------------------------------------------------ text and jsonl


def _lines(path: Path, field: str | None) -> Iterator[tuple[int, str]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f):
            try:
                line = raw.decode("utf-8-sig" if number == 0 else "utf-8").rstrip("\r\n")  # no BOM token
            except UnicodeDecodeError:
                raise InterpError(f"{path.name} line {number + 1} is not UTF-8: re-encode the file as UTF-8") from None
            if field is not None and line.strip():
                line = _jsonl_text(line, path.name, number, field)
            if line.strip():
                yield number, line


def _jsonl_text(line: str, name: str, number: int, field: str) -> str:
    try:
        text = json.loads(line)[field]
    except (ValueError, KeyError, TypeError):
        text = None
    if not isinstance(text, str):
        raise InterpError(f"{name} line {number + 1} is not a JSON object with a string {json.dumps(field)} field"
                          + ("" if field != "text" else " (choose another with --text-field)"))
    return text


# ------------------------------------------------------------------ tabular


def _schema(path: Path, kind: str):
    import pyarrow as pa

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).schema_arrow
        if kind == "arrow":
            with pa.memory_map(str(path)) as source:
                return _ipc_reader(source).schema
        return _dataset(path).features.arrow_schema
    except (pa.ArrowInvalid, OSError) as e:
        raise InterpError(f"data {str(path)!r} is not a readable {kind} input: {str(e).splitlines()[0]}") from None


def _check_column(path: Path, schema, field: str) -> None:
    import pyarrow as pa

    if field not in schema.names:
        raise InterpError(f"{path.name} has no column {field!r}; its columns are {', '.join(schema.names)}: "
                          "choose one with --text-column")
    kind = schema.field(field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
        raise InterpError(f"column {field!r} of {path.name} holds {kind}, not text: choose a string column "
                          "with --text-column")


def _ipc_reader(source):
    """An Arrow IPC file reader, or a stream reader (what `datasets` writes as .arrow)."""
    import pyarrow as pa

    try:
        return pa.ipc.open_file(source)
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_stream(source)


def _dataset(path: Path):
    import datasets

    return datasets.load_from_disk(str(path))  # memory-mapped: nothing is read yet


def _columns(path: Path, kind: str, field: str):
    """The column `field` as pyarrow arrays, one record batch at a time."""
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        # buffered reads: without a buffer_size the reader loads whole column chunks ahead
        with pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False) as f:
            for batch in f.iter_batches(batch_size=BATCH_ROWS, columns=[field], use_threads=False):
                yield batch.column(0)
    elif kind == "arrow":
        with pa.memory_map(str(path)) as source:
            reader = _ipc_reader(source)
            batches = (reader.get_batch(k) for k in range(reader.num_record_batches)) \
                if isinstance(reader, pa.ipc.RecordBatchFileReader) else reader
            for batch in batches:
                column = batch.column(batch.schema.get_field_index(field))
                for start in range(0, len(column), BATCH_ROWS):
                    yield column.slice(start, BATCH_ROWS)
    else:
        ds = _dataset(path).select_columns([field]).with_format("arrow")
        for table in ds.iter(batch_size=BATCH_ROWS):
            yield table.column(0)


# ------------------------------------------------------------------ measuring


_MEASURE = r"""
import json, sys
from interp.datasets_io import read_prompts

def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

path, field, whole = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
import pyarrow, pyarrow.parquet, datasets  # imported before the baseline
base = peak = anon_mb()
rows = chars = 0
if whole:  # the opposite: every prompt held at once (shows that the measurement sees growth)
    held = list(read_prompts(path, field))
    rows, chars, peak = len(held), sum(len(t) for _, t in held), anon_mb()
else:
    for number, text in read_prompts(path, field):
        rows, chars = rows + 1, chars + len(text)
        if rows % 2000 == 0:
            peak = max(peak, anon_mb())
    peak = max(peak, anon_mb())
print(json.dumps({"rows": rows, "chars": chars, "growth_mb": peak - base}))
"""


def measure_read(path: str | Path, text_field: str = "text", hold: bool = False) -> dict:
    """Stream every prompt of `path` in a fresh Python process; report its anonymous memory growth.

    Anonymous resident memory (RssAnon) excludes the page cache of memory-mapped files, which the
    OS can drop at will; it is sampled every 2000 prompts. With `hold=True` all prompts are kept
    in a list instead (the growth a non-streaming reader would show).

    Returns:
        dict with rows, chars (total prompt characters) and growth_mb.
    """
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _MEASURE, str(path), text_field, "1" if hold else "0"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"measure_read failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
