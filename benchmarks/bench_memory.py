"""Memory and time of the readers on awkward input: figures the unit tests no longer assert.

Usage: python benchmarks/bench_memory.py [--workdir DIR]

- three 50 MiB lines (TXT, CSV, JSONL) through ingest, against three small files: the long lines are
  read in pieces and rejected, so the peak grows by a few MiB, not 50 MiB a line (target: under 40 MiB);
- 3,000 small TSV files in one folder through ingest (target: under 30 s on 2 cores);
- a 120,000-line JSONL counted per language by the coverage stage (target: under 1 MB traced at its peak).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

INGEST_PEAK = """
import json, resource, sys
from pathlib import Path
from langfoundry.core.config import IngestParams, Source
from langfoundry.core.inventory import load_inventory
from langfoundry.data.ingest import ingest_to_files
sources = [Source(id=f"s{i}", kind="monolingual", lang="jv", path=path) for i, path in enumerate(sys.argv[2:])]
out = Path(sys.argv[1])
ingest_to_files(sources, IngestParams(), load_inventory(), records_path=out / "ingested.parquet",
                rejects_path=out / "ingest_rejects.parquet", metrics_path=out / "ingest.json")
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ingest_peak(root: Path, paths: list[str]) -> float:
    """Peak resident MiB of a fresh process that ingests the files (run in root)."""
    done = subprocess.run([sys.executable, "-c", INGEST_PEAK, str(root / "out"), *paths], cwd=root, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)["peak_mib"]


def long_lines(root: Path) -> None:
    from test_bad_input import write_fifty_mebibyte_lines

    (root / "data/raw").mkdir(parents=True, exist_ok=True)
    (root / "data/inventory").mkdir(parents=True, exist_ok=True)
    (root / "data/inventory/languages.csv").write_bytes((REPO / "data/inventory/languages.csv").read_bytes())
    small = []
    for n in range(3):
        path = root / f"data/raw/small{n}.txt"
        path.write_text("siji\nloro\ntelu\n", encoding="utf-8")
        small.append(str(path.relative_to(root)))
    started = time.perf_counter()
    big = list(write_fifty_mebibyte_lines(root).values())
    baseline, peak = ingest_peak(root, small), ingest_peak(root, big)
    print(f"three 50 MiB lines: peak {peak:.0f} MiB against {baseline:.0f} MiB for three small files: "
          f"+{peak - baseline:.0f} MiB (target < 40), {time.perf_counter() - started:.1f} s in all", flush=True)


def many_files(root: Path) -> None:
    from ingest_run import ingest_into

    from langfoundry.core.config import IngestParams, Source
    from langfoundry.core.inventory import load_inventory

    folder = root / "data/raw/many"
    folder.mkdir(parents=True)
    for n in range(3000):
        (folder / f"{n:04d}.tsv").write_text(f"text\tpivot_text\nsega {n}\tnasi {n}\nbanyu {n}\tair {n}\n")
    source = Source(id="many", kind="parallel", lang="jv", pivot_lang="id", path="data/raw/many")
    started = time.perf_counter()
    result = ingest_into(root / "out-many", [source], IngestParams(), load_inventory(REPO / "data/inventory/languages.csv"),
                         root=root)
    print(f"3,000 small files: {result.records.num_rows:,} records in {time.perf_counter() - started:.1f} s "
          f"(target < 30 s)", flush=True)


def jsonl_count(root: Path) -> None:
    from langfoundry.reports.coverage import count_jsonl

    path = root / "big.jsonl"
    langs = ["jv-x-banyumas", "id", "ml", "nqo"]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(120_000):
            handle.write(json.dumps({"id": i, "lang": langs[i % 4], "messages": "x" * 150}) + "\n")
    tracemalloc.start()
    lines, counts = count_jsonl(path, "lang")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert lines == 120_000 and counts == Counter({lang: 30_000 for lang in langs})
    print(f"coverage count of a {path.stat().st_size / 2**20:.0f} MiB JSONL: {peak:,} bytes traced at its peak "
          f"(target < 1,000,000)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed afterwards")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = (args.workdir or Path(scratch)).resolve()
        long_lines(root / "long")
        many_files(root / "many")
        jsonl_count(root)


if __name__ == "__main__":
    main()
