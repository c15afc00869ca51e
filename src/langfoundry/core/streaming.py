"""Tables larger than memory: a sorted Parquet writer that spills to disk (the ordered process pool the
stages use with it is core.pool).

Data stages read their input in Arrow batches and write through `SortedParquetWriter`, so a corpus
of millions of rows needs memory for a few batches, not for the whole table. What spills: when the
rows a writer has been given are not already in order (ingest's records arrive in file order, not id
order) and exceed `memory_bytes`, they go to a temporary folder beside the output (`.<name>.*.runs/`,
removed when the writer closes): one file per two-byte prefix of the first sort key when those
prefixes spread the rows (record ids; see core.buckets), each sorted alone at the end, else sorted
runs merged at the end. Input that arrives in order (clean and dedup keep their sorted input's order)
is written straight through.

The output is written under a hidden partial name and renamed when complete (storage.atomic_output),
so a killed stage leaves nothing a later stage could mistake for its output; a stage's outputs are
renamed together, once all are complete (written_together). What a killed writer left (partial file,
runs) is removed when the output is next written.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from langfoundry.core.buckets import SPILL_OPTIONS, BucketFiles, spreads
from langfoundry.core.storage import PARQUET_OPTIONS, ROW_GROUP_ROWS, ensure_parent, partial_path, remove_leftovers
from langfoundry.core.writer_thread import ThreadedParquetWriter

log = logging.getLogger(__name__)

# Rows a writer holds before it sorts them and spills a run. The output is the same whatever the
# budget, so a small machine may lower it: LANGFOUNDRY_SORT_MEMORY_MB (default 256).
SORT_MEMORY_BYTES = int(os.environ.get("LANGFOUNDRY_SORT_MEMORY_MB", "256")) << 20
MERGE_BATCH_ROWS = 32_768  # rows read from each run at a time while merging


def open_parquet(path: str | os.PathLike) -> pq.ParquetFile:
    """A Parquet file to read batch by batch. Without pre_buffer=False, pyarrow keeps every row group
    it has read in memory until the file is closed, so memory grows with the file."""
    return pq.ParquetFile(path, pre_buffer=False)


class _After:
    """Sorts after every value, as Arrow sorts nulls (at the end); compares with str via reflection."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return not isinstance(other, _After)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _After)

    def __hash__(self) -> int:
        return 0


_NULL = _After()


def rows_in_order(table: pa.Table, names: Sequence[str]) -> bool:
    """Whether the rows are sorted by the columns as a stable sort would leave them (nulls last), each row
    compared with the next: clean and dedup hand the writer their input's sorted order, and a sort to
    check it took 53 ms per 131,072 rows. Columns with nulls or floats (NaN) are checked by that sort."""
    count = table.num_rows
    if count < 2 or not names:
        return True
    if any(table.column(name).null_count or pa.types.is_floating(table.schema.field(name).type) for name in names):
        order = pc.sort_indices(table, sort_keys=[(name, "ascending") for name in names]).to_numpy()
        return bool(np.all(order == np.arange(count)))
    tied: pa.ChunkedArray | None = None  # neighbours equal in every column so far
    for name in names:
        before, after = table.column(name).slice(0, count - 1), table.column(name).slice(1)
        descending = pc.greater(before, after)
        if pc.any(descending if tied is None else pc.and_(descending, tied)).as_py():
            return False
        equal = pc.equal(before, after)
        tied = equal if tied is None else pc.and_(tied, equal)
        if not pc.any(tied).as_py():
            return True
    return True


