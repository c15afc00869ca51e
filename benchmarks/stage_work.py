"""Run one data stage's work as its script does (same library calls, same files), timing the imports,
the work and, with --gate, the quality gate separately; prints one JSON line.

Usage (from a project folder): python benchmarks/stage_work.py ingest|clean|dedup [--gate]
The stage scripts end with their gate; benchmarks use this to show what the data work costs and
what the gate adds, and to run on corpora whose gate fails.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

from langfoundry.core.config import load_params, load_sources  # noqa: E402
from langfoundry.core.errors import UserError  # noqa: E402
from langfoundry.core.inventory import load_inventory  # noqa: E402
from langfoundry.core.storage import write_metrics  # noqa: E402

INGESTED, CLEAN, CLEAN_REJECTS = Path("data/interim/ingested.parquet"), Path("data/interim/clean.parquet"), \
    Path("data/interim/clean_rejects.parquet")
DEDUP, DEDUP_REJECTS = Path("data/interim/dedup.parquet"), Path("data/interim/dedup_rejects.parquet")


def imports(stage: str) -> None:
    """What the stage script imports for its work (its gate's imports come with the gate)."""
    global ingest, filters, dedup
    if stage == "ingest":
        from langfoundry.data import ingest
    elif stage == "clean":
        from langfoundry.clean import filters
    else:
        from langfoundry.clean import dedup


def work(stage: str, params, inventory) -> dict:
    scripts = {tag: language.script for tag, language in inventory.items()}
    if stage == "ingest":
        return {"metrics": ingest.ingest_to_files(load_sources().sources, params.ingest, inventory)}
    if stage == "clean":
        return {"metrics": write_metrics("metrics/clean.json", filters.clean_metrics(
            filters.clean_parquet(INGESTED, CLEAN, CLEAN_REJECTS, params.clean, scripts, where=str(INGESTED))))}
    return {"metrics": write_metrics("metrics/dedup.json", dedup.dedup_metrics(
        dedup.dedup_parquet(CLEAN, DEDUP, DEDUP_REJECTS, params.dedup)))}


def gate(stage: str, params, inventory, metrics: dict) -> str:
    from langfoundry.gates.gate import gate as run_gate
    from langfoundry.gates.tables import clean_tables, ingested_tables

    scripts = {tag: language.script for tag, language in inventory.items()}
    if stage == "ingest":
        rows_read = {source: counts["rows_read"] for source, counts in metrics["sources"].items()}
        tables = ingested_tables(pq.read_table(ingest.RECORDS_PATH), pq.read_table(ingest.REJECTS_PATH), rows_read,
                                 scripts, params.quality)
    elif stage == "clean":
        tables = clean_tables(pq.read_table(INGESTED, columns=["source"]), pq.read_table(CLEAN),
                              pq.read_table(CLEAN_REJECTS), scripts, params.quality)
    else:
        return "none"  # the dedup stage has no gate
    try:
        run_gate({"ingest": "ingested"}.get(stage, stage), tables, params, inventory)
        return "passed"
    except (UserError, SystemExit) as failure:
        return f"failed: {str(failure)[:200]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["ingest", "clean", "dedup"])
    parser.add_argument("--gate", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    imports(args.stage)
    imported = time.perf_counter()
    params, inventory = load_params(), load_inventory()
    result = work(args.stage, params, inventory)
    done = time.perf_counter()
    report = {"stage": args.stage, "import_s": imported - STARTED, "work_s": done - imported}
    if args.gate:
        report["gate"] = gate(args.stage, params, inventory, result["metrics"])
        report["gate_s"] = time.perf_counter() - done
    print(json.dumps(report))


if __name__ == "__main__":
    main()
