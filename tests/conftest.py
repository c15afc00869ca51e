"""Fixtures shared by test modules."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_copy import FAST_PARAMS, copy_repo, override_params, run


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """The whole pipeline run once on FAST_PARAMS from a clean copy, its outputs committed.

    Shared by the slow tests (experiments, remotes, reproducibility); a test that changes the repository works on
    its own copy (repo_copy.clone_built).
    """
    repo = copy_repo(tmp_path_factory.mktemp("tiny-pipeline"))
    override_params(repo, FAST_PARAMS)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "tiny pipeline and its outputs"], repo)
    return repo
