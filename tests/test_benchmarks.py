"""The model benchmarks: bench_gpu.py --tiny end to end on the CPU, and the pure helpers of the three scripts."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_eval  # noqa: E402
import bench_gpu  # noqa: E402
import bench_training  # noqa: E402

GPU_RUNS = ("langfoundry, padded", "langfoundry, packed", "trl + peft baseline")


def cpu_only_env() -> dict[str, str]:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def table_rows(output: str) -> dict[str, dict[str, str]]:
    """The rows of the first Markdown table in output, by their first cell, keyed by the header's cells."""
    lines = [line for line in output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


# --- bench_gpu.py ------------------------------------------------------------------------------------------


def test_bench_gpu_tiny_runs_on_cpu_and_reports_the_three_runs() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gpu.py"), "--tiny"], env=cpu_only_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table_rows(result.stdout)
    assert set(rows) == set(GPU_RUNS), result.stdout
    for name in GPU_RUNS:
        tokens_per_second = rows[name]["real tokens/s"]
        assert re.fullmatch(r"[\d,]+", tokens_per_second), (name, tokens_per_second)
        assert float(tokens_per_second.replace(",", "")) > 0, name
    assert rows["langfoundry, packed"]["padding"] == "0.0%", "packed batches are padding-free"
    assert "packing (bfd)" in rows["langfoundry, packed"]["settings"]
    assert "activation checkpointing on" in rows["trl + peft baseline"]["settings"], "TRL's default"
    assert "synthetic data: random token ids" in result.stdout


def test_bench_gpu_without_tiny_needs_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the full benchmark would run")
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gpu.py")], env=cpu_only_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "needs a CUDA GPU" in result.stderr and "--tiny" in result.stderr


def counted_training_flops_per_token(model, batch: int = 2, seq_len: int = 16) -> float:
    """FLOPs of one forward and backward pass per token, as torch's FLOP counter tallies the matmuls."""
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.randint(len(bench_gpu.SPECIAL_TOKENS), bench_gpu.TINY["vocab_size"], (batch, seq_len),
                        generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
    return counter.get_total_flops() / ids.numel()


def tiny_model(lora: bool):
    """The --tiny Qwen2 with eager attention (its FLOPs are counted; sdpa's on a CPU may not be)."""
    model = bench_gpu.build_model(bench_gpu.qwen2_config(tiny=True), seed=13, use_cuda=False, attn_implementation="eager")
    if not lora:
        return model
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))


# the formulas leave out attention's context term, a few percent at 16 tokens on the tiny model
FORMULA_TOLERANCE = 0.05


def test_6n_matches_the_flops_counted_in_full_training() -> None:
    model = tiny_model(lora=False)
    total = sum(parameter.numel() for parameter in model.parameters())
    counted = counted_training_flops_per_token(model)
    assert bench_gpu.flops_per_token(total, 0, "6n") == pytest.approx(counted, rel=FORMULA_TOLERANCE)


def test_the_lora_count_matches_training_with_frozen_weights() -> None:
    model = tiny_model(lora=True)
    trainable, total = model.get_nb_trainable_parameters()
    counted = counted_training_flops_per_token(model)
    assert bench_gpu.flops_per_token(total, trainable, "lora") == pytest.approx(counted, rel=FORMULA_TOLERANCE)
    # frozen weights get no weight gradient: 6N would overstate this run's work by far more than the tolerance
    assert bench_gpu.flops_per_token(total, trainable, "6n") > counted * (1 + 4 * FORMULA_TOLERANCE)
    with pytest.raises(ValueError):
        bench_gpu.flops_per_token(total, trainable, "8n")


def test_mfu_is_the_share_of_the_peak_that_the_model_flops_fill() -> None:
    model = tiny_model(lora=False)
    per_token = bench_gpu.flops_per_token(sum(parameter.numel() for parameter in model.parameters()), 0, "6n")
    counted = counted_training_flops_per_token(model)
    peak_tflops = 2.0
    saturating = peak_tflops * 1e12 / counted  # tokens/s at which the counted work fills the peak exactly
    mfu = bench_gpu.model_flops_utilization(saturating, per_token, peak_tflops)
    assert mfu == pytest.approx(1.0, rel=FORMULA_TOLERANCE)
    assert bench_gpu.model_flops_utilization(saturating / 4, per_token, peak_tflops) == pytest.approx(mfu / 4)
    assert bench_gpu.model_flops_utilization(saturating, per_token, 2 * peak_tflops) == pytest.approx(mfu / 2)


def test_the_full_config_has_qwen2_05b_parameters() -> None:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):  # shapes only, no memory
        model = AutoModelForCausalLM.from_config(bench_gpu.qwen2_config(tiny=False))
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 494_032_768  # Qwen2-0.5B's published count


