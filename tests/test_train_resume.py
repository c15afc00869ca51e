"""A training run killed with SIGKILL resumes from its last checkpoint and ends with the uninterrupted run's bytes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tiny_models import TINY_TRAIN, build_tiny_base, python_command, subprocess_env, write_examples

from langfoundry.model.checkpoints import (
    FINGERPRINT,
    checkpoint_dir_for,
    is_complete,
    mean_train_loss,
    publish,
    reset_stale_checkpoints,
    resumable_checkpoint,
)

# dropout draws random numbers at every step, so only a restored RNG state gives the same bytes after a resume
RESUMABLE = TINY_TRAIN.model_copy(update={"max_steps": 6, "eval_steps": 2, "early_stopping_patience": 3,
                                          "lora": TINY_TRAIN.lora.model_copy(update={"dropout": 0.05})})


def start_training(root: Path, name: str) -> subprocess.Popen:
    """The train stage's work in a process of its own: root/<name> (adapter), root/<name>-live, root/<name>.json."""
    statement = (
        "from langfoundry.core.timings import write_stage_metrics; "
        f"params = tiny_models.TrainParams.model_validate_json({RESUMABLE.model_dump_json()!r}); "
        f"metrics = tiny_models.train_tiny_adapter(Path({str(root)!r}), params, name={name!r}); "
        f"write_stage_metrics(Path({str(root)!r}) / 'metrics' / '{name}.json', metrics)"
    )
    return subprocess.Popen(python_command(statement), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def kill_after_first_checkpoint(process: subprocess.Popen, checkpoints: Path) -> None:
    while process.poll() is None:
        if any(is_complete(path) for path in checkpoints.glob("checkpoint-*")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.communicate()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    write_examples(root)
    build_tiny_base(root / "base", root / "train.jsonl", steps=4)
    return root


def test_killed_training_resumes_to_the_uninterrupted_bytes(workspace) -> None:
    whole = start_training(workspace, "whole")  # meanwhile, on the other core
    killed = start_training(workspace, "resumed")
    kill_after_first_checkpoint(killed, checkpoint_dir_for(workspace / "resumed"))
    assert killed.returncode == -signal.SIGKILL, "killed halfway, not finished"
    assert not (workspace / "resumed").exists(), "a killed run leaves no output"
    whole_output = whole.communicate()[0]
    assert whole.returncode == 0, whole_output[-3000:]

    rerun = start_training(workspace, "resumed")
    output = rerun.communicate()[0]
    assert rerun.returncode == 0, output[-3000:]
    resumed_from = re.search(r"^train: resuming from step (\d+) ", output, re.MULTILINE)
    assert resumed_from and 0 < int(resumed_from.group(1)) < RESUMABLE.max_steps, output
    assert f"train step {resumed_from.group(1)}/" not in output, "the steps before the checkpoint are not rerun"
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (workspace / "resumed" / name).read_bytes() == (workspace / "whole" / name).read_bytes(), name
    metrics = workspace / "metrics"
    assert (metrics / "resumed.json").read_text() == (metrics / "whole.json").read_text(), "all but the timings"
    whole_live, resumed_live = workspace / "whole-live", workspace / "resumed-live"
    curves = sorted(path.relative_to(whole_live) for path in whole_live.rglob("*") if path.is_file())
    assert curves == sorted(path.relative_to(resumed_live) for path in resumed_live.rglob("*") if path.is_file())
    for curve in curves:
        assert (resumed_live / curve).read_bytes() == (whole_live / curve).read_bytes(), curve
    leftovers = {path.name for path in workspace.iterdir() if path.name.startswith(".")}
    assert not leftovers, f"checkpoints and staging folders are removed after success: {leftovers}"


def test_checkpoints_of_other_inputs_are_discarded(tmp_path) -> None:
    checkpoints = tmp_path / ".adapter-checkpoints"
    reset_stale_checkpoints(checkpoints, "run-a")
    complete = checkpoints / "checkpoint-3"
    complete.mkdir()
    (complete / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    (complete / "rng_state.pth").write_bytes(b"state")
    half_written = checkpoints / "checkpoint-6"
    half_written.mkdir()
    (half_written / "trainer_state.json").write_text('{"global_st')
    assert resumable_checkpoint(checkpoints, "run-a") == complete, "the last checkpoint that reads back whole"
    reset_stale_checkpoints(checkpoints, "run-a")
    assert complete.exists(), "kept for the same inputs"
    reset_stale_checkpoints(checkpoints, "run-b")
    assert resumable_checkpoint(checkpoints, "run-b") is None and not complete.exists()
    assert (checkpoints / FINGERPRINT).read_text() == "run-b"


def test_publish_replaces_the_output_in_one_rename(tmp_path) -> None:
    out, staging = tmp_path / "adapter", tmp_path / ".adapter.partial"
    out.mkdir()
    (out / "old.safetensors").write_text("old")
    staging.mkdir()
    (staging / "new.safetensors").write_text("new")
    publish(staging, out)
    assert [path.name for path in out.iterdir()] == ["new.safetensors"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["adapter"], "no staging or old folder left"


def test_mean_loss_of_a_resumed_run_counts_the_steps_before_the_checkpoint() -> None:
    # logged means: steps 1-3 averaged 4.0, steps 4-6 averaged 2.0; the resumed call trained steps 7-8 at 1.0
    history = [{"loss": 4.0, "step": 3}, {"eval_loss": 9.0, "step": 3}, {"loss": 2.0, "step": 6}, {"loss": 1.0, "step": 8}]
    assert mean_train_loss(history, call_mean=1.0, start_step=6, end_step=8) == pytest.approx((12 + 6 + 2) / 8)
    assert mean_train_loss(history, call_mean=1.5, start_step=0, end_step=8) == 1.5, "uninterrupted: the trainer's mean"
