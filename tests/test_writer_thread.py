"""The Parquet writer thread (core.writer_thread) and the compressed spill files of the sorted writer."""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langfoundry.core.storage import PARQUET_OPTIONS
from langfoundry.core.streaming import SortedParquetWriter
from langfoundry.core.writer_thread import ThreadedParquetWriter


def pieces(count: int, seed: int) -> list[pa.Table]:
    chooser = random.Random(seed)
    # ids of 16 two-byte prefixes: spread enough for the writer to spill by prefix, into few files
    return [pa.table({"id": [f"{chooser.randrange(16):x}0{chooser.getrandbits(56):014x}" for _ in range(size)],
                      "text": [" ".join(chooser.choice(["omah", "banyu", "segara", "wit"]) for _ in range(9))
                               for _ in range(size)]})
            for size in (chooser.randint(1, 3000) for _ in range(count))]


def test_the_thread_writes_the_bytes_of_writing_in_place(tmp_path: Path) -> None:
    tables = pieces(12, seed=3)
    with pq.ParquetWriter(tmp_path / "in_place.parquet", tables[0].schema, **PARQUET_OPTIONS) as writer:
        for table in tables:
            writer.write_table(table.combine_chunks(), row_group_size=1000)
    threaded = ThreadedParquetWriter(tmp_path / "threaded.parquet", tables[0].schema, **PARQUET_OPTIONS)
    for table in tables:
        threaded.write_table(table, row_group_size=1000)
    threaded.close()
    assert (tmp_path / "threaded.parquet").read_bytes() == (tmp_path / "in_place.parquet").read_bytes()
    assert pq.read_table(tmp_path / "threaded.parquet").num_rows == sum(table.num_rows for table in tables)


def test_an_error_on_the_thread_comes_back_to_the_caller(tmp_path: Path) -> None:
    good = pieces(1, seed=4)[0]
    wrong = pa.table({"id": [1, 2], "text": ["a", "b"]})  # id is not text: the file's schema refuses it
    threaded = ThreadedParquetWriter(tmp_path / "out.parquet", good.schema, **PARQUET_OPTIONS)
    threaded.write_table(good, row_group_size=1000)
    threaded.write_table(wrong, row_group_size=1000)
    with pytest.raises(ValueError, match="schema"):
        for _ in range(50):  # a later write, or close, hears of it
            threaded.write_table(good, row_group_size=1000)
        threaded.close()
    threaded.abort()  # after the error: closes the file without raising again
    assert not threaded._thread.is_alive()


def test_abort_stops_the_thread_without_raising(tmp_path: Path) -> None:
    tables = pieces(4, seed=5)
    threaded = ThreadedParquetWriter(tmp_path / "out.parquet", tables[0].schema, **PARQUET_OPTIONS)
    for table in tables:
        threaded.write_table(table, row_group_size=1000)
    threaded.abort()
    assert not threaded._thread.is_alive()


@pytest.mark.parametrize("buckets", [True, False])
def test_spilled_rows_take_less_disk_than_memory_and_sort_as_before(tmp_path: Path, buckets: bool,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="langfoundry.core.streaming")
    tables = pieces(40, seed=6)
    everything = pa.concat_tables(tables)
    on_disk = []
    writer = SortedParquetWriter(tmp_path / "sorted.parquet", everything.schema, ("id",), memory_bytes=200_000,
                                 buckets=buckets)
    with writer:
        for table in tables:
            writer.write(table)
        on_disk = [run.stat().st_size for run in writer.spilled_runs]
    assert len(on_disk) > 1
    assert sum(on_disk) < everything.nbytes / 2, "spilled rows are compressed"
    assert pq.read_table(tmp_path / "sorted.parquet").equals(everything.sort_by([("id", "ascending")]))
    if buckets:  # the line says what the rows took in memory and on disk
        memory, disk = map(int, re.search(r"\((\d+) MiB, (\d+) MiB on disk\)", caplog.text).groups())
        assert abs(memory - everything.nbytes / 2**20) <= 1 and disk < memory
