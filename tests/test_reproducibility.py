"""Two runs of the whole pipeline from a clean state give the same dvc.lock hashes and the same metrics."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import env, run

from langfoundry.reports.reproducibility import Comparison, compare_runs, format_comparison


def write_run(repo: Path, outs: dict[str, str], metrics: dict[str, dict], deps: dict[str, str]) -> Path:
    repo.mkdir()
    stage = {"deps": [{"path": p, "md5": h} for p, h in deps.items()], "outs": [{"path": p, "md5": h} for p, h in outs.items()]}
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train": stage}}), encoding="utf-8")
    stages = {"stages": {"train": {"cmd": "x", "metrics": [{path: {"cache": False}} for path in metrics]}}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stages), encoding="utf-8")
    for path, values in metrics.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(json.dumps(values), encoding="utf-8")
    return repo


def test_comparison_separates_timings_and_names_what_differs(tmp_path: Path) -> None:
    deps = {"data/processed/train.jsonl": "d1"}
    a = write_run(tmp_path / "a", {"models/adapter": "a1.dir", "metrics/timings/train.json": "t1"},
                  {"metrics/train.json": {"loss": 1.5, "steps": 10}}, deps)
    b = write_run(tmp_path / "b", {"models/adapter": "a1.dir", "metrics/timings/train.json": "t2"},
                  {"metrics/train.json": {"loss": 1.5, "steps": 10}}, deps)
    same = compare_runs(a, b)
    assert same.identical and same.metrics_compared == 2
    assert same.timings == [("metrics/timings/train.json", "t1", "t2")], "timings differ but do not count"
    assert format_comparison(same).endswith("REPRODUCIBLE")

    c = write_run(tmp_path / "c", {"models/adapter": "a2.dir", "metrics/timings/train.json": "t1"},
                  {"metrics/train.json": {"loss": 1.25, "steps": 10}}, deps)
    differs = compare_runs(a, c)
    assert not differs.identical
    assert differs.outputs_differ == [("train", "models/adapter", "a1.dir", "a2.dir")]
    assert differs.metrics_differ == [("metrics/train.json", "loss", 1.5, 1.25)]
    assert "NOT REPRODUCIBLE" in format_comparison(differs)

    d = write_run(tmp_path / "d", {"models/adapter": "a1.dir"}, {"metrics/train.json": {"loss": 1.5, "steps": 10}},
                  {"data/processed/train.jsonl": "d2"})
    assert compare_runs(a, d).inputs_differ == ["data/processed/train.jsonl"]
    assert "NOT COMPARABLE" in format_comparison(compare_runs(a, d))


@pytest.mark.slow
def test_two_clean_runs_of_the_tiny_pipeline_are_identical(tiny_pipeline: Path, tmp_path: Path) -> None:
    # a git clone brings no outputs, no DVC cache and no run cache: every stage runs again from nothing,
    # under another hash seed than the first run (string hashing must not decide any order)
    second = tmp_path / "second"
    run(["git", "clone", "-q", str(tiny_pipeline), str(second)], tmp_path)
    result = subprocess.run(["dvc", "repro", "--force"], cwd=second, env={**env(), "PYTHONHASHSEED": "1"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    comparison: Comparison = compare_runs(tiny_pipeline, second)
    print(format_comparison(comparison, "first run", "second run"))
    assert not comparison.inputs_differ
    assert len(comparison.outputs) >= 20 and {path for _, path, _, _ in comparison.outputs} >= {
        "models/base", "models/adapter", "dvclive/train", "metrics/eval.json", "reports/predictions.jsonl"}
    assert comparison.outputs_differ == []
    assert comparison.metrics_differ == [] and comparison.metrics_compared > 100
    assert {path for path, _, _ in comparison.timings} == {f"metrics/timings/{stage}.json"
                                                          for stage in ("ocr", "asr", "align", "base", "train")}
