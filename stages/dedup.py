"""Stage dedup: remove exact and near-duplicate records, keeping the first occurrence."""

import argparse
from pathlib import Path

from langfoundry.config import load_params
from langfoundry.dedup import dedup_metrics, dedup_table
from langfoundry.errors import stage_entry
from langfoundry.records import read_records
from langfoundry.storage import write_metrics, write_parquet

INPUT = Path("data/interim/clean.parquet")
KEPT = Path("data/interim/dedup.parquet")
REJECTS = Path("data/interim/dedup_rejects.parquet")


def main(args: argparse.Namespace) -> None:
    params = load_params()
    result = dedup_table(read_records(INPUT, made_by="clean"), params.dedup)
    write_parquet(result.kept, KEPT, sort_by=("id", "origin"))
    write_parquet(result.rejects, REJECTS, sort_by=("id", "origin"))
    metrics = write_metrics("metrics/dedup.json", dedup_metrics(result.counts))
    print(f"dedup: {metrics['rows.in']} in, {metrics['rows.exact_removed']} exact and "
          f"{metrics['rows.near_removed']} near duplicates removed, {metrics['rows.kept']} kept")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
