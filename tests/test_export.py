"""The export stage on the default pipeline's outputs (built once by the default_pipeline fixture, then copied):
the merged model loads without peft and matches base+adapter, the GGUF files read back with the agreement
targets, metrics/export.json and the model card."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from langfoundry.core.config import BaseParams, Source, load_params
from langfoundry.core.errors import UserError
from langfoundry.core.storage import read_jsonl
from langfoundry.release.model_card import CardInputs, render_model_card

REPO = Path(__file__).resolve().parents[1]
# what the stage reads, from the default pipeline's run; metrics/release.json is left out on purpose
INPUTS = ["models/base", "models/adapter", "data/processed/test.jsonl", "metrics/train.json", "metrics/eval.json", "sources.yaml"]


def stage_main():
    spec = importlib.util.spec_from_file_location("stage_export", REPO / "stages" / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def copy_inputs(root: Path, names=INPUTS, origin: Path = REPO) -> None:
    for name in names:
        source, target = origin / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)


SAMPLE = 64  # test prompts the stage reruns on; the agreement targets are checked on all of them


def run_export(origin: Path, root: Path, max_examples: int) -> SimpleNamespace:
    copy_inputs(root, INPUTS, origin)
    params = load_params(origin / "params.yaml")
    params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"max_examples": max_examples})})
    paths = params.paths.under(root)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        metrics = stage_main()(params, paths)
    return SimpleNamespace(root=root, params=params, paths=paths, metrics=metrics, printed=printed.getvalue())


@pytest.fixture(scope="module")
def exported(default_pipeline, tmp_path_factory) -> SimpleNamespace:
    """The stage on the default outputs, reading back on a seeded sample of the test prompts."""
    return run_export(default_pipeline, tmp_path_factory.mktemp("export"), SAMPLE)


@pytest.fixture(scope="module")
def exported_in_full(default_pipeline) -> SimpleNamespace:
    """What `dvc repro export` wrote in the default pipeline's run: every test prompt read back."""
    params = load_params(default_pipeline / "params.yaml")
    paths = params.paths.under(default_pipeline)
    return SimpleNamespace(root=default_pipeline, params=params, paths=paths,
                           metrics=json.loads(paths.metric("export").read_text()), printed=None)


@pytest.mark.slow  # the default pipeline, built once
def test_the_merged_folder_is_a_plain_hugging_face_model(exported):
    names = {path.name for path in exported.paths.merged.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "README.md"} <= names
    assert not names & {"adapter_config.json", "adapter_model.safetensors", "pytorch_model.bin"}
    template = exported.paths.merged / "chat_template.jinja"
    assert template.exists() or "chat_template" in json.loads((exported.paths.merged / "tokenizer_config.json").read_text())


@pytest.mark.slow  # the default pipeline, built once
def test_the_merged_model_loads_without_peft_and_matches_base_plus_adapter(exported, tmp_path):
    from langfoundry.model.evaluation import attach_adapter, chat_prompts, load_base, load_tokenizer
    from langfoundry.release.merge import prompt_logits

    examples = read_jsonl(exported.paths.split_file("test"))[:3]
    prompts = chat_prompts(load_tokenizer(exported.paths.adapter), examples)
    expected = prompt_logits(attach_adapter(load_base(exported.paths.base), exported.paths.adapter),
                             load_tokenizer(exported.paths.adapter), prompts)
    # a fresh interpreter in which importing peft fails: transformers alone must load the folder
    script = (
        "import sys, json, torch; sys.modules['peft'] = None\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"folder, prompts = {str(exported.paths.merged)!r}, json.loads(sys.argv[1])\n"
        "model, tokenizer = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)\n"
        "with torch.inference_mode():\n"
        "    ids = [torch.tensor([tokenizer(p, add_special_tokens=False)['input_ids']]) for p in prompts]\n"
        "    logits = [model(input_ids=one).logits[0] for one in ids]\n"
        f"torch.save(logits, {str(tmp_path / 'logits.pt')!r})\n"
    )
    subprocess.run([sys.executable, "-c", script, json.dumps(prompts)], check=True, capture_output=True, text=True)
    import torch

    got = torch.load(tmp_path / "logits.pt")
    assert [logits.shape for logits in got] == [logits.shape for logits in expected]
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(got, expected))
    assert exported.metrics["merged.max_logit_difference"] <= 1e-4


