"""format.mix: train shares per source or category, deterministic resampling, the repeat cap, one-line errors."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pyarrow as pa
import pytest
import yaml

from langfoundry.core.config import FormatParams, Params
from langfoundry.core.errors import UserError
from langfoundry.core.format_config import MixParams
from langfoundry.core.records import make_record, records_table
from langfoundry.core.strict_yaml import validate_model
from langfoundry.data.chat import format_metrics
from langfoundry.data.formatting import format_dataset
from langfoundry.data.mix import targets


def split_table(records: list[dict], splits: list[str]) -> pa.Table:
    table = records_table(records)
    table = table.append_column("group", pa.array([record["text"] for record in records], pa.string()))
    return table.append_column("split", pa.array(splits, pa.string()))


def entries(source: str, count: int, split: str = "train") -> tuple[list[dict], list[str]]:
    records = [make_record(source=source, kind="parallel", lang="jv-x-banyumas", text=f"{source} ukara {i}",
                           pivot_lang="id", pivot_text=f"{source} kalimat {i}", origin=f"{source}.tsv:{i}")
               for i in range(count)]
    return records, [split] * count


def two_sources(domain: int = 300, general: int = 900, val: int = 0) -> pa.Table:
    """A table of two sources; only translate_to_pivot is kept so one record gives one train example."""
    records, splits = [], []
    for source, count in (("domain", domain), ("general", general)):
        more, where = entries(source, count)
        records += more
        splits += where
    more, where = entries("general-val", val, "val")
    return split_table(records + more, splits + where)


def params(**mix) -> FormatParams:
    return FormatParams(task_weights={"translate_from_pivot": 0}, mix=MixParams(**mix))


def shares(train: list[dict], key: str = "source") -> dict[str, float]:
    counts = Counter(example[key] for example in train)
    return {name: count / len(train) for name, count in counts.items()}


def test_shares_are_obtained_on_train_and_reported():
    result = format_dataset(two_sources(domain=400, general=800), params(shares={"domain": 0.8, "general": 0.2}), seed=5)
    train = result.examples["train"]
    assert len(train) == 1200  # the train size the task weights made is kept
    assert shares(train) == pytest.approx({"domain": 0.8, "general": 0.2}, abs=0.001)
    metrics = format_metrics(result)
    assert metrics["mix.asked.domain"] == 0.8 and metrics["mix.obtained.domain"] == pytest.approx(0.8, abs=0.001)
    assert metrics["mix.examples_before.domain"] == 400 and metrics["mix.examples.domain"] == 960
    assert Counter(Counter(example["id"] for example in train if example["source"] == "domain").values()) == {2: 240, 3: 160}


def test_val_and_test_are_never_resampled():
    result = format_dataset(two_sources(val=50), params(shares={"domain": 0.5, "general": 0.5}), seed=5)
    assert len(result.examples["val"]) == 50


def test_same_seed_same_bytes_other_seed_other_choice():
    table = two_sources()
    asked = params(shares={"domain": 0.1, "general": 0.9})
    dump = lambda result: json.dumps(result.examples, sort_keys=True)  # noqa: E731
    first, again = format_dataset(table, asked, seed=5), format_dataset(table.take(list(range(1199, -1, -1))), asked, seed=5)
    assert dump(first) == dump(again)
    other = format_dataset(table, asked, seed=6)
    assert dump(first) != dump(other)
    assert len(other.examples["train"]) == len(first.examples["train"])


def test_a_small_source_is_repeated_at_most_max_repeats_and_the_log_says_so(caplog):
    table = two_sources(domain=20, general=980)
    with caplog.at_level(logging.WARNING):
        result = format_dataset(table, params(shares={"domain": 0.5, "general": 0.5}, max_repeats=3), seed=5)
    train = result.examples["train"]
    per_id = Counter(example["id"] for example in train if example["source"] == "domain")
    assert len(per_id) == 20 and set(per_id.values()) == {3}
    assert len(train) == 1000 and shares(train)["domain"] == pytest.approx(0.06)
    assert format_metrics(result)["mix.obtained.domain"] == pytest.approx(0.06)
    [line] = [record.getMessage() for record in caplog.records if "max_repeats" in record.getMessage()]
    assert "'domain' has 20 train examples" in line and "gets 60" in line


def test_a_group_left_out_of_shares_is_dropped_from_train_with_a_line(caplog):
    records, splits = entries("third", 10)
    table = pa.concat_tables([two_sources(domain=100, general=100), split_table(records, splits)])
    with caplog.at_level(logging.WARNING):
        result = format_dataset(table, params(shares={"domain": 0.5, "general": 0.5}), seed=1)
    assert "third" not in shares(result.examples["train"])
    assert any("'third' has no share" in record.getMessage() for record in caplog.records)


def test_unknown_name_is_one_line_naming_the_key_and_the_names_that_exist():
    with pytest.raises(UserError) as err:
        format_dataset(two_sources(), params(shares={"domian": 0.5, "general": 0.5}), seed=1)
    assert str(err.value) == "params.yaml: format.mix.shares.domian names no source; the sources are: domain, general"


def test_by_category_reads_the_source_category():
    records, splits = entries("news", 100)
    table = pa.concat_tables([two_sources(domain=100, general=400), split_table(records, splits)])
    categories = {"domain": "domain", "general": "general", "news": "general"}
    result = format_dataset(table, params(by="category", shares={"domain": 0.5, "general": 0.5}), seed=1,
                            categories=categories)
    train = result.examples["train"]
    assert sum(example["source"] == "domain" for example in train) == 300
    assert format_metrics(result)["mix.obtained.general"] == 0.5
    with pytest.raises(UserError, match="format.mix.shares.web names no category; the categories are: domain, general"):
        format_dataset(table, params(by="category", shares={"web": 1.0}), seed=1, categories=categories)
    with pytest.raises(UserError, match="sources.yaml: source 'news' has no category"):
        format_dataset(table, params(by="category", shares={"domain": 1.0}), seed=1, categories={**categories, "news": None})


def test_targets_give_a_capped_groups_shortfall_to_the_others():
    assert targets({"a": 10, "b": 100, "c": 100}, {"a": 0.5, "b": 0.25, "c": 0.25}, 210, 2) == {"a": 20, "b": 95, "c": 95}
    assert targets({"a": 10, "b": 0}, {"a": 0.5, "b": 0.5}, 10, 3) == {"a": 10, "b": 0}


def test_params_as_dvc_exp_run_set_them():
    # `dvc exp run -S 'format.mix.shares={domain: 0.8, general: 0.2}'` writes YAML flow mappings into params.yaml
    data = yaml.safe_load("format:\n  mix:\n    by: category\n    shares: {domain: 0.8, general: 0.2}\n    max_repeats: 2\n")
    mix = validate_model(Params, data, "params.yaml").format.mix
    assert (mix.by, mix.shares, mix.max_repeats) == ("category", {"domain": 0.8, "general": 0.2}, 2)
    for bad, message in (("{a: 0.8, b: 0.3}", "shares sum to 1.1; make them sum to 1"),
                         ("{a: -0.5, b: 1.5}", "shares.a is -0.5"), ):
        with pytest.raises(UserError, match=message):
            validate_model(Params, yaml.safe_load(f"format:\n  mix:\n    shares: {bad}\n"), "params.yaml")
    with pytest.raises(UserError, match="format.mix.by"):
        validate_model(Params, {"format": {"mix": {"by": "lang"}}}, "params.yaml")
