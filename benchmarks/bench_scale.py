"""Scale: 10 million pairs (about 2 GB of JSON Lines from benchmarks/corpus.py) through ingest, clean
and dedup, quality gates included, in bounded memory, on all cores.

Usage: python benchmarks/bench_scale.py [--pairs 10000000] [--format jsonl|txt] [--near] [--no-gate]
                                        [--interval SECONDS] [--workdir DIR]

The corpus is generated once into the workdir (minutes, about 4 GB with its text files) and kept.
Each stage runs in a process of its own, as DVC starts it: its script's own main, with its quality
gate (ingest and clean have one; dedup has none), or without with --no-gate, to compare. The peak
proportional set size of all of a stage's processes together (workers and the gate's included) is
sampled every half second (--interval): sampling takes CPU that the stages use on both cores, and at
this size a stage holds its peak for seconds; the peak of the run is the highest of its stages', which
run one after another.
Targets for 10 million pairs on 2 cores: at most 2 GiB at any time, and the three stages with their
gates in at most 240 s. The stages' own lines say what spilled to disk. Near duplicates are off
unless --near (MinHash on 10 million rows takes the better part of an hour on 2 cores).
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

MEMORY_TARGET = 2 << 30
SECONDS_TARGET = 240  # the three stages with their gates, 10 million pairs, 2 cores
STAGES = ("ingest", "clean", "dedup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--format", choices=["jsonl", "txt"], default="jsonl")
    parser.add_argument("--near", action="store_true", help="near-duplicate removal too")
    parser.add_argument("--no-gate", action="store_true", help="run the stages without their quality gates")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langfoundry-bench-scale")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    gated = not args.no_gate
    data = corpus(workdir / f"data{args.pairs}", args.pairs)
    size = (data / "corpus.jsonl").stat().st_size if args.format == "jsonl" else \
        (data / "src.txt").stat().st_size + (data / "tgt.txt").stat().st_size
    print(f"machine: {os.cpu_count()} cores, load average {load_average()}; input {args.format}, {size / 2**30:.2f} GiB; "
          f"{'with' if gated else 'without'} quality gates", flush=True)
    project = make_project(workdir / "project", data, {"dedup.near.enabled": args.near}, source_format=args.format)
    runs = {}
    for stage in STAGES:
        runs[stage] = run = run_stage(project, stage, gate=gated, interval=args.interval)
        report = run.report
        gate = f"; of it gate {report['gate_s']:.0f} s ({report['gate']})" if gated and stage != "dedup" else ""
        print(f"{stage}: {run.seconds:.0f} s{gate}, peak {mib(run.peak_rss)}", flush=True)
        for line in run.output.splitlines():
            if "spill" in line:
                print(f"  {line.strip()}")
    print(f"load average after the runs: {load_average()}")
    print_table(args, runs, gated)
    interim = project / "data/interim"
    sizes = {path.name: path.stat().st_size for path in sorted(interim.glob("*.parquet"))}
    print("\nfiles: " + ", ".join(f"{name} {size / 2**20:,.0f} MiB" for name, size in sizes.items()))
    metrics = {stage: json.loads((project / f"metrics/{stage}.json").read_text()) for stage in runs}
    print(f"rows: read {metrics['ingest']['rows_read']:,}, ingested {metrics['ingest']['kept']:,}, clean kept "
          f"{metrics['clean']['rows.kept']:,}, dedup kept {metrics['dedup']['rows.kept']:,} (exact removed "
          f"{metrics['dedup']['rows.exact_removed']:,}, near removed {metrics['dedup']['rows.near_removed']:,})")
    shutil.rmtree(project / "data/raw", ignore_errors=True)  # links to the corpus; the corpus stays


def print_table(args: argparse.Namespace, runs: dict, gated: bool) -> None:
    total = sum(run.seconds for run in runs.values())
    peak = max(run.peak_rss for run in runs.values())
    print(f"\n## {args.pairs:,} pairs through ingest, clean and dedup ({'exact and near' if args.near else 'exact'} "
          f"dedup), {'with' if gated else 'without'} quality gates, {os.cpu_count()} cores\n")
    print("| stage | wall s | of it gate s | pairs/s | CPU s | peak memory (PSS, all processes) | within 2 GiB |")
    print("|---|---|---|---|---|---|---|")
    for stage, run in runs.items():
        gate = f"{run.report['gate_s']:,.0f}" if gated and stage != "dedup" else "-"
        print(f"| {stage} | {run.seconds:,.0f} | {gate} | {args.pairs / run.seconds:,.0f} | {run.cpu_seconds:,.0f} | "
              f"{mib(run.peak_rss)} | {'yes' if run.peak_rss <= MEMORY_TARGET else 'NO'} |")
    gates = sum(run.report["gate_s"] for run in runs.values()) if gated else 0
    print(f"| **all three** | **{total:,.0f}** | {gates:,.0f} | {args.pairs / total:,.0f} | "
          f"{sum(run.cpu_seconds for run in runs.values()):,.0f} | {mib(peak)} | "
          f"{'yes' if peak <= MEMORY_TARGET else 'NO'} |")
    scaled = f" (10 million pairs: target {SECONDS_TARGET} s with the gates)" if args.pairs == 10_000_000 else \
        f" (target for 10 million pairs with the gates: {SECONDS_TARGET} s, about {SECONDS_TARGET * args.pairs / 1e7:,.0f} s " \
        f"at this size)"
    print(f"\nwhole run: {total:,.0f} s{scaled}; peak {mib(peak)} (target 2,048 MiB)")


if __name__ == "__main__":
    main()
