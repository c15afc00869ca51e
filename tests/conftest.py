"""Fixtures shared by test modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from repo_copy import FAST_PARAMS, copy_repo, override_params, run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """An empty project folder, the working directory: the language inventory and an empty data/raw/
    (a test module may define its own `repo`)."""
    (tmp_path / "data" / "inventory").mkdir(parents=True)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", tmp_path / "data" / "inventory")
    monkeypatch.chdir(tmp_path)
    return tmp_path


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


@pytest.fixture(scope="session")
def default_pipeline(tmp_path_factory) -> Path:
    """The default pipeline (params.yaml and sources.yaml as committed) run once through release and export in a
    clean copy: what `make repro` builds, for the tests of the stages at the end of the loop. About three
    minutes on 2 cores."""
    repo = copy_repo(tmp_path_factory.mktemp("default-pipeline"))
    run(["dvc", "repro", "release", "export"], repo)
    return repo
