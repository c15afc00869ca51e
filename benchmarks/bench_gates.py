"""The clean stage's quality gate on a large synthetic table: streamed in batches versus whole in memory.

Usage: python benchmarks/bench_gates.py [--rows 2000000] [--batch-rows 100000] [--whole] [--workdir DIR]

Writes a clean-like record table (sorted by id, as the stage writes it) with pyarrow, then runs the
clean gate on it in a fresh process per way, and prints each way's wall time and peak memory: the
process's own ru_maxrss (importing Great Expectations included) and the peak proportional set size
of the process with its workers, sampled every 0.1 s; and its CPU time with its workers', steadier
than wall time on a shared machine. There is no clean stage here to hand over the measures of the
kept rows, so the per-source table is measured from the file (on all cores), as a gate does for a
table a stage did not measure:

- streamed: langfoundry.gates.streamed.clean_gate_tables, validated batch_rows rows at a time, the
  batches in parallel processes when there are two or more per core;
- whole (with --whole): the table read into memory and validated in one batch, as the gates did
  before they streamed.

The table is made once per row count and reused while its file exists.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
CHUNK_ROWS = 500_000
SYLLABLES = ["ka", "ng", "ba", "nyu", "sa", "ge", "dhang", "lo", "ma", "nuk", "ri", "ta", "wi", "pa", "ju", "ra",
             "sé", "ku", "mo", "ho", "na", "ya", "lé", "do", "ci", "gu", "tem", "pur", "wong", "jir"]


def _words(rng: np.random.Generator, rows: int, vocabulary: pa.Array, count: int) -> pa.Array:
    """rows texts of `count` words drawn from the vocabulary, joined by spaces (vectorised)."""
    picks = [vocabulary.take(pa.array(rng.integers(0, len(vocabulary), rows))) for _ in range(count)]
    return pc.binary_join_element_wise(*picks, " ")


def _chunk(rng: np.random.Generator, start: int, rows: int, total: int, vocabulary: pa.Array) -> pa.Table:
    numbers = np.arange(start, start + rows, dtype=np.uint64)
    stride = np.uint64((2**63) // max(total, 1))
    ids = pa.array([f"{value:016x}" for value in (numbers * stride).tolist()])  # increasing: sorted by id
    constant = lambda value: pa.repeat(pa.scalar(value), rows)  # noqa: E731
    return pa.table({
        "id": ids, "source": constant("bench"), "kind": constant("parallel"), "lang": constant("jv"),
        "text": _words(rng, rows, vocabulary, 8), "pivot_lang": constant("id"),
        "pivot_text": _words(rng, rows, vocabulary, 7), "meta": constant("{}"),
        "origin": pc.binary_join_element_wise(constant("data/raw/bench/jv.txt"),
                                              pa.array(numbers + 1).cast(pa.string()), ":"),
    })


def make_table(folder: Path, rows: int) -> Path:
    """folder/clean.parquet with `rows` rows (reused if there), an empty rejects file beside it."""
    from langfoundry.core.records import RECORD_SCHEMA, REJECT_SCHEMA
    from langfoundry.core.storage import PARQUET_OPTIONS, ROW_GROUP_ROWS

    path = folder / "clean.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    syllables = np.array(SYLLABLES)
    vocabulary = pa.array(sorted({"".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(5000)}))
    print(f"writing {rows:,} rows to {path} ...", flush=True)
    with pq.ParquetWriter(path, RECORD_SCHEMA, **PARQUET_OPTIONS) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            table = _chunk(rng, start, min(CHUNK_ROWS, rows - start), rows, vocabulary)
            writer.write_table(table.select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA), row_group_size=ROW_GROUP_ROWS)
    pq.write_table(REJECT_SCHEMA.empty_table(), folder / "clean_rejects.parquet")
    return path


def run_gate(folder: Path, way: str, batch_rows: int) -> dict:
    """One gate run in this process (the child's side): its verdict, time and peak memory."""
    sys.path.insert(0, str(REPO / "src"))
    from langfoundry.core.config import Params
    from langfoundry.core.inventory import load_inventory
    from langfoundry.gates.gate import suite_parameters, validate
    from langfoundry.gates.streamed import clean_gate_tables
    from langfoundry.gates.tables import clean_tables

    started = time.perf_counter()
    params = Params()
    inventory = load_inventory(REPO / "data/inventory/languages.csv")
    scripts = {tag: language.script for tag, language in inventory.items()}
    kept, rejects = folder / "clean.parquet", folder / "clean_rejects.parquet"
    if way == "streamed":
        tables = clean_gate_tables(kept, kept, rejects, scripts, params.quality, batch_rows)
    else:
        table = pq.read_table(kept)
        tables = clean_tables(table.select(["source"]), table, pq.read_table(rejects), scripts, params.quality)
        batch_rows = max(table.num_rows, 1)
    result = validate("clean", tables, suite_parameters(params, inventory), folder, batch_rows=batch_rows)
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"way": way, "passed": f"{result.passed}/{result.evaluated}", "rows": result.rows,
            "seconds": time.perf_counter() - started, "gx_import_seconds": result.import_seconds,
            "cpu_seconds": own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime,
            "peak_rss": own.ru_maxrss * 1024}


def run_child(command: list[str], interval: float = 0.1) -> tuple[subprocess.CompletedProcess, int]:
    """Run the child, sampling the proportional set size of it and its workers together (PSS splits
    the pages forked workers share with it); returns the run and that peak in bytes."""
    import psutil

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process, peak, done = psutil.Process(child.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            total = 0
            try:
                for member in [process, *process.children(recursive=True)]:
                    info = member.memory_full_info()
                    total += getattr(info, "pss", info.rss)
            except psutil.Error:
                pass
            peak[0] = max(peak[0], total)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per batch (default: the gate's)")
    parser.add_argument("--whole", action="store_true", help="also validate the whole table at once, as before")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langfoundry-bench-gates")
    parser.add_argument("--child", choices=["streamed", "whole"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.workdir.resolve() / f"rows{args.rows}"
    sys.path.insert(0, str(REPO / "src"))
    from langfoundry.gates.rows import BATCH_ROWS

    batch_rows = args.batch_rows or BATCH_ROWS
    if args.child:
        print(json.dumps(run_gate(folder, args.child, batch_rows)))
        return
    make_table(folder, args.rows)
    shutil.copytree(REPO / "expectations", folder / "expectations", dirs_exist_ok=True)
    print(f"clean gate on {args.rows:,} rows ({(folder / 'clean.parquet').stat().st_size / 2**20:.0f} MiB of Parquet), "
          f"batches of {batch_rows:,} rows")
    print("| way | expectations passed | wall s | CPU s (workers too) | of it GX import s | peak RSS MiB "
          "| peak PSS with workers MiB |\n|---|---|---|---|---|---|---|")
    for way in ["streamed", "whole"] if args.whole else ["streamed"]:
        done, pss = run_child([sys.executable, __file__, "--rows", str(args.rows), "--batch-rows", str(batch_rows),
                               "--workdir", str(args.workdir), "--child", way])
        if done.returncode != 0:
            print(f"| {way} | failed: {done.stderr.strip().splitlines()[-1:]} | | | | | |")
            continue
        run = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {way} | {run['passed']} | {run['seconds']:.1f} | {run['cpu_seconds']:.1f} | "
              f"{run['gx_import_seconds']:.1f} | "
              f"{run['peak_rss'] / 2**20:.0f} | {pss / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
