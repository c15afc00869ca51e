"""Clean + exact dedup of the seeded 200,000-pair reference corpus: this project's ingest, clean and dedup
stages against OpusFilter 3.3.1 on the same rule set, measured in one run.

Usage: python benchmarks/bench_opusfilter.py [--workdir DIR] [--repeats N] [--bench-dir DIR]

The corpus comes from ../shared/bench/gen_corpus.py (run, never copied) and is kept in the workdir;
OpusFilter runs through ../shared/bench/run_opusfilter.sh in its own virtual environment under the
workdir (created here on first use, from PyPI): it is the tool compared against, never a dependency.

Our stages' work runs as each stage script runs it, one process per stage in a throw-away project
folder (benchmarks/stage_work.py: the script's library calls, without its quality gate, which is
timed apart at the end), twice over: with the settings equivalent to OpusFilter's rules (to compare
speed and survivors), and with our letters-share filter on as well (to count the mostly-digit pairs
it catches). Times are wall clock (start-up included) and CPU time; memory is the peak proportional
set size of all of a run's processes together.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402
    Run, corpus, line_of, load_average, make_project, mib, reference_dir, run_measured, run_stage, startup_seconds,
)

OPUSFILTER = "opusfilter==3.3.1"
STAGES = ("ingest", "clean", "dedup")
# OpusFilter's rules in our parameters: LengthFilter words 1-100 (our empty and length filters; no
# pair here has over 100 words), LengthRatioFilter words < 3 (ours rejects a ratio above the
# threshold: 2.995 rejects 3.0 and keeps every ratio below 3 of sides up to 100 words),
# CharacterScoreFilter Latin 0.7 (a side without letters passes there), RepetitionFilter (any 3 to
# 101 characters repeated back to back three times, spaces between allowed). OpusFilter does not
# rewrite text, so personal data is left alone; near duplicates are another benchmark.
EQUIVALENT = {
    "clean.max_length_ratio": 2.995,
    "clean.length_ratio_unit": "words",
    "clean.min_script_ratio": 0.7,
    "clean.script_ratio_without_letters": "pass",
    "clean.min_letter_ratio": 0.0,
    "clean.max_word_repeats": 2,
    "clean.repetition_unit": "substrings",
    "clean.scrub_pii": False,
    "dedup.near.enabled": False,
}
WITH_LETTERS_SHARE = {**EQUIVALENT, "clean.min_letter_ratio": 0.5}


def opusfilter_venv(workdir: Path) -> None:
    """OpusFilter in a virtual environment of its own, where run_opusfilter.sh looks for it."""
    venv = workdir / "venv-opusfilter"
    if (venv / "bin/opusfilter").exists():
        return
    print(f"installing {OPUSFILTER} into {venv} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", OPUSFILTER, "numpy"], check=True)


def run_opusfilter(workdir: Path, bench: Path) -> tuple[Run, float, int]:
    """(our measurement, OpusFilter's own wall seconds and peak RSS bytes from /usr/bin/time)."""
    run = run_measured(["bash", str(bench / "run_opusfilter.sh"), str(workdir)], workdir)
    found = re.search(r"wall_s=([0-9.]+) maxrss_kb=([0-9]+)", run.output)
    if not found:
        raise SystemExit(f"no timing in run_opusfilter.sh output:\n{run.output[-2000:]}")
    return run, float(found.group(1)), int(found.group(2)) * 1024


def read_pairs(source: Path, target: Path) -> list[tuple[str, str]]:
    with source.open(encoding="utf-8") as left, target.open(encoding="utf-8") as right:
        return [(a.rstrip("\n"), b.rstrip("\n")) for a, b in zip(left, right)]


def run_gates(project: Path) -> dict[str, Run]:
    """Each stage's work again with its quality gate, to time the gate apart."""
    return {stage: run_stage(project, stage, gate=True) for stage in STAGES}


def our_outcomes(project: Path) -> dict[int, str]:
    """Input line -> where our pipeline left it: "stage:reason" for a reject, absent when kept."""
    outcomes = {}
    for stage, name in (("ingest", "ingest_rejects"), ("clean", "clean_rejects"), ("dedup", "dedup_rejects")):
        rejects = pq.read_table(project / f"data/interim/{name}.parquet", columns=["origin", "reason"])
        for origin, reason in zip(rejects.column("origin").to_pylist(), rejects.column("reason").to_pylist()):
            outcomes[line_of(origin)] = f"{stage}:{reason}"
    return outcomes


def our_survivors(project: Path) -> set[tuple[str, str]]:
    kept = pq.read_table(project / "data/interim/dedup.parquet", columns=["text", "pivot_text"])
    return set(zip(kept.column("text").to_pylist(), kept.column("pivot_text").to_pylist()))


def run_ours(project: Path) -> dict[str, Run]:
    return {stage: run_stage(project, stage) for stage in STAGES}


def median_runs(attempts: list[dict[str, Run]]) -> dict[str, Run]:
    """Per stage, the run with the median time."""
    return {stage: sorted((runs[stage] for runs in attempts), key=lambda run: run.seconds)[len(attempts) // 2]
            for stage in STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langfoundry-bench",
                        help="keeps the corpus, OpusFilter's venv and the projects between runs")
    parser.add_argument("--bench-dir", type=Path, help="folder with gen_corpus.py (default ../shared/bench)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of our stages; the median is shown")
    args = parser.parse_args()
    bench = reference_dir(args.bench_dir)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data = corpus(workdir / "data", 200_000, bench)  # run_opusfilter.sh reads WORKDIR/data
    opusfilter_venv(workdir)
    print(f"machine: {os.cpu_count()} cores, load average {load_average()}; workdir {workdir}", flush=True)

    equivalent = make_project(workdir / "project-equivalent", data, EQUIVALENT)
    attempts = [run_ours(equivalent)]
    print("ours, equivalent rules: " + ", ".join(f"{stage} {run.seconds:.2f} s" for stage, run in attempts[0].items()),
          flush=True)
    opus_run, opus_seconds, opus_rss = run_opusfilter(workdir, bench)
    print(f"OpusFilter: {opus_seconds:.1f} s", flush=True)
    for _ in range(args.repeats - 1):
        attempts.append(run_ours(equivalent))
    ours = median_runs(attempts)
    letters = make_project(workdir / "project-letters-share", data, WITH_LETTERS_SHARE)
    letters_runs = run_ours(letters)
    print(f"load average after the runs: {load_average()}")

    pairs = len(read_pairs(data / "src.txt", data / "tgt.txt"))
    out = workdir / "out/opusfilter"
    opus_survivors_list = read_pairs(out / "filtered.src.txt", out / "filtered.tgt.txt")
    opus_survivors = set(opus_survivors_list)
    opus_deduped = len(read_pairs(out / "dedup.src.txt", out / "dedup.tgt.txt"))
    survivors = our_survivors(equivalent)

    total = sum(run.seconds for run in ours.values())
    clean_dedup = ours["clean"].seconds + ours["dedup"].seconds
    cpu = sum(run.cpu_seconds for run in ours.values())
    peak = max(run.peak_rss for run in ours.values())

    print(f"\n## Clean + exact dedup, {pairs:,} pairs (ours: median of {len(attempts)} runs)\n")
    print("| tool | work | wall s | pairs/s | CPU s | peak memory (PSS) | survivors |\n|---|---|---|---|---|---|---|")
    print(f"| OpusFilter 3.3.1 | dedup + 4 filters, 1 process | {opus_seconds:.1f} | {pairs / opus_seconds:,.0f} | "
          f"{opus_run.cpu_seconds:.1f} | {mib(opus_run.peak_rss)} | {len(opus_survivors_list):,} |")
    for stage, run in ours.items():
        print(f"| langfoundry {stage} | start-up + work, 2 cores | {run.seconds:.2f} | {pairs / run.seconds:,.0f} | "
              f"{run.cpu_seconds:.1f} | {mib(run.peak_rss)} | |")
    print(f"| **langfoundry ingest + clean + dedup** | 3 processes in a row | **{total:.2f}** | {pairs / total:,.0f} | "
          f"{cpu:.1f} | {mib(peak)} | {len(survivors):,} |")
    print(f"\nspeed-up over OpusFilter (wall): clean + dedup {opus_seconds / clean_dedup:.1f}x, ingest + clean + dedup "
          f"{opus_seconds / total:.1f}x; in CPU time: clean + dedup "
          f"{opus_run.cpu_seconds / (ours['clean'].cpu_seconds + ours['dedup'].cpu_seconds):.1f}x, all three "
          f"{opus_run.cpu_seconds / cpu:.1f}x")
    same = survivors == opus_survivors
    print(f"kept pairs equal OpusFilter's: {same} (ours {len(survivors):,}, OpusFilter {len(opus_survivors):,} distinct, "
          f"only ours {len(survivors - opus_survivors):,}, only OpusFilter's {len(opus_survivors - survivors):,})")

    labels = (data / "labels.txt").read_text(encoding="utf-8").split()
    all_pairs = read_pairs(data / "src.txt", data / "tgt.txt")
    print("\n## Planted defects (labels.txt): pairs removed\n")
    print("| label | pairs | OpusFilter | ours, equivalent rules | ours + letters share | our reasons (letters share) |")
    print("|---|---|---|---|---|---|")
    equivalent_outcomes, letters_outcomes = our_outcomes(equivalent), our_outcomes(letters)
    letters_survivors = our_survivors(letters)
    for label in sorted(set(labels)):
        lines = [number for number, line_label in enumerate(labels, start=1) if line_label == label]
        if label == "dup":  # a planted copy; whichever copy comes first is kept, so count removals overall
            continue
        # a pair counts as removed when no copy of it survives (which copy of a duplicate stays varies)
        opus_removed = sum(all_pairs[number - 1] not in opus_survivors for number in lines)
        ours_removed = sum(all_pairs[number - 1] not in survivors for number in lines)
        letters_removed = sum(all_pairs[number - 1] not in letters_survivors for number in lines)
        reasons = Counter(letters_outcomes[number] for number in lines
                          if number in letters_outcomes and all_pairs[number - 1] not in letters_survivors)
        shown = ", ".join(f"{reason} {count:,}" for reason, count in reasons.most_common(4))
        print(f"| {label} | {len(lines):,} | {opus_removed:,} | {ours_removed:,} | {letters_removed:,} | {shown} |")
    planted = labels.count("dup")
    ours_dups = sum(outcome == "dedup:exact_duplicate" for outcome in equivalent_outcomes.values())
    print(f"| exact duplicates removed | {planted:,} planted | {pairs - opus_deduped:,} | {ours_dups:,} | "
          f"{sum(outcome == 'dedup:exact_duplicate' for outcome in letters_outcomes.values()):,} | |")
    print(f"\n(OpusFilter removes duplicates before filtering, ours after: {planted - ours_dups:,} planted copies of "
          f"pairs a filter rejects are counted under that filter here, and the survivors are the same.)")
    digits = [number for number, label in enumerate(labels, start=1) if label == "digits"]
    through = sum(all_pairs[number - 1] in opus_survivors for number in digits)
    caught = sum(letters_outcomes.get(number, "").endswith(("letter_ratio", "script_ratio")) for number in digits)
    print(f"\nmostly-digit pairs: OpusFilter lets {through:,} of {len(digits):,} through; our letters-share filter "
          f"(min_letter_ratio 0.5, with script_ratio) catches {caught:,}")
    letters_total = sum(run.seconds for run in letters_runs.values())
    print(f"ours with the letters share on: {letters_total:.2f} s, {len(letters_survivors):,} survivors")

    gated = run_gates(letters)
    print("\n## Start-up and quality gates, apart from the work\n")
    print("| stage | script start-up s (`--help`) | imports in the work run s | work s | gate s | gate |")
    print("|---|---|---|---|---|---|")
    for stage, run in gated.items():
        report = run.report
        print(f"| {stage} | {startup_seconds(stage, letters):.2f} | {report['import_s']:.2f} | {report['work_s']:.2f} | "
              f"{report['gate_s']:.2f} | {report['gate']} |")
    print(f"\nOpusFilter by /usr/bin/time: {opus_seconds:.1f} s, {mib(opus_rss)} peak RSS; by our sampler: "
          f"{opus_run.seconds:.1f} s, {mib(opus_run.peak_rss)} PSS (the shell script and its children)")


if __name__ == "__main__":
    main()
