"""Stage coverage: records per language, region and dataset at every level against their targets, and language checks."""

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.inventory import load_inventory
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_jsonl, write_metrics
from langfoundry.reports.coverage import CoveragePaths, build_coverage
from langfoundry.reports.coverage_report import render_chart, render_report


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    files = CoveragePaths.from_params(paths)
    coverage = build_coverage(params.coverage, load_sources(paths.sources).sources, load_inventory(paths.inventory),
                              files)
    metrics = write_metrics(files.metrics, coverage.metrics())
    write_jsonl(coverage.flags(), files.flags)
    files.report.parent.mkdir(parents=True, exist_ok=True)
    files.report.write_text(render_report(coverage, params.coverage.report_rows), encoding="utf-8")
    render_chart(coverage, files.chart)
    accuracies = ", ".join(f"{report.name} {report.accuracy:.1%}" for report in coverage.identifiers
                           if report.accuracy is not None)
    print(f"coverage: {metrics['total']:,} records ({metrics['count_level']}) of the {metrics['goal']:,} goal "
          f"({metrics['goal_progress']:.1%}); languages with data {metrics['languages.with_data']} of "
          f"{metrics['languages.inventory']}; "
          f"missing inputs {metrics['missing_inputs']}; script mismatches {metrics['check.script.flagged']}; "
          f"held-out identifier accuracy: {accuracies or 'none ran'}")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
