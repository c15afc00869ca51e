"""The whole DVC pipeline in a throw-away copy of the repository, on tiny parameters."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from pathlib import Path

import pytest
from repo_copy import clone_built, copy_repo, run

pytestmark = pytest.mark.slow

DATA_STAGES = ["acquire", "ocr", "asr", "align", "ingest", "clean", "dedup", "split", "format"]


@pytest.fixture
def pipeline_repo(tiny_pipeline: Path, tmp_path: Path) -> Path:
    """A copy of the shared tiny pipeline's repository (conftest.tiny_pipeline), its outputs committed."""
    return clone_built(tiny_pipeline, tmp_path / "repo")


def test_repro_gives_finite_metrics_for_base_and_adapter(pipeline_repo: Path) -> None:
    metrics = json.loads((pipeline_repo / "metrics/eval.json").read_text())
    for model in ("base", "adapter"):
        for name in ("chrf", "bleu", "perplexity"):
            value = metrics[f"{model}.{name}"]
            assert isinstance(value, float) and math.isfinite(value), (model, name, value)
    assert (pipeline_repo / "models/adapter/adapter_config.json").exists()
    assert (pipeline_repo / "reports/eval.md").read_text().strip()
    predictions = (pipeline_repo / "reports/predictions.jsonl").read_text().splitlines()
    assert predictions and {"source", "reference", "hypothesis", "task", "lang"} <= set(json.loads(predictions[0]))


def test_second_repro_has_nothing_to_do(pipeline_repo: Path) -> None:
    status = run(["dvc", "status", "--json"], pipeline_repo)
    assert json.loads(status.stdout) == {}
    result = run(["dvc", "repro"], pipeline_repo)
    assert "didn't change, skipping" in result.stdout + result.stderr
    assert "Running stage" not in result.stdout


def test_metrics_show_and_experiment_with_set_param(pipeline_repo: Path) -> None:
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], pipeline_repo).stdout)
    assert shown, "dvc metrics show found no metrics"
    run(["dvc", "exp", "run", "-S", "train.lora.r=4", "--name", "r4"], pipeline_repo)
    table = run(["dvc", "exp", "show", "--json"], pipeline_repo).stdout
    experiments = json.loads(table)
    found = []
    for commit in experiments:
        for exp in commit.get("experiments") or []:
            for revision in exp.get("revs", []):
                if revision.get("name") == "r4":
                    params = revision["data"]["params"]["params.yaml"]["data"]
                    found.append(params["train"]["lora"]["r"])
    assert found == [4]


def _digests(repo: Path, paths: list[str]) -> dict[str, str]:
    out = {}
    for name in paths:
        root = repo / name
        files = sorted(p for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file())
        for path in files:
            out[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_data_stages_are_byte_identical_across_runs(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    outputs = ["data/raw/acquired", "data/interim", "data/processed", "data/speech", "reports/ocr_review",
               "metrics/ocr.json", "metrics/align.json", "metrics/ingest.json", "metrics/clean.json", "metrics/dedup.json",
               "metrics/split.json", "metrics/format.json"]
    runs = []
    for _ in range(2):
        for stage in DATA_STAGES:
            run(["python", f"stages/{stage}.py"], repo)
        runs.append(_digests(repo, outputs))
        subprocess.run(["rm", "-rf", "data/raw/acquired", "data/interim", "data/processed", "data/speech",
                        "reports/ocr_review"], cwd=repo, check=True)
    assert runs[0] and runs[0] == runs[1]