class SortedParquetWriter:
    """Tables added in any order, written to one Parquet file sorted by `sort_by`, in bounded memory.

    The file is the one `storage.write_parquet` would write from all rows at once: a stable sort
    (rows with equal keys keep the order they were added in), in row groups of ROW_GROUP_ROWS.
    pyarrow sorts only what fits in memory, so this is an external merge sort (see the module
    docstring for what spills). Use as a context manager, or call close(). memory_bytes bounds the
    out-of-order rows held in memory: past it they are sorted and spilled to disk as one run.
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema, sort_by: Sequence[str],
                 memory_bytes: int = SORT_MEMORY_BYTES, buckets: bool = True):
        self.path = ensure_parent(path)
        remove_leftovers(self.path)
        self.partial = partial_path(self.path)  # renamed to path by close()
        self.schema = schema
        self.sort_names = [name for name in sort_by if name in schema.names]
        self.sort_keys = [(name, "ascending") for name in self.sort_names]
        self.memory_bytes = memory_bytes
        self.rows = 0
        self._direct = True  # everything so far arrived in order and went straight to the output
        self._last_key: tuple | None = None
        self._writer: ThreadedParquetWriter | None = None  # encodes while this thread reads and sorts
        self._pending: list[pa.Table] = []  # direct mode: rows not yet a whole row group
        self._pending_rows = 0
        self._buffer: list[pa.Table] = []  # spill mode: unsorted rows in memory
        self._buffer_bytes = 0
        self._runs: list[Path] = []
        self._run_dir: Path | None = None
        self.spilled_bytes = 0
        self._may_bucket = buckets and bool(self.sort_names)  # decided at the first spill (core.buckets.spreads)
        self._buckets: BucketFiles | None = None

    @property
    def spilled_runs(self) -> tuple[Path, ...]:
        """The sorted runs spilled to disk so far, in order; close() and abort() delete them."""
        return tuple(self._runs)

    # --- adding rows ---

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        self.rows += table.num_rows
        if self._direct:
            in_order = rows_in_order(table, self.sort_names)
            first = self._key_at(table, 0)
            if in_order and (self._last_key is None or not first < self._last_key):
                self._last_key = self._key_at(table, table.num_rows - 1)
                self._emit(table)
                return
            self._start_spilling()
        self._buffer.append(table)
        self._buffer_bytes += table.nbytes
        if self._buffer_bytes > self.memory_bytes:
            self._spill()

    def _key_at(self, table: pa.Table, row: int) -> tuple:
        return tuple(_NULL if value is None else value
                     for value in (table.column(name)[row].as_py() for name in self.sort_names))

    def _keys(self, table: pa.Table) -> list[tuple]:
        columns = [[_NULL if value is None else value for value in table.column(name).to_pylist()]
                   for name in self.sort_names]
        return list(zip(*columns)) if columns else [()] * table.num_rows

    # --- the output file ---

    def _emit(self, table: pa.Table) -> None:
        """Append sorted rows to the output, in whole row groups."""
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            rows = pa.concat_tables(self._pending)
            whole = rows.num_rows - rows.num_rows % ROW_GROUP_ROWS
            self._output().write_table(rows.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
            rest = rows.slice(whole)
            self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _output(self) -> ThreadedParquetWriter:
        if self._writer is None:
            self._writer = ThreadedParquetWriter(self.partial, self.schema, **PARQUET_OPTIONS)
        return self._writer

    def _finish_output(self) -> None:
        if self._pending or self._writer is None:
            rows = pa.concat_tables(self._pending) if self._pending else self.schema.empty_table()
            self._output().write_table(rows, row_group_size=ROW_GROUP_ROWS)
        self._writer.close()
        self._writer, self._pending, self._pending_rows = None, [], 0

    # --- spilling ---

    def _run_path(self, suffix: str) -> Path:
        if self._run_dir is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".runs", dir=self.path.parent))
        return self._run_dir / f"run{len(self._runs):05d}{suffix}"

    def _start_spilling(self) -> None:
        """Rows already written in order become the first run; later rows are buffered."""
        self._direct = False
        if self._writer is not None or self._pending:
            self._finish_output()
            run = self._run_path(".parquet")
            shutil.move(self.partial, run)
            self._runs.append(run)
            self.spilled_bytes += run.stat().st_size

    def _sorted_buffer(self) -> pa.Table:
        rows = pa.concat_tables(self._buffer)
        self._buffer, self._buffer_bytes = [], 0
        return rows.sort_by(self.sort_keys) if self.sort_keys else rows

    def _spill(self) -> None:
        # A run is read once, whole: Arrow IPC, compressed as the buckets are (buckets.SPILL_OPTIONS), for
        # Parquet's encoding would cost more than it saves (uncompressed, 0.2 s against 1.2 s for 500,000 records).
        if self._may_bucket or self._buckets is not None:
            rows = pa.concat_tables(self._buffer)
            if self._may_bucket and spreads(rows, self.sort_names[0]):
                self._start_buckets()
            self._may_bucket = False
            if self._buckets is not None:
                self._buckets.add(self._buffer)  # table by table: each may be in bucket order already
                self._buffer, self._buffer_bytes = [], 0
                self.spilled_bytes += rows.nbytes
                return
        run = self._run_path(".arrow")
        rows = self._sorted_buffer()
        with pa.OSFile(str(run), "wb") as sink, pa.ipc.new_file(sink, rows.schema, options=SPILL_OPTIONS) as writer:
            for batch in rows.to_batches(max_chunksize=MERGE_BATCH_ROWS):
                writer.write_batch(batch)
        self._runs.append(run)
        self.spilled_bytes += run.stat().st_size

    def _start_buckets(self) -> None:
        """Spill by prefix from now on; rows already spilled (the in-order rows written first) go to the
        buckets first, as they came first."""
        def new_path(suffix: str) -> Path:
            path = self._run_path(suffix)
            self._runs.append(path)
            return path

        self._buckets = BucketFiles(self.sort_names[0], new_path)
        for run in list(self._runs):
            for batch in _batches(run):
                self._buckets.add([pa.Table.from_batches([batch])])
            run.unlink()
            self._runs.remove(run)

    def _sort_buckets(self) -> None:
        """Each bucket sorted alone, in prefix order: the output. A bucket larger than the memory budget
        (keys that did not spread as the first spill did) is sorted in runs by a writer of its own."""
        rest, self._buffer, self._buffer_bytes = self._buffer, [], 0
        for size, batches in self._buckets.in_order(rest):
            if size <= self.memory_bytes:
                self._emit(pa.Table.from_batches(list(batches), schema=self.schema).sort_by(self.sort_keys))
                continue
            alone = SortedParquetWriter(self._run_path(".parquet"), self.schema, self.sort_names, self.memory_bytes,
                                        buckets=False)
            with alone:
                for batch in batches:
                    alone.write(batch)
            for batch in _batches(alone.path):
                self._emit(pa.Table.from_batches([batch]))
            alone.path.unlink()

    # --- merging ---

    def _merge(self, sources: list[Iterator[pa.Table]]) -> None:
        """k-way merge of sorted sources: each round emits every loaded row below the smallest
        "last loaded key" of the sources not yet exhausted, which no unread row can undercut."""
        count = len(sources)
        loaded: list[pa.Table] = [self.schema.empty_table()] * count
        keys: list[list[tuple]] = [[] for _ in range(count)]
        live = [True] * count

        def load(index: int) -> None:
            batch = next(sources[index], None)
            while batch is not None and batch.num_rows == 0:
                batch = next(sources[index], None)
            if batch is None:
                live[index] = False
                return
            loaded[index] = pa.concat_tables([loaded[index], batch])
            keys[index].extend(self._keys(batch))

        for index in range(count):
            load(index)
        while True:
            waiting = [index for index in range(count) if live[index]]
            frontier_source = min(waiting, key=lambda index: keys[index][-1]) if waiting else None
            cuts = ([bisect.bisect_left(keys[index], keys[frontier_source][-1]) for index in range(count)]
                    if frontier_source is not None else [len(key) for key in keys])
            emitted = [loaded[index].slice(0, cut) for index, cut in enumerate(cuts) if cut]
            if emitted:
                rows = pa.concat_tables(emitted)
                self._emit(rows.sort_by(self.sort_keys) if len(emitted) > 1 else rows)
            if frontier_source is None:
                return
            for index, cut in enumerate(cuts):
                loaded[index], keys[index] = loaded[index].slice(cut), keys[index][cut:]
                if live[index] and (index == frontier_source or not keys[index]):
                    load(index)

    def close(self) -> None:
        """Write the sorted file and give it its real name."""
        self.finish()
        self.publish()

    def finish(self) -> None:
        """Write the whole sorted file under its partial name; publish() renames it. A stage with
        several outputs finishes them all before publishing any (written_together)."""
        try:
            if self._direct:
                self._finish_output()
                return
            if not self._runs:  # everything fitted in memory: sort and write, as write_parquet does
                self._emit(self._sorted_buffer() if self._buffer else self.schema.empty_table())
                self._finish_output()
                return
            if self._buckets is not None:
                files, on_disk = len(self._runs), self._buckets.disk_bytes()
                self._sort_buckets()
                self._finish_output()
                log.info("%s: %d rows sorted through %d files spilled to disk by key prefix (%.0f MiB, %.0f MiB on disk)",
                         self.path.name, self.rows, files, self.spilled_bytes / 2**20, on_disk / 2**20)
                return
            sources = [_batches(run) for run in self._runs]
            if self._buffer:
                rest = self._sorted_buffer()
                sources.append(iter(rest.to_batches(max_chunksize=MERGE_BATCH_ROWS)))
            self._merge([(pa.Table.from_batches([batch]) for batch in source) for source in sources])
            self._finish_output()
            log.info("%s: %d rows sorted through %d runs spilled to disk (%.0f MiB), merged", self.path.name,
                     self.rows, len(self._runs), self.spilled_bytes / 2**20)
        finally:
            self._cleanup()

    def publish(self) -> None:
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Drop everything written so far (on error), leaving no partial output or runs."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        self.partial.unlink(missing_ok=True)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._buckets is not None:
            self._buckets.close()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def __enter__(self) -> SortedParquetWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


@contextlib.contextmanager
def written_together(*writers: SortedParquetWriter) -> Iterator[tuple[SortedParquetWriter, ...]]:
    """Several outputs of one stage, renamed to their real names only once every one is complete: a
    stage killed while the last one merges leaves none of them for a later stage or DVC to take."""
    try:
        yield writers
        for writer in writers:
            writer.finish()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.publish()


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    """A run's rows a batch at a time: an Arrow IPC run as spilled, or a Parquet one (what was
    written straight to the output before the rows stopped arriving in order)."""
    if path.suffix == ".parquet":
        yield from open_parquet(path).iter_batches(batch_size=MERGE_BATCH_ROWS)
        return
    with pa.OSFile(str(path)) as source:  # read, not memory-mapped: a mapped run would count as resident
        reader = pa.ipc.open_file(source)
        for index in range(reader.num_record_batches):
            yield reader.get_batch(index)
