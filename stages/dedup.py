"""Stage dedup: remove exact and near-duplicate records, keeping the first occurrence."""

import argparse
from pathlib import Path

from langfoundry.core.config import load_params
from langfoundry.clean.dedup import dedup_metrics, dedup_parquet
from langfoundry.core.errors import stage_entry
from langfoundry.core.records import check_records_file
from langfoundry.core.storage import write_metrics

INPUT = Path("data/interim/clean.parquet")
KEPT = Path("data/interim/dedup.parquet")
REJECTS = Path("data/interim/dedup_rejects.parquet")


def main(args: argparse.Namespace) -> None:
    params = load_params()
    check_records_file(INPUT, made_by="clean")
    counts = dedup_parquet(INPUT, KEPT, REJECTS, params.dedup)  # streamed in batches over all cores
    metrics = write_metrics("metrics/dedup.json", dedup_metrics(counts))
    print(f"dedup: {metrics['rows.in']} in, {metrics['rows.exact_removed']} exact and "
          f"{metrics['rows.near_removed']} near duplicates removed, {metrics['rows.kept']} kept")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
