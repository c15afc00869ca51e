"""Stage clean: normalise text, scrub personal data and filter ingested records."""

import argparse
from pathlib import Path

import pyarrow.parquet as pq

from langfoundry.core.config import load_params
from langfoundry.core.errors import UserError, stage_entry
from langfoundry.clean.filters import clean_metrics, clean_parquet
from langfoundry.core.inventory import load_inventory
from langfoundry.gates.gate import gate
from langfoundry.gates.tables import clean_tables
from langfoundry.core.records import require_record_columns
from langfoundry.core.storage import write_metrics

INPUT = Path("data/interim/ingested.parquet")
KEPT = Path("data/interim/clean.parquet")
REJECTS = Path("data/interim/clean_rejects.parquet")


def main(args: argparse.Namespace) -> None:
    params = load_params()
    inventory = load_inventory()
    scripts = {tag: language.script for tag, language in inventory.items()}
    if not INPUT.exists():
        raise UserError(f"{INPUT}: not found; run the ingest stage first (dvc repro ingest)")
    require_record_columns(pq.read_schema(INPUT), str(INPUT), "the ingest stage (dvc repro ingest)")
    # Streamed in batches over all cores rather than read whole: the ingested table can be large.
    counts = clean_parquet(INPUT, KEPT, REJECTS, params.clean, scripts, where=str(INPUT))
    metrics = write_metrics("metrics/clean.json", clean_metrics(counts))
    print(f"clean: {metrics['rows.in']} in, {metrics['rows.kept']} kept, {metrics['rows.rejected']} rejected")
    kept, rejects = pq.read_table(KEPT), pq.read_table(REJECTS)
    ingested_sources = pq.read_table(INPUT, columns=["source"])
    gate("clean", clean_tables(ingested_sources, kept, rejects, scripts, params.quality), params, inventory)


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