def test_synthetic_examples_are_seeded_bounded_and_half_prompt() -> None:
    data = bench_gpu.synthetic_examples(50, 64, 1000, seed=3)
    assert data == bench_gpu.synthetic_examples(50, 64, 1000, seed=3)
    assert data != bench_gpu.synthetic_examples(50, 64, 1000, seed=4)
    for ids, mask in zip(data["input_ids"], data["completion_mask"]):
        assert 8 <= len(ids) <= 64 and len(mask) == len(ids)
        assert all(len(bench_gpu.SPECIAL_TOKENS) <= token < 1000 for token in ids), "no special ids, none past the vocab"
        assert mask == [0] * (len(ids) // 2) + [1] * (len(ids) - len(ids) // 2)


# --- bench_training.py -------------------------------------------------------------------------------------


def test_count_batch_tokens_padded_batch_uses_the_attention_mask() -> None:
    batch = {"input_ids": torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]),
             "labels": torch.tensor([[-100, 6, 7, -100], [-100, 9, -100, -100]])}
    real, total = bench_training.count_batch_tokens(batch)
    assert (int(real), int(total)) == (5, 8)


def test_count_batch_tokens_padding_free_batch_is_all_real() -> None:
    # TRL's padding-free collator: two examples (3 and 2 tokens) in one row, positions restarting, no mask
    batch = {"input_ids": torch.tensor([[5, 6, 7, 8, 9]]), "position_ids": torch.tensor([[0, 1, 2, 0, 1]]),
             "labels": torch.tensor([[-100, 6, 7, -100, 9]])}
    real, total = bench_training.count_batch_tokens(batch)
    assert (int(real), int(total)) == (5, 5)


class FakeState:
    global_step = 0


class FakeTrainer:
    """Just what StepProbe touches: state, training_step, evaluate, add_callback."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.callbacks = []

    def training_step(self, model, inputs, num_items_in_batch=None):
        return torch.tensor(0.25)

    def evaluate(self, *args, **kwargs):
        return {"eval_loss": 1.0}

    def add_callback(self, callback) -> None:
        self.callbacks.append(callback)


def test_step_probe_sums_micro_batches_per_optimizer_step() -> None:
    trainer = FakeTrainer()
    probe = bench_training.StepProbe()
    probe.attach(trainer)
    (clock,) = trainer.callbacks
    padded = {"input_ids": torch.zeros(2, 4, dtype=torch.long), "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])}
    clock.on_train_begin(None, trainer.state, None)
    for step in (1, 2):
        for _ in range(2):  # gradient accumulation 2: two micro-batches a step, each returning a quarter
            trainer.training_step(None, padded)
        trainer.state.global_step = step
        clock.on_step_end(None, trainer.state, None)
    trainer.evaluate()  # inside train(): counted out of the training seconds
    clock.on_train_end(None, trainer.state, None)
    trainer.evaluate()  # after train(): not
    rows = probe.rows()
    assert [row["step"] for row in rows] == [1, 2]
    assert all(row["real_tokens"] == 10 and row["total_tokens"] == 16 and row["loss"] == 0.5 for row in rows)
    assert probe.eval_seconds_in_train > 0
    assert 0 <= probe.training_seconds() < probe.train_ended - probe.train_began


def test_faster_per_real_token_names_the_faster_run() -> None:
    figures = {"padded": {"real_tokens_per_second": 1000.0}, "packed": {"real_tokens_per_second": 2500.0}}
    line = bench_training.faster_per_real_token(figures)
    assert line.startswith("faster per real token: packed") and "2.50x" in line


def test_write_curves_puts_both_runs_side_by_side(tmp_path) -> None:
    results = []
    for name, losses in (("padded", [3.0, 2.5, 2.0]), ("packed", [3.0, 2.0])):
        probe = bench_training.StepProbe()
        for step, loss in enumerate(losses, 1):
            probe.steps[step] = bench_training.StepRecord(real_tokens=100, total_tokens=120, loss=loss, ended=float(step))
        results.append(bench_training.RunResult(name, {}, 1.0, probe, [(0, 4.0), (len(losses), 3.5)]))
    csv_path, png_path = bench_training.write_curves(results, tmp_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == ("step,padded_train_loss,padded_val_loss,padded_real_tokens_seen,"
                        "packed_train_loss,packed_val_loss,packed_real_tokens_seen")
    assert lines[1] == "0,,4.000000,,,4.000000,"  # the base model's validation loss, before any step
    assert lines[2] == "1,3.000000,,100,3.000000,,100"
    assert lines[3] == "2,2.500000,,200,2.000000,3.500000,200"
    assert lines[4] == "3,2.000000,3.500000,300,,,"
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_training_without_pipeline_outputs_says_make_repro(tmp_path, capsys) -> None:
    assert bench_training.main(["--repo", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "make repro" in error and "data/processed/train.jsonl" in error


# --- bench_eval.py -----------------------------------------------------------------------------------------


def test_differing_indices_and_speed_up() -> None:
    assert bench_eval.differing_indices(["a", "b", "c"], ["a", "x", "c"]) == [1]
    assert bench_eval.differing_indices([], []) == []
    with pytest.raises(ValueError):
        bench_eval.differing_indices(["a"], [])
    assert bench_eval.speed_up(2.0, 10.0) == 5.0
    assert math.isnan(bench_eval.speed_up(0.0, 1.0))
    assert bench_eval.markdown_cell("a|b") == "'a\\|b'"


def test_bench_eval_without_pipeline_outputs_says_make_repro(tmp_path, capsys) -> None:
    (tmp_path / "params.yaml").write_text("seed: 13\n")  # a project whose pipeline has not run: default paths
    assert bench_eval.main(["--repo", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "make repro" in error and "data/processed/test.jsonl" in error
