"""Check whether a training cycle is due: the clean data now against the data the adapter was trained on.

Writes metrics/retrain.json and prints the verdict (none, mini or full). With --exit-code the exit status
says it too, for `make cycle`: 0 when a cycle is due, 3 when none is (1 stays an error).
"""

import argparse
import sys

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics
from langfoundry.reports.retrain import check

NOT_DUE = 3


def main(params: Params, paths: PathsParams | None = None, exit_code: bool = False) -> None:
    paths = paths or params.paths
    verdict = check(params.retrain, paths.clean, paths.metric("train"))
    write_metrics(paths.metric("retrain"), verdict.metrics())
    trained = "no record" if verdict.trained_rows is None else f"{verdict.trained_rows:,}"
    print(f"retrain: {verdict.verdict} ({verdict.reason}); clean records now {verdict.clean_rows:,}, "
          f"when the adapter was trained {trained}")
    if exit_code and not verdict.due:
        sys.exit(NOT_DUE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exit-code", action="store_true", help="exit 0 when a cycle is due, 3 when none is")
    run_stage(main, __doc__, parser=parser, extra=lambda args: {"exit_code": args.exit_code})
