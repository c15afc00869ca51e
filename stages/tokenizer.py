"""Stage tokenizer: how the base model's tokenizer fragments each language of the data (metrics and report)."""

import argparse

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.core.storage import write_metrics
from langfoundry.model.tokenizer_analysis import analyse_base, load_split_examples
from langfoundry.reports.tokenizer_report import write_report


def main(args: argparse.Namespace) -> None:
    params = load_params()
    examples = load_split_examples("data/processed")
    analysis = analyse_base("models/base", examples, trust_remote_code=params.base.trust_remote_code)
    write_metrics("metrics/tokenizer.json", analysis.metrics())
    write_report(analysis, "models/base", "reports/tokenizer.md", "reports/tokenizer.png")
    for lang, figure in sorted(analysis.figures.items()):
        against = f", parity {figure.parity:.2f}, ratio {figure.fertility_ratio:.2f} vs {figure.pivot}: {figure.verdict}" \
            if figure.pivot else ""
        print(f"tokenizer: {lang} fertility {figure.fertility:.2f}{against}")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
