"""Deterministic writers: sorted rows, sorted keys, no timestamps, so reruns are byte-identical."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def ensure_parent(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


PARTIAL_SUFFIX = ".partial"  # an output being written: renamed to its real name only once complete


def partial_path(path: str | os.PathLike) -> Path:
    """Where an output is written before it is complete: a hidden name beside it, which no stage reads."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Delete what a killed writer of `path` left beside it (partial files, spilled runs); returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = [item for item in path.parent.glob(f".{path.name}.*")
             if item.name.endswith((PARTIAL_SUFFIX, ".runs"))]
    for item in found:
        shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
    return found


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary name beside `path`; rename it to `path` only if the block completes.

    A stage killed mid-write (SIGKILL, out of memory) leaves no half-written file under the real
    name for a later stage to read; the leftover is removed the next time the output is written."""
    path = ensure_parent(path)
    remove_leftovers(path)
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# Rows per Parquet row group, fixed so a file's layout never depends on how it was written (whole,
# or streamed in batches by langfoundry.core.streaming); a row group is also what a reader holds at once.
ROW_GROUP_ROWS = 131_072
PARQUET_OPTIONS = {"compression": "zstd", "write_statistics": False}


def write_parquet(table: pa.Table, path: str | os.PathLike, sort_by: Iterable[str] = ("id",)) -> None:
    """Write a table sorted by the given columns, with settings that do not vary between runs."""
    keys = [(name, "ascending") for name in sort_by if name in table.column_names]
    if keys and table.num_rows:
        table = table.sort_by(keys)
    # One chunk per column: Parquet pages follow the chunks they are written from.
    with atomic_output(path) as partial:
        pq.write_table(table.combine_chunks(), partial, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTIONS)


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Nested metrics as flat "a.b.c" keys, as write_metrics writes them."""
    flat: dict[str, Any] = {}
    _flatten("", metrics, flat)
    return flat


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, float):
        out[prefix] = round(value, 6) if math.isfinite(value) else None
    else:
        out[prefix] = value


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Write metrics as flat JSON ("a.b.c" keys), sorted, floats rounded to 6 places.

    Flat keys keep `dvc metrics diff` tables readable and diffs line-by-line.
    """
    flat: dict[str, Any] = {}
    _flatten("", metrics, flat)
    ensure_parent(path).write_text(json.dumps(flat, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return flat


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> int:
    """Write one compact JSON object per line, keys sorted; returns the number of lines."""
    count = 0
    with atomic_output(path) as partial, partial.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
