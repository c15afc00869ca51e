"""Evaluation on a tiny random Llama and LoRA adapter built here: metrics, sacrebleu agreement, batching, baseline."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from langfoundry.core.config import EvaluateParams, FormatParams, PathsParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import read_jsonl, write_jsonl
from langfoundry.data.chat import format_records
from langfoundry.model.scoring import DictionaryBaseline, Scorer, exact_match, one_line, select_examples

REPO = Path(__file__).resolve().parents[1]

SENTENCES = [
    "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:",
    "Terjemahkan dari bahasa Indonesia ke bahasa Banyumasan:",
    "Apa arti kata bahasa Banyumasan dalam bahasa Indonesia?",
    "aku adus esuk, kowe mangan sega. saya mandi pagi, kamu makan nasi.",
    "user: assistant: system:",
]
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
                 "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}")
ENTRIES = [("adus", "mandi"), ("esuk", "pagi"), ("mangan", "makan"), ("sega", "nasi"), ("kowe", "kamu"),
           ("aku", "saya"), ("banyu", "air"), ("omah", "rumah")]


def build_tiny_models(root: Path) -> tuple[Path, Path]:
    """A 2-layer random Llama with a byte-level BPE tokenizer (base) and a LoRA adapter that changes it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(SENTENCES, trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "<s>", "</s>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    base_dir, adapter_dir = root / "base", root / "adapter"
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    # init_lora_weights=False gives lora_B random values, so the adapter really changes the outputs
    adapted = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapted.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    return base_dir, adapter_dir


def build_data(root: Path) -> tuple[Path, Path]:
    """train/test sets from a small dictionary and parallel text, through the real format step."""
    records = [make_record(source="dict", kind="dictionary", lang="jv-x-banyumas", text=word, pivot_lang="id",
                           pivot_text=gloss, origin=f"dict.json#{line}") for line, (word, gloss) in enumerate(ENTRIES)]
    records.append(make_record(source="dict", kind="dictionary", lang="jv-x-banyumas", text="adus", pivot_lang="id",
                               pivot_text="membasuh", meta={"pos": "verba"}, origin="dict.json#99"))
    test_records = [
        make_record(source="par", kind="parallel", lang="jv-x-banyumas", text="Aku adus esuk.", pivot_lang="id",
                    pivot_text="Saya mandi pagi.", origin="par.txt:1"),
        make_record(source="par", kind="parallel", lang="jv-x-banyumas", text="Kowe mangan sega.", pivot_lang="id",
                    pivot_text="Kamu makan nasi.", origin="par.txt:2"),
        make_record(source="dict", kind="dictionary", lang="jv-x-banyumas", text="lawang", pivot_lang="id",
                    pivot_text="pintu", origin="dict.json#200"),
        make_record(source="chat", kind="conversation", lang="jv-x-banyumas", text="Kepriwe?", origin="chat.jsonl:1",
                    meta={"messages": [{"role": "user", "content": "Kepriwe?"}, {"role": "assistant", "content": "Apik."}]}),
    ]
    everything = records + test_records
    table = records_table(everything)
    table = table.append_column("group", pa.array([r["text"] for r in everything], pa.string()))
    table = table.append_column("split", pa.array(["train"] * len(records) + ["test"] * len(test_records), pa.string()))
    params = FormatParams(language_names={"jv-x-banyumas": "bahasa Banyumasan", "id": "bahasa Indonesia"})
    result = format_records(table, params, seed=13)
    write_jsonl(result.examples["train"], root / "train.jsonl")
    write_jsonl(result.examples["test"], root / "test.jsonl")
    return root / "train.jsonl", root / "test.jsonl"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from langfoundry.model.evaluation import EvalPaths, run_evaluation

    root = tmp_path_factory.mktemp("eval")
    base_dir, adapter_dir = build_tiny_models(root / "models")
    train, test = build_data(root / "data")
    paths = EvalPaths(test=test, train=train, base=base_dir, adapter=adapter_dir, metrics=root / "metrics" / "eval.json",
                      predictions=root / "reports" / "predictions.jsonl", report=root / "reports" / "eval.md",
                      inventory=REPO / "data" / "inventory" / "languages.csv")
    params = EvaluateParams(batch_size=3, max_new_tokens=6, report_samples=4)
    metrics = run_evaluation(params, seed=13, paths=paths)
    return {"metrics": metrics, "paths": paths, "params": params, "root": root}


def test_metrics_are_finite_for_both_models_and_deltas_subtract(evaluated):
    metrics = json.loads(evaluated["paths"].metrics.read_text())
    assert metrics == evaluated["metrics"]
    assert metrics["n_examples"] == 8  # two pairs x two directions, a dictionary entry x three tasks, a chat
    for model in ("base", "adapter"):
        for key in ("bleu", "chrf", "chrf_pp", "perplexity", "translate_to_pivot.chrf", "translate_from_pivot.chrf",
                    "vocabulary.exact_match", "conversation.chrf", "translation.chrf", "direction.jv-x-banyumas>id.chrf",
                    "direction.id>jv-x-banyumas.bleu", "lang.jv-x-banyumas.chrf", "lang.jv-x-banyumas.perplexity"):
            assert math.isfinite(metrics[f"{model}.{key}"]), f"{model}.{key}"
    assert metrics["base.perplexity"] > 1 and metrics["adapter.perplexity"] > 1
    assert metrics["base.perplexity"] != metrics["adapter.perplexity"]
    numeric = {key: value for key, value in metrics.items() if not key.startswith("signature.")}
    assert all(isinstance(value, (int, float)) and math.isfinite(value) for value in numeric.values())
    for key in ("chrf", "perplexity", "translate_to_pivot.bleu"):
        assert metrics[f"delta.{key}"] == pytest.approx(metrics[f"adapter.{key}"] - metrics[f"base.{key}"], abs=2e-6)
    assert "tok:intl" in metrics["signature.bleu"] and "nw:2" in metrics["signature.chrf_pp"]


def sacrebleu_cli(tmp: Path, rows: list[dict], metric: str) -> float:
    (tmp / "ref.txt").write_text("".join(one_line(row["reference"]) + "\n" for row in rows), encoding="utf-8")
    (tmp / "hyp.txt").write_text("".join(one_line(row["hypothesis"]) + "\n" for row in rows), encoding="utf-8")
    command = [str(Path(sys.executable).parent / "sacrebleu"), str(tmp / "ref.txt"), "-i", str(tmp / "hyp.txt"),
               "-m", metric, "-b", "-w", "4"]
    if metric == "bleu":
        command += ["-tok", "intl"]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())


