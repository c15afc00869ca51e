"""Stage dictionary: the train split's dictionary entries and short parallel pairs -> a SQLite FTS5 index."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics
from langfoundry.data.lookup import collect_entries, index_metrics, write_index


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    entries = collect_entries(paths.split)  # train rows only: val and test words never reach a prompt
    write_index(entries, paths.dictionary)
    metrics = write_metrics(paths.metric("dictionary"), index_metrics(entries))
    print(f"dictionary: {metrics['entries']} entries -> {paths.dictionary}")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
