"""The rows a gate validates, read batch by batch so that a gate's memory does not grow with its table.

A row stream is cut into batches of about `batch_rows` rows such that all rows sharing the stream's
key (its first sort column, `id`) land in the same batch. The stages write their tables sorted by
(id, origin) (storage.write_parquet, streaming.SortedParquetWriter), so rows sharing an id are
adjacent: a batch that would end inside one id's rows ends after them instead, which makes a
per-batch uniqueness check on (id) or (id, origin) exact. Only the key column is read to find the
cuts; each batch is then read by the process that validates it (`read`), from whole row groups
where the cuts allow, so no batch is read twice nor sent between processes. The order is checked
as the keys stream past; a table out of order stops the gate rather than letting it pass unchecked.

Columns computed across rows (`group_in_several_splits`) come from a streamed pre-pass that keeps
64-bit hashes of the keys in numpy arrays (8 bytes per distinct key, not the keys themselves).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.core.errors import UserError
from langfoundry.core.streaming import open_parquet

# Rows per Great Expectations run. A run costs a quarter of a second whatever its size, and GX holds
# little beyond the batch itself (200,000 rows of 57 MiB took 75 MiB more while validated).
BATCH_ROWS = 200_000
ROW_SORT = ("id", "origin")  # how the stages write every rows table


def key_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hashes of strings (pandas' SipHash, the same in every process); a null hashes to the
    hash of no other string except by chance."""
    import pandas as pd  # pyarrow needs pandas anyway; imported here so that importing gates stays cheap

    return pd.util.hash_array(values.to_numpy(zero_copy_only=False), categorize=False)


class TableRows:
    """A table already in memory, sorted by `sorted_by` (stably, so equal keys keep their order)."""

    def __init__(self, table: pa.Table, sorted_by: Sequence[str] = ROW_SORT):
        keys = [(name, "ascending") for name in sorted_by if name in table.column_names]
        order = pc.sort_indices(table, sort_keys=keys).to_numpy() if keys and table.num_rows else None
        in_order = order is None or bool(np.all(order == np.arange(len(order))))
        self.table = table if in_order else table.take(order)  # a stage's table is in order: no copy
        self.sorted_by = tuple(sorted_by)
        self.schema = self.table.schema
        self.num_rows = self.table.num_rows
        self.where = "the rows table"

    def pieces(self, batch_rows: int) -> list[int]:
        """Row counts of the parts a batch is best made of (here any size will do)."""
        return [min(batch_rows, self.num_rows - start) for start in range(0, self.num_rows, batch_rows)]

    def key_chunks(self, key: str) -> Iterator[pa.Array]:
        yield from self.table.column(key).chunks

    def read(self, start: int, stop: int) -> pa.Table:
        return self.table.slice(start, stop - start)


class ParquetRows:
    """A Parquet file written sorted by `sorted_by`, read in batches; `derive` adds the columns
    computed for checking (from a pre-pass) to each batch."""

    def __init__(self, path: str | os.PathLike, sorted_by: Sequence[str] = ROW_SORT,
                 derive: Callable[[pa.Table], pa.Table] | None = None):
        self.path = Path(path)
        self.sorted_by = tuple(sorted_by)
        self.derive = derive  # a module-level function or a method: the rows may go to another process
        source = open_parquet(self.path)
        self.schema = self._derived(source.schema_arrow.empty_table()).schema
        self.num_rows = source.metadata.num_rows
        self.where = str(self.path)

    def _derived(self, batch: pa.Table) -> pa.Table:
        return self.derive(batch) if self.derive is not None else batch

    def pieces(self, batch_rows: int) -> list[int]:
        """The file's row groups: a batch of whole row groups decodes no row that another batch needs."""
        metadata = open_parquet(self.path).metadata
        return [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]

    def key_chunks(self, key: str) -> Iterator[pa.Array]:
        for batch in open_parquet(self.path).iter_batches(batch_size=READ_ROWS, columns=[key], use_threads=False):
            yield batch.column(0)

    def read(self, start: int, stop: int) -> pa.Table:
        """Rows start..stop (a batch), from the row groups that hold them, a slice at a time."""
        source = open_parquet(self.path)
        groups, first, position = [], 0, 0
        for index in range(source.metadata.num_row_groups):
            size = source.metadata.row_group(index).num_rows
            if position < stop and position + size > start:
                first = position if not groups else first
                groups.append(index)
            position += size
        parts, position = [], first
        # one thread: the batches are validated in several processes, which keep the cores busy
        for batch in source.iter_batches(batch_size=min(max(stop - start, 1), READ_ROWS), row_groups=groups,
                                         use_threads=False):
            end = position + batch.num_rows
            if end > start:
                parts.append(batch.slice(max(start - position, 0), min(stop, end) - max(start, position)))
            position = end
            if position >= stop:
                break
        table = pa.Table.from_batches(parts, source.schema_arrow) if parts else source.schema_arrow.empty_table()
        return self._derived(table)


