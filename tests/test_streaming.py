"""Streaming the data stages: the sorted writer against write_parquet, the ordered process pool, and
each stage's file-to-file path against its in-memory one, byte for byte."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langfoundry.clean import driver as clean_driver
from langfoundry.clean.dedup import dedup_parquet, dedup_table
from langfoundry.clean.dedup import driver as dedup_driver
from langfoundry.clean.driver import clean_batches, clean_parquet
from langfoundry.core import streaming
from langfoundry.core.buckets import in_bucket_order
from langfoundry.core.config import CleanParams, DedupParams, NearDedupParams
from langfoundry.core.pool import WorkerParquet, ordered_map
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import ROW_GROUP_ROWS, write_parquet
from langfoundry.core.streaming import SortedParquetWriter, rows_in_order, written_together

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"jv": "Latn", "id": "Latn", "ml": "Mlym"}


def keyed_table(rows: int, seed: int, ties: bool) -> pa.Table:
    chooser = random.Random(seed)
    ids = [chooser.choice(["a", "b", None]) if ties else f"{chooser.getrandbits(40):010x}" for _ in range(rows)]
    origins = [chooser.choice([None, "f:1", "f:2"]) for _ in range(rows)]
    return pa.table({"id": pa.array(ids, pa.string()), "origin": pa.array(origins, pa.string()),
                     "row": pa.array(range(rows), pa.int64())})


@pytest.mark.parametrize("rows, chunk, memory, ties", [
    (0, 10, 1 << 20, False), (7, 2, 1 << 20, True), (3000, 111, 1 << 20, False),
    (20_000, 700, 30_000, False), (20_000, 700, 30_000, True), (ROW_GROUP_ROWS + 5000, 9000, 1 << 21, False),
])
def test_sorted_writer_writes_what_write_parquet_writes(tmp_path: Path, rows: int, chunk: int, memory: int,
                                                        ties: bool) -> None:
    table = keyed_table(rows, seed=rows, ties=ties)
    write_parquet(table, tmp_path / "whole.parquet", sort_by=("id", "origin"))
    with SortedParquetWriter(tmp_path / "streamed.parquet", table.schema, ("id", "origin"), memory_bytes=memory) as writer:
        for batch in table.to_batches(max_chunksize=chunk):
            writer.write(batch)
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["streamed.parquet", "whole.parquet"]  # runs removed
    if memory < 100_000 and rows:
        assert writer.spilled_runs, "the small memory budget should have spilled runs"


def test_rows_that_stop_arriving_in_order_are_merged_from_both_kinds_of_run(tmp_path: Path) -> None:
    """In-order rows already written to the output become the first run (Parquet); rows buffered
    after them spill as Arrow runs; the merge reads both and writes what write_parquet writes."""
    shuffled = keyed_table(12_000, seed=5, ties=False)
    table = pa.concat_tables([shuffled.slice(0, 6_000).sort_by([("id", "ascending")]), shuffled.slice(6_000)])
    write_parquet(table, tmp_path / "whole.parquet", sort_by=("id", "origin"))
    with SortedParquetWriter(tmp_path / "streamed.parquet", table.schema, ("id", "origin"), memory_bytes=40_000,
                             buckets=False) as writer:  # runs, as for keys that do not spread
        for batch in table.to_batches(max_chunksize=1_000):
            writer.write(batch)
    assert {run.suffix for run in writer.spilled_runs} == {".parquet", ".arrow"}
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["streamed.parquet", "whole.parquet"]


def spilled_kinds(writer: SortedParquetWriter) -> set[str]:
    return {"bucket" if run.name.count(".") == 2 else "run" for run in writer.spilled_runs}


@pytest.mark.parametrize("ids, prepared", [("hex", False), ("words", False), ("one_prefix", False),
                                           ("empty_and_short", False), ("hex", True), ("empty_and_short", True)])
def test_keys_that_spread_spill_by_prefix_and_the_rest_in_runs_both_as_write_parquet_writes(tmp_path: Path, ids: str,
                                                                                          prepared: bool) -> None:
    """prepared: each table comes in bucket order (as ingest's workers send theirs), which the spill cuts
    into slices instead of sorting; equal keys must still keep the order they came in."""
    chooser = random.Random(ids)
    make = {"hex": lambda: f"{chooser.getrandbits(64):016x}",
            "words": lambda: chooser.choice(["ꦱꦼꦒ", "sega", "Sega", "ségà", "a", "ab", "b", "zz", "\U0001f600x"])
            + str(chooser.random()),
            "one_prefix": lambda: "src-" + str(chooser.random()),  # every row one prefix: not spread
            "empty_and_short": lambda: chooser.choice(["", "a", "a0", "a\x00", None, "b", "ba", "c", "d", "e", "f", "g", "h",
                                                       "i", "j", "k", "l", "m", "n"])}[ids]
    table = pa.table({"id": pa.array([make() for _ in range(6000)], pa.string()),
                      "origin": pa.array([chooser.choice(["f:1", "f:2", None]) for _ in range(6000)], pa.string()),
                      "row": pa.array(range(6000), pa.int64())})
    write_parquet(table, tmp_path / "whole.parquet", sort_by=("id", "origin"))
    with SortedParquetWriter(tmp_path / "streamed.parquet", table.schema, ("id", "origin"), memory_bytes=20_000) as writer:
        for batch in table.to_batches(max_chunksize=250):
            writer.write(in_bucket_order(pa.Table.from_batches([batch]), "id") if prepared else batch)
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert spilled_kinds(writer) == ({"run"} if ids == "one_prefix" else {"bucket"})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["streamed.parquet", "whole.parquet"]  # files removed


def test_rows_written_in_order_then_out_of_order_go_to_the_buckets_first(tmp_path: Path) -> None:
    """The in-order rows already in the output come before every later row with an equal key."""
    table = keyed_table(9000, seed=8, ties=False)
    ids = table.column("id").to_pylist()
    table = table.set_column(0, "id", pa.array([ids[index % 3000] for index in range(9000)], pa.string()))
    ordered = pa.concat_tables([table.slice(0, 3000).sort_by([("id", "ascending")]), table.slice(3000)])
    write_parquet(ordered, tmp_path / "whole.parquet", sort_by=("id", "origin"))
    with SortedParquetWriter(tmp_path / "streamed.parquet", table.schema, ("id", "origin"), memory_bytes=30_000) as writer:
        for batch in ordered.to_batches(max_chunksize=500):
            writer.write(batch)
    assert spilled_kinds(writer) == {"bucket"}
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def test_a_bucket_larger_than_memory_is_sorted_in_runs_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys that spread at the first spill and then crowd one prefix: that bucket outgrows the budget."""
    own_writers: list[SortedParquetWriter] = []

    class Watched(SortedParquetWriter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            own_writers.append(self)

    monkeypatch.setattr(streaming, "SortedParquetWriter", Watched)
    spread = keyed_table(2000, seed=4, ties=False)
    crowded = pa.table({"id": pa.array([f"77{index * 7919 % 10007:08d}" for index in range(8000)], pa.string()),
                        "origin": pa.array(["f:1"] * 8000, pa.string()), "row": pa.array(range(2000, 10_000), pa.int64())})
    table = pa.concat_tables([spread, crowded])
    write_parquet(table, tmp_path / "whole.parquet", sort_by=("id", "origin"))
    with SortedParquetWriter(tmp_path / "streamed.parquet", table.schema, ("id", "origin"), memory_bytes=40_000) as writer:
        for batch in table.to_batches(max_chunksize=400):
            writer.write(batch)
    assert spilled_kinds(writer) == {"bucket"}
    assert len(own_writers) == 1 and own_writers[0].spilled_runs, "the crowded bucket was sorted in runs"
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["streamed.parquet", "whole.parquet"]


def test_rows_in_order_pass_straight_through(tmp_path: Path) -> None:
    table = keyed_table(5000, seed=1, ties=False).sort_by([("id", "ascending"), ("origin", "ascending")])
    with SortedParquetWriter(tmp_path / "out.parquet", table.schema, ("id", "origin"), memory_bytes=1000) as writer:
        for batch in table.to_batches(max_chunksize=300):
            writer.write(batch)
    assert not writer.spilled_runs
    assert pq.read_table(tmp_path / "out.parquet").equals(table)


def test_a_failed_write_leaves_no_partial_output(tmp_path: Path) -> None:
    table = keyed_table(1000, seed=2, ties=False)
    with pytest.raises(RuntimeError):
        with SortedParquetWriter(tmp_path / "out.parquet", table.schema, ("id",), memory_bytes=1000) as writer:
            for batch in table.to_batches(max_chunksize=100):
                writer.write(batch)
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


class MergeFails(SortedParquetWriter):
    def _merge(self, sources) -> None:  # stands in for a kill while the records merge their spilled runs
        raise MemoryError("killed while merging")

    def _sort_buckets(self) -> None:  # or sort their spilled buckets
        raise MemoryError("killed while sorting")


def write_both(records: SortedParquetWriter, rejects: SortedParquetWriter, table: pa.Table) -> None:
    with written_together(records, rejects) as (records, rejects):
        for batch in table.to_batches(max_chunksize=100):
            records.write(batch)
            rejects.write(batch.slice(0, 1))


def test_outputs_written_together_appear_only_when_all_are_complete(tmp_path: Path) -> None:
    table = keyed_table(3000, seed=3, ties=False)
    with pytest.raises(MemoryError):
        write_both(MergeFails(tmp_path / "records.parquet", table.schema, ("id",), memory_bytes=1000),
                   SortedParquetWriter(tmp_path / "rejects.parquet", table.schema, ("id",)), table)
    assert list(tmp_path.iterdir()) == [], "the small, complete rejects were not published beside no records"

    write_both(SortedParquetWriter(tmp_path / "records.parquet", table.schema, ("id",), memory_bytes=1000),
               SortedParquetWriter(tmp_path / "rejects.parquet", table.schema, ("id",)), table)
    assert pq.read_table(tmp_path / "records.parquet").num_rows == 3000
    assert pq.read_table(tmp_path / "rejects.parquet").num_rows == 30
    assert sorted(path.name for path in tmp_path.iterdir()) == ["records.parquet", "rejects.parquet"]


def _square(value: int) -> int:
    return value * value


def _boom(value: int) -> int:
    if value == 5:
        raise ValueError("five")
    return value


def test_ordered_map_keeps_order_and_raises_errors() -> None:
    assert list(ordered_map(_square, range(40), workers=2)) == [value * value for value in range(40)]
    assert list(ordered_map(_square, [3], workers=2)) == [9]
    with pytest.raises(ValueError, match="five"):
        list(ordered_map(_boom, range(10), workers=2))


_SHARED_FILE: list = []  # the WorkerParquet the workers of the next test read through (set before they fork)


def _first_value_of_group(index: int) -> int:
    return _SHARED_FILE[0].read_row_group(index, columns=["row"]).column(0)[0].as_py()


def test_a_worker_parquet_is_opened_again_by_each_process_that_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"row": list(range(40))}), path, row_group_size=10)
    shared = WorkerParquet(path)
    assert shared.read_row_group(1, columns=["row"]).column(0).to_pylist() == list(range(10, 20))
    # the file is replaced after this process opened it: a forked worker must read the new file, not
    # the old one through the handle it inherited
    replacement = tmp_path / "new.parquet"
    pq.write_table(pa.table({"row": list(range(100, 140))}), replacement, row_group_size=10)
    replacement.replace(path)
    _SHARED_FILE[:] = [shared]
    try:
        assert list(ordered_map(_first_value_of_group, range(4), workers=2)) == [100, 110, 120, 130]
    finally:
        _SHARED_FILE.clear()
    assert shared.read_row_group(3).column(0)[0].as_py() == 30  # this process keeps the file it opened


