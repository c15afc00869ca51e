"""Stage dedup: remove exact and near-duplicate records, keeping the first occurrence."""

from langfoundry.clean.dedup import dedup_metrics, dedup_parquet
from langfoundry.core.config import Params, PathsParams
from langfoundry.core.records import check_records_file
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    check_records_file(paths.clean, made_by="clean")
    counts = dedup_parquet(paths.clean, paths.dedup, paths.dedup_rejects, params.dedup)  # streamed over all cores
    metrics = write_metrics(paths.metric("dedup"), dedup_metrics(counts))
    print(f"dedup: {metrics['rows.in']} in, {metrics['rows.exact_removed']} exact and "
          f"{metrics['rows.near_removed']} near duplicates removed, {metrics['rows.kept']} kept")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, pandas=False)
