"""Walkthrough: a coverage programme across a region's languages (examples/coverage-programme/README.md).

A team tracks the inventory's 73 languages against their targets. It has five sources in five languages of three
regions and two sources promised but not delivered. It builds the pipeline once, reads the coverage report (its
chart, its missing inputs, its regions) and the per-region scores, then takes two deliveries of the same size,
10% of its data each, through `make cycle`: the first one retrains, the second one does not, and each says why.

Usage: python examples/coverage-programme/run.py [--work DIR]   (or: make example-coverage-programme)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # examples/workspace.py, shared by every walkthrough

from workspace import VENV_BIN, Workspace  # noqa: E402


def load_build_data() -> ModuleType:
    """This walkthrough's build_data.py under a name of its own (other walkthroughs have a build_data.py too)."""
    spec = importlib.util.spec_from_file_location("coverage_programme_build_data", HERE / "build_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build_data().build

# Small enough for 2 cores (the model is a toy; the walkthrough is about the data and the decisions), with the
# programme's language names for the prompts. Everything else, retrain.* included, is the project's default.
OVERRIDES: dict[str, object] = {
    "base.scratch.steps": 30,
    "base.scratch.hidden_size": 32,
    "base.scratch.intermediate_size": 64,
    "base.scratch.batch_size": 8,
    "train.max_steps": 12,
    "train.eval_steps": 12,
    "train.batch_size": 4,
    "train.max_length": 64,
    "split.val_fraction": 0.02,
    "evaluate.max_examples": 24,
    "evaluate.max_new_tokens": 8,
    "export.gguf_types": ["q8_0"],
    "media.ocr.check_languages": ["id"],  # no scans in this programme: the OCR check set stays small
    "media.align.check_documents": 1,
    "format.language_names": {"jv-x-banyumas": "bahasa Banyumasan", "id": "bahasa Indonesia", "jv": "bahasa Jawa",
                              "su": "bahasa Sunda", "min": "bahasa Minangkabau", "ban": "bahasa Bali",
                              "bug": "bahasa Bugis", "pmy": "bahasa Melayu Papua"},
}
# The libraries' own CPU kernels (two to three times faster on 2 cores); the default pins them, for byte-identical
# models across machines, which a walkthrough does not need.
ENV = {"LANGFOUNDRY_NATIVE_KERNELS": "1"}
REGIONS = ("java", "sumatra", "bali-and-nusa-tenggara", "sulawesi", "papua")


def heading(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def section(markdown: str, title: str) -> str:
    """One `## title` section of a Markdown report, without its heading."""
    part = markdown.split(f"## {title}\n", 1)[1]
    return part.split("\n## ", 1)[0].strip()


def shell(ws: Workspace, cmd: list[str]) -> str:
    """Run a command in the project as on a terminal: its output (stdout and stderr in order) as it comes."""
    print(f"\n$ {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    lines = []
    with subprocess.Popen(cmd, cwd=ws.root, env=ws.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    print(f"[{time.monotonic() - started:.1f} s, exit {process.returncode}]", flush=True)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit {process.returncode} in {ws.root}")
    return "".join(lines)


def make_cycle(ws: Workspace) -> str:
    """`make cycle` in the workspace, with the repository's venv (BIN) already installed (a fresh STAMP)."""
    stamp = ws.path(".dvc/tmp/venv-installed")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()  # newer than pyproject.toml: make installs nothing
    return shell(ws, ["make", "--no-print-directory", "cycle", f"BIN={VENV_BIN}", "STAMP=.dvc/tmp/venv-installed"])


def decision(output: str) -> str:
    """The verdict line `make cycle` printed first (the one that decides)."""
    return next(line for line in output.splitlines() if line.startswith("retrain: "))


def region_scores(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Per region: records against target (coverage) beside the scores of the test examples (evaluate)."""
    coverage = json.loads(ws.path("metrics/coverage.json").read_text(encoding="utf-8"))
    scores = json.loads(ws.path("metrics/eval.json").read_text(encoding="utf-8"))
    return {region: {"records": coverage[f"region.{region}.count"], "target": coverage[f"region.{region}.target"],
                     "progress": coverage[f"region.{region}.progress"],
                     **{f"{model}_{metric}": scores.get(f"{model}.region.{region}.{metric}")
                        for model in ("base", "adapter", "baseline") for metric in ("perplexity", "chrf")}}
            for region in REGIONS}


def show_regions(regions: dict[str, dict[str, Any]]) -> None:
    number = lambda value, spec: "–" if value is None else format(value, spec)  # noqa: E731
    print(f"{'region':<24} {'records':>7} {'target':>7} {'progress':>8}   {'perplexity base → adapter':>25}"
          f"   {'chrF adapter':>12} {'chrF dictionary':>15}")
    for region, row in regions.items():
        perplexity = "–" if row["adapter_perplexity"] is None else \
            f"{row['base_perplexity']:.0f} → {row['adapter_perplexity']:.0f}"
        print(f"{region:<24} {row['records']:>7,} {row['target']:>7,} {row['progress']:>8.1%}   {perplexity:>25}"
              f"   {number(row['adapter_chrf'], '.1f'):>12} {number(row['baseline_chrf'], '.1f'):>15}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work", help="the walkthrough's project (emptied first)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    heading("1. The programme's project: the repository, this manifest (5 sources delivered, 2 planned), small params")
    ws = Workspace.create(HERE, root=args.work, overrides=OVERRIDES, extra_env=ENV)
    print(f"project in {ws.root}")
    print(build(ws.root, 1))
    ws.commit("delivery 1")

    heading("2. The data stages, the coverage report and a first adapter with its scores")
    shell(ws, ["dvc", "repro", "coverage", "evaluate"])  # release and export come with the first due cycle
    report = ws.path("reports/coverage.md").read_text(encoding="utf-8")
    print("\nreports/coverage.md, by region:\n" + section(report, "By region"))
    print("\nreports/coverage.md, missing inputs:\n" + section(report, "Missing inputs"))
    print(f"\nchart: reports/coverage.png ({ws.path('reports/coverage.png').stat().st_size:,} bytes)")

    heading("3. Per-region scores: coverage (metrics/coverage.json) beside quality (metrics/eval.json)")
    regions = region_scores(ws)
    show_regions(regions)
    ws.commit("pipeline outputs after delivery 1")

    cycles = []
    for number in (2, 3):
        heading(f"{number + 2}. Delivery {number}: 40 more phrases in each of four languages, then make cycle")
        print(build(ws.root, number))
        ws.commit(f"delivery {number}")
        output = make_cycle(ws)
        verdict = json.loads(ws.path("metrics/retrain.json").read_text(encoding="utf-8"))
        cycles.append({"delivery": number, "decision": decision(output), "output": output,
                       "trained": "Running stage 'train'" in output,
                       "retrain_after": verdict})
        ws.commit(f"cycle after delivery {number}")

    heading("Summary")
    coverage = json.loads(ws.path("metrics/coverage.json").read_text(encoding="utf-8"))
    print(f"coverage now: {coverage['total']:,} records of the {coverage['goal']:,} goal; languages with data "
          f"{coverage['languages.with_data']} of {coverage['languages.inventory']}; missing inputs "
          f"{coverage['missing_inputs']}")
    for cycle in cycles:
        print(f"delivery {cycle['delivery']}: {cycle['decision']} -> "
              f"{'retrained' if cycle['trained'] else 'no training'}")
    seconds = time.monotonic() - started
    print(f"walkthrough: {seconds:.0f} s")
    return {"root": ws.root, "regions": regions, "cycles": cycles, "seconds": seconds}


if __name__ == "__main__":
    main()
