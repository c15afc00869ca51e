"""Stage tokenizer: how the base model's tokenizer fragments each language of the data (metrics and report)."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics
from langfoundry.model.tokenizer_analysis import analyse_base, load_split_examples
from langfoundry.reports.tokenizer_report import write_report


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    examples = load_split_examples(paths.processed)
    analysis = analyse_base(paths.base, examples, trust_remote_code=params.base.trust_remote_code)
    metrics = write_metrics(paths.metric("tokenizer"), analysis.metrics())
    write_report(analysis, paths.base, paths.reports / "tokenizer.md", paths.reports / "tokenizer.png")
    for lang, figure in sorted(analysis.figures.items()):
        against = f", parity {figure.parity:.2f}, ratio {figure.fertility_ratio:.2f} vs {figure.pivot}: {figure.verdict}" \
            if figure.pivot else ""
        print(f"tokenizer: {lang} fertility {figure.fertility:.2f}{against}")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
