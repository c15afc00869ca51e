"""Stage ingest: read every source in sources.yaml into one record table and a table of rejects."""

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.inventory import load_inventory
from langfoundry.core.stage import run_stage
from langfoundry.data.ingest import ingest_to_files
from langfoundry.gates.early import early_gate
from langfoundry.gates.gate import gate as run_gate
from langfoundry.gates.streamed import ingested_gate_tables


def main(params: Params, paths: PathsParams | None = None, gate: bool = True) -> dict:
    paths = paths or params.paths
    inventory = load_inventory(paths.inventory)
    with early_gate(gate, paths.expectations) as early:  # Great Expectations imports in a process of its own while ingest reads
        metrics = ingest_to_files(load_sources(paths.sources).sources, params.ingest, inventory,  # bounded memory
                                  records_path=paths.ingested, rejects_path=paths.ingest_rejects,
                                  metrics_path=paths.metric("ingest"))
        print(f"ingest: {metrics['rows_read']} rows read, {metrics['kept']} kept, {metrics['rejected']} rejected "
              f"-> {paths.ingested} (metrics in {paths.metric('ingest')})")
        if early is not None:
            per_source = {name: {source: counts[name] for source, counts in metrics["sources"].items()}
                          for name in ("rows_read", "kept", "rejected")}
            tables = ingested_gate_tables(paths.ingested, paths.ingest_rejects, per_source["rows_read"],
                                          params.quality, kept=per_source["kept"], rejected=per_source["rejected"])
            run_gate("ingested", tables, params, inventory, paths, early)
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, gated=True, pandas=False)
