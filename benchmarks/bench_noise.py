"""Run-to-run spread of every model metric across seeds on the default pipeline: benchmarks/noise_band.json.

Usage:
    .venv/bin/python benchmarks/bench_noise.py                     # seeds 13 14 15: minutes a seed on 2 idle cores
    .venv/bin/python benchmarks/bench_noise.py --seeds 13 14 15 16 17 --keep /tmp/noise
    .venv/bin/python benchmarks/bench_noise.py --tiny --out /tmp/band.json   # the tests' tiny parameters, a smoke test

In a copy of the repository under a temporary folder it runs the data stages once (`dvc repro format`), then,
for each seed, the stage scripts base, tokenizer, train and evaluate with `seed` set in the copy's params.yaml
(called directly, not through dvc: the format stage also reads `seed`, and the data must stay the same).
It flattens metrics/base.json, tokenizer.json, train.json and eval.json as `dvc metrics diff` does (nested
keys joined with dots) and writes, for each numeric key, the seeds' min, max, mean, sample std and band.

The band is max - min: the largest difference seen between two runs that differ only in their seed. A
metrics diff between two commits is one such difference, so `make pr-report` calls a change no larger
than the band "within noise". Three seeds give a low estimate of the spread (more seeds widen it); a key
identical across the seeds gets band 0, so any change to it counts.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from repo_copy import TINY_PARAMS, copy_repo, override_params, run  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "noise_band.json"
DEFAULT_SEEDS = (13, 14, 15)
# The stages a seed changes, in pipeline order, and the metrics file each writes.
MODEL_STAGES = {"base": "metrics/base.json", "tokenizer": "metrics/tokenizer.json",
                "train": "metrics/train.json", "evaluate": "metrics/eval.json"}
BAND_RULE = "max - min: the largest difference between two runs that differ only in their seed"
DIGITS = 6  # the metrics files' own precision


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys, the way dvc shows metrics."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # dvc diffs booleans as 0/1: not a measure


def spread(values: list[float]) -> dict[str, float]:
    """min, max, mean, sample std and band (max - min) of one key's values across the seeds."""
    low, high = min(values), max(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    figures = {"min": low, "max": high, "mean": statistics.fmean(values), "std": std, "band": high - low}
    return {name: round(value, DIGITS) for name, value in figures.items()}


def band_table(runs: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{metrics file: {key: spread}} for every key that is a number in every seed's run.

    runs maps a seed to {metrics file: flat metrics}.
    """
    seeds = sorted(runs)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted({path for run_ in runs.values() for path in run_}):
        keys = sorted({key for seed in seeds for key in runs[seed].get(path, {})})
        for key in keys:
            values = [runs[seed].get(path, {}).get(key) for seed in seeds]
            if all(is_number(value) for value in values):
                table.setdefault(path, {})[key] = spread([float(value) for value in values])
    return table


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def band_file(runs: dict[int, dict[str, dict[str, Any]]], stages: list[str], tiny: bool) -> dict[str, Any]:
    """The contents of noise_band.json: where the figures come from, then the spread of every numeric key."""
    import torch

    params = "the tests' TINY_PARAMS" if tiny else "the default params.yaml"
    return {
        "generated_by": "benchmarks/bench_noise.py",
        "pipeline": f"{params}; data stages once, then {', '.join(stages)} for each seed",
        "seeds": sorted(runs),
        "band": BAND_RULE,
        "machine": f"{cpu_name()}, torch {torch.__version__}",
        "metrics": band_table(runs),
    }


def dump_band(contents: dict[str, Any]) -> str:
    """contents as JSON with one line per metric: the committed file reads (and diffs) like a table."""
    lines = ["{"] + [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in contents.items() if key != "metrics"]
    files = []
    for path, keys in contents["metrics"].items():
        rows = ",\n".join(f"      {json.dumps(key)}: {json.dumps(figures)}" for key, figures in keys.items())
        files.append(f"    {json.dumps(path)}: {{\n{rows}\n    }}")
    return "\n".join(lines + ['  "metrics": {', ",\n".join(files), "  }", "}"]) + "\n"


def run_seed(repo: Path, seed: int, stages: list[str]) -> dict[str, dict[str, Any]]:
    """Run the model stages with this seed; {metrics file: flat metrics}."""
    override_params(repo, {"seed": seed})
    for stage in stages:
        started = time.perf_counter()
        run([sys.executable, f"stages/{stage}.py"], repo)
        print(f"  seed {seed}: {stage} in {time.perf_counter() - started:.0f} s", flush=True)
    return {MODEL_STAGES[stage]: flatten(json.loads((repo / MODEL_STAGES[stage]).read_text(encoding="utf-8")))
            for stage in stages}


def print_table(contents: dict[str, Any]) -> None:
    rows = [(path, key, figures) for path, keys in contents["metrics"].items() for key, figures in keys.items()]
    moving = [row for row in rows if row[2]["band"] > 0]
    print(f"\nseeds {', '.join(map(str, contents['seeds']))}; band = {contents['band']}\n")
    print("| path | metric | min | max | mean | std | band |\n|---|---|---|---|---|---|---|")
    for path, key, figures in moving:
        cells = " | ".join(f"{figures[name]:.6g}" for name in ("min", "max", "mean", "std", "band"))
        print(f"| {path} | {key} | {cells} |")
    print(f"\n{len(moving)} of {len(rows)} numeric keys differ between seeds; the other {len(rows) - len(moving)} "
          "are identical (band 0)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--out", type=Path, help=f"where the band goes (default {DEFAULT_OUT.relative_to(REPO)}; "
                                                 "with --tiny, noise_band.json in the work folder)")
    parser.add_argument("--no-tokenizer", action="store_true", help="leave out the tokenizer stage")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny parameters (a smoke test, not a band)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    if len(set(args.seeds)) < 2:
        parser.error("--seeds: at least two different seeds (a spread needs two runs)")
    return args


def main() -> None:
    args = parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="langfoundry-noise-"))
    out = args.out or (workdir / "noise_band.json" if args.tiny else DEFAULT_OUT)
    stages = [stage for stage in MODEL_STAGES if not (args.no_tokenizer and stage == "tokenizer")]
    repo = copy_repo(workdir / "repo")
    if args.tiny:
        override_params(repo, TINY_PARAMS)
    started = time.perf_counter()
    print(f"data stages in {repo}: dvc repro format ...", flush=True)
    run(["dvc", "repro", "format"], repo)
    print(f"  data stages in {time.perf_counter() - started:.0f} s", flush=True)
    runs = {}
    for number, seed in enumerate(sorted(set(args.seeds)), start=1):
        print(f"seed {seed} ({number} of {len(set(args.seeds))}): {', '.join(stages)} ...", flush=True)
        runs[seed] = run_seed(repo, seed, stages)
    contents = band_file(runs, stages, args.tiny)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_band(contents), encoding="utf-8")
    print_table(contents)
    print(f"\nwrote {out} in {time.perf_counter() - started:.0f} s (work folder {workdir})")


if __name__ == "__main__":
    main()
