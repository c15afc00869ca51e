"""Stage evaluate: base vs adapter vs dictionary baseline on the test set -> metrics/eval.json, reports/eval.md."""

import argparse

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.model.evaluation import run_evaluation


def main(args: argparse.Namespace) -> None:
    params = load_params()
    metrics = run_evaluation(params.evaluate, params.seed)
    print(" ".join(f"{key}={metrics[key]:.2f}" for key in ("base.chrf", "adapter.chrf", "delta.chrf", "baseline.chrf")
                   if isinstance(metrics.get(key), float)))


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