# --- stages: streamed files against the in-memory functions ---------------------------------------------


def corpus(rows: int) -> list[dict]:
    chooser = random.Random(7)
    words = ["omah", "banyu", "segara", "wit", "kali", "angin", "lemah", "geni", "é", "ngène", "Wong", "mlaku"]
    out = []
    for line in range(1, rows + 1):
        sentence = " ".join(chooser.choice(words) for _ in range(chooser.randint(1, 12)))
        variant = chooser.random()
        if variant < 0.05:
            sentence = "123 456 7890 --"
        elif variant < 0.1:
            sentence = "omah " * 6
        elif variant < 0.15:
            sentence = "  Wong\u00a0mlaku  ing\u200b dalan "  # needs normalising
        elif variant < 0.2:
            sentence = "മലയാളം " + sentence
        pivot = " ".join(chooser.choice(words) for _ in range(chooser.randint(1, 10)))
        out.append(make_record(source="s", kind="parallel", lang="jv", text=sentence, pivot_lang="id", pivot_text=pivot,
                               origin=f"data/raw/s.txt:{line}"))
    out += out[:: 9]  # exact duplicates, same origin (as ingest never makes, but a file may hold)
    return out


@pytest.mark.parametrize("params", [CleanParams(), CleanParams(repetition_unit="substrings", max_word_repeats=2,
                                                                 script_ratio_without_letters="pass", scrub_pii=False)])
