"""Run the default pipeline twice from a clean state and compare: dvc.lock hashes of every output, every metric.

Usage: python benchmarks/bench_reproducibility.py [--tiny] [--keep DIR]
Both runs start from a git clone of one snapshot of the working tree (no outputs, no DVC cache, no run cache),
each under a different PYTHONHASHSEED, so nothing may depend on set or dict-of-str ordering. Exits 1 when an
output or a metric differs. Timings (metrics/timings/) are printed apart: they are expected to differ.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from repo_copy import TINY_PARAMS, copy_repo, env, override_params, run  # noqa: E402

from langfoundry.reports.reproducibility import compare_runs, format_comparison  # noqa: E402


def repro_from_clean(source: Path, target: Path, hash_seed: str) -> float:
    """git clone source to target (outputs are git-ignored, so none come along) and run every stage."""
    run(["git", "clone", "-q", str(source), str(target)], source.parent)
    started = time.perf_counter()
    result = subprocess.run(["dvc", "repro", "--force"], cwd=target, env={**env(), "PYTHONHASHSEED": hash_seed},
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dvc repro failed in {target}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def timings(repo: Path) -> dict[str, object]:
    return {f"{path.stem}.{key}": value for path in sorted((repo / "metrics/timings").glob("*.json"))
            for key, value in json.loads(path.read_text()).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny parameters (about a minute a run)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="langfoundry-repro-"))
    source = copy_repo(workdir / "source")
    if args.tiny:
        override_params(source, TINY_PARAMS)
        run(["git", "commit", "-qam", "tiny parameters"], source)
    seconds = [repro_from_clean(source, workdir / f"run{n}", hash_seed=str(n)) for n in (1, 2)]
    print(f"two runs of `dvc repro --force` from clean clones in {workdir}: {seconds[0]:.1f} s and {seconds[1]:.1f} s\n")
    comparison = compare_runs(workdir / "run1", workdir / "run2")
    print(format_comparison(comparison))
    first, second = timings(workdir / "run1"), timings(workdir / "run2")
    print("\n| timing | run 1 | run 2 |\n|---|---|---|")
    for key in sorted(first):
        print(f"| {key} | {first[key]} | {second.get(key)} |")
    sys.exit(0 if comparison.identical else 1)


if __name__ == "__main__":
    main()
