"""Stage ingest: read every source in sources.yaml into one record table and a table of rejects."""

import argparse
import logging

from langfoundry.config import load_params, load_sources
from langfoundry.errors import stage_entry
from langfoundry.ingest import METRICS_PATH, RECORDS_PATH, ingest_sources, write_outputs
from langfoundry.inventory import load_inventory


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_params()
    result = ingest_sources(load_sources().sources, params.ingest, load_inventory())
    metrics = write_outputs(result)
    print(f"ingest: {metrics['rows_read']} rows read, {metrics['kept']} kept, {metrics['rejected']} rejected "
          f"-> {RECORDS_PATH} (metrics in {METRICS_PATH})")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
