"""The gated tables of each data stage, read from the files the stage wrote, in bounded memory.

Each function returns the GateTables that langfoundry.gates.gate.validate checks: the rows as a
stream read batch by batch (langfoundry.gates.rows), and the small per-source table built from
counts and means per source (clean.measures.SourceTally). Memory stays at a batch or two of rows,
plus 8 to 10 bytes per distinct key for the columns computed across rows.

A stage hands over what it counted and measured as it worked (rows per source written, the
clean filters' measures of the kept rows), so the per-source table costs no second pass over the
files. The stage's counts are held against the row counts in the files' footers (free to read):
where they differ, a row went missing or appeared on the way, and the rows per source are counted
from the files instead, for the conservation expectations to show where.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa

from langfoundry.core.config import QualityParams
from langfoundry.core.pool import ordered_map, worker_count
from langfoundry.core.streaming import open_parquet
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
TALLY_ROWS = 50_000  # rows measured at a time where the per-source table is measured from a file


def count_by_source(path: PathLike, batch_rows: int = BATCH_ROWS) -> Counter:
    """Rows per source of a Parquet table, reading its source column only."""
    counts: Counter = Counter()
    for batch in open_parquet(path).iter_batches(batch_size=batch_rows, columns=["source"]):
        counts.update(rows_per_source(pa.Table.from_batches([batch])))
    return counts


def written_by_source(path: PathLike, stated: Mapping[str, int] | None, batch_rows: int = BATCH_ROWS) -> Counter:
    """Rows per source of a table a stage wrote: the stage's own counts (stated) when they add up to
    the rows in the file's footer, else (or without them) counted from the file."""
    if stated is not None and sum(stated.values()) == open_parquet(path).metadata.num_rows:
        return Counter({source: count for source, count in stated.items() if count})
    return count_by_source(path, batch_rows)


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
    """Rows per source and, with scripts, the sums behind the per-source means of tables.source_table,
    read and measured again from the file (where the stage gave no tally), on all cores."""
    tally = SourceTally(scripts)
    columns = list(MEASURE_COLUMNS) if scripts is not None else ["source"]
    batches = open_parquet(path).iter_batches(batch_size=batch_rows, columns=columns)
    workers = worker_count() if scripts is not None else 1
    for part in ordered_map(_tally_batch, batches, workers, _start_tally_worker, (scripts,)):
        tally.merge(part)
    return tally


def _tally_of_counts(kept: Counter) -> SourceTally:
    tally = SourceTally()
    tally.kept = kept
    return tally


def ingested_gate_tables(records: PathLike, rejects: PathLike, rows_read: Mapping[str, int], quality: QualityParams,
                         batch_rows: int = BATCH_ROWS, kept: Mapping[str, int] | None = None,
                         rejected: Mapping[str, int] | None = None) -> GateTables:
    """ingest: rows read per source (as the readers counted them) = records + rejects written.
    kept and rejected: the rows per source ingest wrote to each file, as it counted them."""
    check_source_limits(quality, rows_read)
    sources = source_table(rows_read, _tally_of_counts(written_by_source(records, kept, batch_rows)),
                           written_by_source(rejects, rejected, batch_rows), quality)
    return GateTables(ParquetRows(records), sources)


def clean_gate_tables(ingested: PathLike, kept: PathLike, rejects: PathLike, scripts: Mapping[str, str],
                      quality: QualityParams, batch_rows: int = BATCH_ROWS, tally: SourceTally | None = None) -> GateTables:
    """clean: ingested rows per source = kept + rejected by a filter; measures of the kept rows.
    tally: what the clean stage counted and measured as it filtered (driver.clean_files); without
    it the kept rows are read and measured again."""
    if tally is None:
        measured = tally_by_source(kept, scripts)
        rows_in, rejected = count_by_source(ingested, batch_rows), count_by_source(rejects, batch_rows)
    else:
        measured = copy.copy(tally)
        measured.kept = written_by_source(kept, tally.kept, batch_rows)
        rows_in = written_by_source(ingested, tally.rows_in, batch_rows)
        rejected = written_by_source(rejects, tally.rejected, batch_rows)
    return GateTables(ParquetRows(kept), source_table(rows_in, measured, rejected, quality, scripts))


def split_gate_tables(unsplit: PathLike, split: PathLike, quality: QualityParams, batch_rows: int = BATCH_ROWS,
                      rows_in: Mapping[str, int] | None = None, kept: Mapping[str, int] | None = None) -> GateTables:
    """split: every input row is in exactly one split, and no group straddles two splits (a pre-pass
    over the group and split columns finds the groups that do). rows_in and kept: the rows per
    source the split stage read and wrote, as it counted them."""
    sources = source_table(written_by_source(unsplit, rows_in, batch_rows),
                           _tally_of_counts(written_by_source(split, kept, batch_rows)), None, quality)
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
