"""The dedup stage's work: a table in memory (dedup_table) or a file streamed (dedup_parquet).

A file is read a pass at a time (a small one is read once and kept), each worker process reading the
row groups it is given: the first pass keeps per row only its digest, its place in the keep order (about 40 bytes)
and, for near duplicates, its LSH band keys, which spill to a temporary file beside the output (one
contiguous array per band, read back a band at a time). The decisions then need only those arrays,
the texts of the few rows that share an LSH bucket (a second pass) and the ids of the kept rows that
rejects name (a pass over the id column); the last pass writes the kept rows and the rejects in the
input's order.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from langfoundry.clean.dedup.decision import (
    REASONS,
    BatchKeys,
    RowKeys,
    batch_keys,
    content_keys,
    find_duplicates,
    keep_order,
    outcome_counts,
    ranked_places,
)
from langfoundry.clean.dedup.minhash import lsh_shape
from langfoundry.core.config import DedupParams
from langfoundry.core.pool import WorkerParquet, ordered_map, worker_count
from langfoundry.core.records import REJECT_SCHEMA, record_rejects
from langfoundry.core.streaming import SortedParquetWriter, open_parquet, written_together

log = logging.getLogger(__name__)

DEDUP_BATCH_ROWS = 20_000
IN_MEMORY_BYTES = 256 << 20  # an input this small (uncompressed) is read once and kept for every pass


@dataclass
class DedupResult:
    kept: pa.Table
    rejects: pa.Table
    counts: Counter  # ("in"|"kept"|"exact_duplicate"|"near_duplicate", lang)


def _rejects(rows: pa.Table, reasons: Sequence[int], kept_ids: Sequence[str]) -> pa.Table:
    return record_rejects(rows, "dedup", [REASONS[reason] for reason in reasons], kept_ids)


def dedup_table(table: pa.Table, params: DedupParams) -> DedupResult:
    """Remove exact, then near duplicates of a table in memory; rejects name the kept row's id."""
    table = table.take(pa.array(keep_order(table), type=pa.int64()))
    shape = lsh_shape(params) if params.near.enabled and table.num_rows > 1 else None
    batch = batch_keys(table, params, shape, threads=2)
    keys = RowKeys(batch.digests, ranked_places(batch.place_labels, batch.place_codes), batch.numbers, batch.ids,
                   batch.group_codes, batch.group_labels, batch.eligible, batch.bands)
    contents = content_keys(table) if shape is not None else []
    duplicate_of, reasons = find_duplicates(keys, params, lambda rows: {int(row): contents[row] for row in rows})
    removed = np.flatnonzero(duplicate_of >= 0)
    ids = table.column("id").to_pylist()
    rejects = _rejects(table.take(pa.array(removed, type=pa.int64())), reasons[removed].tolist(),
                       [ids[row] for row in duplicate_of[removed]])
    kept = table.take(pa.array(np.flatnonzero(duplicate_of < 0), type=pa.int64()))
    return DedupResult(kept, rejects, outcome_counts(keys, reasons))


# --- streaming a file ------------------------------------------------------------------------------


_WORKER_SETTINGS: tuple = ()


class RowGroup(NamedTuple):
    """A row group of the record file, which the worker reads itself (columns: None for all)."""
    index: int
    columns: tuple[str, ...] | None


Job = RowGroup | tuple[int, int]  # a row group of the file, or (first row, rows) of the kept table


def _start_dedup_worker(params: DedupParams | None, shape: tuple[int, int] | None, table: pa.Table | None,
                        path: Path | None = None) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = (params, shape, table, WorkerParquet(path) if path is not None else None)


def _rows_of(job: Job) -> pa.Table:
    if isinstance(job, RowGroup):
        return _WORKER_SETTINGS[3].read_row_group(job.index, columns=job.columns)
    return _WORKER_SETTINGS[2].slice(*job)


def _keys_in_worker(job: Job) -> BatchKeys:
    params, shape, _, _ = _WORKER_SETTINGS
    return batch_keys(_rows_of(job), params, shape)


