"""Fixtures shared by test modules."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock
from repo_copy import FAST_PARAMS, copy_repo, override_params, run

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with slow tests first. `make test` runs a module per pytest-xdist worker (--dist loadfile
    --no-loadscope-reorder, so its module fixtures are built once), in this order: the long modules start at once
    and the short ones fill in at the end, rather than a long one starting last while the other workers idle."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: modules and tests keep their order otherwise


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder that build(folder) fills, made once for the whole test run: under pytest-xdist by the first worker
    that asks (the others wait for it and share it), else here."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / name  # the parent of every worker's own temporary folder
    built = folder.with_name(f"{name}.built")  # beside it: a file in it would be one more in its git status
    with FileLock(folder.with_name(f"{name}.lock")):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


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
    def build(repo: Path) -> None:
        copy_repo(repo)
        override_params(repo, FAST_PARAMS)
        run(["dvc", "repro"], repo)
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", "tiny pipeline and its outputs"], repo)

    return _built_once(tmp_path_factory, "tiny-pipeline", build)


@pytest.fixture(scope="session")
def default_pipeline(tmp_path_factory) -> Path:
    """The default pipeline (params.yaml and sources.yaml as committed) run once through release and export in a
    clean copy: what `make repro` builds, for the tests of the stages at the end of the loop. About three
    minutes on 2 cores."""
    def build(repo: Path) -> None:
        copy_repo(repo)
        run(["dvc", "repro", "release", "export"], repo)

    return _built_once(tmp_path_factory, "default-pipeline", build)
