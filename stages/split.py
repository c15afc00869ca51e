"""Stage split: assign each record to train, val or test by hashing its group."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import read_records
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics, write_parquet
from langfoundry.data.split import assign_splits, split_metrics
from langfoundry.gates.early import early_gate
from langfoundry.gates.gate import gate as run_gate
from langfoundry.gates.streamed import split_gate_tables
from langfoundry.gates.tables import rows_per_source


def main(params: Params, paths: PathsParams | None = None, gate: bool = True) -> dict:
    paths = paths or params.paths
    with early_gate(gate, paths.expectations) as early:  # Great Expectations imports in a process of its own while split works
        records = read_records(paths.dedup, made_by="dedup")
        table = assign_splits(records, params.split)
        write_parquet(table, paths.split, sort_by=("id", "origin"))
        metrics = write_metrics(paths.metric("split"), split_metrics(table))
        print(f"split: train={metrics['rows.train']} val={metrics['rows.val']} test={metrics['rows.test']}, "
              f"groups in several splits: {metrics['groups_in_several_splits']}")
        if early is not None:
            tables = split_gate_tables(paths.dedup, paths.split, params.quality, rows_in=rows_per_source(records),
                                       kept=rows_per_source(table))
            run_gate("split", tables, params, load_inventory(paths.inventory), paths, early)
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, gated=True, pandas=False)