RowStream = TableRows | ParquetRows
READ_ROWS = 131_072  # rows decoded at a time while a batch is read


def _check_order(keys: pa.Array, previous: pa.Array, where: str, key: str, offset: int) -> None:
    """Keys must not decrease (nulls last, as Arrow sorts them), within a batch and from the
    previous batch's last key."""
    keys = pa.concat_arrays([previous, keys]) if len(previous) else keys
    valid = pc.is_valid(keys)
    present = pc.sum(valid).as_py() or 0
    ordered = present == len(keys) or not pc.any(valid.slice(present)).as_py()
    if ordered and present > 1:
        head = keys.slice(0, present)
        ordered = pc.all(pc.less_equal(head.slice(0, present - 1), head.slice(1))).as_py()
    if not ordered:
        raise UserError(f"{where}: rows are not sorted by {key} (near row {offset + 1}); the gate checks "
                        f"uniqueness in the order the stages write, so rerun the stage that wrote it")


def planned_cuts(pieces: Sequence[int], batch_rows: int) -> list[int]:
    """Where batches of about batch_rows rows would end, made of whole pieces (row groups) where a
    piece is no larger than batch_rows; a larger piece is cut every batch_rows rows."""
    cuts, position, since = [], 0, 0
    for size in pieces:
        end = position + size
        while position < end:
            step = end - position if size <= batch_rows else min(end - position, batch_rows - since)
            position, since = position + step, since + step
            if since >= batch_rows:
                cuts.append(position)
                since = 0
    return [cut for cut in cuts if cut < position]


def _leading_run(keys: pa.Array, value: pa.Scalar) -> int:
    """How many of the (sorted) keys at the front equal value."""
    return pc.sum(pc.equal(keys, value)).as_py() or 0


def whole_key_ranges(rows: RowStream, batch_rows: int) -> Iterator[tuple[int, int]]:
    """The stream's rows as (start, stop) batches of about batch_rows rows, none splitting the rows of one key.

    A batch that would end inside one key's rows ends after them (ids are unique after dedup, so a
    batch grows by a few rows at most). Rows without a key are not kept together: they already fail
    the not-null expectation on it. An empty stream is one empty batch, whose row count and columns
    are still judged.
    """
    planned = planned_cuts(rows.pieces(batch_rows), batch_rows)
    key = rows.sorted_by[0] if rows.sorted_by else None
    start = 0
    if key not in rows.schema.names:
        for cut in planned:
            yield start, cut
            start = cut
        yield start, rows.num_rows
        return
    waiting = iter(planned)
    cut = next(waiting, None)
    carried: pa.Scalar | None = None  # the key a batch must not end within, while its rows go on
    previous = pa.array([], rows.schema.field(key).type)
    offset = 0
    for keys in rows.key_chunks(key):
        _check_order(keys, previous, rows.where, key, offset)
        size = len(keys)
        at = 0  # where in this chunk the next decision is made
        while True:
            if carried is not None:
                run = _leading_run(keys.slice(at), carried)
                if at + run == size:
                    break  # the key's rows go on into the next chunk
                at += run
                yield start, offset + at
                start, carried = offset + at, None
                while cut is not None and cut <= start:
                    cut = next(waiting, None)
            if cut is None or cut >= offset + size:
                break
            at = cut - offset
            last = keys[at - 1] if at > 0 else previous[0]
            if last.is_valid:
                carried = last
            else:
                yield start, cut
                start, cut = cut, next(waiting, None)
        offset += size
        previous = keys.slice(size - 1) if size else previous
    if start < rows.num_rows or start == 0:
        yield start, rows.num_rows


