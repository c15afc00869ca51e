"""A data stage killed with SIGKILL while it spills leaves no output a later stage could read, and the
next run removes what it left and writes the bytes an uninterrupted run writes."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PAIRS = 120_000


def make_project(root: Path) -> Path:
    """One parallel source of PAIRS line-aligned pairs: enough rows that a 1 MiB sort budget spills many runs."""
    (root / "data/raw/pairs").mkdir(parents=True)
    (root / "data/inventory").mkdir(parents=True)
    shutil.copy(REPO / "data/inventory/languages.csv", root / "data/inventory/languages.csv")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "expectations", root / "expectations")
    words = ["omah", "banyu", "sega", "wong", "dalan", "kali", "gunung", "sawah", "pasar", "alas"]
    pivots = ["rumah", "air", "nasi", "orang", "jalan", "sungai", "gunung", "sawah", "pasar", "hutan"]
    with (root / "data/raw/pairs/jv.txt").open("w", encoding="utf-8") as target, \
            (root / "data/raw/pairs/id.txt").open("w", encoding="utf-8") as pivot:
        for index in range(PAIRS):
            a, b = index % 10, (index // 10) % 10
            target.write(f"{words[a]} {words[b]} nomer {index}\n")
            pivot.write(f"{pivots[a]} {pivots[b]} nomor {index}\n")
    source = {"id": "pairs", "kind": "parallel", "lang": "jv", "pivot_lang": "id", "format": "txt",
              "path": "data/raw/pairs/jv.txt", "pivot_path": "data/raw/pairs/id.txt"}
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return root


def ingest(project: Path, sort_memory_mb: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    if sort_memory_mb is not None:
        env["LANGFOUNDRY_SORT_MEMORY_MB"] = str(sort_memory_mb)
    return subprocess.Popen([sys.executable, str(REPO / "stages/ingest.py"), "--no-gate"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def leftovers(interim: Path) -> list[Path]:
    return sorted(path for path in interim.glob(".*") if path.name.endswith((".partial", ".runs")))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_ingest_leaves_no_output_and_the_rerun_cleans_up(tmp_path: Path) -> None:
    whole = make_project(tmp_path / "whole")
    finished = ingest(whole)
    assert finished.wait(timeout=300) == 0, finished.stdout.read()
    expected = {name: digest(whole / "data/interim" / name) for name in ("ingested.parquet", "ingest_rejects.parquet")}

    project = make_project(tmp_path / "killed")
    interim = project / "data/interim"
    process = ingest(project, sort_memory_mb=1)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        runs = [run for folder in interim.glob(".*.runs") for run in folder.glob("run*")]
        if len(runs) >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert process.wait(timeout=30) == -signal.SIGKILL, "killed while spilling, before it finished"
    assert not (interim / "ingested.parquet").exists(), "no half-written output under the real name"
    assert not (interim / "ingest_rejects.parquet").exists()
    assert leftovers(interim), "the killed writer left its spilled runs behind"

    rerun = ingest(project)
    assert rerun.wait(timeout=300) == 0, rerun.stdout.read()
    assert leftovers(interim) == [], "the rerun removed what the killed run left"
    assert {name: digest(interim / name) for name in expected} == expected, "the rerun wrote the uninterrupted bytes"
