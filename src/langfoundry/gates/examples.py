"""The format stage's chat examples as the processed gate's rows table, read in bounded memory.

train/val/test.jsonl are each sorted by example id (data.chat.format_records); merged by id they
become one stream sorted by id, so the gate's per-batch check that example ids are unique across
the three files is exact (rows.py). The stream is flattened once into a temporary Parquet table
(one row per distinct example, tables.EXAMPLE_SCHEMA) that the gate then reads batch by batch.

What the split table tells about an example's record (its split, whether its origin is known) is
looked up by a 64-bit hash of the record id (RecordLookup: 10 bytes per record, not the ids). The
flat table's `origin` holds the record id where the origin is known (null where not, as the
expectation on it wants); the few origins a report shows are read from the split table at the end.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from langfoundry.core.errors import UserError
from langfoundry.core.streaming import open_parquet
from langfoundry.gates.rows import BATCH_ROWS, SplitLeaks, key_hashes
from langfoundry.gates.tables import EXAMPLE_SCHEMA, example_row

FLATTEN_ROWS = 50_000  # example rows held as Python dicts before they become Arrow
_NO_SPLIT = 255  # a record whose split is null


class RecordLookup:
    """Each record of the split table by a hash of its id: its split and whether it has an origin.

    Two record ids with the same 64-bit hash (odds about n^2 / 2^65, 3e-6 at ten million records)
    would lend one the other's split; an unknown id passes for known with odds n / 2^64.
    """

    def __init__(self, path: str | Path, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        hashes, codes, has_origin = [], [], []
        self.split_names: list[str] = []
        for batch in open_parquet(self.path).iter_batches(batch_size=batch_rows, columns=["id", "split", "origin"]):
            known = pc.is_valid(batch.column("id")).to_numpy(zero_copy_only=False)
            hashes.append(key_hashes(batch.column("id"))[known])
            codes.append(self._codes(batch.column("split"))[known])
            has_origin.append(pc.is_valid(batch.column("origin")).to_numpy(zero_copy_only=False)[known])
        hashes_all = np.concatenate(hashes) if hashes else np.array([], dtype=np.uint64)
        order = np.argsort(hashes_all, kind="stable")
        self.hashes = hashes_all[order]
        self.codes = (np.concatenate(codes) if codes else np.array([], dtype=np.uint8))[order]
        self.has_origin = (np.concatenate(has_origin) if has_origin else np.array([], dtype=bool))[order]

    def _codes(self, splits: pa.Array) -> np.ndarray:
        codes = np.full(len(splits), _NO_SPLIT, dtype=np.uint8)
        for name in pc.unique(splits).drop_null().to_pylist():
            if name not in self.split_names:
                if len(self.split_names) >= _NO_SPLIT:
                    raise UserError(f"{self.path}: more than {_NO_SPLIT} distinct split names; rerun the split stage")
                self.split_names.append(name)
            codes[pc.fill_null(pc.equal(splits, name), False).to_numpy(zero_copy_only=False)] = \
                self.split_names.index(name)
        return codes

    def lookup(self, record_ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(record_split, origin) columns for examples' record ids: the record's split, and its id
        where its origin is known (null for a record the split table lacks)."""
        hashed = key_hashes(record_ids)
        at = np.minimum(np.searchsorted(self.hashes, hashed), max(len(self.hashes) - 1, 0))
        found = pc.is_valid(record_ids).to_numpy(zero_copy_only=False)
        found &= self.hashes[at] == hashed if len(self.hashes) else np.zeros(len(hashed), dtype=bool)
        names = np.array(self.split_names + [None] * (_NO_SPLIT + 1 - len(self.split_names)), dtype=object)
        codes = np.where(found, self.codes[at] if len(self.hashes) else _NO_SPLIT, _NO_SPLIT)
        record_split = pa.array(names[codes], pa.string())
        known = found & (self.has_origin[at] if len(self.hashes) else False)
        return record_split, pc.if_else(pa.array(known), record_ids, pa.scalar(None, pa.string()))

    def origins(self, record_ids: set[str]) -> dict[str, str]:
        """The origins of a few records, read in one pass over the split table."""
        wanted = pa.array(sorted(record_ids), pa.string())
        found: dict[str, str] = {}
        for batch in open_parquet(self.path).iter_batches(batch_size=BATCH_ROWS, columns=["id", "origin"]):
            hits = pa.Table.from_batches([batch]).filter(pc.is_in(batch.column("id"), value_set=wanted))
            found.update(zip(hits.column("id").to_pylist(), hits.column("origin").to_pylist()))
        return found

    def show_origins(self, rows: list[dict[str, Any]]) -> None:
        """Put the record's origin where an offending row shows the record id standing in for it."""
        wanted = {row["origin"] for row in rows if isinstance(row.get("origin"), str)}
        origins = self.origins(wanted) if wanted else {}
        for row in rows:
            if isinstance(row.get("origin"), str):
                row["origin"] = origins.get(row["origin"], row["origin"])


def _sort_key(example_id: Any) -> tuple[int, str]:
    """Example ids in the order Arrow sorts strings (code points), nulls last."""
    return (1, "") if example_id is None else (0, str(example_id))


def _read_examples(path: Path, split: str) -> Iterator[tuple[tuple[int, str], str, dict[str, Any]]]:
    """(sort key, split, example) for each line, checking the file is sorted by id."""
    previous = None
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                example = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: not JSON ({err.msg}); rerun the format stage") from None
            if not isinstance(example, dict):
                raise UserError(f"{path}:{number}: not a JSON object; rerun the format stage")
            key = _sort_key(example.get("id"))
            if previous is not None and key < previous:
                raise UserError(f"{path}:{number}: examples are not sorted by id; the gate checks ids in that "
                                f"order, so rerun the format stage (dvc repro format)")
            previous = key
            yield key, split, example


def _distinct_examples(files: Mapping[str, Path]) -> Iterator[tuple[dict[str, Any], int]]:
    """(flat row, copies) per distinct (split, id), in id order over all files; repeats of an
    example (a task weight above 1) are adjacent in its sorted file."""
    streams = [_read_examples(Path(files[split]), split) for split in sorted(files)]
    merged = heapq.merge(*streams, key=lambda item: item[0])
    for (_, split), repeats in itertools.groupby(merged, key=lambda item: (item[0], item[1])):
        copies = list(repeats)  # an example and its repeats: a few lines at most
        yield example_row(copies[0][2], split), len(copies)


def flatten_examples(files: Mapping[str, Path], lookup: RecordLookup, out: Path,
                     chunk_rows: int = FLATTEN_ROWS) -> SplitLeaks:
    """Write the examples' flat table to `out`, sorted by id; return which groups leak across splits."""
    leaks = SplitLeaks()
    with pq.ParquetWriter(out, EXAMPLE_SCHEMA, compression="lz4") as writer:
        rows = _distinct_examples(files)
        while chunk := list(itertools.islice(rows, chunk_rows)):
            table = pa.Table.from_pylist([{**row, "copies": copies} for row, copies in chunk], schema=EXAMPLE_SCHEMA)
            record_split, origin = lookup.lookup(table.column("record_id").combine_chunks())
            for name, column in (("record_split", record_split), ("origin", origin)):
                table = table.set_column(EXAMPLE_SCHEMA.get_field_index(name), name, column)
            writer.write_table(table)
            leaks.add(table.column("group"), table.column("split"))
    return leaks.finish()