def _contents_in_worker(job: tuple[Job, np.ndarray]) -> list[str]:
    rows, wanted = job
    return content_keys(_rows_of(rows).take(pa.array(wanted, type=pa.int64())))


class _Input:
    """The record file, read once and kept when small, else read again for each pass."""

    def __init__(self, path: str | Path, batch_rows: int):
        self.path, self.file, self.batch_rows = Path(path), open_parquet(path), batch_rows
        metadata = self.file.metadata
        size = sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
        self.table = self.file.read() if size <= IN_MEMORY_BYTES else None
        self.rows, self.schema = metadata.num_rows, self.file.schema_arrow

    def worker_settings(self, params: DedupParams | None, shape: tuple[int, int] | None) -> tuple:
        return params, shape, self.table, self.path

    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(first row number, batch) over the file."""
        if self.table is not None:
            batches = (self.table.select(columns) if columns else self.table).to_batches(max_chunksize=self.batch_rows)
        else:
            batches = self.file.iter_batches(batch_size=self.batch_rows, columns=columns)
        start = 0
        for batch in batches:
            yield start, batch
            start += batch.num_rows

    def jobs(self, columns: list[str] | None = None) -> Iterator[tuple[int, int, Job]]:
        """(first row number, rows, what a worker is sent) per piece: a kept table's rows a batch at a
        time, else the file a row group at a time. Either way the worker finds the rows itself (in the
        table it inherited when forked, or in the file), so this process neither reads nor pickles
        them: pickling the batches it read took over a quarter of its time (13 s on 10 million rows)."""
        if self.table is not None:
            for start, batch in self.batches(columns):
                yield start, batch.num_rows, (start, batch.num_rows)
            return
        start, metadata = 0, self.file.metadata
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            yield start, rows, RowGroup(index, tuple(columns) if columns else None)
            start += rows


def dedup_parquet(input_path: str | Path, kept_path: str | Path, rejects_path: str | Path, params: DedupParams,
                  workers: int | None = None, batch_rows: int = DEDUP_BATCH_ROWS) -> Counter:
    """Deduplicate a record file into kept and rejects files in the input's order (sorted by id
    and origin, as clean writes it), streaming in batches over `workers` processes; returns the
    counts for dedup_metrics. See the module docstring for what is held and what spills."""
    source = _Input(input_path, batch_rows)
    workers = worker_count() if workers is None else workers
    shape = lsh_shape(params) if params.near.enabled and source.rows > 1 else None
    kept_path, spill, bands = Path(kept_path), None, None
    try:
        if shape is not None:
            spill = Path(tempfile.mkdtemp(prefix=f".{kept_path.name}.", suffix=".bands", dir=kept_path.parent))
            bands = np.lib.format.open_memmap(spill / "bands.npy", mode="w+", dtype=np.uint64,
                                              shape=(shape[0], source.rows))
            log.info("dedup: LSH band keys (%d bands x %d rows, %.0f MiB) spill to %s", shape[0], source.rows,
                     bands.nbytes / 2**20, spill)
        keys = _read_keys(source, params, shape, workers, bands)
        duplicate_of, reasons = find_duplicates(keys, params, lambda rows: _contents(source, rows, workers))
        counts = outcome_counts(keys, reasons)
        del keys  # only the decisions are needed to write the outputs
        _write_outputs(source, duplicate_of, reasons, kept_path, rejects_path)
    finally:
        if spill is not None:
            del bands
            shutil.rmtree(spill, ignore_errors=True)
    return counts


def _read_keys(source: _Input, params: DedupParams, shape: tuple[int, int] | None, workers: int,
               bands: np.ndarray | None) -> RowKeys:
    """The first pass: every row's compact keys from the workers' batches (band keys go into bands)."""
    count = source.rows
    digests = np.zeros((count, 2), dtype=np.uint64)
    numbers, ids = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.uint64)
    places, groups = np.zeros(count, dtype=np.int32), np.zeros(count, dtype=np.int32)
    eligible = np.zeros(count, dtype=bool)
    place_labels: dict[tuple, int] = {}
    group_labels: dict[tuple, int] = {}
    start = 0
    for batch in ordered_map(_keys_in_worker, (job for _, _, job in source.jobs()), workers,
                             _start_dedup_worker, source.worker_settings(params, shape)):
        end = start + len(batch.digests)
        digests[start:end], numbers[start:end], ids[start:end] = batch.digests, batch.numbers, batch.ids
        eligible[start:end] = batch.eligible
        places[start:end] = _file_codes(place_labels, batch.place_labels, batch.place_codes)
        groups[start:end] = _file_codes(group_labels, batch.group_labels, batch.group_codes)
        if bands is not None:
            bands[:, start:end] = batch.bands
        start = end
    return RowKeys(digests, ranked_places(list(place_labels), places), numbers, ids, groups, list(group_labels),
                   eligible, bands)


def _file_codes(file_labels: dict[tuple, int], batch_labels: list[tuple], batch_codes: np.ndarray) -> np.ndarray:
    """A batch's label codes as codes into the labels of the whole file (new labels are added)."""
    return np.array([file_labels.setdefault(label, len(file_labels)) for label in batch_labels],
                    dtype=np.int32)[batch_codes]