@pytest.mark.parametrize("model", ["base", "adapter", "baseline"])
def test_scores_equal_the_sacrebleu_command_line(evaluated, model, tmp_path):
    rows = [row for row in read_jsonl(evaluated["paths"].predictions) if row["model"] == model]
    assert rows
    metrics = evaluated["metrics"]
    assert sacrebleu_cli(tmp_path, rows, "chrf") == pytest.approx(metrics[f"{model}.chrf"], abs=1e-4)
    assert sacrebleu_cli(tmp_path, rows, "bleu") == pytest.approx(metrics[f"{model}.bleu"], abs=1e-4)


def test_predictions_cover_every_example_and_model(evaluated):
    rows = read_jsonl(evaluated["paths"].predictions)
    test = read_jsonl(evaluated["paths"].test)
    assert sorted(r["id"] for r in rows if r["model"] == "adapter") == sorted(e["id"] for e in test)
    assert {r["task"] for r in rows if r["model"] == "baseline"} == {"translate_to_pivot", "translate_from_pivot"}
    assert set(rows[0]) == {"id", "model", "task", "lang", "source", "reference", "hypothesis"}
    base = {r["id"]: r["hypothesis"] for r in rows if r["model"] == "base"}
    adapter = {r["id"]: r["hypothesis"] for r in rows if r["model"] == "adapter"}
    assert base != adapter  # the adapter changes the model


def test_baseline_translates_train_words_in_a_test_sentence(evaluated):
    rows = read_jsonl(evaluated["paths"].predictions)
    [row] = [r for r in rows if r["model"] == "baseline" and r["source"] == "Aku adus esuk."]
    assert row["hypothesis"] == "saya mandi pagi."


def test_batched_generation_equals_one_at_a_time(evaluated):
    from langfoundry.model.evaluation import attach_adapter, chat_prompts, generate, load_base, load_tokenizer

    paths = evaluated["paths"]
    examples = read_jsonl(paths.test)
    tokenizer = load_tokenizer(paths.base)
    prompts = chat_prompts(tokenizer, examples)
    assert len({len(tokenizer(p)["input_ids"]) for p in prompts}) > 1  # batches really mix lengths, so padding matters
    model = attach_adapter(load_base(paths.base), paths.adapter)
    batched = generate(model, tokenizer, prompts, batch_size=7, max_new_tokens=6)
    single = generate(model, tokenizer, prompts, batch_size=1, max_new_tokens=6)
    assert batched == single
    written = {r["id"]: r["hypothesis"] for r in read_jsonl(paths.predictions) if r["model"] == "adapter"}
    assert [written[e["id"]] for e in examples] == batched


def test_perplexity_ignores_padding(evaluated):
    from langfoundry.model.evaluation import load_base, load_tokenizer, token_nll

    paths = evaluated["paths"]
    tokenizer, model = load_tokenizer(paths.base), load_base(paths.base)
    alone = token_nll(model, tokenizer, ["adus"], batch_size=1)
    together = token_nll(model, tokenizer, ["adus", "Aku adus esuk, kowe mangan sega."], batch_size=2)
    assert together[0][1] == alone[0][1] == len(tokenizer("adus", add_special_tokens=False)["input_ids"])
    assert together[0][0] == pytest.approx(alone[0][0], rel=1e-5)


def test_report_has_tables_and_samples(evaluated):
    report = evaluated["paths"].report.read_text(encoding="utf-8")
    assert "| metric | base | adapter | delta | baseline |" in report
    assert "## Per task" in report and "| translate_to_pivot |" in report
    assert report.count("\n### ") == 4
    assert "jv-x-banyumas → id" in report


