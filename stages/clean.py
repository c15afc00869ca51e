"""Stage clean: normalise text, scrub personal data and filter ingested records."""

import argparse
from pathlib import Path

import pyarrow.parquet as pq

from langfoundry.config import load_params
from langfoundry.errors import UserError, stage_entry
from langfoundry.filters import clean_batches, clean_metrics
from langfoundry.inventory import load_inventory
from langfoundry.records import require_record_columns
from langfoundry.storage import write_metrics, write_parquet

INPUT = Path("data/interim/ingested.parquet")
KEPT = Path("data/interim/clean.parquet")
REJECTS = Path("data/interim/clean_rejects.parquet")
BATCH_ROWS = 50_000


def main(args: argparse.Namespace) -> None:
    params = load_params()
    scripts = {tag: language.script for tag, language in load_inventory().items()}
    if not INPUT.exists():
        raise UserError(f"{INPUT}: not found; run the ingest stage first (dvc repro ingest)")
    # Streamed in batches rather than read whole: the ingested table can be large.
    source = pq.ParquetFile(INPUT)
    require_record_columns(source.schema_arrow, str(INPUT), "the ingest stage (dvc repro ingest)")
    result = clean_batches(source.iter_batches(batch_size=BATCH_ROWS), params.clean, scripts, where=str(INPUT))
    write_parquet(result.kept_table(source.schema_arrow), KEPT, sort_by=("id", "origin"))
    write_parquet(result.rejects_table(), REJECTS, sort_by=("id", "origin"))
    metrics = write_metrics("metrics/clean.json", clean_metrics(result.counts))
    print(f"clean: {metrics['rows.in']} in, {metrics['rows.kept']} kept, {metrics['rows.rejected']} rejected")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
