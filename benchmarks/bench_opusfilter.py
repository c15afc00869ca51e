"""Clean + exact dedup of the seeded 200,000-pair benchmark corpus: this project's ingest, clean and dedup
stages against OpusFilter 3.3.1 on the same rule set, measured in one run.

Usage: python benchmarks/bench_opusfilter.py [--workdir DIR] [--repeats N] [--opusfilter-runs N]

The corpus comes from benchmarks/corpus.py and is kept in the workdir. OpusFilter runs the rules of
benchmarks/opusfilter.yaml in a virtual environment of its own under the workdir (made here on first
use, from PyPI): it is the tool compared against, never a dependency.

Each of our stages runs in a process of its own in a throw-away project folder, as DVC would start
it, with the settings equivalent to OpusFilter's rules (to compare speed and survivors) both with
its quality gate (the path `dvc repro` takes: ingest and clean are gated, dedup is not) and without
(--no-gate), in rounds with OpusFilter (ours both ways, then OpusFilter, three rounds by default) so
that all meet the same machine load, and each tool's median is compared; then once
more without the gate and with our letters-share filter on as well (to count the mostly-digit pairs
it catches). Times are wall clock (start-up included) and CPU time; memory is the peak proportional
set size of all of a run's processes together, sampled every 50 ms. Sampling takes CPU, which our
stages need on both cores, so our timed runs are not sampled: their memory comes from one more run
each way, sampled. OpusFilter, on one core, is sampled as it runs, from the other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402
    Run,
    corpus,
    line_of,
    load_average,
    make_project,
    mib,
    run_measured,
    run_stage,
    startup_seconds,
)

PAIRS = 200_000
OPUSFILTER = "opusfilter==3.3.1"
CONFIG = Path(__file__).resolve().parent / "opusfilter.yaml"  # reads WORKDIR/data, writes WORKDIR/out/opusfilter
OPUSFILTER_OUT = Path("out/opusfilter")
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


def opusfilter_command(workdir: Path) -> Path:
    """OpusFilter's command, in a virtual environment of its own under workdir, installed from PyPI once."""
    venv = workdir / "venv-opusfilter"
    command = venv / "bin/opusfilter"
    if command.exists():
        return command
    print(f"installing {OPUSFILTER} into {venv} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", OPUSFILTER],
                               capture_output=True, text=True)
    if installed.returncode != 0 or not command.exists():
        raise SystemExit(f"could not install {OPUSFILTER} from PyPI:\n{installed.stderr[-3000:]}")
    return command


def run_opusfilter(workdir: Path, command: Path) -> Run:
    """OpusFilter over the corpus in workdir/data, measured like our stages (one process)."""
    (workdir / OPUSFILTER_OUT).mkdir(parents=True, exist_ok=True)
    return run_measured([str(command), "--overwrite", str(CONFIG)], workdir)


def read_pairs(source: Path, target: Path) -> list[tuple[str, str]]:
    with source.open(encoding="utf-8") as left, target.open(encoding="utf-8") as right:
        return [(a.rstrip("\n"), b.rstrip("\n")) for a, b in zip(left, right)]


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


def run_ours(project: Path, gate: bool = False, sampled: bool = False) -> dict[str, Run]:
    """Each stage once; memory sampled only when asked (see the module docstring)."""
    return {stage: run_stage(project, stage, gate=gate, interval=0.05 if sampled else None) for stage in STAGES}


def with_memory(timed: dict[str, Run], sampled: dict[str, Run]) -> dict[str, Run]:
    """The timed runs, each with the peak memory of the sampled run of its stage."""
    for stage, run in timed.items():
        run.peak_rss, run.peak_rss_sum = sampled[stage].peak_rss, sampled[stage].peak_rss_sum
    return timed


def median_run(runs: list[Run]) -> Run:
    """The run with the median time."""
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def median_runs(attempts: list[dict[str, Run]]) -> dict[str, Run]:
    """Per stage, the run with the median time."""
    return {stage: median_run([runs[stage] for runs in attempts]) for stage in STAGES}


@dataclass
class Measured:
    ours: dict[str, Run]  # per stage, the median run with the equivalent rules, without the gates
    gated: dict[str, Run]  # the same with the gates
    runs: int  # how many runs each median is of
    opusfilter: Run  # the median of OpusFilter's runs
    opusfilter_runs: int
    letters: dict[str, Run]  # our stages with the letters share on as well
    equivalent_project: Path
    letters_project: Path


