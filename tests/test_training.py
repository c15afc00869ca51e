"""LoRA fine-tuning on a tiny scratch model: adapter files, learning, label masks, DVCLive curves, errors."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from tiny_models import TINY_TRAIN, build_tiny_base, write_examples
from transformers import AutoModelForCausalLM, AutoTokenizer

from langfoundry.core.config import LoraParams, TrainParams
from langfoundry.core.errors import UserError
from langfoundry.model.presets import resolve_preset
from langfoundry.model.progress import Progress, clock, lines_every
from langfoundry.model.training import build_trainer, load_sft_dataset, train_adapter


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    write_examples(root)
    build_tiny_base(root / "base", root / "train.jsonl")
    return root


@pytest.fixture(scope="module")
def trained(workspace) -> tuple[Path, dict]:
    out = workspace / "run"
    metrics = train_adapter(TINY_TRAIN, 13, workspace / "base", workspace / "train.jsonl", workspace / "val.jsonl",
                            out_dir=out / "adapter", live_dir=out / "live", checkpoint_dir=out / "checkpoints")
    return out, metrics


def prepared_trainer(workspace: Path, tmp_path: Path, params: TrainParams = TINY_TRAIN):
    return build_trainer(params, 13, workspace / "base", workspace / "train.jsonl", workspace / "val.jsonl",
                         live_dir=tmp_path / "live", checkpoint_dir=tmp_path / "checkpoints")


def test_adapter_saves_and_loads_on_the_base(trained, workspace) -> None:
    out, _ = trained
    adapter = out / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (adapter / name).exists(), name
    assert not list(adapter.glob("*.bin")), "no pickled files next to the adapter"
    assert not (out / "checkpoints").exists(), "checkpoints are scratch space, removed after training"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["target_modules"] == sorted(TINY_TRAIN.lora.target_modules)

    base = AutoModelForCausalLM.from_pretrained(workspace / "base")
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "abot"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        base_logits = base(ids).logits
        tuned = PeftModel.from_pretrained(base, adapter)
        assert not torch.allclose(tuned(ids).logits, base_logits), "the adapter changes the model's output"


def test_lora_weights_moved_and_losses_are_finite(trained) -> None:
    out, metrics = trained
    weights = load_file(out / "adapter" / "adapter_model.safetensors")
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    assert lora_b and all(tensor.abs().sum() > 0 for tensor in lora_b), "LoRA B starts at zero; training moved it"
    for key in ("train_loss_final", "train_loss_mean", "val_loss_base", "val_loss_best", "val_loss_final"):
        assert math.isfinite(metrics[key]), key
    # early stopping keeps the best evaluated adapter, so the saved one scores the best loss
    assert metrics["val_loss_final"] == pytest.approx(metrics["val_loss_best"])
    assert 0 < metrics["steps"] <= TINY_TRAIN.max_steps
    assert metrics["train_tokens"] > 0 and metrics["train_tokens_per_second"] > 0
    assert metrics["peak_memory_mb"] > 0
    assert metrics["trainable_parameters"] < metrics["total_parameters"]


def test_metrics_record_the_training_values_in_force(trained) -> None:
    _, metrics = trained
    effective = metrics["effective"]
    in_force = resolve_preset(TINY_TRAIN, metrics["train_examples"])
    assert (effective["preset"], effective["from_preset"]) == (in_force.preset, "epochs"), "only epochs is unset"
    assert effective["epochs_planned"] == in_force.params.epochs
    assert effective["learning_rate"] == TINY_TRAIN.learning_rate, "the explicit value, not the preset's"
    assert effective["batch_size"] == TINY_TRAIN.batch_size * TINY_TRAIN.gradient_accumulation


def test_dvclive_writes_curves_only_under_its_dir(trained) -> None:
    out, metrics = trained
    live = out / "live"
    train_loss = (live / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    eval_loss = (live / "plots" / "metrics" / "eval" / "loss.tsv").read_text().splitlines()
    assert train_loss[0].split("\t")[:2] == ["step", "loss"] and len(train_loss) > 1
    steps = [int(line.split("\t")[0]) for line in eval_loss[1:]]
    assert steps[0] == 0 and steps == sorted(steps), "the base model's loss at step 0, then one row per evaluation"
    assert json.loads((live / "metrics.json").read_text())["eval"]["loss"] == pytest.approx(metrics["val_loss_final"])
    assert not (live / "dvc.yaml").exists() and not (out / "dvc.yaml").exists()
    logged = [path.stem for path in live.rglob("*.tsv")] + list(json.loads((live / "metrics.json").read_text())["eval"])
    timing = [name for name in logged if "time" in name or "per_second" in name]
    assert not timing, "timings vary between identical runs and stay out of the curves"


def test_training_is_deterministic_on_cpu(trained, workspace, tmp_path) -> None:
    out, metrics = trained
    again = train_adapter(TINY_TRAIN, 13, workspace / "base", workspace / "train.jsonl", workspace / "val.jsonl",
                          out_dir=tmp_path / "adapter", live_dir=tmp_path / "live", checkpoint_dir=tmp_path / "ckpt")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").read_bytes() == (
        out / "adapter" / "adapter_model.safetensors").read_bytes()
    assert again["val_loss_final"] == metrics["val_loss_final"]
    for name in ("adapter_config.json", "tokenizer.json"):
        assert (tmp_path / "adapter" / name).read_bytes() == (out / "adapter" / name).read_bytes(), name
    for path in sorted((out / "live").rglob("*")):
        if path.is_file():
            assert (tmp_path / "live" / path.relative_to(out / "live")).read_bytes() == path.read_bytes(), path.name


def test_completion_only_loss_masks_the_prompt(workspace, tmp_path) -> None:
    trainer = prepared_trainer(workspace, tmp_path)
    tokenizer = trainer.processing_class
    assert set(trainer.train_dataset.column_names) <= {"input_ids", "labels", "prompt", "completion", "seq_lengths"}
    for row, example in zip(trainer.train_dataset, load_sft_dataset(workspace / "train.jsonl")):
        prompt_ids = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"]
        labels = row["labels"]
        assert labels[: len(prompt_ids)] == [-100] * len(prompt_ids)
        answer = [token for token in labels[len(prompt_ids):]]
        assert -100 not in answer and answer[-1] == tokenizer.eos_token_id, "the answer and its closing eos are learned"
        assert tokenizer.decode(answer[:-1]) == example["completion"][0]["content"]


def test_full_loss_when_completion_only_is_off(workspace, tmp_path) -> None:
    trainer = prepared_trainer(workspace, tmp_path, TINY_TRAIN.model_copy(update={"completion_only_loss": False}))
    row = trainer.train_dataset[0]
    assert row["labels"] == row["input_ids"]


def test_4bit_on_cpu_is_a_user_error(workspace, tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine may run QLoRA")
    params = TINY_TRAIN.model_copy(update={"quantization": "4bit"})
    with pytest.raises(UserError, match="train.quantization=4bit needs a CUDA GPU and bitsandbytes"):
        prepared_trainer(workspace, tmp_path, params)


def test_unknown_target_module_is_a_user_error(workspace, tmp_path) -> None:
    params = TINY_TRAIN.model_copy(update={"lora": LoraParams(target_modules=["query_key_value"])})
    with pytest.raises(UserError, match=r"target_modules .*q_proj"):
        prepared_trainer(workspace, tmp_path, params)


def test_missing_base_is_a_user_error(workspace, tmp_path) -> None:
    with pytest.raises(UserError, match="run the base stage"):
        build_trainer(TINY_TRAIN, 13, tmp_path / "nothing", workspace / "train.jsonl", None,
                      live_dir=tmp_path / "live", checkpoint_dir=tmp_path / "ckpt")


def test_chat_not_ending_with_the_answer_is_a_user_error(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]})
                    + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"train\.jsonl:1: the last message"):
        load_sft_dataset(path)


def test_empty_validation_set_trains_without_evaluation(workspace, tmp_path) -> None:
    empty = tmp_path / "val.jsonl"
    empty.write_text("", encoding="utf-8")
    metrics = train_adapter(TINY_TRAIN.model_copy(update={"max_steps": 2, "eval_steps": 1}), 13, workspace / "base",
                            workspace / "train.jsonl", empty, out_dir=tmp_path / "adapter", live_dir=tmp_path / "live")
    assert metrics["steps"] == 2 and metrics["val_examples"] == 0 and math.isnan(metrics["val_loss_final"])
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    # checkpoints (written at every eval_steps even without evaluation, to resume) went to .adapter-checkpoints
    assert sorted(path.name for path in tmp_path.iterdir()) == ["adapter", "live", "val.jsonl"], \
        "checkpoints and the staging folder are removed after a successful run"


def test_packing_joins_examples_into_fewer_rows_and_trains(workspace, tmp_path) -> None:
    packed_params = TINY_TRAIN.model_copy(update={"packing": True, "max_steps": 2})
    padded = prepared_trainer(workspace, tmp_path / "padded")
    packed = prepared_trainer(workspace, tmp_path / "packed", packed_params)
    assert len(packed.train_dataset) < len(padded.train_dataset)
    assert sum(len(row["input_ids"]) for row in packed.train_dataset) == sum(
        len(row["input_ids"]) for row in padded.train_dataset), "packing keeps every token"
    metrics = train_adapter(packed_params, 13, workspace / "base", workspace / "train.jsonl", workspace / "val.jsonl",
                            out_dir=tmp_path / "adapter", live_dir=tmp_path / "live", checkpoint_dir=tmp_path / "ckpt")
    assert metrics["steps"] == 2 and math.isfinite(metrics["train_loss_final"])


def test_progress_lines_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("train", total=10, every=4, stream=stream)
    progress.update(3, loss=2.2, tokens=300, final=True)  # stopped early: a line at once, nothing left to do
    assert stream.getvalue().startswith("train step 3/10 (30%)  loss 2.2000") and " left 0:00\n" in stream.getvalue()
    stream.seek(0)
    stream.truncate()
    for step in range(1, 11):
        progress.update(step, loss=2.5 - step / 10, tokens=100 * step)
    progress.note("train step 8: val loss 1.2345")
    progress.update(10, loss=1.5, tokens=1000, final=True)  # the end of training repeats no line
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "train step 4/10 (40%)", "train step 8/10 (80%)", "train step 10/10 (100%)", "train step 8: val loss 1.2345"]
    assert re.fullmatch(r"train step 8/10 \(80%\)  loss 1\.7000  [\d,]+ tokens/s  elapsed 0:\d\d  left 0:\d\d", lines[1])
    assert "\r" not in stream.getvalue()


def test_progress_is_one_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress("pretrain", total=50, stream=stream)
    for step in range(1, 51):
        progress.update(step, loss=3.0)
    progress.note("an evaluation")
    progress.close()
    text = stream.getvalue()
    assert "\r" in text and "pretrain" in text and "50/50" in text and "loss 3.0000" in text
    assert [line for line in text.split("\r") if "an evaluation" in line], "notes are printed above the bar"
    assert not re.search(r"^pretrain step \d+/", text, re.MULTILINE), "no plain progress lines besides the bar"


def test_about_twenty_lines_on_logged_steps() -> None:
    assert lines_every(150, multiple_of=10) == 10 and lines_every(400) == 20 and lines_every(7) == 1
    assert lines_every(1000, multiple_of=3) == 51, "a multiple of the logging interval, where a loss is known"
    assert (clock(5), clock(65), clock(3725), clock(math.nan)) == ("0:05", "1:05", "1:02:05", "?")
