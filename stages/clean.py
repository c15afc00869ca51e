"""Stage clean: normalise text, scrub personal data and filter ingested records."""

import pyarrow.parquet as pq

from langfoundry.clean.driver import clean_files, clean_metrics
from langfoundry.clean.screening import load_blocklists
from langfoundry.core.config import Params, PathsParams
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import require_record_columns
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics
from langfoundry.gates.early import early_gate
from langfoundry.gates.gate import gate as run_gate
from langfoundry.gates.streamed import clean_gate_tables


def main(params: Params, paths: PathsParams | None = None, gate: bool = True) -> dict:
    paths = paths or params.paths
    inventory = load_inventory(paths.inventory)
    scripts = {tag: language.script for tag, language in inventory.items()}
    if not paths.ingested.exists():
        raise UserError(f"{paths.ingested}: not found; run the ingest stage first (dvc repro ingest)")
    require_record_columns(pq.read_schema(paths.ingested), str(paths.ingested), "the ingest stage (dvc repro ingest)")
    blocklists = load_blocklists(paths.screening, scripts, params.clean.zero_width)
    with early_gate(gate, paths.expectations) as early:  # Great Expectations imports in a process of its own while clean works
        # Streamed in batches over all cores rather than read whole: the ingested table can be large.
        outcome = clean_files(paths.ingested, paths.clean, paths.clean_rejects, params.clean, scripts,
                              where=str(paths.ingested), blocklists=blocklists)
        metrics = write_metrics(paths.metric("clean"), clean_metrics(outcome.counts, blocklists))
        print(f"clean: {metrics['rows.in']} in, {metrics['rows.kept']} kept, {metrics['rows.rejected']} rejected")
        if early is not None:
            # the per-source table from what the filters measured: no second pass over the texts
            tables = clean_gate_tables(paths.ingested, paths.clean, paths.clean_rejects, scripts, params.quality,
                                       tally=outcome.sources)
            run_gate("clean", tables, params, inventory, paths, early)
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, gated=True, pandas=False)
