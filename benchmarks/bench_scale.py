"""Scale: 10 million pairs (about 2 GB of JSON Lines from benchmarks/corpus.py) through ingest, clean
and dedup in bounded memory, on all cores.

Usage: python benchmarks/bench_scale.py [--pairs 10000000] [--format jsonl|txt] [--near] [--workdir DIR]

The corpus is generated once into the workdir (minutes, about 4 GB with its text files) and kept.
Each stage runs in a process of its own: its script's own main, called without the quality gate
(--no-gate), which validates a whole table in memory. The peak resident memory of all
of a stage's processes together is sampled every 50 ms; the target is at most 2 GB. The stages' own
lines say what spilled to disk. Near duplicates are off unless --near (MinHash on 10 million rows
takes the better part of an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import corpus, load_average, make_project, mib, run_stage  # noqa: E402

LIMIT = 2 << 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--format", choices=["jsonl", "txt"], default="jsonl")
    parser.add_argument("--near", action="store_true", help="near-duplicate removal too")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langfoundry-bench-scale")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    data = corpus(workdir / f"data{args.pairs}", args.pairs)
    size = (data / "corpus.jsonl").stat().st_size if args.format == "jsonl" else \
        (data / "src.txt").stat().st_size + (data / "tgt.txt").stat().st_size
    print(f"machine: {os.cpu_count()} cores, load average {load_average()}; input {args.format}, {size / 2**30:.2f} GiB",
          flush=True)
    project = make_project(workdir / "project", data, {"dedup.near.enabled": args.near}, source_format=args.format)
    runs = {}
    for stage in ("ingest", "clean", "dedup"):
        runs[stage] = run_stage(project, stage)
        run = runs[stage]
        print(f"{stage}: {run.seconds:.0f} s, peak {mib(run.peak_rss)}", flush=True)
        for line in run.output.splitlines():
            if "spill" in line:
                print(f"  {line.strip()}")
    print(f"load average after the runs: {load_average()}")
    interim = project / "data/interim"
    sizes = {path.name: path.stat().st_size for path in sorted(interim.glob("*.parquet"))}
    total = sum(run.seconds for run in runs.values())
    print(f"\n## {args.pairs:,} pairs through ingest, clean and dedup ({'exact and near' if args.near else 'exact'} "
          f"dedup), {os.cpu_count()} cores\n")
    print("| stage | wall s | pairs/s | peak memory (PSS, all processes) | within 2 GiB |\n|---|---|---|---|---|")
    for stage, run in runs.items():
        print(f"| {stage} | {run.seconds:,.0f} | {args.pairs / run.seconds:,.0f} | {mib(run.peak_rss)} | "
              f"{'yes' if run.peak_rss <= LIMIT else 'NO'} |")
    print(f"| **all three** | **{total:,.0f}** | {args.pairs / total:,.0f} | {mib(max(r.peak_rss for r in runs.values()))} | "
          f"{'yes' if all(r.peak_rss <= LIMIT for r in runs.values()) else 'NO'} |")
    print("\nfiles: " + ", ".join(f"{name} {size / 2**20:,.0f} MiB" for name, size in sizes.items()))
    metrics = {stage: json.loads((project / f"metrics/{stage}.json").read_text()) for stage in runs}
    print(f"rows: read {metrics['ingest']['rows_read']:,}, ingested {metrics['ingest']['kept']:,}, clean kept "
          f"{metrics['clean']['rows.kept']:,}, dedup kept {metrics['dedup']['rows.kept']:,} (exact removed "
          f"{metrics['dedup']['rows.exact_removed']:,}, near removed {metrics['dedup']['rows.near_removed']:,})")
    shutil.rmtree(project / "data/raw", ignore_errors=True)  # links to the corpus; the corpus stays


if __name__ == "__main__":
    main()
