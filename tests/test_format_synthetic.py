"""Synthetic records in format: only reviewed ones train, never in val or test, their share of train capped."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from langfoundry.core.config import FormatParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.data.chat import format_metrics
from langfoundry.data.formatting import format_dataset

PARAMS = FormatParams(task_weights={"translate_from_pivot": 0})  # one example per record


def record(i: int, review: str | None = None, source: str = "dict") -> dict:
    meta = None if review is None else {"synthetic": True, **({"review": review} if review != "missing" else {})}
    return make_record(source=source, kind="parallel", lang="jv-x-banyumas", text=f"ukara {source} {review} {i}",
                       pivot_lang="id", pivot_text=f"kalimat {i}", meta=meta, origin=f"{source}.tsv:{i}")


def split_table(records: list[dict], splits: list[str]) -> pa.Table:
    table = records_table(records)
    table = table.append_column("group", pa.array([r["text"] for r in records], pa.string()))
    return table.append_column("split", pa.array(splits, pa.string()))


def table_of(real: int, reviews: dict[str, int], split: str = "train") -> pa.Table:
    records = [record(i) for i in range(real)]
    for review, count in reviews.items():
        records += [record(i, review, "dict.synthetic") for i in range(count)]
    return split_table(records, [split] * len(records))


def synthetic_in(examples: list[dict]) -> int:
    return sum(example["source"] == "dict.synthetic" for example in examples)


def test_only_accepted_synthetic_records_train_by_default():
    result = format_dataset(table_of(100, {"accepted": 5, "pending": 6, "rejected": 7, "missing": 2}), PARAMS, seed=1)
    assert synthetic_in(result.examples["train"]) == 5
    metrics = format_metrics(result)
    assert metrics["synthetic.records.excluded_pending"] == 8  # no review yet counts as pending
    assert metrics["synthetic.records.excluded_rejected"] == 7
    assert metrics["synthetic.records.kept_accepted"] == 5
    assert metrics["synthetic.train_examples"] == 5 and metrics["synthetic.train_share"] == pytest.approx(5 / 105, abs=1e-6)


def test_without_required_review_pending_ones_train_too_but_rejected_never():
    result = format_dataset(table_of(100, {"accepted": 5, "pending": 6, "rejected": 7}), PARAMS, seed=1, require_review=False)
    assert synthetic_in(result.examples["train"]) == 11
    assert format_metrics(result)["synthetic.records.kept_pending"] == 6


@pytest.mark.parametrize("split", ["val", "test"])
def test_synthetic_records_never_enter_val_or_test(split):
    result = format_dataset(table_of(10, {"accepted": 4, "pending": 1}, split), PARAMS, seed=1, require_review=False)
    assert synthetic_in(result.examples[split]) == 0 and len(result.examples[split]) == 10
    assert format_metrics(result)["synthetic.records.dropped_heldout"] == 5


def test_synthetic_share_of_train_is_capped_deterministically():
    table = table_of(70, {"accepted": 60})
    result = format_dataset(table, PARAMS, seed=1, max_synthetic_share=0.3)
    train = result.examples["train"]
    assert synthetic_in(train) == 30 and len(train) == 100  # 30 / (70 + 30) = 0.3
    metrics = format_metrics(result)
    assert metrics["synthetic.capped_examples"] == 30 and metrics["synthetic.train_share"] == 0.3
    again = format_dataset(table.take(list(range(table.num_rows - 1, -1, -1))), PARAMS, seed=1, max_synthetic_share=0.3)
    assert json.dumps(again.examples) == json.dumps(result.examples)
    assert synthetic_in(format_dataset(table, PARAMS, seed=1, max_synthetic_share=0.0).examples["train"]) == 0
    assert synthetic_in(format_dataset(table, PARAMS, seed=1, max_synthetic_share=1.0).examples["train"]) == 60


def test_cap_holds_after_the_mix_repeats_examples():
    params = FormatParams(task_weights={"translate_from_pivot": 0},
                          mix={"shares": {"dict": 0.5, "dict.synthetic": 0.5}, "max_repeats": 3})
    result = format_dataset(table_of(100, {"accepted": 100}), params, seed=1, max_synthetic_share=0.2)
    train = result.examples["train"]
    assert synthetic_in(train) / len(train) <= 0.2
    assert format_metrics(result)["mix.obtained.dict.synthetic"] == format_metrics(result)["synthetic.train_share"]


def test_an_unknown_review_value_is_one_line():
    with pytest.raises(UserError, match="has meta review 'approved'; expected one of pending, accepted, rejected"):
        format_dataset(table_of(1, {"approved": 1}), PARAMS, seed=1)


def test_records_without_synthetic_meta_are_untouched():
    table = split_table([record(0, source="a"), make_record(source="a", kind="parallel", lang="jv-x-banyumas", text="x y",
                                                            pivot_lang="id", pivot_text="z", meta={"synthetic": False},
                                                            origin="a:2")], ["train", "test"])
    result = format_dataset(table, PARAMS, seed=1)
    assert len(result.examples["train"]) == 1 and len(result.examples["test"]) == 1
