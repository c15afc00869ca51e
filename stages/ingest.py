"""Stage ingest: read every source in sources.yaml into one record table and a table of rejects."""

import argparse
import logging

import pyarrow.parquet as pq

from langfoundry.core.config import load_params, load_sources
from langfoundry.core.errors import stage_entry
from langfoundry.data.ingest import METRICS_PATH, RECORDS_PATH, REJECTS_PATH, ingest_to_files
from langfoundry.core.inventory import load_inventory
from langfoundry.gates.gate import gate
from langfoundry.gates.tables import ingested_tables


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_params()
    inventory = load_inventory()
    metrics = ingest_to_files(load_sources().sources, params.ingest, inventory)  # streamed, sorted, in bounded memory
    print(f"ingest: {metrics['rows_read']} rows read, {metrics['kept']} kept, {metrics['rejected']} rejected "
          f"-> {RECORDS_PATH} (metrics in {METRICS_PATH})")
    rows_read = {source: counts["rows_read"] for source, counts in metrics["sources"].items()}
    scripts = {tag: language.script for tag, language in inventory.items()}
    records, rejects = pq.read_table(RECORDS_PATH), pq.read_table(REJECTS_PATH)
    gate("ingested", ingested_tables(records, rejects, rows_read, scripts, params.quality), params, inventory)


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
