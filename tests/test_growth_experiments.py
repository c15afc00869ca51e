"""The growth parameters as experiments: `dvc exp run -S format.mix...` and `-S evaluate.dictionary_context=true`
on the tiny pipeline, read back from `dvc exp show` as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_copy import clone_built, run
from test_experiments import experiments

pytestmark = pytest.mark.slow


def only_experiment(repo: Path) -> dict:
    found = [exp for exp in experiments(repo).values() if exp["params"]]
    assert len(found) == 1, found
    return found[0]


def test_a_mix_experiment_resamples_train_and_caps_a_small_source(tiny_pipeline: Path, tmp_path: Path) -> None:
    repo = clone_built(tiny_pipeline, tmp_path / "repo")
    # the scans repeat the dictionary's entries, so dedup leaves them a handful of train examples: too few for 10%
    shares = "{banyumasan-dictionary: 0.9, banyumasan-scans: 0.1}"
    # ++: the committed shares map is empty, so its keys are new to Hydra's override grammar
    run(["dvc", "exp", "run", "-S", f"++format.mix.shares={shares}", "format"], repo)
    metrics = only_experiment(repo)["metrics"]["metrics/format.json"]
    assert metrics["mix.asked.banyumasan-scans"] == 0.1
    small = metrics["mix.examples_before.banyumasan-scans"]
    assert 0 < small and metrics["mix.examples.banyumasan-scans"] == 3 * small, "capped at max_repeats (3) copies"
    train = metrics["train.examples"]
    assert metrics["mix.examples.banyumasan-dictionary"] + 3 * small == train, "train keeps its size"
    assert metrics["mix.obtained.banyumasan-scans"] == pytest.approx(3 * small / train, abs=1e-6)


def test_a_dictionary_context_experiment_scores_with_and_without(tiny_pipeline: Path, tmp_path: Path) -> None:
    repo = clone_built(tiny_pipeline, tmp_path / "repo")
    run(["dvc", "exp", "run", "-S", "evaluate.dictionary_context=true", "evaluate"], repo)
    metrics = only_experiment(repo)["metrics"]["metrics/eval.json"]
    for model in ("base", "adapter"):
        assert 0 <= metrics[f"{model}.chrf"] <= 100 and 0 <= metrics[f"{model}.no_context.chrf"] <= 100
    assert metrics["dictionary_context.prompts"] > 0, "some test prompt found an entry of the train split"
