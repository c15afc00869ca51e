"""Time the default pipeline as a newcomer runs it: every stage, then a no-op rerun, then each stage script's start-up.

Usage: python benchmarks/bench_pipeline.py [--keep DIR]
Prints a table; runs in a throw-away copy of the repository so the working tree is untouched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from repo_copy import copy_repo, env, run  # noqa: E402

HEAVY = ("torch", "transformers", "peft", "trl")


def stage_names(repo: Path) -> list[str]:
    return list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    run(cmd, cwd)
    return time.perf_counter() - start


def startup(stage: str, cwd: Path) -> tuple[float, list[str]]:
    """Seconds to import a stage script (what it imports before its main runs), and the heavy modules it loads."""
    code = ("import importlib.util, sys, time; t = time.perf_counter(); "
            f"spec = importlib.util.spec_from_file_location('stage', 'stages/{stage}.py'); "
            "spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
            "print(time.perf_counter() - t); "
            f"print(','.join(m for m in sys.modules if m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env(), capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines() + [""]
    return float(lines[0]), [name for name in lines[1].split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="langfoundry-bench-"))
    repo = copy_repo(workdir / "repo")
    print(f"machine: {os.cpu_count()} cores; copy at {repo}")

    rows = []
    for stage in stage_names(repo):
        rows.append((stage, timed(["dvc", "repro", "--single-item", stage], repo)))
    total = sum(seconds for _, seconds in rows)
    noop = timed(["dvc", "repro"], repo)

    print("\n| stage | wall s |\n|---|---|")
    for stage, seconds in rows:
        print(f"| {stage} | {seconds:.1f} |")
    print(f"| **full pipeline** | **{total:.1f}** |")
    print(f"\nsecond `dvc repro`, nothing changed: {noop:.2f} s")

    print("\n| stage script | import s | heavy modules imported |\n|---|---|---|")
    for stage, _ in rows:
        seconds, heavy = startup(stage, repo)
        print(f"| stages/{stage}.py | {seconds:.2f} | {', '.join(heavy) or 'none'} |")


if __name__ == "__main__":
    main()
