"""Stage acquire: fetch sources that live outside the repository into data/raw/acquired/."""

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.stage import run_stage
from langfoundry.data.acquire import acquire_sources


def main(params: Params, paths: PathsParams | None = None) -> None:
    paths = paths or params.paths
    acquired = acquire_sources(load_sources(paths.sources).sources)
    print(f"acquire: {len(acquired)} source(s) in {paths.acquired}")


if __name__ == "__main__":
    run_stage(main, __doc__)
