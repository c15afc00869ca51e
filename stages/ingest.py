"""Stage ingest: read every source in sources.yaml into one record table and a table of rejects."""

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.inventory import load_inventory
from langfoundry.core.stage import run_stage
from langfoundry.data.ingest import ingest_to_files
from langfoundry.gates.gate import gate as run_gate
from langfoundry.gates.streamed import ingested_gate_tables


def main(params: Params, paths: PathsParams | None = None, gate: bool = True) -> dict:
    paths = paths or params.paths
    inventory = load_inventory(paths.inventory)
    metrics = ingest_to_files(load_sources(paths.sources).sources, params.ingest, inventory,  # streamed, bounded memory
                              records_path=paths.ingested, rejects_path=paths.ingest_rejects,
                              metrics_path=paths.metric("ingest"))
    print(f"ingest: {metrics['rows_read']} rows read, {metrics['kept']} kept, {metrics['rejected']} rejected "
          f"-> {paths.ingested} (metrics in {paths.metric('ingest')})")
    if gate:
        rows_read = {source: counts["rows_read"] for source, counts in metrics["sources"].items()}
        tables = ingested_gate_tables(paths.ingested, paths.ingest_rejects, rows_read, params.quality)
        run_gate("ingested", tables, params, inventory, paths)
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, gated=True)