def measure(workdir: Path, data: Path, command: Path, repeats: int, opusfilter_runs: int) -> Measured:
    """Our stages, ungated and gated, and OpusFilter, in rounds, so that all meet the same machine load:
    each round runs ours both ways, then OpusFilter (in the first opusfilter_runs rounds)."""
    equivalent = make_project(workdir / "project-equivalent", data, EQUIVALENT)
    attempts, gated, opusfilter = [], [], []
    for round_number in range(max(repeats, opusfilter_runs)):
        if round_number < repeats:
            attempts.append(run_ours(equivalent))
            gated.append(run_ours(equivalent, gate=True))
            for name, runs in (("ours, equivalent rules", attempts[-1]), ("the same with the gates", gated[-1])):
                print(f"round {round_number + 1}, {name}: " + ", ".join(f"{stage} {run.seconds:.2f} s"
                                                                       for stage, run in runs.items()), flush=True)
        if round_number < opusfilter_runs:
            opusfilter.append(run_opusfilter(workdir, command))
            print(f"round {round_number + 1}, OpusFilter: {opusfilter[-1].seconds:.1f} s", flush=True)
    sampled = {gate: run_ours(equivalent, gate=gate, sampled=True) for gate in (False, True)}
    for gate, runs in sampled.items():
        print(f"once more{' with the gates' if gate else ''}, memory sampled every 50 ms: " +
              ", ".join(f"{stage} {run.seconds:.2f} s" for stage, run in runs.items()), flush=True)
    ours, ours_gated = with_memory(median_runs(attempts), sampled[False]), with_memory(median_runs(gated), sampled[True])
    letters = make_project(workdir / "project-letters-share", data, WITH_LETTERS_SHARE)
    letters_runs = run_ours(letters)
    print(f"load average after the runs: {load_average()}")
    return Measured(ours, ours_gated, len(attempts), median_run(opusfilter), len(opusfilter),
                    letters_runs, equivalent, letters)


def print_speed(measured: Measured, pairs: int, opus_kept: list[tuple[str, str]]) -> None:
    ours, gated, opus = measured.ours, measured.gated, measured.opusfilter
    survivors, opus_survivors = our_survivors(measured.equivalent_project), set(opus_kept)

    print(f"\n## Clean + exact dedup, {pairs:,} pairs (medians: ours of {measured.runs} runs, OpusFilter of "
          f"{measured.opusfilter_runs})\n")
    print("| tool | work | wall s | pairs/s | CPU s | peak memory (PSS) | survivors |\n|---|---|---|---|---|---|---|")
    print(f"| OpusFilter 3.3.1 | dedup + 4 filters, 1 process | {opus.seconds:.1f} | {pairs / opus.seconds:,.0f} | "
          f"{opus.cpu_seconds:.1f} | {mib(opus.peak_rss)} | {len(opus_kept):,} |")
    for label, runs in (("", ours), (" with gate", gated)):
        for stage, run in runs.items():
            if label and stage == "dedup":
                continue  # dedup has no gate: the same run as above
            print(f"| langfoundry {stage}{label} | start-up + work{' + gate' if label else ''}, 2 cores | {run.seconds:.2f} | "
                  f"{pairs / run.seconds:,.0f} | {run.cpu_seconds:.1f} | {mib(run.peak_rss)} | |")
    for label, runs in (("", ours), (", gated", gated)):
        total, cpu = sum(run.seconds for run in runs.values()), sum(run.cpu_seconds for run in runs.values())
        print(f"| **langfoundry ingest + clean + dedup{label}** | 3 processes in a row | **{total:.2f}** | "
              f"{pairs / total:,.0f} | {cpu:.1f} | {mib(max(run.peak_rss for run in runs.values()))} | {len(survivors):,} |")
    print("\nspeed-up over OpusFilter (wall; CPU time in brackets):")
    for label, runs in (("without the gates", ours), ("with the gates (what dvc repro runs)", gated)):
        clean_dedup = runs["clean"].seconds + runs["dedup"].seconds
        clean_dedup_cpu = runs["clean"].cpu_seconds + runs["dedup"].cpu_seconds
        total, cpu = sum(run.seconds for run in runs.values()), sum(run.cpu_seconds for run in runs.values())
        print(f"- {label}: clean + dedup {opus.seconds / clean_dedup:.1f}x ({opus.cpu_seconds / clean_dedup_cpu:.1f}x), "
              f"ingest + clean + dedup {opus.seconds / total:.1f}x ({opus.cpu_seconds / cpu:.1f}x)")
    print(f"kept pairs equal OpusFilter's: {survivors == opus_survivors} (ours {len(survivors):,}, OpusFilter "
          f"{len(opus_survivors):,} distinct, only ours {len(survivors - opus_survivors):,}, only OpusFilter's "
          f"{len(opus_survivors - survivors):,})")


