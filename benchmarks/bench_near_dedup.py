"""Near-duplicate removal (MinHash/LSH) of the seeded 200,000-pair benchmark corpus (benchmarks/corpus.py)
on all cores.

Usage: python benchmarks/bench_near_dedup.py [--workdir DIR]

Ingest and clean run first with the project's defaults (not timed here). Then, timed:
- the dedup stage's work as the stage runs it (exact, then near duplicates: the planted copies are
  exact, so LSH should find nothing left, and whatever it removes is a clean pair removed wrongly);
- MinHash/LSH alone: the same streaming code with every exact key made unique, so the planted
  copies are left for LSH to find.
Targets: at most 30 s on 2 cores, the planted duplicates removed, at most 0.1% of clean pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import corpus, line_of, load_average, make_project, mib, run_stage  # noqa: E402

import langfoundry.clean.dedup as dedup  # noqa: E402
from langfoundry.clean.dedup import decision  # noqa: E402
from langfoundry.core.config import load_params  # noqa: E402
from langfoundry.core.normalize import comparison_key  # noqa: E402


def outcomes(rejects: Path) -> dict[int, str]:
    table = pq.read_table(rejects, columns=["origin", "reason"])
    return {line_of(origin): reason for origin, reason in zip(table.column("origin").to_pylist(),
                                                              table.column("reason").to_pylist())}


def lsh_alone(project: Path) -> tuple[float, Counter, dict[int, str]]:
    """dedup_parquet with exact dedup given nothing to find: each row's exact key is random."""
    exact_key_digests = decision.exact_key_digests

    def unique_digests(table, contents):  # noqa: ANN001
        digests = exact_key_digests(table, contents)
        return np.frombuffer(os.urandom(digests.nbytes), dtype=np.uint64).reshape(digests.shape)

    decision.exact_key_digests = unique_digests  # the workers fork after this, so they see it too
    try:
        params = load_params(project / "params.yaml").dedup
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=project) as scratch:
            counts = dedup.dedup_parquet(project / "data/interim/clean.parquet", Path(scratch) / "kept.parquet",
                                         Path(scratch) / "rejects.parquet", params)
            seconds = time.perf_counter() - started
            return seconds, counts, outcomes(Path(scratch) / "rejects.parquet")
    finally:
        decision.exact_key_digests = exact_key_digests


def later_copies(pairs: list[tuple[str, str]], rejected: set[int]) -> set[int]:
    """Lines (1-based) whose pair came earlier among the lines not rejected: the first copy is kept."""
    seen: set[tuple[str, str]] = set()
    copies = set()
    for line, pair in enumerate(pairs, start=1):
        if line in rejected:
            continue
        if pair in seen:
            copies.add(line)
        seen.add(pair)
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langfoundry-bench")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    data = corpus(workdir / "data", 200_000)
    print(f"machine: {os.cpu_count()} cores, load average {load_average()}", flush=True)
    project = make_project(workdir / "project-near", data, {"dedup.near.enabled": True})
    for stage in ("ingest", "clean"):
        run_stage(project, stage)
    stage = run_stage(project, "dedup")
    dedup_outcomes = outcomes(project / "data/interim/dedup_rejects.parquet")
    os.chdir(project)  # load_params and the stage's relative paths
    alone_seconds, alone_counts, alone_outcomes = lsh_alone(project)
    print(f"load average after the runs: {load_average()}")

    labels = (data / "labels.txt").read_text(encoding="utf-8").split()
    clean_rejected = set(outcomes(project / "data/interim/clean_rejects.parquet")) | \
        set(outcomes(project / "data/interim/ingest_rejects.parquet"))
    pairs = list(zip((data / "src.txt").read_text(encoding="utf-8").split("\n"),
                     (data / "tgt.txt").read_text(encoding="utf-8").split("\n")))
    duplicate_lines = later_copies(pairs[:len(labels)], clean_rejected)
    planted = len(duplicate_lines)
    clean_lines = sum(label == "clean" for line, label in enumerate(labels, start=1) if line not in clean_rejected)
    print(f"\n## Near-duplicate removal, {len(labels):,} pairs ({clean_lines:,} clean pairs and {planted:,} planted copies "
          f"left after clean)\n")
    print("| run | wall s | peak memory (PSS) | exact removed | near removed | duplicates removed "
          "| clean pairs removed wrongly |\n|---|---|---|---|---|---|---|")

    def row(name: str, seconds: float, rss: str, found: dict[int, str]) -> None:
        reasons = Counter(found.values())
        right = len(duplicate_lines & set(found))
        wrongly = len(found) - right
        print(f"| {name} | {seconds:.1f} | {rss} | {reasons['exact_duplicate']:,} | {reasons['near_duplicate']:,} | "
              f"{right:,} of {planted:,} | {wrongly:,} ({100 * wrongly / clean_lines:.3f}%) |")

    row("dedup stage (exact, then MinHash/LSH), 2 processes", stage.seconds, mib(stage.peak_rss), dedup_outcomes)
    row("MinHash/LSH alone (exact keys made unique), 2 processes", alone_seconds, "", alone_outcomes)
    near = load_params(project / "params.yaml").dedup.near
    short = sum(len(comparison_key(pairs[line - 1][0]) + "\x1f" + comparison_key(pairs[line - 1][1]))
                - near.shingle_chars + 1 < near.min_shingles for line in duplicate_lines)
    print(f"\nplanted copies too short for near dedup (under min_shingles = {near.min_shingles} windows; exact dedup "
          f"removes them): {short:,}")
    print(f"near dedup settings: {near}")
    print(f"stage work {stage.report['work_s']:.1f} s after {stage.report['import_s']:.2f} s of imports")


if __name__ == "__main__":
    main()
