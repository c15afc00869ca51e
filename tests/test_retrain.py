"""Continuous training: the data version train records, the retrain verdict, and `make cycle`'s decision."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from langfoundry.core.config import RetrainParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import write_metrics, write_parquet
from langfoundry.reports.retrain import check, data_version, decide

REPO = Path(__file__).resolve().parents[1]
DEFAULT = RetrainParams()  # mini every 1,000 new clean records, full from 10% growth
FORCED_ACQUIRE = "repro --single-item --force acquire"  # the serving database changes under the same spec


@pytest.mark.parametrize("now, then, verdict", [
    (2000, None, "full"),      # no record of what the adapter saw
    (2000, 2000, "none"),
    (2199, 2000, "none"),      # 199 new, 9.95%
    (2200, 2000, "full"),      # 10% growth
    (21000, 20000, "mini"),    # 1,000 new, only 5%
    (20999, 20000, "none"),    # 999 new
    (22000, 20000, "full"),    # 2,000 new and 10%: the larger refresh wins
    (1500, 2000, "none"),      # the data shrank
    (10, 0, "full"),           # trained on nothing
    (0, 0, "none"),
])
def test_verdict_follows_the_rules_of_thumb(now, then, verdict):
    assert decide(now, then, DEFAULT).verdict == verdict


def test_thresholds_are_parameters():
    assert decide(2100, 2000, RetrainParams(mini_every=100)).verdict == "mini"
    assert decide(2100, 2000, RetrainParams(full_growth=0.05)).verdict == "full"
    assert decide(2100, 2000, DEFAULT).verdict == "none"


def test_verdict_reports_new_examples_and_growth():
    result = decide(21000, 20000, DEFAULT)
    assert (result.new, result.growth, result.due) == (1000, 0.05, True)
    metrics = decide(1500, 2000, DEFAULT).metrics()
    assert metrics["new_examples"] == 0 and metrics["growth"] == -0.25 and metrics["due"] is False


def clean_table(path: Path, rows: int, corrections: int = 0) -> None:
    """rows monolingual records, then `corrections` records of a feedback source."""
    records = [make_record(source="s", kind="monolingual", lang="jv", text=f"tembung {i}", origin=f"f.txt:{i}")
               for i in range(rows)]
    records += [make_record(source="users", kind="feedback", lang="jv", text=f"benere {i}", origin=f"feedback.jsonl:{i}")
                for i in range(corrections)]
    write_parquet(records_table(records), path)


def trained_repo(root: Path, rows: int) -> None:
    """A clean table and the metrics/train.json a train stage would write for it."""
    clean_table(root / "data/interim/clean.parquet", rows)
    (root / "data/processed").mkdir(parents=True, exist_ok=True)
    (root / "data/processed/train.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
    version = data_version(root / "data/interim/clean.parquet", root / "data/processed/train.jsonl")
    write_metrics(root / "metrics/train.json", {"steps": 10, **version})


def test_train_records_rows_and_hashes_of_its_data(tmp_path):
    trained_repo(tmp_path, 30)
    recorded = json.loads((tmp_path / "metrics/train.json").read_text())
    assert recorded["data_version.clean_rows"] == 30
    clean_bytes = (tmp_path / "data/interim/clean.parquet").read_bytes()
    assert recorded["data_version.clean_sha256"] == hashlib.sha256(clean_bytes).hexdigest()
    assert recorded["data_version.train_sha256"] == hashlib.sha256(b'{"id": "a"}\n').hexdigest()


def test_check_compares_the_clean_table_with_the_record(tmp_path):
    trained_repo(tmp_path, 30)
    clean, metrics = tmp_path / "data/interim/clean.parquet", tmp_path / "metrics/train.json"
    same = check(DEFAULT, clean, metrics)
    assert (same.verdict, same.changed, same.new) == ("none", False, 0)
    clean_table(clean, 32)
    grown = check(DEFAULT, clean, metrics)
    assert (grown.verdict, grown.changed, grown.new) == ("none", True, 2)
    clean_table(clean, 33)
    assert check(DEFAULT, clean, metrics).verdict == "full"  # 10% more
    assert check(DEFAULT, clean, tmp_path / "no-such.json").verdict == "full"
    with pytest.raises(UserError, match="run the clean stage"):
        check(DEFAULT, tmp_path / "missing.parquet", metrics)


def test_corrections_from_users_make_a_mini_cycle_due(tmp_path):
    clean, metrics = tmp_path / "data/interim/clean.parquet", tmp_path / "metrics/train.json"
    trained_repo(tmp_path, 1000)
    clean_table(clean, 1000, corrections=2)
    (tmp_path / "data/processed/train.jsonl").write_text('{"id": "b"}\n', encoding="utf-8")
    write_metrics(metrics, {"steps": 10, **data_version(clean, tmp_path / "data/processed/train.jsonl")})
    assert json.loads(metrics.read_text())["data_version.feedback_rows"] == 2
    clean_table(clean, 1000, corrections=2 + 19)  # 19 new corrections: 1.9% growth, below every threshold
    short = check(DEFAULT, clean, metrics)
    assert (short.verdict, short.new_corrections) == ("none", 19) and "19 new corrections" in short.reason
    clean_table(clean, 1000, corrections=2 + 20)
    due = check(DEFAULT, clean, metrics)
    assert (due.verdict, due.new_corrections) == ("mini", 20) and "corrections from users" in due.reason


def workspace(root: Path, clean_rows: int, trained_rows: int) -> Path:
    """A directory with what `make cycle` reads: Makefile, the retrain script, params, a clean table, train metrics."""
    for name in ("Makefile", "params.yaml", "pyproject.toml", "constraints.txt", "stages/retrain.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    trained_repo(root, trained_rows)
    clean_table(root / "data/interim/clean.parquet", clean_rows)
    return root


def run_retrain(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "stages/retrain.py", *args], cwd=root, capture_output=True, text=True)


def test_stage_writes_the_verdict_and_exits_by_it(tmp_path):
    root = workspace(tmp_path, clean_rows=50, trained_rows=40)
    result = run_retrain(root)
    assert result.returncode == 0 and "retrain: full" in result.stdout
    written = json.loads((root / "metrics/retrain.json").read_text())
    assert (written["verdict"], written["new_examples"], written["growth"]) == ("full", 10, 0.25)
    clean_table(root / "data/interim/clean.parquet", 41)
    result = run_retrain(root, "--exit-code")
    assert result.returncode == 3 and "retrain: none" in result.stdout


def make_cycle(root: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`make cycle` with a stand-in dvc that only logs its arguments."""
    fake_bin = root / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "dvc").write_text('#!/bin/sh\necho "$*" >> "$DVC_LOG"\n')
    (fake_bin / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for name in ("dvc", "python"):
        (fake_bin / name).chmod(0o755)
    stamp = root / "installed"
    stamp.touch()
    later = (root / "pyproject.toml").stat().st_mtime + 60
    os.utime(stamp, (later, later))  # newer than pyproject.toml and constraints.txt: no install
    env = {**os.environ, "DVC_LOG": str(root / "dvc.log")}
    result = subprocess.run(["make", "--no-print-directory", "cycle", f"BIN={fake_bin}", f"STAMP={stamp}"],
                            cwd=root, env=env, capture_output=True, text=True)
    log = (root / "dvc.log").read_text().splitlines() if (root / "dvc.log").exists() else []
    return result, log


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_cycle_trains_only_when_a_cycle_is_due(tmp_path):
    due, log = make_cycle(workspace(tmp_path / "due", clean_rows=2500, trained_rows=1000))
    assert due.returncode == 0, due.stderr
    assert log == [FORCED_ACQUIRE, "repro coverage", "repro"]
    quiet, log = make_cycle(workspace(tmp_path / "quiet", clean_rows=1000, trained_rows=1000))
    assert quiet.returncode == 0, quiet.stderr
    assert log == [FORCED_ACQUIRE, "repro coverage"] and "no training due" in quiet.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_cycle_stops_on_an_error(tmp_path):
    root = workspace(tmp_path, clean_rows=10, trained_rows=10)
    (root / "data/interim/clean.parquet").unlink()
    result, log = make_cycle(root)
    assert result.returncode != 0 and "run the clean stage" in result.stderr
    assert log == [FORCED_ACQUIRE, "repro coverage"]