def print_defects(measured: Measured, labels: list[str], all_pairs: list[tuple[str, str]],
                  opus_survivors: set[tuple[str, str]], opus_deduped: int) -> None:
    """Per planted defect, the pairs each run removed: a pair counts as removed when no copy of it
    survives (which copy of a duplicate stays varies)."""
    survivors = our_survivors(measured.equivalent_project)
    letters_survivors = our_survivors(measured.letters_project)
    equivalent_outcomes, letters_outcomes = our_outcomes(measured.equivalent_project), our_outcomes(measured.letters_project)
    print("\n## Planted defects (labels.txt): pairs removed\n")
    print("| label | pairs | OpusFilter | ours, equivalent rules | ours + letters share | our reasons (letters share) |")
    print("|---|---|---|---|---|---|")
    for label in sorted(set(labels) - {"dup"}):  # a planted copy is counted with the duplicates below
        lines = [number for number, line_label in enumerate(labels, start=1) if line_label == label]
        removed = [sum(all_pairs[number - 1] not in kept for number in lines)
                   for kept in (opus_survivors, survivors, letters_survivors)]
        reasons = Counter(letters_outcomes[number] for number in lines
                          if number in letters_outcomes and all_pairs[number - 1] not in letters_survivors)
        shown = ", ".join(f"{reason} {count:,}" for reason, count in reasons.most_common(4))
        print(f"| {label} | {len(lines):,} | " + " | ".join(f"{count:,}" for count in removed) + f" | {shown} |")
    planted = labels.count("dup")
    ours_dups = sum(outcome == "dedup:exact_duplicate" for outcome in equivalent_outcomes.values())
    print(f"| exact duplicates removed | {planted:,} planted | {len(all_pairs) - opus_deduped:,} | {ours_dups:,} | "
          f"{sum(outcome == 'dedup:exact_duplicate' for outcome in letters_outcomes.values()):,} | |")
    print(f"\n(OpusFilter removes duplicates before filtering, ours after: {planted - ours_dups:,} planted copies of "
          f"pairs a filter rejects are counted under that filter here, and the survivors are the same.)")
    digits = [number for number, label in enumerate(labels, start=1) if label == "digits"]
    through = sum(all_pairs[number - 1] in opus_survivors for number in digits)
    caught = sum(letters_outcomes.get(number, "").endswith(("letter_ratio", "script_ratio")) for number in digits)
    print(f"\nmostly-digit pairs: OpusFilter lets {through:,} of {len(digits):,} through; our letters-share filter "
          f"(min_letter_ratio 0.5, with script_ratio) catches {caught:,}")
    letters_total = sum(run.seconds for run in measured.letters.values())
    print(f"ours with the letters share on: {letters_total:.2f} s, {len(letters_survivors):,} survivors")


def print_gates(measured: Measured) -> None:
    """Where the gated runs' time went: start-up, the work, and the gate after the work (validation and
    Data Docs, with what was left of importing Great Expectations, which starts with the stage)."""
    print("\n## Start-up and quality gates, apart from the work (gated runs, equivalent rules)\n")
    print("| stage | script start-up s (`--help`) | imports in the work run s | work s | gate s | gate |")
    print("|---|---|---|---|---|---|")
    for stage, run in measured.gated.items():
        report = run.report
        print(f"| {stage} | {startup_seconds(stage, measured.equivalent_project):.2f} | {report['import_s']:.2f} | "
              f"{report['work_s']:.2f} | {report['gate_s']:.2f} | {report['gate']} |")
    opus = measured.opusfilter
    print(f"\nOpusFilter, sampled every 50 ms: {opus.seconds:.1f} s, peak {mib(opus.peak_rss_sum)} RSS, "
          f"{mib(opus.peak_rss)} PSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langfoundry-bench",
                        help="keeps the corpus, OpusFilter's venv and the projects between runs")
    parser.add_argument("--repeats", type=int, default=3, help="runs of our stages; the median is shown")
    parser.add_argument("--opusfilter-runs", type=int, default=3,
                        help="runs of OpusFilter (about 3 minutes each), one per round with ours; the median is shown")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data = corpus(workdir / "data", PAIRS)  # where opusfilter.yaml reads it
    command = opusfilter_command(workdir)
    print(f"machine: {os.cpu_count()} cores, load average {load_average()}; workdir {workdir}", flush=True)
    measured = measure(workdir, data, command, args.repeats, args.opusfilter_runs)

    all_pairs = read_pairs(data / "src.txt", data / "tgt.txt")
    out = workdir / OPUSFILTER_OUT
    opus_kept = read_pairs(out / "filtered.src.txt", out / "filtered.tgt.txt")
    opus_deduped = len(read_pairs(out / "dedup.src.txt", out / "dedup.tgt.txt"))
    labels = (data / "labels.txt").read_text(encoding="utf-8").split()
    print_speed(measured, len(all_pairs), opus_kept)
    print_defects(measured, labels, all_pairs, set(opus_kept), opus_deduped)
    print_gates(measured)


if __name__ == "__main__":
    main()
