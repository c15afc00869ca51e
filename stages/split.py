"""Stage split: assign each record to train, val or test by hashing its group."""

import argparse
from pathlib import Path

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.core.inventory import load_inventory
from langfoundry.gates.gate import gate
from langfoundry.gates.tables import split_tables
from langfoundry.core.records import read_records
from langfoundry.data.split import assign_splits, split_metrics
from langfoundry.core.storage import write_metrics, write_parquet

INPUT = Path("data/interim/dedup.parquet")
OUTPUT = Path("data/interim/split.parquet")


def main(args: argparse.Namespace) -> None:
    params = load_params()
    records = read_records(INPUT, made_by="dedup")
    table = assign_splits(records, params.split)
    write_parquet(table, OUTPUT, sort_by=("id", "origin"))
    metrics = write_metrics("metrics/split.json", split_metrics(table))
    print(f"split: train={metrics['rows.train']} val={metrics['rows.val']} test={metrics['rows.test']}, "
          f"groups in several splits: {metrics['groups_in_several_splits']}")
    gate("split", split_tables(records, table, params.quality), params, load_inventory())


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