def _contents(source: _Input, rows: np.ndarray, workers: int) -> dict[int, str]:
    """Content keys of the given rows (sorted row numbers), read in a pass over the file."""
    jobs: list[tuple[int, np.ndarray]] = []

    def wanted() -> Iterator[tuple[Job, np.ndarray]]:
        for first, count, job in source.jobs(["kind", "text", "pivot_text", "meta"]):
            local = rows[(rows >= first) & (rows < first + count)] - first
            if len(local):
                jobs.append((first, local))
                yield job, local

    found: dict[int, str] = {}
    for index, contents in enumerate(ordered_map(_contents_in_worker, wanted(), workers, _start_dedup_worker,
                                                 source.worker_settings(None, None))):
        first, local = jobs[index]
        found.update(zip((local + first).tolist(), contents))
    return found


def _write_outputs(source: _Input, duplicate_of: np.ndarray, reasons: np.ndarray, kept_path: Path,
                   rejects_path: str | Path) -> None:
    """Kept rows and rejects, in input order; rejects name the kept row's id (read in a pass first)."""
    removed = np.flatnonzero(duplicate_of >= 0)
    referenced = np.unique(duplicate_of[removed])
    kept_ids: dict[int, str] = {}
    for first, batch in source.batches(["id"]):
        local = referenced[(referenced >= first) & (referenced < first + batch.num_rows)] - first
        if len(local):
            kept_ids.update(zip((local + first).tolist(), batch.column(0).take(pa.array(local)).to_pylist()))
    with written_together(SortedParquetWriter(kept_path, source.schema, ("id", "origin")),
                          SortedParquetWriter(rejects_path, REJECT_SCHEMA, ("id", "origin"))) as (kept, rejects):
        for first, batch in source.batches():
            table = pa.Table.from_batches([batch])
            mine = duplicate_of[first:first + batch.num_rows]
            kept.write(table.filter(pa.array(mine < 0)))
            gone = np.flatnonzero(mine >= 0)
            if len(gone):
                rejects.write(_rejects(table.take(pa.array(gone, type=pa.int64())), reasons[first + gone].tolist(),
                                       [kept_ids[int(row)] for row in mine[gone]]))


def dedup_metrics(counts: Counter) -> dict[str, Any]:
    """The stage's metrics from the counts: rows in, removed and kept, overall and per language."""
    names = ("in", "exact_duplicate", "near_duplicate", "kept")
    rows = {name: sum(n for key, n in counts.items() if key[0] == name) for name in names}
    langs = sorted({key[1] for key in counts})
    return {
        "rows": {"in": rows["in"], "exact_removed": rows["exact_duplicate"], "near_removed": rows["near_duplicate"],
                 "kept": rows["kept"]},
        "lang": {lang: {"in": counts[("in", lang)], "exact_removed": counts[("exact_duplicate", lang)],
                        "near_removed": counts[("near_duplicate", lang)], "kept": counts[("kept", lang)]}
                 for lang in langs},
    }
