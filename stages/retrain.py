"""Check whether a training cycle is due: the clean data now against the data the adapter was trained on.

Writes metrics/retrain.json and prints the verdict (none, mini or full). With --exit-code the exit status
says it too, for `make cycle`: 0 when a cycle is due, 3 when none is (1 stays an error).
"""

import argparse
import sys

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.reports.retrain import RETRAIN_METRICS, check
from langfoundry.core.storage import write_metrics

NOT_DUE = 3


def main(args: argparse.Namespace) -> None:
    verdict = check(load_params().retrain)
    write_metrics(RETRAIN_METRICS, verdict.metrics())
    trained = "no record" if verdict.trained_rows is None else f"{verdict.trained_rows:,}"
    print(f"retrain: {verdict.verdict} ({verdict.reason}); clean records now {verdict.clean_rows:,}, "
          f"when the adapter was trained {trained}")
    if args.exit_code and not verdict.due:
        sys.exit(NOT_DUE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exit-code", action="store_true", help="exit 0 when a cycle is due, 3 when none is")
    stage_entry(main, parser)