@pytest.mark.slow  # the default pipeline, built once
def test_the_metrics_describe_the_files_and_the_read_back(exported):
    metrics = exported.metrics
    assert metrics["n_prompts"] == SAMPLE
    for kind in ("f16", "q8_0"):
        path = exported.paths.gguf / f"model-{kind}.gguf"
        assert metrics[f"{kind}.bytes"] == path.stat().st_size
        assert metrics[f"{kind}.prompt_agreement"] == 1.0  # the file's tokenizer and template give the same ids
        assert metrics[f"{kind}.chrf"] == pytest.approx(metrics["merged.chrf"] + metrics[f"{kind}.chrf_delta"], abs=1e-5)
    assert metrics["f16.tensor_types.F32"] == metrics["q8_0.tensor_types.F32"] > 0  # the norms
    assert metrics["q8_0.tensor_types.F16"] == 1  # the output layer (tied to the embeddings here)
    assert metrics["q8_0.bytes"] < 0.7 * metrics["f16.bytes"]
    assert json.loads(exported.paths.metric("export").read_text()) == metrics


@pytest.mark.slow  # the default pipeline, built once: its export read every test prompt back
def test_the_gguf_files_read_back_within_the_agreement_targets(exported_in_full):
    metrics = exported_in_full.metrics
    assert metrics["n_prompts"] == len(read_jsonl(exported_in_full.paths.split_file("test")))
    assert metrics["f16.agreement"] >= 0.99
    assert metrics["q8_0.agreement"] >= 0.95
    for kind in ("f16", "q8_0"):
        assert metrics[f"{kind}.prompt_agreement"] == 1.0
        assert abs(metrics[f"{kind}.chrf_delta"]) <= 1.0
    # the merged model answers as base+adapter did in the evaluate stage (same prompts, greedy)
    evaluation = json.loads((exported_in_full.root / "metrics" / "eval.json").read_text())
    assert metrics["merged.chrf"] == pytest.approx(evaluation["adapter.chrf"], abs=0.5)


@pytest.mark.slow  # the default pipeline, built once
def test_the_stage_prints_one_line_per_file(exported):
    for kind in ("f16", "q8_0"):
        (line,) = [line for line in exported.printed.splitlines() if f"model-{kind}.gguf" in line]
        assert f"{exported.metrics[f'{kind}.bytes']:,} bytes" in line
        assert f"{exported.metrics[f'{kind}.agreement']:.1%}" in line and "chrF delta" in line


def front_matter_and_body(card: str) -> tuple[dict, str]:
    _, header, body = card.split("---\n", 2)
    return yaml.safe_load(header), body


@pytest.mark.slow  # the default pipeline, built once
def test_the_model_card_is_read_from_the_pipeline_records(exported):
    meta, body = front_matter_and_body((exported.paths.merged / "README.md").read_text())
    assert {"language", "license", "tags", "library_name", "pipeline_tag"} <= set(meta)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert "base_model" not in meta  # a scratch base is no hub model
    in_use = [source for source in yaml.safe_load((exported.root / "sources.yaml").read_text())["sources"]
              if not source.get("planned")]
    assert meta["language"] == list(dict.fromkeys(tag.split("-")[0] for tag in [source["lang"] for source in in_use]
                                                  + [source["pivot_lang"] for source in in_use if source.get("pivot_lang")]))
    licences = {source.get("license") for source in in_use}
    assert meta["license"] == (licences.pop().lower() if len(licences) == 1 else "other")  # mit on the default sources
    evaluation = json.loads((exported.root / "metrics" / "eval.json").read_text())
    train = json.loads((exported.root / "metrics" / "train.json").read_text())
    adapter = json.loads((exported.paths.adapter / "adapter_config.json").read_text())
    (row,) = [line for line in body.splitlines() if line.startswith("| chrF, all tasks |")]
    assert f"| {evaluation['base.chrf']:.2f} | {evaluation['adapter.chrf']:.2f} |" in row
    assert train["data_version.clean_sha256"] in body and train["data_version.train_sha256"] in body
    assert f"r = {adapter['r']}, alpha = {adapter['lora_alpha']}" in body
    assert "No release decision" in body  # no metrics/release.json in the copy
    assert "not a translator" in body
    assert f"{exported.metrics['q8_0.bytes']:,}" in body