def whole_key_batches(rows: RowStream, batch_rows: int) -> Iterator[pa.Table]:
    """The batches of whole_key_ranges, read."""
    for start, stop in whole_key_ranges(rows, batch_rows):
        yield rows.read(start, stop)


# --- columns computed across rows ----------------------------------------------------------------


class SplitLeaks:
    """Which groups have rows in more than one split, from one streamed pass over (group, split).

    Kept per distinct (group, split) pair: one 64-bit number, the group's hash with its low two
    bits replaced by the split's code. Hashing makes a false alarm possible (two groups with the
    same 62-bit hash, in different splits: odds about n^2 / 2^63, 1e-5 at ten million groups) but
    never a missed leak, since one group always has one hash.
    """

    SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # anything else (a gate failure of its own): 3

    def __init__(self) -> None:
        self._pairs: list[np.ndarray] = []
        self.leaking = np.array([], dtype=np.uint64)

    def _codes(self, splits: pa.Array | pa.ChunkedArray) -> np.ndarray:
        codes = np.full(len(splits), 3, dtype=np.uint64)
        for name, code in self.SPLIT_CODES.items():
            codes[pc.fill_null(pc.equal(splits, name), False).to_numpy(zero_copy_only=False)] = code
        return codes

    def add(self, groups: pa.Array | pa.ChunkedArray, splits: pa.Array | pa.ChunkedArray) -> None:
        known = pc.is_valid(groups).to_numpy(zero_copy_only=False)
        pairs = (key_hashes(groups) & ~np.uint64(3)) | self._codes(splits)
        self._pairs.append(np.unique(pairs[known]))
        if len(self._pairs) > 16:  # keep the list short: merge what is there
            self._pairs = [np.unique(np.concatenate(self._pairs))]

    def finish(self) -> SplitLeaks:
        pairs = np.unique(np.concatenate(self._pairs)) if self._pairs else np.array([], dtype=np.uint64)
        self._pairs = []
        groups = pairs & ~np.uint64(3)
        repeated = groups[1:] == groups[:-1]  # sorted: a group in two splits shows up twice in a row
        self.leaking = np.unique(groups[1:][repeated])
        return self

    def flags(self, groups: pa.Array | pa.ChunkedArray) -> pa.Array:
        """True for each row whose group also has rows in another split (False without a group)."""
        hashed = key_hashes(groups) & ~np.uint64(3)
        found = np.isin(hashed, self.leaking) & pc.is_valid(groups).to_numpy(zero_copy_only=False)
        return pa.array(found, pa.bool_())

    def derive(self, batch: pa.Table) -> pa.Table:
        """The batch with its `group_in_several_splits` column."""
        if "group" not in batch.column_names:
            return batch
        return batch.append_column("group_in_several_splits", self.flags(batch.column("group")))


def split_leaks(path: str | os.PathLike, batch_rows: int = BATCH_ROWS) -> SplitLeaks:
    """The leaking groups of a Parquet table with `group` and `split` columns."""
    leaks = SplitLeaks()
    source = open_parquet(path)
    if {"group", "split"} <= set(source.schema_arrow.names):
        for batch in source.iter_batches(batch_size=batch_rows, columns=["group", "split"]):
            leaks.add(batch.column("group"), batch.column("split"))
    return leaks.finish()
