"""Stage coverage: records per language, region and dataset at every level against their targets, and language checks."""

import argparse

from langfoundry.core.config import load_params, load_sources
from langfoundry.reports.coverage import CoveragePaths, build_coverage
from langfoundry.reports.coverage_report import render_chart, render_report
from langfoundry.core.errors import stage_entry
from langfoundry.core.inventory import load_inventory
from langfoundry.core.storage import write_jsonl, write_metrics


def main(args: argparse.Namespace) -> None:
    params = load_params()
    paths = CoveragePaths()
    coverage = build_coverage(params.coverage, load_sources().sources, load_inventory(), paths)
    metrics = write_metrics(paths.metrics, coverage.metrics())
    write_jsonl(coverage.flags(), paths.flags)
    paths.report.parent.mkdir(parents=True, exist_ok=True)
    paths.report.write_text(render_report(coverage, params.coverage.report_rows), encoding="utf-8")
    render_chart(coverage, paths.chart)
    accuracies = ", ".join(f"{report.name} {report.accuracy:.1%}" for report in coverage.identifiers
                           if report.accuracy is not None)
    print(f"coverage: {metrics['total']:,} records ({metrics['count_level']}) of the {metrics['goal']:,} goal "
          f"({metrics['goal_progress']:.1%}); languages with data {metrics['languages.with_data']} of "
          f"{metrics['languages.inventory']}; "
          f"missing inputs {metrics['missing_inputs']}; script mismatches {metrics['check.script.flagged']}; "
          f"held-out identifier accuracy: {accuracies or 'none ran'}")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
