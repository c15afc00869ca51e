"""Rows spilled to disk by the first two bytes of their first sort key: a distribution sort's buckets.

SortedParquetWriter (core.streaming) sorts more rows than fit in memory. Sorted runs merged at the end
sort every row twice and compare keys in Python while merging. When the first sort key is text whose
leading bytes spread the rows (record ids are hex digests), each row can instead go to the file of its
two-byte prefix as it arrives: byte order is Arrow's order for text, so every row of a prefix sorts
before every row of a larger one, and each file, sorted alone, is a stretch of the output. A file
keeps the rows in arrival order, so a stable sort of it keeps equal keys in the order they came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

NULL_BUCKET = 257 * 257  # after every prefix: Arrow sorts nulls last
MAX_BUCKET_SHARE = 1 / 8  # a first spill with a prefix holding more of its rows than this is not spread
TEXT_TYPES = (pa.string(), pa.binary())
# Spilled rows are written and read back once. zstd takes them to 0.42 of their size for about 0.5 s of
# CPU per 150 MiB to compress and 0.15 s to read back: on a disk that reads 66 to 230 MB/s (a 2-core
# cloud machine's, whose page cache keeps little of a large file), the bytes saved are worth more.
SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def prefix_buckets(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each value's bucket: 257 * (first byte + 1) + (second byte + 1), 0 for a missing byte, so that
    a value that sorts before another never has a larger bucket ("a" < "a0" < "b")."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    array = array.cast(pa.binary()) if array.type == pa.string() else array
    offsets = np.frombuffer(array.buffers()[1], np.int32, count=len(array) + 1, offset=array.offset * 4)
    data = array.buffers()[2]
    values = np.concatenate((np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8),
                             np.zeros(2, np.uint8)))  # past the last value: read, then masked out
    starts, lengths = offsets[:-1], np.diff(offsets)
    first = np.where(lengths >= 1, values[starts].astype(np.int32) + 1, 0)
    second = np.where(lengths >= 2, values[starts + 1].astype(np.int32) + 1, 0)
    buckets = first * 257 + second
    if array.null_count:
        buckets[np.asarray(array.is_null())] = NULL_BUCKET
    return buckets


def _in_bucket_order(rows: pa.Table, column: str) -> tuple[pa.Table, np.ndarray]:
    """rows stably ordered by their column's prefix bucket (not gathered when they already are), with
    each row's bucket."""
    buckets = prefix_buckets(rows.column(column))
    if not np.any(buckets[1:] < buckets[:-1]):
        return rows, buckets
    order = np.argsort(buckets, kind="stable")
    return rows.take(pa.array(order)), buckets[order]


def in_bucket_order(rows: pa.Table, column: str) -> pa.Table:
    """rows stably ordered by their column's prefix bucket, where they are made (a stage's worker
    process): BucketFiles then cuts them into slices instead of gathering every row of a spill, a
    random-access copy of the whole buffer in one process. The order within a bucket is kept, so
    what the writer outputs is the same."""
    if rows.schema.field(column).type not in TEXT_TYPES:
        return rows
    return _in_bucket_order(rows, column)[0]


def spreads(rows: pa.Table, column: str) -> bool:
    """Whether rows' column is text whose two-byte prefixes share the rows out (no prefix holds
    more than MAX_BUCKET_SHARE of them)."""
    if rows.schema.field(column).type not in TEXT_TYPES or not rows.num_rows:
        return False
    counts = np.bincount(prefix_buckets(rows.column(column)), minlength=1)
    return counts.max() <= MAX_BUCKET_SHARE * rows.num_rows


class BucketFiles:
    """An Arrow stream file per prefix (made by new_path), to which rows are added in arrival order."""

    def __init__(self, column: str, new_path: Callable[[str], Path]) -> None:
        self.column, self.new_path = column, new_path
        self.files: dict[int, tuple[Path, pa.OSFile, pa.ipc.RecordBatchStreamWriter]] = {}
        self.sizes: dict[int, int] = {}  # bytes of each bucket's rows in memory (its file is compressed)

    def add(self, tables: Sequence[pa.Table]) -> None:
        """Tables of rows, in arrival order: each bucket's rows from all of them go to its file as one batch."""
        for value, pieces in self._grouped(tables).items():
            rows = pa.concat_tables(pieces).combine_chunks() if len(pieces) > 1 else pieces[0]
            if value not in self.files:
                path = self.new_path(f".{value}.arrow")
                sink = pa.OSFile(str(path), "wb")
                self.files[value] = (path, sink, pa.ipc.new_stream(sink, rows.schema, options=SPILL_OPTIONS))
            self.files[value][2].write_table(rows)
            self.sizes[value] = self.sizes.get(value, 0) + rows.nbytes

    def _grouped(self, tables: Sequence[pa.Table]) -> dict[int, list[pa.Table]]:
        parts: dict[int, list[pa.Table]] = {}
        for table in tables:
            for value, part in self._parts(table):
                parts.setdefault(value, []).append(part)
        return parts

    def _parts(self, rows: pa.Table) -> Iterator[tuple[int, pa.Table]]:
        """rows by bucket, each in arrival order: slices of rows already in bucket order (in_bucket_order),
        else of a stable sort by bucket."""
        rows, buckets = _in_bucket_order(rows, self.column)
        starts = np.flatnonzero(np.diff(buckets)) + 1
        for start, end in zip([0, *starts.tolist()], [*starts.tolist(), len(buckets)]):
            if end > start:
                yield int(buckets[start]), rows.slice(start, end - start)

    def disk_bytes(self) -> int:
        """What the bucket files take on disk (compressed), once written."""
        self.close()
        return sum(path.stat().st_size for path, _, _ in self.files.values())

    def close(self) -> None:
        for _, sink, writer in self.files.values():
            if not sink.closed:
                writer.close()
                sink.close()

    def in_order(self, rest: Sequence[pa.Table] = ()) -> Iterator[tuple[int, Iterator[pa.RecordBatch]]]:
        """Each bucket's rows, in prefix order, as (bytes in memory, batches): the file's rows, then those
        of rest (rows that came last, still in memory) with that prefix. A file is deleted once read."""
        self.close()
        extra = {value: pa.concat_tables(parts) for value, parts in self._grouped(rest).items()}
        for value in sorted(set(self.files) | set(extra)):
            path = self.files[value][0] if value in self.files else None
            yield self.sizes.get(value, 0) + (extra[value].nbytes if value in extra else 0), \
                self._batches(path, extra.get(value))

    @staticmethod
    def _batches(path: Path | None, extra: pa.Table | None) -> Iterator[pa.RecordBatch]:
        if path is not None:
            with pa.OSFile(str(path)) as source:  # read, not memory-mapped: it would count as resident
                yield from pa.ipc.open_stream(source)
            path.unlink()
        if extra is not None:
            yield from extra.to_batches()

