"""A queued sweep of training presets: `dvc exp run --queue -S ...`, `dvc queue start`, results in `dvc exp show`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from repo_copy import clone_built, run

from langfoundry.model.presets import PRESETS

pytestmark = pytest.mark.slow

QUEUE_TIMEOUT_S = 420


def experiments(repo: Path) -> dict[str, dict]:
    """Queued and finished experiments by name: {"state": ..., "params": ..., "metrics": ...}."""
    found = {}
    for commit in json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout):
        for exp in commit.get("experiments") or []:
            for revision in exp.get("revs", []):
                data = revision.get("data") or {}
                found[revision.get("name") or revision["rev"]] = {
                    "state": revision.get("status") or data.get("status"),
                    "params": ((data.get("params") or {}).get("params.yaml") or {}).get("data", {}),
                    "metrics": {path: (entry or {}).get("data", {}) for path, entry in (data.get("metrics") or {}).items()},
                }
    return found


def wait_for_queue(repo: Path, timeout_s: float) -> str:
    """Poll `dvc queue status` until nothing is queued or running; returns the last status table."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = run(["dvc", "queue", "status"], repo).stdout
        tasks = [line for line in status.splitlines()[1:] if line.strip() and not line.startswith("Worker")]
        if tasks and not any(word in line for line in tasks for word in ("Queued", "Running")):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not finish in {timeout_s} s:\n{status}")
        time.sleep(3)


def failure_logs(repo: Path, status: str) -> str:
    names = [line.split()[1] for line in status.splitlines()[1:] if "Failed" in line]
    return "".join(run(["dvc", "queue", "logs", name], repo, check=False).stdout[-3000:] for name in names)


def test_a_queued_sweep_of_presets_runs_to_the_end(tiny_pipeline: Path, tmp_path: Path) -> None:
    repo = clone_built(tiny_pipeline, tmp_path / "repo")
    # null hands the four values to the preset; a comma list is a sweep: one queued experiment per value
    sweep = ["-S", "train.preset=conservative,aggressive", "-S", "train.max_steps=4"]
    sweep += [arg for key in ("learning_rate", "epochs", "batch_size", "gradient_accumulation")
              for arg in ("-S", f"train.{key}=null")]
    queued = run(["dvc", "exp", "run", "--queue", *sweep], repo)
    assert queued.stdout.count("Queued experiment") == 2, queued.stdout
    try:
        run(["dvc", "queue", "start", "--jobs", "2"], repo)  # two workers: one core each, overheads overlap
        status = wait_for_queue(repo, QUEUE_TIMEOUT_S)
    finally:
        run(["dvc", "queue", "stop", "--kill"], repo, check=False)
    assert status.count("Success") == 2, status + failure_logs(repo, status)

    found = experiments(repo)
    by_preset = {exp["params"]["train"]["preset"]: exp for exp in found.values() if exp["params"]}
    assert set(by_preset) == {"conservative", "aggressive"}, found
    for preset, exp in by_preset.items():
        assert exp["params"]["train"]["learning_rate"] is None
        train = exp["metrics"]["metrics/train.json"]
        assert train["effective.preset"] == preset
        assert train["effective.learning_rate"] == PRESETS[preset]["learning_rate"]
        expected_batch = PRESETS[preset]["batch_size"] * PRESETS[preset]["gradient_accumulation"]
        assert train["effective.batch_size"] == expected_batch
        assert train["steps"] == 4
        assert "adapter.chrf" in exp["metrics"]["metrics/eval.json"]
    # the workspace is left as it was: experiments live in git refs, not in the checked-out files
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""
