"""Dictionary context in translation prompts (evaluate.dictionary_context), and the evaluation with it on."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from langfoundry.core.config import EvaluateParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import read_jsonl
from langfoundry.data.lookup import collect_entries, write_index
from langfoundry.model.dictionary_context import add_context, check_template

JV = "jv-x-banyumas"
ENTRIES = [("adus", "mandi"), ("adus", "membasuh"), ("esuk", "pagi"), ("mangan", "makan"), ("sega", "nasi"),
           ("kowe", "kamu"), ("aku", "saya"), ("banyu", "air"), ("omah", "rumah")]


def build_index(path: Path, entries=ENTRIES, unseen=(("lawang", "pintu"),)) -> Path:
    """An index of `entries` (train) beside test rows that must stay out of it."""
    import pyarrow.parquet as pq

    records = [make_record(source="dict", kind="dictionary", lang=JV, text=word, pivot_lang="id", pivot_text=gloss,
                           origin=f"dict.json#{line}") for line, (word, gloss) in enumerate([*entries, *unseen])]
    table = records_table(records)
    table = table.append_column("group", pa.array([r["text"] for r in records], pa.string()))
    table = table.append_column("split", pa.array(["train"] * len(entries) + ["test"] * len(unseen), pa.string()))
    pq.write_table(table, path.with_suffix(".parquet"))
    write_index(collect_entries(path.with_suffix(".parquet")), path)
    return path


def translation(source: str, reference: str, task: str = "translate_to_pivot") -> dict:
    names = ("bahasa Banyumasan", "bahasa Indonesia")
    names = names if task == "translate_to_pivot" else names[::-1]
    prompt = f"Terjemahkan dari {names[0]} ke {names[1]}:\n{source}"
    return {"id": source, "task": task, "lang": JV, "pivot_lang": "id", "source_text": source, "reference": reference,
            "messages": [{"role": "system", "content": "Jawab singkat."}, {"role": "user", "content": prompt},
                         {"role": "assistant", "content": reference}]}


def test_prompts_get_the_entries_of_their_words_up_to_the_limit(tmp_path):
    index = build_index(tmp_path / "dictionary.sqlite")
    examples = [translation("Aku adus esuk.", "Saya mandi pagi."), translation("Lawang!", "Pintu!"),
                translation("Saya makan nasi.", "Inyong mangan sega.", "translate_from_pivot"),
                {**translation("Kowe?", "Kamu?"), "task": "conversation"}]
    params = EvaluateParams(dictionary_context=True, dictionary_entries=3)
    out, counts = add_context(examples, index, params)
    assert out[0]["messages"][1]["content"] == (
        "Kamus:\n- aku: saya\n- adus: mandi\n- esuk: pagi\n\nTerjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\n"
        "Aku adus esuk.")
    assert out[0]["messages"][0] == examples[0]["messages"][0] and out[0]["messages"][2] == examples[0]["messages"][2]
    assert out[0]["dictionary_entries"] == 3 and examples[0]["messages"][1]["content"].startswith("Terjemahkan")
    assert out[1] is examples[1]  # "lawang" is a test word: never glossed
    assert "- makan: mangan\n- nasi: sega" in out[2]["messages"][1]["content"]  # the pivot-to-target direction
    assert out[3] is examples[3]  # only translation prompts get context
    assert counts == {"dictionary_context.prompts": 2, "dictionary_context.translation_prompts": 3,
                      "dictionary_context.entries": 6}
    wider, _ = add_context(examples, index, EvaluateParams(dictionary_context=True, dictionary_entries=10))
    assert "- adus: membasuh" in wider[0]["messages"][1]["content"]  # second senses once every word has one


def test_template_must_use_entries_and_prompt(tmp_path):
    check_template("Dictionary:\n{entries}\n\n{prompt}")
    for bad, word in (("{entries}", "missing"), ("{entries}{prompt}{text}", "unknown"), ("{entries {prompt}", "valid")):
        with pytest.raises(UserError, match=f"evaluate.dictionary_template.*{word}"):
            check_template(bad)


def test_missing_index_names_the_stage(tmp_path):
    with pytest.raises(UserError, match="dvc repro dictionary"):
        add_context([translation("aku", "saya")], tmp_path / "none.sqlite", EvaluateParams(dictionary_context=True))


@pytest.fixture(scope="module")
def evaluated_with_context(tmp_path_factory):
    from test_evaluation import REPO, build_data, build_tiny_models

    from langfoundry.model.evaluation import EvalPaths, run_evaluation

    root = tmp_path_factory.mktemp("eval-context")
    base_dir, adapter_dir = build_tiny_models(root / "models")
    train, test = build_data(root / "data")
    paths = EvalPaths(test=test, train=train, base=base_dir, adapter=adapter_dir, metrics=root / "metrics" / "eval.json",
                      predictions=root / "reports" / "predictions.jsonl", report=root / "reports" / "eval.md",
                      inventory=REPO / "data" / "inventory" / "languages.csv",
                      dictionary=build_index(root / "data" / "dictionary.sqlite"))
    params = EvaluateParams(batch_size=3, max_new_tokens=6, report_samples=2, dictionary_context=True)
    metrics = run_evaluation(params, seed=13, paths=paths)
    plain = run_evaluation(params.model_copy(update={"dictionary_context": False}), seed=13,
                           paths=replace(paths, metrics=root / "plain.json", predictions=root / "plain.jsonl",
                                         report=root / "plain.md"))
    return {"metrics": metrics, "plain": plain, "paths": paths, "root": root}


def test_evaluation_reports_scores_with_and_without_context(evaluated_with_context):
    metrics, plain = evaluated_with_context["metrics"], evaluated_with_context["plain"]
    for model in ("base", "adapter"):
        for key in ("chrf", "translation.chrf", "translate_to_pivot.chrf", "translate_from_pivot.chrf"):
            assert f"{model}.{key}" in metrics and f"{model}.no_context.{key}" in metrics
            # without context the run is the plain evaluation's, to the digit
            assert metrics[f"{model}.no_context.{key}"] == plain[f"{model}.{key}"]
        assert metrics[f"{model}.perplexity"] == plain[f"{model}.perplexity"]  # perplexity reads no prompt
    assert metrics["delta.no_context.chrf"] == pytest.approx(metrics["adapter.no_context.chrf"] - metrics["base.no_context.chrf"],
                                                             abs=2e-6)
    assert metrics["dictionary_context.prompts"] == 4 and metrics["dictionary_context.translation_prompts"] == 6
    assert not any("no_context" in key or key.startswith("dictionary_context") for key in plain)
    assert "## Dictionary context (chrF)" in evaluated_with_context["paths"].report.read_text()


def test_prompts_with_context_are_answered_again(evaluated_with_context):
    rows = read_jsonl(evaluated_with_context["paths"].predictions)
    models = {row["model"] for row in rows}
    assert models == {"base", "adapter", "baseline", "base.no_context", "adapter.no_context"}
    by = {(row["id"], row["model"]): row["hypothesis"] for row in rows}
    test = {example["id"]: example for example in read_jsonl(evaluated_with_context["paths"].test)}
    changed = [key for key, example in test.items()
               if example["task"].startswith("translate") and by[(key, "base")] != by[(key, "base.no_context")]]
    assert changed, "dictionary context changed no answer of the random model"
    for key, example in test.items():
        if not example["task"].startswith("translate"):
            assert by[(key, "base")] == by[(key, "base.no_context")]  # no context: the same prompt, the same answer
    assert json.loads(evaluated_with_context["paths"].metrics.read_text()) == evaluated_with_context["metrics"]
