"""Stage evaluate: base vs adapter vs dictionary baseline on the test set -> metrics/eval.json, reports/eval.md.

With evaluate.dictionary_context the translation prompts also carry the train split's dictionary entries
(data/interim/dictionary.sqlite); <model>.no_context.* keep the scores without them."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.stage import run_stage
from langfoundry.model.evaluation import EvalPaths, run_evaluation


def main(params: Params, paths: PathsParams | None = None) -> dict:
    metrics = run_evaluation(params.evaluate, params.seed, EvalPaths.from_params(paths or params.paths))
    keys = ("base.chrf", "adapter.chrf", "delta.chrf", "baseline.chrf", "base.no_context.chrf", "adapter.no_context.chrf")
    print(" ".join(f"{key}={metrics[key]:.2f}" for key in keys if isinstance(metrics.get(key), float)))
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
