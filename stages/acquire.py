"""Stage acquire: fetch sources that live outside the repository into data/raw/acquired/; answers users
rated low without a correction (feedback sources) go to reports/review_queue.jsonl."""

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_jsonl
from langfoundry.data.acquire import acquire_sources


def main(params: Params, paths: PathsParams | None = None) -> None:
    paths = paths or params.paths
    review_queue: list[dict] = []
    acquired = acquire_sources(load_sources(paths.sources).sources, review_queue=review_queue)
    write_jsonl(review_queue, paths.reports / "review_queue.jsonl")
    print(f"acquire: {len(acquired)} source(s) in {paths.acquired}; {len(review_queue)} answer(s) to review "
          f"in {paths.reports / 'review_queue.jsonl'}")


if __name__ == "__main__":
    run_stage(main, __doc__)
