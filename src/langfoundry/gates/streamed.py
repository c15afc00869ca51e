"""The gated tables of each data stage, read from the files the stage wrote, in bounded memory.

Each function returns the GateTables that langfoundry.gates.gate.validate checks: the rows as a
stream read batch by batch (langfoundry.gates.rows), and the small per-source table built from
counts and means gathered in one streamed pass (tables.SourceTally). Memory stays at a batch or
two of rows, plus 8 to 10 bytes per distinct key for the columns computed across rows.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa

from langfoundry.core.config import QualityParams
from langfoundry.core.streaming import open_parquet, ordered_map, worker_count
from langfoundry.gates.examples import RecordLookup, flatten_examples
from langfoundry.gates.rows import BATCH_ROWS, ParquetRows, split_leaks
from langfoundry.gates.tables import (
    EXAMPLE_KEYS,
    MEASURE_COLUMNS,
    GateTables,
    SourceTally,
    check_source_limits,
    rows_per_source,
    source_table,
)

PathLike = str | Path
TALLY_ROWS = 50_000  # rows measured at a time for the per-source table: their texts become Python strings


def count_by_source(path: PathLike, batch_rows: int = BATCH_ROWS) -> Counter:
    """Rows per source of a Parquet table, reading its source column only."""
    counts: Counter = Counter()
    for batch in open_parquet(path).iter_batches(batch_size=batch_rows, columns=["source"]):
        counts.update(rows_per_source(pa.Table.from_batches([batch])))
    return counts


_scripts: Mapping[str, str] | None = None  # a tally worker's scripts, set once per process


def _start_tally_worker(scripts: Mapping[str, str] | None) -> None:
    global _scripts
    _scripts = scripts


def _tally_batch(batch: pa.RecordBatch) -> SourceTally:
    tally = SourceTally(_scripts)
    tally.add(pa.Table.from_batches([batch]))
    return tally


def tally_by_source(path: PathLike, scripts: Mapping[str, str] | None = None,
                    batch_rows: int = TALLY_ROWS) -> SourceTally:
    """Rows per source and, with scripts, the sums behind the per-source means of tables.source_table.
    The measures cost tens of microseconds a row, so batches are measured on all cores."""
    tally = SourceTally(scripts)
    columns = list(MEASURE_COLUMNS) if scripts is not None else ["source"]
    batches = open_parquet(path).iter_batches(batch_size=batch_rows, columns=columns)
    workers = worker_count() if scripts is not None else 1
    for part in ordered_map(_tally_batch, batches, workers, _start_tally_worker, (scripts,)):
        tally.merge(part)
    return tally


def ingested_gate_tables(records: PathLike, rejects: PathLike, rows_read: Mapping[str, int], quality: QualityParams,
                         batch_rows: int = BATCH_ROWS) -> GateTables:
    """ingest: rows read per source (as the readers counted them) = records + rejects written."""
    check_source_limits(quality, rows_read)
    sources = source_table(rows_read, tally_by_source(records, None), count_by_source(rejects, batch_rows),
                           quality)
    return GateTables(ParquetRows(records), sources)


def clean_gate_tables(ingested: PathLike, kept: PathLike, rejects: PathLike, scripts: Mapping[str, str],
                      quality: QualityParams, batch_rows: int = BATCH_ROWS) -> GateTables:
    """clean: ingested rows per source = kept + rejected by a filter; measures of the kept rows."""
    sources = source_table(count_by_source(ingested, batch_rows), tally_by_source(kept, scripts),
                           count_by_source(rejects, batch_rows), quality, scripts)
    return GateTables(ParquetRows(kept), sources)


def split_gate_tables(unsplit: PathLike, split: PathLike, quality: QualityParams,
                      batch_rows: int = BATCH_ROWS) -> GateTables:
    """split: every input row is in exactly one split, and no group straddles two splits (a pre-pass
    over the group and split columns finds the groups that do)."""
    sources = source_table(count_by_source(unsplit, batch_rows), tally_by_source(split, None), None,
                           quality)
    return GateTables(ParquetRows(split, derive=split_leaks(split, batch_rows).derive), sources)


@contextlib.contextmanager
def processed_gate_tables(example_files: Mapping[str, PathLike], split: PathLike,
                          batch_rows: int = BATCH_ROWS) -> Iterator[GateTables]:
    """format: the examples of train/val/test.jsonl (split name -> file) as one flat table, each
    traced to its record's split and origin in the split table. The flat table lives in a
    temporary folder beside the split table while the context is open (not in the examples'
    folder, a DVC output; not in /tmp, often memory)."""
    files = {name: Path(path) for name, path in example_files.items()}
    folder = Path(tempfile.mkdtemp(prefix=".gate-processed.", dir=Path(split).parent))
    try:
        lookup = RecordLookup(split, batch_rows)
        flat = folder / "examples.parquet"
        leaks = flatten_examples(files, lookup, flat)
        rows = ParquetRows(flat, sorted_by=("id",), derive=leaks.derive)
        yield GateTables(rows, None, EXAMPLE_KEYS, ("id",), lookup.show_origins)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
