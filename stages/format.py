"""Stage format: split records -> data/processed/{train,val,test}.jsonl chat examples and metrics/format.json."""

import argparse
from pathlib import Path

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.data.chat import format_metrics, format_records
from langfoundry.core.inventory import load_inventory
from langfoundry.gates.gate import gate
from langfoundry.gates.tables import processed_tables
from langfoundry.core.records import read_records
from langfoundry.core.storage import write_jsonl, write_metrics

SPLIT_TABLE = Path("data/interim/split.parquet")
OUT_DIR = Path("data/processed")


def main(args: argparse.Namespace) -> None:
    params = load_params()
    table = read_records(SPLIT_TABLE, made_by="split")
    result = format_records(table, params.format, params.seed, where=str(SPLIT_TABLE))
    for split, examples in result.examples.items():
        write_jsonl(examples, OUT_DIR / f"{split}.jsonl")
    metrics = write_metrics("metrics/format.json", format_metrics(result))
    print(" ".join(f"{split}={metrics[f'{split}.examples']}" for split in result.examples))
    # The gate checks every example is a well-formed chat, and names the origin of any that is not.
    gate("processed", processed_tables(result.examples, table), params, load_inventory())


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
