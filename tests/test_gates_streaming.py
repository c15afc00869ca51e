"""Gates in bounded memory: a table validated in many small batches gets the verdict, counts and
offending rows of the same table validated whole, uniqueness stays exact across batch boundaries,
and what batches cannot decide is refused rather than misjudged."""

from __future__ import annotations

import gc
import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_quality import PARAMETERS, REPO, entry, good_examples, good_split_table, ingested, processed, suite_size

from langfoundry.core.errors import UserError
from langfoundry.core.pool import worker_count
from langfoundry.core.records import records_table
from langfoundry.gates.examples import RecordLookup, flatten_examples
from langfoundry.gates.gate import _batch_rows, _validating_workers, failure_table, validate
from langfoundry.gates.rows import ParquetRows, SplitLeaks, TableRows, planned_cuts, whole_key_batches, whole_key_ranges
from langfoundry.gates.tables import groups_in_several_splits, processed_tables

TINY = 7  # rows per batch: 30 rows make five batches


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    return tmp_path


def test_many_small_batches_give_the_whole_table_verdict_even_for_a_duplicate_across_a_boundary(root: Path) -> None:
    rows = [entry(i) for i in range(28)] + [entry(28, lang="xx-nowhere", line=60), dict(entry(29, line=61), meta="{")]
    in_order = sorted(rows, key=lambda row: (row["id"], row["origin"]))
    rows.append(dict(in_order[TINY - 1]))  # the same line read twice: rows 7 and 8 of the sorted table
    tables = ingested(root, rows, [], {"kamus": 31})
    written = pq.read_table(root / "data/records.parquet").column("id").to_pylist()
    assert written[TINY - 1] == written[TINY]  # the copy would start the second batch of 7 rows...
    assert list(whole_key_ranges(tables.rows, TINY)) == [(0, 8), (8, 14), (14, 21), (21, 28), (28, 31)]
    batches = list(whole_key_batches(tables.rows, TINY))
    assert batches[0].column("id").to_pylist().count(written[TINY]) == 2  # ...so the first one ends after it
    assert [row for batch in batches for row in batch.to_pylist()] == pq.read_table(root / "data/records.parquet").to_pylist()

    batched = validate("ingested", tables, PARAMETERS, root, batch_rows=TINY)
    pages = {page.relative_to(root).as_posix(): page.read_text(encoding="utf-8")
             for page in (root / "reports/quality/ingested/validations").rglob("*.html")}
    whole = validate("ingested", tables, PARAMETERS, root, batch_rows=1000)
    assert (batched.evaluated, batched.passed, batched.rows) == (whole.evaluated, whole.passed, whole.rows) == \
        (suite_size("ingested"), suite_size("ingested") - 3, 31)
    assert failure_table(batched) == failure_table(whole)
    assert gc.get_freeze_count() == 0  # validating processes freeze what they inherit; this one (one batch) must not
    broken_meta = next(f for f in batched.failures if f.expectation.startswith("expect_column_values_to_be_json_parseable"))
    assert broken_meta.rows_failed == 1  # "{" is checked; the "{}" of every other row passes without a parse
    duplicate = next(f for f in batched.failures if f.expectation == "expect_compound_columns_to_be_unique(id, origin)")
    assert duplicate.rows_failed == 2 and len(duplicate.examples) == 2
    assert json.loads((root / "metrics/quality/ingested.json").read_text())["rows"] == 31
    # One page per suite, for the whole table: its counts are the sums over the batches.
    rows_page = [text for name, text in pages.items() if "/ingested/" in name and "by_source" not in name]
    assert len(rows_page) == 1 and "xx-nowhere" in rows_page[0] and "of 31 total rows" in rows_page[0]


def test_a_table_of_up_to_two_batches_is_validated_whole_in_this_process() -> None:
    def plan(count: int) -> tuple[int, int]:
        rows = TableRows(records_table([entry(i) for i in range(count)]))
        size = _batch_rows(rows, TINY)
        return size, _validating_workers(rows, size)

    assert plan(3) == (TINY, 1)
    assert plan(2 * TINY) == (2 * TINY, 1)  # one GX run here rather than two in forked processes
    size, workers = plan(2 * TINY + 1)
    assert size == TINY and workers == min(3, worker_count())  # three batches: a process each, up to the cores


def test_examples_streamed_from_files_in_small_batches_match_the_examples_in_memory(root: Path) -> None:
    examples = good_examples()
    examples["train"].append(examples["test"][0])  # in two splits: a leak and a repeated id
    examples["val"][0] = dict(examples["val"][0], messages=examples["val"][0]["messages"][:1])  # ends with the user
    split_table = good_split_table()
    from_memory = validate("processed", processed_tables(examples, split_table), PARAMETERS, root)
    with processed(root, examples, split_table) as tables:
        streamed = validate("processed", tables, PARAMETERS, root, batch_rows=40)  # about 120 examples: 3 batches
    assert not streamed.success and (streamed.evaluated, streamed.passed) == (from_memory.evaluated, from_memory.passed)
    assert failure_table(streamed) == failure_table(from_memory)
    origin_of = dict(zip(split_table.column("id").to_pylist(), split_table.column("origin").to_pylist()))
    unique = next(f for f in streamed.failures if f.expectation == "expect_column_values_to_be_unique(id)")
    assert unique.rows_failed == 2 and origin_of[examples["test"][0]["record_id"]] in unique.examples[0]


