"""Records -> chat examples: every task, templates, weights, determinism, the light-import rule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from langfoundry.core.config import FormatParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import write_jsonl
from langfoundry.data.chat import check_example, format_metrics, format_records

NAMES = {"jv-x-banyumas": "bahasa Banyumasan", "id": "bahasa Indonesia"}
TEMPLATES = {
    "translate": "Terjemahkan dari {source_name} ke {target_name}:\n{text}",
    "vocabulary": "Apa arti kata {source_name} \"{text}\" dalam {target_name}?",
}


def params(**overrides) -> FormatParams:
    values = {"template_lang": "id", "language_names": NAMES, "templates": TEMPLATES}
    values.update(overrides)
    return FormatParams(**values)


def split_table(records: list[dict], splits: list[str]) -> pa.Table:
    table = records_table(records)
    table = table.append_column("group", pa.array([record["text"] for record in records], pa.string()))
    return table.append_column("split", pa.array(splits, pa.string()))


def entry(word: str, gloss: str, meta: dict | None = None, line: int = 1) -> dict:
    return make_record(source="dict", kind="dictionary", lang="jv-x-banyumas", text=word, pivot_lang="id",
                       pivot_text=gloss, meta=meta, origin=f"dict.json#{line}")


def by_task(examples: list[dict]) -> dict[str, dict]:
    return {example["task"]: example for example in examples}


def many_entries(count: int) -> list[dict]:
    return [entry(f"tembung{i}", f"kata{i}", line=i) for i in range(count)]


def test_dictionary_entry_gives_both_directions_and_vocabulary_with_pos_and_examples():
    examples = [{"text": "Aku adus", "translation": "Saya mandi"}, "Adus esuk"]
    record = entry("adus", "mandi", {"pos": "verba", "examples": examples})
    result = format_records(split_table([record], ["test"]), params(), seed=1)
    examples = by_task(result.examples["test"])
    assert set(examples) == {"translate_to_pivot", "translate_from_pivot", "vocabulary"}

    to_pivot = examples["translate_to_pivot"]
    assert to_pivot["messages"] == [
        {"role": "user", "content": "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\nadus"},
        {"role": "assistant", "content": "mandi"},
    ]
    assert (to_pivot["source_text"], to_pivot["reference"]) == ("adus", "mandi")
    assert to_pivot["record_id"] == record["id"] and to_pivot["group"] == "adus" and to_pivot["source"] == "dict"
    assert (to_pivot["lang"], to_pivot["pivot_lang"]) == ("jv-x-banyumas", "id")

    from_pivot = examples["translate_from_pivot"]
    assert from_pivot["messages"][0]["content"] == "Terjemahkan dari bahasa Indonesia ke bahasa Banyumasan:\nmandi"
    assert (from_pivot["source_text"], from_pivot["reference"]) == ("mandi", "adus")

    vocabulary = examples["vocabulary"]
    assert vocabulary["messages"][0]["content"] == 'Apa arti kata bahasa Banyumasan "adus" dalam bahasa Indonesia?'
    answer = vocabulary["messages"][1]["content"]
    assert answer.splitlines() == ["mandi", "Kelas kata: verba", "Contoh: Aku adus (Saya mandi)", "Contoh: Adus esuk"]
    assert vocabulary["reference"] == answer
    assert len({example["id"] for example in examples.values()}) == 3


def test_parallel_pair_gives_both_directions_only():
    record = make_record(source="par", kind="parallel", lang="jv-x-banyumas", text="Aku arep adus.", pivot_lang="id",
                         pivot_text="Saya mau mandi.", origin="par.txt:1")
    examples = by_task(format_records(split_table([record], ["val"]), params(), seed=1).examples["val"])
    assert set(examples) == {"translate_to_pivot", "translate_from_pivot"}
    assert examples["translate_from_pivot"]["messages"][-1]["content"] == "Aku arep adus."
    assert examples["translate_to_pivot"]["messages"][-1]["content"] == "Saya mau mandi."


def test_unknown_language_name_falls_back_to_the_tag():
    record = make_record(source="par", kind="parallel", lang="su", text="Abdi", pivot_lang="id", pivot_text="Saya", origin="p:1")
    example = by_task(format_records(split_table([record], ["train"]), params(), seed=1).examples["train"])["translate_to_pivot"]
    assert example["messages"][0]["content"].startswith("Terjemahkan dari su ke bahasa Indonesia:")


def test_conversation_passes_through_and_gets_the_system_prompt():
    messages = [{"role": "user", "content": "Kepriwe kabare?"}, {"role": "assistant", "content": "Apik."},
                {"role": "user", "content": "Arep maring ngendi?"}, {"role": "assistant", "content": "Maring pasar."},
                {"role": "user", "content": "unanswered"}]
    record = make_record(source="chat", kind="conversation", lang="jv-x-banyumas", text="Kepriwe kabare?",
                         meta={"messages": messages}, origin="chat.jsonl:1")
    [example] = format_records(split_table([record], ["train"]), params(system_prompt="Kowe asisten."), seed=1).examples["train"]
    assert example["task"] == "conversation"
    assert example["messages"] == [{"role": "system", "content": "Kowe asisten."}] + messages[:4]
    assert (example["source_text"], example["reference"]) == ("Arep maring ngendi?", "Maring pasar.")


def test_conversation_keeps_its_own_system_message_and_bad_ones_are_counted():
    own = make_record(source="chat", kind="conversation", lang="id", text="a", origin="c:1",
                      meta={"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
                                         {"role": "assistant", "content": "a"}]})
    bad = make_record(source="chat", kind="conversation", lang="id", text="b", origin="c:2",
                      meta={"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"},
                                         {"role": "assistant", "content": "b"}]})
    result = format_records(split_table([own, bad], ["train", "train"]), params(system_prompt="P"), seed=1)
    [example] = result.examples["train"]
    assert [m["content"] for m in example["messages"]] == ["S", "u", "a"]
    assert format_metrics(result)["skipped.conversation.turns_out_of_order"] == 1


def test_instruction_joins_instruction_and_input():
    with_input = make_record(source="ins", kind="instruction", lang="id", text="Terjemahkan", origin="i:1",
                             meta={"instruction": "Terjemahkan ke Banyumasan.", "input": "Saya mandi.", "output": "Aku adus."})
    without_input = make_record(source="ins", kind="instruction", lang="id", text="Sebutkan", origin="i:2",
                                meta={"instruction": "Sebutkan satu buah.", "output": "Pelem."})
    no_output = make_record(source="ins", kind="instruction", lang="id", text="x", origin="i:3", meta={"instruction": "x"})
    result = format_records(split_table([with_input, without_input, no_output], ["test"] * 3), params(), seed=1)
    contents = sorted((e["messages"][0]["content"], e["messages"][1]["content"]) for e in result.examples["test"])
    assert contents == [("Sebutkan satu buah.", "Pelem."), ("Terjemahkan ke Banyumasan.\n\nSaya mandi.", "Aku adus.")]
    assert format_metrics(result)["skipped.instruction.no_output"] == 1


def test_short_monolingual_text_and_a_headword_without_gloss_give_no_example_and_are_counted():
    short = make_record(source="mono", kind="monolingual", lang="jv-x-banyumas", text="Aku adus.", origin="m:1")
    bare = make_record(source="dict", kind="dictionary", lang="jv-x-banyumas", text="adus", origin="d:1")
    result = format_records(split_table([short, bare], ["train"] * 2), params(), seed=1)
    assert result.examples["train"] == []
    metrics = format_metrics(result)
    assert metrics["skipped.continuation.too_short"] == 1  # continuation needs 4 words
    assert metrics["records_without_task.dictionary"] == 1


@pytest.mark.parametrize("templates, message", [
    ({"translate": "Terjemahkan ke {target_name}:"}, "format.templates.translate lacks placeholder {text}"),
    ({"vocabulary": "Arti {text} {target_name} {lang}"}, "format.templates.vocabulary uses unknown placeholder {lang}"),
    ({"translat": "{text}"}, "format.templates.translat"),
    ({"translate": "{text} {target_name} {"}, "format.templates.translate is not a valid template"),
    ({"translate": "{text:>5} {target_name}"}, "format.templates.translate has placeholder"),
])
def test_bad_templates_name_the_params_key(templates, message):
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")):
        format_records(split_table([entry("a", "b")], ["train"]), params(templates=templates), seed=1)


def test_template_language_without_builtins_needs_every_template():
    with pytest.raises(UserError, match="format.templates.vocabulary_pos is missing"):
        format_records(split_table([entry("a", "b")], ["train"]), params(template_lang="jv", templates=TEMPLATES), seed=1)


def test_english_builtins_are_used_for_template_lang_en():
    result = format_records(split_table([entry("adus", "mandi")], ["train"]), params(template_lang="en", templates={}), seed=1)
    assert by_task(result.examples["train"])["translate_to_pivot"]["messages"][0]["content"].startswith("Translate from")


def test_weight_zero_drops_the_task_in_every_split():
    records = many_entries(6)
    result = format_records(split_table(records, ["train", "val", "test"] * 2), params(task_weights={"vocabulary": 0}), seed=1)
    tasks = {example["task"] for examples in result.examples.values() for example in examples}
    assert tasks == {"translate_to_pivot", "translate_from_pivot"}


def test_fractional_weight_subsamples_train_only_and_deterministically():
    records = many_entries(400)
    weights = {"translate_to_pivot": 0.5}
    train = format_records(split_table(records, ["train"] * 400), params(task_weights=weights), seed=7).examples["train"]
    again = format_records(split_table(records, ["train"] * 400), params(task_weights=weights), seed=7).examples["train"]
    other_seed = format_records(split_table(records, ["train"] * 400), params(task_weights=weights), seed=8).examples["train"]
    kept = Counter(example["task"] for example in train)
    assert 150 <= kept["translate_to_pivot"] <= 250
    assert kept["translate_from_pivot"] == kept["vocabulary"] == 400
    assert train == again
    assert {e["id"] for e in other_seed} != {e["id"] for e in train}
    test = format_records(split_table(records, ["test"] * 400), params(task_weights=weights), seed=7).examples["test"]
    assert Counter(example["task"] for example in test)["translate_to_pivot"] == 400


def test_weight_above_one_repeats_train_examples_only():
    records = many_entries(200)
    weights = {"vocabulary": 2.0, "translate_to_pivot": 1.5}
    train = format_records(split_table(records, ["train"] * 200), params(task_weights=weights), seed=3)
    counts = Counter(example["task"] for example in train.examples["train"])
    assert counts["vocabulary"] == 400
    assert 260 <= counts["translate_to_pivot"] <= 340
    per_id = Counter(example["id"] for example in train.examples["train"] if example["task"] == "vocabulary")
    assert set(per_id.values()) == {2}
    assert format_metrics(train)["train.repeated_by_weight.vocabulary"] == 200
    val = format_records(split_table(records, ["val"] * 200), params(task_weights=weights), seed=3).examples["val"]
    assert Counter(example["task"] for example in val)["vocabulary"] == 200


def test_output_is_byte_identical_whatever_the_input_order(tmp_path: Path):
    records = many_entries(50)
    splits = ["train", "val", "test", "train", "train"] * 10
    first = format_records(split_table(records, splits), params(), seed=13)
    second = format_records(split_table(records[::-1], splits[::-1]), params(), seed=13)
    for split in ("train", "val", "test"):
        write_jsonl(first.examples[split], tmp_path / f"a-{split}.jsonl")
        write_jsonl(second.examples[split], tmp_path / f"b-{split}.jsonl")
        assert (tmp_path / f"a-{split}.jsonl").read_bytes() == (tmp_path / f"b-{split}.jsonl").read_bytes()
    ids = [json.loads(line)["id"] for line in (tmp_path / "a-train.jsonl").read_text().splitlines()]
    assert ids == sorted(ids)


def test_every_example_is_a_valid_chat():
    records = many_entries(5) + [
        make_record(source="chat", kind="conversation", lang="id", text="x", origin="c:1",
                    meta={"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
        make_record(source="ins", kind="instruction", lang="id", text="x", origin="i:1",
                    meta={"instruction": "Do", "output": "Done"}),
    ]
    result = format_records(split_table(records, ["train"] * len(records)), params(system_prompt="Sys"), seed=1)
    assert {e["task"] for e in result.examples["train"]} == {"translate_to_pivot", "translate_from_pivot", "vocabulary",
                                                             "conversation", "instruction"}
    for example in result.examples["train"]:
        check_example(example)
        roles = [message["role"] for message in example["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        assert all(message["content"].strip() for message in example["messages"])


def test_check_example_rejects_a_chat_ending_with_the_user():
    with pytest.raises(ValueError):
        check_example({"id": "x", "messages": [{"role": "user", "content": "q"}]})


def test_metrics_count_per_split_task_and_language():
    records = many_entries(4)
    result = format_records(split_table(records, ["train", "train", "val", "test"]), params(), seed=1)
    metrics = format_metrics(result)
    assert metrics["train.translate_to_pivot.jv-x-banyumas"] == 2
    assert metrics["train.examples"] == 6 and metrics["val.examples"] == 3 and metrics["total.examples"] == 12
    assert metrics["total.by_task.vocabulary"] == 4


def test_unknown_split_value_is_a_user_error():
    with pytest.raises(UserError, match="split 'holdout'"):
        format_records(split_table([entry("a", "b")], ["holdout"]), params(), seed=1)


def test_importing_formats_loads_no_model_library():
    code = ("import sys, langfoundry.data.chat\n"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
            "assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr


def test_format_stage_writes_sets_and_reports_a_bad_template_in_one_line(tmp_path: Path):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    (tmp_path / "data/interim").mkdir(parents=True)
    import pyarrow.parquet as pq

    pq.write_table(split_table(many_entries(3), ["train", "val", "test"]), tmp_path / "data/interim/split.parquet")
    params_text = (repo / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(params_text, encoding="utf-8")
    shutil.copytree(repo / "expectations", tmp_path / "expectations")  # the stage's quality gate
    shutil.copytree(repo / "data/inventory", tmp_path / "data/inventory")
    stage = [sys.executable, str(repo / "stages/format.py")]
    done = subprocess.run(stage, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert [len((tmp_path / f"data/processed/{s}.jsonl").read_text().splitlines()) for s in ("train", "val", "test")] == [3, 3, 3]
    assert json.loads((tmp_path / "metrics/format.json").read_text())["total.examples"] == 9

    broken = params_text.replace("{text}\"\n", "{txt}\"\n", 1)
    assert broken != params_text
    (tmp_path / "params.yaml").write_text(broken, encoding="utf-8")
    failed = subprocess.run(stage, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [failed.stderr.strip()]
    assert "format.templates.translate" in failed.stderr and "Traceback" not in failed.stderr