def test_clean_parquet_equals_clean_batches(tmp_path: Path, params: CleanParams) -> None:
    table = records_table(corpus(3000))
    write_parquet(table, tmp_path / "in.parquet", sort_by=("id", "origin"))
    result = clean_batches(pq.read_table(tmp_path / "in.parquet").to_batches(max_chunksize=500), params, SCRIPTS)
    write_parquet(result.kept_table(table.schema), tmp_path / "kept.parquet", sort_by=("id", "origin"))
    write_parquet(result.rejects_table(), tmp_path / "rejects.parquet", sort_by=("id", "origin"))
    # the same rows in row groups of 250: shared out by row group, each read by the worker that cleans it
    pq.write_table(pq.read_table(tmp_path / "in.parquet"), tmp_path / "groups.parquet", row_group_size=250)
    assert pq.ParquetFile(tmp_path / "groups.parquet").num_row_groups >= clean_driver.ROW_GROUP_JOBS_FROM
    for workers, name in ((1, "in"), (2, "in"), (1, "groups"), (2, "groups")):
        counts = clean_parquet(tmp_path / f"{name}.parquet", tmp_path / "k.parquet", tmp_path / "r.parquet", params,
                               SCRIPTS, batch_rows=400 if name == "in" else 100, workers=workers)
        assert counts == result.counts
        assert (tmp_path / "k.parquet").read_bytes() == (tmp_path / "kept.parquet").read_bytes()
        assert (tmp_path / "r.parquet").read_bytes() == (tmp_path / "rejects.parquet").read_bytes()