def test_scores_per_region_sit_beside_those_per_language(evaluated):
    metrics = evaluated["metrics"]
    # Banyumasan is the only language and the inventory puts it in Java: the region scores are its scores
    for name in ("base", "adapter"):
        for metric in ("chrf", "bleu", "perplexity"):
            assert metrics[f"{name}.region.java.{metric}"] == metrics[f"{name}.lang.jv-x-banyumas.{metric}"]
    assert metrics["baseline.region.java.chrf"] == metrics["baseline.lang.jv-x-banyumas.chrf"]
    assert "## Per region" in evaluated["paths"].report.read_text(encoding="utf-8")


def test_region_score_covers_exactly_its_languages():
    from langfoundry.core.inventory import region_key
    from langfoundry.model.scoring import score_predictions

    def example(lang, reference):
        return {"task": "vocabulary", "lang": lang, "pivot_lang": "id", "source_text": "x", "reference": reference}

    examples = [example("jv", "mandi pagi"), example("su", "makan nasi"), example("bug", "rumah besar")]
    hypotheses = ["mandi sore", "makan nasi", "rumah kecil"]
    regions = {"jv": region_key("Java"), "su": region_key("Java"), "bug": region_key("Sulawesi")}
    scorer = Scorer()
    metrics = score_predictions(examples, hypotheses, scorer, regions)
    assert metrics["region.java.chrf"] == scorer.score(hypotheses[:2], ["mandi pagi", "makan nasi"])["chrf"]
    assert metrics["region.sulawesi.chrf"] == scorer.score(hypotheses[2:], ["rumah besar"])["chrf"]
    assert metrics["region.java.chrf"] != metrics["region.sulawesi.chrf"]
    assert metrics["chrf"] == score_predictions(examples, hypotheses, scorer)["chrf"]  # overall unchanged
    assert not any(key.startswith("region.") for key in score_predictions(examples, hypotheses, scorer))
    assert region_key("Bali and Nusa Tenggara") == "bali-and-nusa-tenggara"


def test_rerun_is_identical(evaluated, tmp_path):
    from dataclasses import replace

    from langfoundry.model.evaluation import run_evaluation

    paths = replace(evaluated["paths"], metrics=tmp_path / "eval.json", predictions=tmp_path / "p.jsonl",
                    report=tmp_path / "eval.md")
    run_evaluation(evaluated["params"], seed=13, paths=paths)
    assert paths.metrics.read_bytes() == evaluated["paths"].metrics.read_bytes()
    assert paths.predictions.read_bytes() == evaluated["paths"].predictions.read_bytes()


def test_dictionary_baseline_prefers_the_most_frequent_translation():
    def pair(source, target, task="translate_to_pivot"):
        return {"task": task, "lang": "jv", "pivot_lang": "id", "source_text": source, "reference": target}

    baseline = DictionaryBaseline([pair("adus", "mandi"), pair("adus", "membasuh"), pair("adus", "mandi"),
                                   pair("esuk", "pagi"), pair("Aku arep adus.", "Saya mau mandi."),
                                   pair("mandi", "adus", "translate_from_pivot")])
    assert baseline.translate("adus", "jv>id") == "mandi"
    assert baseline.translate("Adus esuk, kowe!", "jv>id") == "mandi pagi, kowe!"
    assert baseline.translate("aku arep  adus.", "jv>id") == "Saya mau mandi."  # a whole known sentence
    assert baseline.translate("mandi", "id>jv") == "adus"
    assert baseline.translate("mandi", "su>id") == "mandi"  # unknown direction: copied through


def test_exact_match_ignores_case_and_surrounding_space():
    assert exact_match([" Mandi\n", "air"], ["mandi", "banyu"]) == 0.5


def test_example_cap_is_seeded_and_stable():
    examples = [{"id": f"{i:04x}"} for i in range(50)]
    first = select_examples(examples, 10, seed=1)
    assert len(first) == 10 and first == select_examples(examples[::-1], 10, seed=1)
    assert [e["id"] for e in first] == sorted(e["id"] for e in first)
    assert first != select_examples(examples, 10, seed=2)
    assert len(select_examples(examples, 0, seed=1)) == 50


def test_unknown_bleu_tokenizer_names_the_param():
    with pytest.raises(UserError, match="evaluate.bleu_tokenize"):
        Scorer("nonsense")


def test_missing_model_is_a_user_error(tmp_path):
    from langfoundry.model.evaluation import EvalPaths, run_evaluation

    (tmp_path / "test.jsonl").write_text("")
    (tmp_path / "train.jsonl").write_text("")
    paths = EvalPaths.from_params(PathsParams(processed=tmp_path, base=tmp_path / "nope", adapter=tmp_path / "a",
                                              metrics=tmp_path, reports=tmp_path))
    with pytest.raises(UserError, match="run the base stage"):
        run_evaluation(EvaluateParams(), seed=1, paths=paths)
