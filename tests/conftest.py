"""Fixtures shared by test modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from repo_copy import FAST_PARAMS, copy_repo, override_params, run

REPO = Path(__file__).resolve().parents[1]
SHARED_RUNS = ("tiny_pipeline", "default_pipeline")  # session fixtures that run the pipeline (minutes each)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Work units for pytest-xdist (`make test` runs a worker per core: `-n $(nproc) --dist loadgroup --no-loadscope-reorder`).

    A module is one unit, so its module fixtures (an example's walkthrough, a pipeline run) are built on one
    worker only; modules that use the same shared pipeline run (SHARED_RUNS) are one unit, so that it runs once.
    Units with slow tests go first: the long ones start at once and the short ones fill in at the end,
    rather than one long unit starting last while the other workers idle.
    """
    unit_of: dict[str, str] = {}  # module -> the module naming its unit (a small union-find)

    def root(module: str) -> str:
        while unit_of.setdefault(module, module) != module:
            module = unit_of[module]
        return module

    owner: dict[str, str] = {}  # shared fixture -> a module using it
    for item in items:
        module = item.nodeid.split("::")[0]
        for fixture in SHARED_RUNS:
            if fixture in getattr(item, "fixturenames", ()):
                unit_of[root(module)] = root(owner.setdefault(fixture, module))
    slow_units = {root(item.nodeid.split("::")[0]) for item in items if item.get_closest_marker("slow")}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(root(item.nodeid.split("::")[0])))
    items.sort(key=lambda item: root(item.nodeid.split("::")[0]) not in slow_units)  # stable: files keep their order


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