def test_batches_are_made_of_whole_row_groups_and_a_large_group_is_cut() -> None:
    assert planned_cuts([4, 4, 4, 4, 3], 8) == [8, 16]  # two groups a batch: no group is decoded twice
    assert planned_cuts([4, 4, 4], 5) == [8]  # a batch of whole groups may pass batch_rows
    assert planned_cuts([30], 7) == [7, 14, 21, 28]  # a group larger than a batch is cut inside
    assert planned_cuts([3, 20, 2], 8) == [8, 16] and planned_cuts([], 8) == []


@pytest.mark.parametrize("seed", range(12))
def test_no_batch_splits_a_key_wherever_groups_chunks_and_cuts_fall(tmp_path: Path, monkeypatch, seed: int) -> None:
    """Random runs of one key (a row read twice, or more), nulls last, written in row groups of
    random size and read back a random number of keys at a time: the batches hold every row once,
    in order, and each key's rows in one batch."""
    rng = random.Random(seed)
    keys = [f"k{number:04d}" for number in range(rng.randrange(1, 60)) for _ in range(rng.choice([1, 1, 2, 3, 9]))]
    keys += [None] * rng.choice([0, 0, 3])
    table = pa.table({"id": pa.array(keys, pa.string()), "origin": [f"f.txt:{line:04d}" for line in range(len(keys))]})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=rng.randrange(1, 20))
    monkeypatch.setattr("langfoundry.gates.rows.READ_ROWS", rng.randrange(1, 15))
    batch_rows = rng.randrange(1, 25)
    for rows in (ParquetRows(path), TableRows(pa.Table.from_batches(table.to_batches(max_chunksize=rng.randrange(1, 9))))):
        ranges = list(whole_key_ranges(rows, batch_rows))
        assert [start for start, _ in ranges] == [0] + [stop for _, stop in ranges[:-1]] and ranges[-1][1] == len(keys)
        assert all(start < stop for start, stop in ranges)
        where = {}
        for number, (start, stop) in enumerate(ranges):
            for key in keys[start:stop]:
                assert key is None or where.setdefault(key, number) == number, f"{key} in two batches: {ranges}"
        assert pa.concat_tables(rows.read(start, stop) for start, stop in ranges).to_pylist() == table.to_pylist()


def test_rows_out_of_order_stop_the_gate_instead_of_passing_unchecked(tmp_path: Path) -> None:
    table = records_table([entry(i) for i in range(20)])
    path = tmp_path / "unsorted.parquet"
    pq.write_table(table.sort_by([("id", "descending")]), path)
    with pytest.raises(UserError, match="unsorted.parquet: rows are not sorted by id"):
        list(whole_key_batches(ParquetRows(path), 6))
    pq.write_table(good_split_table(), tmp_path / "split.parquet")
    examples = good_examples()["train"]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in reversed(examples)), encoding="utf-8")
    with pytest.raises(UserError, match=r"train.jsonl:2: examples are not sorted by id"):
        flatten_examples({"train": tmp_path / "train.jsonl"}, RecordLookup(tmp_path / "split.parquet"),
                         tmp_path / "flat.parquet")


def test_leaking_groups_from_hashes_are_the_leaking_groups() -> None:
    rng = random.Random(5)
    groups = [None if rng.random() < 0.05 else f"g{rng.randrange(60)}" for _ in range(400)]
    splits = [rng.choice(["train", "train", "train", "val", "test"]) for _ in groups]
    leaks = SplitLeaks()
    for start in range(0, 400, 37):
        leaks.add(pa.array(groups[start:start + 37], pa.string()), pa.array(splits[start:start + 37]))
    flags = leaks.finish().flags(pa.array(groups, pa.string())).to_pylist()
    expected = groups_in_several_splits(pa.array(groups, pa.string()), pa.array(splits)).to_pylist()
    assert flags == [flag and group is not None for flag, group in zip(expected, groups)]
    assert 0 < sum(flags) < len(flags)


def test_an_expectation_that_batches_cannot_decide_is_refused(root: Path) -> None:
    path = root / "expectations/ingested.json"
    suite = json.loads(path.read_text())
    suite["expectations"].append({"type": "expect_column_unique_value_count_to_be_between",
                                  "kwargs": {"column": "lang", "max_value": 3}})
    path.write_text(json.dumps(suite))
    with pytest.raises(UserError, match="'expect_column_unique_value_count_to_be_between' .* cannot run on the rows "
                                        "table: it depends on the whole column"):
        validate("ingested", ingested(root, [entry(i) for i in range(5)], [], {"kamus": 5}), PARAMETERS, root)
