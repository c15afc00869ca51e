"""Split assignment: stable under new data, groups never straddle, fractions, the stage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from langfoundry.core.config import SplitParams
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import write_parquet
from langfoundry.data.split import assign_splits, group_key, split_metrics, split_of

REPO = Path(__file__).resolve().parents[1]
PARAMS = SplitParams()


def entry(headword: str, gloss: str = "arti", line: int = 1, kind: str = "dictionary", meta: dict | None = None) -> dict:
    return make_record(source="test", kind=kind, lang="jv-x-banyumas", text=headword, pivot_lang="id",
                       pivot_text=gloss, origin=f"data/raw/test.csv:{line}", meta=meta)


def splits_by_id(rows: list[dict], params: SplitParams = PARAMS) -> dict[str, str]:
    table = assign_splits(records_table(rows), params)
    return dict(zip(table.column("id").to_pylist(), table.column("split").to_pylist()))


def test_adding_rows_with_new_groups_moves_no_existing_row() -> None:
    old = [entry(f"tembung{i}", f"kata{i}", line=i) for i in range(1000)]
    new = [entry(f"anyar{i}", f"baru{i}", line=2000 + i) for i in range(100)]
    before = splits_by_id(old)
    after = splits_by_id(new[:50] + old + new[50:])
    assert {row_id: after[row_id] for row_id in before} == before
    assert set(before.values()) == {"train", "val", "test"}


def test_variants_of_one_headword_share_group_and_split() -> None:
    variants = [entry("Adem", "sejuk", 1), entry("adem", "dingin", 2), entry("ADEM!", "adem", 3), entry(" adem ", "x", 4)]
    table = assign_splits(records_table(variants), PARAMS)
    assert len(set(table.column("group").to_pylist())) == 1
    assert len(set(table.column("split").to_pylist())) == 1


def test_recorded_headword_wins_over_the_text() -> None:
    recorded = group_key("dictionary", "test", "adhem", json.dumps({"headword": "Adem"}))
    assert recorded == group_key("dictionary", "test", "adem", "{}")


def test_sentences_of_one_document_stay_together() -> None:
    rows = [make_record(source="stories", kind="monolingual", lang="jv-x-banyumas", text=f"Ukara nomer {i}.",
                        origin=f"data/raw/stories.txt:{i}", meta={"doc_id": "crita-1"}) for i in range(50)]
    table = assign_splits(records_table(rows), PARAMS)
    assert set(table.column("group").to_pylist()) == {"doc:stories:crita-1"}
    assert len(set(table.column("split").to_pylist())) == 1


def test_fractions_are_roughly_respected() -> None:
    counts = {"train": 0, "val": 0, "test": 0}
    for i in range(20000):
        counts[split_of(f"text:group {i}", PARAMS)] += 1
    assert abs(counts["test"] / 20000 - 0.1) < 0.01 and abs(counts["val"] / 20000 - 0.1) < 0.01
    nothing_held_out = SplitParams(val_fraction=0.0, test_fraction=0.0)
    assert {split_of(f"text:{i}", nothing_held_out) for i in range(200)} == {"train"}


def test_salt_reshuffles() -> None:
    groups = [f"text:g{i}" for i in range(200)]
    one = [split_of(group, PARAMS) for group in groups]
    other = [split_of(group, SplitParams(salt="another")) for group in groups]
    assert one != other


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.lists(st.text(min_size=1, max_size=20), max_size=20))
def test_split_depends_only_on_the_group(headword: str, others: list[str]) -> None:
    alone = splits_by_id([entry(headword, line=1)])
    rows = [entry(headword, line=1)] + [entry(other, f"g{i}", line=i + 2) for i, other in enumerate(others)]
    together = splits_by_id(rows)
    row_id = rows[0]["id"]
    assert together[row_id] == alone[row_id] == split_of(group_key("dictionary", "test", headword, "{}"), PARAMS)


def test_metrics_count_rows_groups_and_straddling_groups() -> None:
    rows = [entry(f"tembung{i % 300}", f"arti{i}", line=i) for i in range(900)]
    table = assign_splits(records_table(rows), PARAMS)
    metrics = split_metrics(table)
    assert metrics["groups_in_several_splits"] == 0
    assert sum(metrics["rows"][split] for split in ("train", "val", "test")) == metrics["rows"]["total"] == 900
    assert sum(metrics["groups"][split] for split in ("train", "val", "test")) == metrics["groups"]["total"] == 300
    assert metrics["lang"]["jv-x-banyumas"]["train"] == metrics["rows"]["train"]
    # the check is real: a table where one group straddles is counted
    broken = table.set_column(table.schema.get_field_index("split"), "split",
                              [["train"] + ["test"] * (table.num_rows - 1)])
    assert split_metrics(broken)["groups_in_several_splits"] >= 1


def test_stage_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "data/interim").mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")  # the stage's quality gate
    shutil.copytree(REPO / "data/inventory", tmp_path / "data/inventory")
    write_parquet(records_table([entry(f"tembung{i}", line=i) for i in range(200)]), tmp_path / "data/interim/dedup.parquet")
    outputs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(REPO / "stages/split.py")], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outputs.append(((tmp_path / "data/interim/split.parquet").read_bytes(), (tmp_path / "metrics/split.json").read_bytes()))
    assert outputs[0] == outputs[1]
    table = pq.read_table(tmp_path / "data/interim/split.parquet")
    assert table.column_names[-2:] == ["group", "split"] and set(table.column("split").to_pylist()) <= {"train", "val", "test"}