@pytest.mark.parametrize("near, held", [(False, True), (True, True), (True, False)])
def test_dedup_parquet_equals_dedup_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, near: bool,
                                          held: bool) -> None:
    if not held:  # read the file again for each pass, as a large one is
        monkeypatch.setattr(dedup_driver, "IN_MEMORY_BYTES", 0)
    params = DedupParams(near=NearDedupParams(enabled=near))
    table = records_table(corpus(2000))
    write_parquet(table, tmp_path / "in.parquet", sort_by=("id", "origin"))
    if not held:  # row groups of 300 rows, each read by the worker it is given to
        pq.write_table(pq.read_table(tmp_path / "in.parquet"), tmp_path / "in.parquet", row_group_size=300)
        assert pq.ParquetFile(tmp_path / "in.parquet").num_row_groups == -(-table.num_rows // 300)
    result = dedup_table(table, params)
    assert result.rejects.num_rows > 0
    write_parquet(result.kept, tmp_path / "kept.parquet", sort_by=("id", "origin"))
    write_parquet(result.rejects, tmp_path / "rejects.parquet", sort_by=("id", "origin"))
    for workers in (1, 2):
        counts = dedup_parquet(tmp_path / "in.parquet", tmp_path / "k.parquet", tmp_path / "r.parquet", params,
                               workers=workers, batch_rows=300)
        assert counts == result.counts
        assert (tmp_path / "k.parquet").read_bytes() == (tmp_path / "kept.parquet").read_bytes()
        assert (tmp_path / "r.parquet").read_bytes() == (tmp_path / "rejects.parquet").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.parquet", "k.parquet", "kept.parquet",
                                                                "r.parquet", "rejects.parquet"]  # band spill removed


# --- ingest: the column path for parallel text against SourceMapper.record, and the streamed files -----


def parallel_repo(root: Path) -> list:
    from langfoundry.core.config import Source

    raw = root / "data/raw"
    raw.mkdir(parents=True)
    targets = ["Omah gedhe.", "", "  ", "Banyu\u00a0mili", "x" * 50, "Segara", "ngguyu ", "wit"]
    pivots = ["Rumah besar.", "air", "kosong", "Air mengalir", "y", "\t", "tertawa", "pohon"]
    (raw / "jv.txt").write_text("\n".join(targets) + "\n", encoding="utf-8")
    (raw / "id.txt").write_text("\n".join(pivots) + "\n", encoding="utf-8")
    lines = [{"src": target, "tgt": pivot} for target, pivot in zip(targets, pivots)]
    lines += [{"src": 12, "tgt": "dua belas"}, {"src": "a\ud800b", "tgt": "c"}, {"src": "kali"}]
    (raw / "corpus.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return [Source(id="aligned", kind="parallel", lang="jv", pivot_lang="id", path="data/raw/jv.txt",
                   pivot_path="data/raw/id.txt", format="txt"),
            Source(id="lines", kind="parallel", lang="jv", pivot_lang="id", path="data/raw/corpus.jsonl",
                   columns={"text": "src", "pivot_text": "tgt"})]


