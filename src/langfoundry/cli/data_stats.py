"""`langfoundry data-stats`: examples per task and language, length distributions as plots and random samples
per task, from the chat examples in data/processed/ (after `dvc repro format`).

Writes reports/data_stats.md, reports/data_stats/prompt_lengths.png and answer_lengths.png, and
metrics/data_stats.json (paths from params.yaml). The same data and seed give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langfoundry.cli.arguments import with_one_line_errors
from langfoundry.core.config import load_params
from langfoundry.core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry data-stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--processed", type=Path, help="folder of train/val/test.jsonl (default: paths.processed)")
    parser.add_argument("--report", type=Path, help="the markdown report (default: <paths.reports>/data_stats.md); "
                                                    "its plots go to a folder of the same name beside it")
    parser.add_argument("--metrics", type=Path, help="the JSON figures (default: <paths.metrics>/data_stats.json)")
    parser.add_argument("--samples", type=int, default=3, help="random examples shown per task (default: 3)")
    parser.add_argument("--seed", type=int, help="of the random samples (default: seed in params.yaml)")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    return parser


def run(args: argparse.Namespace) -> int:
    from langfoundry.reports.data_stats import headline, write_report

    if args.samples < 0:
        raise UserError(f"--samples {args.samples}: give 0 or more")
    params = load_params(args.params)
    paths = params.paths
    written = write_report(args.processed or paths.processed, args.report or paths.reports / "data_stats.md",
                           args.metrics or paths.metric("data_stats"), samples_per_task=args.samples,
                           seed=params.seed if args.seed is None else args.seed)
    print(headline(written.stats))
    print(f"data-stats: {written.report}, plots {', '.join(str(plot) for plot in written.plots)}, metrics {written.metrics}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return with_one_line_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
