"""Text without a translation (monolingual, OCR, ASR) trains as continuation, and its held-out part feeds perplexity."""

from __future__ import annotations

import pyarrow as pa
import pytest

from langfoundry.core.config import FormatParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.data.chat import check_example, continuation_parts, format_metrics, format_records
from langfoundry.model.scoring import target_language_texts

NAMES = {"jv-x-banyumas": "bahasa Banyumasan", "id": "bahasa Indonesia"}
TEXT = "Wong Banyumas ngomong ngapak\nkaro seneng mangan mendoan."


def split_table(records: list[dict], splits: list[str]) -> pa.Table:
    table = records_table(records)
    table = table.append_column("group", pa.array([record["text"] for record in records], pa.string()))
    return table.append_column("split", pa.array(splits, pa.string()))


def text_record(kind: str, text: str = TEXT, **extra) -> dict:
    return make_record(source=f"{kind}-src", kind=kind, lang="jv-x-banyumas", text=text, origin=f"{kind}.txt:1", **extra)


def test_monolingual_ocr_and_asr_text_without_pivot_continue_their_second_half():
    records = [text_record(kind) for kind in ("monolingual", "ocr", "transcription")]
    result = format_records(split_table(records, ["train"] * 3), FormatParams(language_names=NAMES), seed=1)
    examples = result.examples["train"]
    assert [example["task"] for example in examples] == ["continuation"] * 3
    for example in examples:
        check_example(example)
        assert example["messages"] == [
            {"role": "user", "content": "Lanjutkan teks bahasa Banyumasan berikut:\nWong Banyumas ngomong ngapak"},
            {"role": "assistant", "content": "karo seneng mangan mendoan."}]
        assert (example["source_text"], example["reference"]) == ("Wong Banyumas ngomong ngapak", "karo seneng mangan mendoan.")
    assert format_metrics(result)["train.by_task.continuation"] == 3


def test_text_with_a_translation_translates_instead():
    record = text_record("ocr", pivot_lang="id", pivot_text="Wong Banyumas ngomong ngapak lan seneng mendoan.")
    examples = format_records(split_table([record], ["train"]), FormatParams(), seed=1).examples["train"]
    assert sorted(example["task"] for example in examples) == ["translate_from_pivot", "translate_to_pivot"]


def test_too_short_text_is_skipped_and_counted():
    records = [text_record("monolingual", "Aku arep lunga"), text_record("transcription", "  ")]
    result = format_records(split_table(records, ["train", "val"]), FormatParams(), seed=1)
    assert result.examples == {"train": [], "val": [], "test": []}
    assert format_metrics(result)["skipped.continuation.too_short"] == 2


def test_cut_keeps_at_least_one_word_each_side_and_line_breaks():
    assert continuation_parts("a b c d") == ("a b", "c d")
    assert continuation_parts("a b c d e") == ("a b", "c d e")
    assert continuation_parts("a b\nc d\ne f") == ("a b\nc", "d\ne f")
    assert continuation_parts("a b c") is None


def test_weight_and_english_template():
    records = [text_record("monolingual", f"{TEXT} {i}") for i in range(200)]
    params = FormatParams(template_lang="en", task_weights={"continuation": 0.5})
    train = format_records(split_table(records, ["train"] * 200), params, seed=3).examples["train"]
    assert 70 < len(train) < 130
    assert train[0]["messages"][0]["content"].startswith("Continue this jv-x-banyumas text:\n")
    assert format_records(split_table(records, ["train"] * 200), FormatParams(task_weights={"continuation": 0}),
                          seed=3).examples["train"] == []


def test_template_must_keep_the_text_placeholder():
    with pytest.raises(UserError, match="format.templates.continuation lacks placeholder {text}"):
        format_records(split_table([text_record("ocr")], ["train"]), FormatParams(templates={"continuation": "Lanjutkan"}),
                       seed=1)


def test_held_out_continuation_puts_the_whole_text_into_perplexity():
    records = [text_record("monolingual"), make_record(source="d", kind="dictionary", lang="jv-x-banyumas", text="adus",
                                                      pivot_lang="id", pivot_text="mandi", origin="d.json:1")]
    test = format_records(split_table(records, ["test", "test"]), FormatParams(), seed=1).examples["test"]
    texts = target_language_texts(test)
    assert ("jv-x-banyumas", "Wong Banyumas ngomong ngapak karo seneng mangan mendoan.") in texts
    assert ("jv-x-banyumas", "karo seneng mangan mendoan.") not in texts  # not only the answer half
    assert ("jv-x-banyumas", "adus") in texts
