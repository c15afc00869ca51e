"""Shared by the data-stage benchmarks: the seeded corpus (benchmarks/corpus.py), a throw-away project around it,
and stage runs timed with their peak memory (all processes of the run, sampled)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from repo_copy import override_params  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from corpus import is_current, write_corpus  # noqa: E402

SEED = 12345
SOURCE_PATHS = ("data/raw/bench/jv.txt", "data/raw/bench/id.txt")
JSONL_PATH = "data/raw/bench/corpus.jsonl"


def corpus(folder: Path, pairs: int) -> Path:
    """The seeded corpus of benchmarks/corpus.py in folder (src.txt, tgt.txt, corpus.jsonl, labels.txt),
    made once: a later run reuses it while its size, seed and generator version match."""
    if not is_current(folder, pairs, SEED):
        print(f"generating {pairs:,} pairs into {folder} ...", flush=True)
        write_corpus(folder, pairs, SEED)
    return folder


def make_project(root: Path, data: Path, overrides: dict[str, object], source_format: str = "txt") -> Path:
    """A folder the stage scripts can run in: params.yaml (the repository's, with overrides),
    sources.yaml with the corpus as one parallel source (the line-aligned src.txt/tgt.txt pair, or
    corpus.jsonl with source_format "jsonl"), the inventory and suites."""
    if root.exists():
        shutil.rmtree(root)
    (root / "data/raw/bench").mkdir(parents=True)
    (root / "data/inventory").mkdir(parents=True)
    shutil.copy(REPO / "data/inventory/languages.csv", root / "data/inventory/languages.csv")
    if (REPO / "expectations").is_dir():
        shutil.copytree(REPO / "expectations", root / "expectations")
    source = {"id": "bench", "kind": "parallel", "lang": "jv", "pivot_lang": "id"}
    if source_format == "jsonl":
        links = {"corpus.jsonl": JSONL_PATH}
        source.update(path=JSONL_PATH, format="jsonl", columns={"text": "src", "pivot_text": "tgt"})
    else:
        links = dict(zip(("src.txt", "tgt.txt"), SOURCE_PATHS))
        source.update(path=SOURCE_PATHS[0], pivot_path=SOURCE_PATHS[1], format="txt")
    for name, target in links.items():
        try:
            os.link(data / name, root / target)  # no copy of a large file where the filesystem allows
        except OSError:
            shutil.copy(data / name, root / target)
    sources = {"sources": [source]}
    (root / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False), encoding="utf-8")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    override_params(root, overrides)
    return root


@dataclass
class Run:
    seconds: float
    peak_rss: int  # bytes: the most the process and its children held at once, proportional set size
    output: str
    report: dict = field(default_factory=dict)
    peak_rss_sum: int = 0  # the same as a sum of resident set sizes (counts pages forked workers share twice)
    cpu_seconds: float = 0.0  # user + system time of the process and every child it waited for


def _tree_memory(process) -> tuple[int, int]:
    """(proportional set size, resident set size) of a process and its children, summed. PSS splits
    a page that several processes share (forked workers share the parent's) among them."""
    import psutil

    pss = rss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
            pss, rss = pss + getattr(info, "pss", info.rss), rss + info.rss
        except psutil.Error:
            pass
    return pss, rss


def run_measured(command: list[str], cwd: Path, interval: float | None = 0.05) -> Run:
    """Run a command, sampling the memory of its whole process tree every interval seconds (None: not
    sampled, peaks 0). Sampling takes CPU (a scan of /proc and each process's page tables): on 2 busy
    cores, every 50 ms slowed a 5-second stage by a tenth or more, so the timed runs of a multi-core
    stage go unsampled and its memory comes from a run of its own."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process, peak, done = psutil.Process(child.pid), [0, 0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                pss, rss = _tree_memory(process)
                peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            except psutil.Error:
                pass
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    if interval is not None:
        sampler.start()
    output, _ = child.communicate()
    seconds = time.perf_counter() - started
    done.set()
    if interval is not None:
        sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(seconds, peak[0], output, peak_rss_sum=peak[1], cpu_seconds=cpu)


# Runs the stage script as DVC does (its `if __name__ == "__main__"` block) up to its run_stage call, then
# does what run_stage does (spare_pandas where the script asks for it) and calls the stage's main with the
# project's params.yaml: what DVC runs, with the import, the work and the gate timed apart. The gate
# prints its own time ("... in 2.45 s").
_CALL_STAGE = """
import json, logging, runpy, sys, time
started = time.perf_counter()
import langfoundry.core.stage as stage_module
calls = []
run_stage = stage_module.run_stage
stage_module.run_stage = lambda main, *args, **options: calls.append((main, options))
runpy.run_path(sys.argv[1], run_name="__main__")
stage_module.run_stage = run_stage
[(main, options)] = calls
if not options.get("pandas", True):
    stage_module.spare_pandas()
from langfoundry.core.config import load_params
from langfoundry.core.errors import UserError
imported = time.perf_counter()
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
gate = sys.argv[2] == "gate"
options = {"gate": gate} if "gate" in main.__code__.co_varnames else {}
verdict = "passed" if options.get("gate") else "none"
try:
    main(load_params(), **options)
except UserError as failure:
    if not gate:
        raise
    verdict = "failed: " + str(failure)[:200]
done = time.perf_counter()
print(json.dumps({"import_s": imported - started, "main_s": done - imported, "gate": verdict}))
"""


def compile_sources() -> None:
    """Write the bytecode of the project's modules, as Python does on their first import unless
    PYTHONDONTWRITEBYTECODE is set: with it set (as on some machines) every stage run compiled them
    again, 0.1 to 0.2 s of each start, which a second run on a usual setup never pays. pip compiled the
    installed packages (the tools compared here included) when it installed them."""
    import compileall

    compileall.compile_dir(REPO / "src", quiet=1)


def run_stage(project: Path, stage: str, gate: bool = False, interval: float | None = 0.05) -> Run:
    """The stage's own main (stages/<stage>.py), with or without its gate, in a process of its own as DVC
    would start it; Run.report holds import_s, work_s, gate_s (0 without a gate) and the gate's verdict.
    interval: how often memory is sampled (run_measured)."""
    command = [sys.executable, "-c", _CALL_STAGE, str(REPO / "stages" / f"{stage}.py"), "gate" if gate else "no-gate"]
    compile_sources()
    run = run_measured(command, project, interval)
    run.report = json.loads(run.output.strip().splitlines()[-1])
    gate_times = [float(seconds) for seconds in re.findall(r"^gate \S+: .* in ([0-9.]+) s", run.output, re.M)]
    run.report["gate_s"] = sum(gate_times)
    run.report["work_s"] = run.report.pop("main_s") - run.report["gate_s"]
    return run


def startup_seconds(stage: str, cwd: Path, repeats: int = 3) -> float:
    """Median time to start a stage script and import what it imports (it exits at --help)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), "--help"], cwd=cwd, check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def line_of(origin: str) -> int:
    """The 1-based line number of an origin "file:line"."""
    return int(origin.rsplit(":", 1)[1])


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"