def card(**overrides) -> str:
    sources = [Source(id="dict", kind="dictionary", lang="jv-x-banyumas", pivot_lang="id", path="a.csv", license="MIT"),
               Source(id="talk", kind="parallel", lang="su", pivot_lang="id", path="b.txt", license="CC-BY-4.0"),
               Source(id="later", kind="parallel", lang="bbc", pivot_lang="id", path="c.txt", license="GPL-3.0", planned=True)]
    inputs = dict(model_name="tiny", base=BaseParams(), sources=sources,
                  model_facts={"architecture": "llama", "parameters": 1000})
    return render_model_card(CardInputs(**{**inputs, **overrides}))


def test_the_card_states_the_release_decision_and_each_criterion():
    release = {"decision": "fail", "candidate": "adapter", "reference": "base", "failed": ["relative_gain"],
               "criteria": [{"name": "relative_gain", "metric": "chrf", "threshold": 0.2, "value": 0.063, "status": "fail",
                             "detail": "adapter chrF 8.13 vs base 7.65: +6.3% (needs +20%)"},
                            {"name": "human_preference", "metric": "win_rate", "threshold": 0.7, "value": None,
                             "status": "pending", "detail": "3 of 30 judgments"}]}
    body = front_matter_and_body(card(release=release))[1]
    assert "**FAIL**" in body and "failed: relative_gain" in body
    assert "| relative_gain | chrf | 0.200 | 0.063 | fail | adapter chrF 8.13 vs base 7.65: +6.3% (needs +20%) |" in body
    assert "| human_preference | win_rate | 0.700 | – | pending | 3 of 30 judgments |" in body
    assert "No release decision" not in body
    assert "No release decision" in card(release=None)


def test_the_card_licence_and_languages_follow_the_sources_in_use():
    meta, body = front_matter_and_body(card())
    assert meta["license"] == "other"  # MIT and CC-BY-4.0: listed per source in the body
    assert meta["language"] == ["jv", "su", "id"]  # the planned source's language is not in the data yet
    assert "| talk | parallel | su | id | CC-BY-4.0 |" in body and "later" not in body
    assert front_matter_and_body(card(license="Apache-2.0"))[0]["license"] == "apache-2.0"
    hub = front_matter_and_body(card(base=BaseParams(model="Qwen/Qwen2.5-0.5B", revision="abc123")))
    assert hub[0]["base_model"] == "Qwen/Qwen2.5-0.5B" and "`abc123`" in hub[1] and "not a translator" not in hub[1]
    assert "Not evaluated" in hub[1] and "not recorded" in hub[1]


def test_missing_inputs_are_one_line_errors_that_say_what_to_run(tmp_path):
    params = load_params(REPO / "params.yaml")
    paths = params.paths.under(tmp_path)
    with pytest.raises(UserError, match=r"test\.jsonl: not found; run the format stage"):
        stage_main()(params, paths)
    # a one-example test split and the sources: the next missing input is the base model
    example = {"id": "e1", "record_id": "r1", "group": "text:sego", "lang": "jv-x-banyumas", "pivot_lang": "id",
               "source": "banyumasan-dictionary", "task": "translate_to_pivot", "source_text": "sego", "reference": "nasi",
               "messages": [{"role": "user", "content": "sego"}, {"role": "assistant", "content": "nasi"}]}
    paths.split_file("test").parent.mkdir(parents=True)
    paths.split_file("test").write_text(json.dumps(example) + "\n", encoding="utf-8")
    copy_inputs(tmp_path, ["sources.yaml"])
    with pytest.raises(UserError) as error:
        stage_main()(params, paths)
    assert str(paths.base) in str(error.value) and "dvc repro base" in str(error.value) and "\n" not in str(error.value)