def test_parallel_columns_make_the_records_source_mapper_makes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest_run import ingest_into

    from langfoundry.core.config import IngestParams
    from langfoundry.core.inventory import load_inventory
    from langfoundry.data import mapping
    from langfoundry.data.readers.rows import Row

    sources = parallel_repo(tmp_path)
    inventory = load_inventory(REPO / "data/inventory/languages.csv")
    fast = ingest_into(tmp_path / "fast", sources, IngestParams(), inventory, root=tmp_path)
    monkeypatch.setattr(mapping.ParallelColumns, "add_values", lambda self, origin, text, pivot: False)
    monkeypatch.setattr(mapping.ParallelColumns, "add_block", lambda self, name, block: [
        Row(f"{name}:{block.first + index}", {"text": text, "pivot_text": pivot})
        for index, (text, pivot) in enumerate(zip(block.texts, block.pivots))])
    slow = ingest_into(tmp_path / "slow", sources, IngestParams(), inventory, root=tmp_path)
    assert fast.records.num_rows > 0 and fast.rejects.num_rows > 0
    # both as written: records sorted by id and origin, rejects by source, origin and the rest
    assert fast.records.equals(slow.records)
    assert fast.rejects.equals(slow.rejects)
    assert fast.metrics == slow.metrics


def test_ingest_to_files_writes_the_same_files_when_every_chunk_spills(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest_run import ingest_into

    from langfoundry.core import streaming
    from langfoundry.core.config import IngestParams
    from langfoundry.core.inventory import load_inventory
    from langfoundry.data import ingest

    sources = parallel_repo(tmp_path)
    inventory = load_inventory(REPO / "data/inventory/languages.csv")
    held = ingest_into(tmp_path / "held", sources, IngestParams(), inventory, root=tmp_path)  # nothing spills
    whole = [path.read_bytes() for path in held.paths]
    writers: list[streaming.SortedParquetWriter] = []

    class SpillEveryChunk(streaming.SortedParquetWriter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "memory_bytes": 1})  # every out-of-order chunk spills
            writers.append(self)

    monkeypatch.setattr(ingest, "SortedParquetWriter", SpillEveryChunk)
    spilled = ingest_into(tmp_path / "spilled", sources, IngestParams(), inventory, root=tmp_path)
    streamed = [path.read_bytes() for path in spilled.paths]
    assert streamed == whole and spilled.metrics["rows_read"] == held.metrics["rows_read"] == 19
    runs = [run for writer in writers for run in writer.spilled_runs]
    assert runs and sum(writer.spilled_bytes for writer in writers) > 0, "runs were written to disk"
    assert not any(run.exists() or run.parent.exists() for run in runs), "spilled runs are removed on close"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "a", "ab", "b", "ꦱ", None]), st.sampled_from([0, 1, 2, None])),
                max_size=12), st.booleans())
def test_rows_in_order_agrees_with_a_stable_sort(rows: list[tuple], sort_first: bool) -> None:
    """The writer's neighbour-by-neighbour check against the sort it replaces, with ties and nulls."""
    table = pa.table({"id": pa.array([row[0] for row in rows], pa.string()),
                      "line": pa.array([row[1] for row in rows], pa.int64())})
    keys = [("id", "ascending"), ("line", "ascending")]
    if sort_first:
        table = table.sort_by(keys)
    for names in (["id"], ["id", "line"], ["line"]):
        order = pc.sort_indices(table, sort_keys=[(name, "ascending") for name in names]).to_numpy()
        assert rows_in_order(table, names) == bool(np.all(order == np.arange(table.num_rows)))
        no_nulls = table.filter(pc.and_(pc.is_valid(table.column("id")), pc.is_valid(table.column("line"))))
        order = pc.sort_indices(no_nulls, sort_keys=[(name, "ascending") for name in names]).to_numpy()
        assert rows_in_order(no_nulls, names) == bool(np.all(order == np.arange(no_nulls.num_rows)))
