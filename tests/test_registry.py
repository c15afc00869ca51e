"""The model registry (GTO tags) in a throw-away git + DVC project: register, the release gate on promotion,
forced promotion, rollback, resolving a stage to a model folder, and the one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.cli import main as dvc_main
from gto import api as gto_api

from langfoundry.core.errors import UserError
from langfoundry.release import registry

GIT_ENV = {"GIT_AUTHOR_NAME": "registry test", "GIT_AUTHOR_EMAIL": "registry@localhost",
           "GIT_COMMITTER_NAME": "registry test", "GIT_COMMITTER_EMAIL": "registry@localhost"}

# The export stage in miniature: each model folder's config.json says which seed it was built from.
MAKE_MODELS = """import pathlib
seed = pathlib.Path("seed.txt").read_text().strip()
for name in ("merged", "adapter", "gguf"):
    folder = pathlib.Path("models", name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"seed": "%s", "part": "%s"}' % (seed, name))
"""
DVC_YAML = """stages:
  export:
    cmd: {python} make_models.py
    deps: [make_models.py, seed.txt]
    outs: [models/merged, models/adapter, models/gguf]
artifacts:
  merged: {path: models/merged, type: model}
  adapter: {path: models/adapter, type: model}
  gguf: {path: models/gguf, type: model}
"""


def release(decision: str, gain: float) -> dict:
    """metrics/release.json (contract 1) with one measured criterion and a pending human preference."""
    gain_status = "pass" if gain >= 0.2 else "fail"
    return {"decision": decision, "candidate": "adapter", "reference": "base",
            "criteria": [{"name": "relative_gain", "metric": "chrf", "threshold": 0.2, "value": gain,
                          "status": gain_status, "detail": f"{gain:+.1%} (needs +20%)"},
                         {"name": "human_preference", "metric": "win_rate", "threshold": 0.7, "value": None,
                          "status": "pending", "detail": "3 of 30 judgments"}],
            "failed": ["relative_gain"] if gain_status == "fail" else []}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode:
        raise AssertionError(f"{cmd} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(repo: Path, *args: str) -> None:
    """DVC's command line in this process (no second interpreter to start), run from inside the test project."""
    with contextlib.chdir(repo):
        assert dvc_main(list(args)) == 0, f"dvc {' '.join(args)} failed in {repo}"


def commit_export(repo: Path, seed: str, decision: dict) -> str:
    (repo / "seed.txt").write_text(seed + "\n")
    (repo / "metrics" / "release.json").write_text(json.dumps(decision))
    (repo / "metrics" / "train.json").write_text(json.dumps({"data_version.clean_rows": len(seed) * 100,
                                                             "data_version.clean_sha256": seed * 16}))
    dvc(repo, "repro", "-q")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", f"export {seed}"], repo)
    return run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """A project with two committed exports: `first` passed its release gate, `second` (HEAD) failed it."""
    repo = tmp_path_factory.mktemp("registry") / "project"
    (repo / "metrics").mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main"], repo)
    dvc(repo, "init", "-q")
    (repo / "make_models.py").write_text(MAKE_MODELS)
    (repo / "dvc.yaml").write_text(DVC_YAML.replace("{python}", sys.executable))
    first = commit_export(repo, "one", release("pass", 0.31))
    second = commit_export(repo, "two", release("fail", 0.063))
    return repo, first, second


@pytest.fixture
def project(built, tmp_path, monkeypatch) -> tuple[Path, str, str]:
    """A fresh copy of the built project (its own tags), with a fixed git identity for the tags."""
    repo, first, second = built
    copy = tmp_path / "project"
    shutil.copytree(repo, copy, symlinks=True)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return copy, first, second


def register_both(repo: Path) -> tuple[str, str]:
    """v0.0.1 at the first export (checked out for the moment), v0.0.2 at HEAD."""
    run(["git", "checkout", "-q", "HEAD~1"], repo)
    first = registry.register(repo)
    run(["git", "checkout", "-q", "main"], repo)
    return first, registry.register(repo)


def tag_message(repo: Path, tag: str) -> str:
    return run(["git", "tag", "-l", "--format=%(contents)", tag], repo).stdout


def tags(repo: Path) -> list[str]:
    return run(["git", "tag", "-l"], repo).stdout.split()


def test_register_promote_gate_force_resolve_rollback(project, capsys):
    repo, first, second = project
    assert register_both(repo) == ("v0.0.1", "v0.0.2")
    assert {f"{name}@v0.0.{n}" for name in registry.ARTIFACTS for n in (1, 2)} <= set(tags(repo))
    message = tag_message(repo, "merged@v0.0.2")
    assert "release gate: fail" in message and "relative_gain 0.063" in message
    assert "clean_rows=300" in message and "clean_sha256=twotwotwotwo" in message
    assert "release gate: pass" in tag_message(repo, "adapter@v0.0.1")

    registry.promote("prod", repo, version="v0.0.1")
    before = tags(repo)
    refusal = r"v0.0.2 failed its release gate: relative_gain 0.063 \(threshold 0.2\); pending: human_preference; to promote"
    with pytest.raises(UserError, match=refusal):
        registry.promote("staging", repo)  # the latest, v0.0.2
    assert tags(repo) == before  # a refusal leaves no tag behind

    registry.promote("staging", repo, force=True)
    staging_tag = next(t for t in tags(repo) if t.startswith("merged#staging#"))
    assert "forced: release gate failed: relative_gain 0.063" in tag_message(repo, staging_tag)

    prod, staging = registry.resolve("prod", repo), registry.resolve("staging", repo)
    assert (prod.version, prod.commit, staging.version, staging.commit) == ("v0.0.1", first, "v0.0.2", second)
    assert staging.path == repo / "models" / "merged"  # the working tree holds v0.0.2's export
    assert prod.path == repo / "models" / ".registry" / "v0.0.1"  # v0.0.1 comes out of the DVC cache
    assert json.loads((prod.path / "config.json").read_text()) == {"seed": "one", "part": "merged"}

    registry.promote("prod", repo, version="v0.0.2", force=True)
    for name in registry.ARTIFACTS:  # promotion moved prod: one version holds it, whatever GTO's ordering
        in_prod = gto_api.find_versions_in_stage(str(repo), name, "prod", versions_per_stage=-1)
        assert [vstage.version for vstage in in_prod] == ["v0.0.2"]

    capsys.readouterr()
    assert registry.rollback("prod", repo) == dict.fromkeys(registry.ARTIFACTS, "v0.0.1")
    assert "merged prod moved from v0.0.2 back to v0.0.1" in capsys.readouterr().out
    assert registry.resolve("prod", repo).version == "v0.0.1"
    from dvc.api import artifacts_show  # DVC reads the same tags: its newest prod tag is the rollback's
    assert artifacts_show("merged", stage="prod", repo=str(repo))["rev"] == first
    with pytest.raises(UserError, match="merged has no earlier version in prod to roll back to"):
        registry.rollback("prod", repo)

    table = registry.show(repo).splitlines()
    assert table[0].split()[:2] == ["artifact", "version"]
    merged_rows = {line.split()[1]: line.split() for line in table if line.startswith("merged ")}
    assert merged_rows["v0.0.1"][-2:] == ["pass", "prod"] and merged_rows["v0.0.2"][-2:] == ["fail", "staging"]


def test_each_rollback_goes_one_version_further_back(project):
    repo, _, _ = project
    register_both(repo)
    run(["git", "commit", "-q", "--allow-empty", "-m", "same export, new commit"], repo)
    assert registry.register(repo, ["merged"], bump="minor") == "v0.1.0"
    for version in ("v0.0.1", "v0.0.2", "v0.1.0"):
        registry.promote("prod", repo, version=version, force=True, artifacts=["merged"])
    assert registry.rollback("prod", repo, ["merged"]) == {"merged": "v0.0.2"}
    assert registry.rollback("prod", repo, ["merged"]) == {"merged": "v0.0.1"}  # not back to v0.1.0
    registry.promote("prod", repo, version="v0.1.0", force=True, artifacts=["merged"])
    assert registry.rollback("prod", repo, ["merged"]) == {"merged": "v0.0.1"}


def test_register_refuses_uncommitted_lock_and_a_second_registration(project):
    repo, _, _ = project
    lock = repo / "dvc.lock"
    committed = lock.read_text()
    merged_hash = committed.split("path: models/merged\n")[1].split("md5: ")[1].split("\n")[0]
    lock.write_text(committed.replace(merged_hash, "0" * 32 + ".dir"))
    with pytest.raises(UserError, match=r"dvc.lock has uncommitted changes to models/merged \(merged\); commit them"):
        registry.register(repo)
    assert tags(repo) == []
    lock.write_text(committed)
    registry.register(repo, ["merged"])
    with pytest.raises(UserError, match=r"merged is already registered at HEAD \(\w{7}\) as v0.0.1"):
        registry.register(repo)
    assert registry.register(repo, ["adapter", "gguf"]) == "v0.0.2"  # one number per release, across artifacts


def test_resolve_errors_and_folders(project):
    repo, _, _ = project
    with pytest.raises(UserError, match=r"no version of merged is in stage 'prod'; promote one first: make promote STAGE=prod"):
        registry.resolve("prod", repo)
    with pytest.raises(UserError, match="model folder models/nowhere does not exist"):
        registry.resolve("models/nowhere", repo)
    folder = registry.resolve("models/merged", repo)
    assert (folder.path, folder.commit) == (repo / "models" / "merged", None)
    assert folder.version.startswith("merged-")
    (repo / "models" / "merged" / "config.json").write_text('{"seed": "edited"}')
    assert registry.resolve(str(repo / "models" / "merged")).version != folder.version  # the hash follows the config


def test_materialising_without_the_cache_says_how_to_fetch(project):
    repo, _, _ = project
    register_both(repo)
    registry.promote("prod", repo, version="v0.0.1")
    shutil.rmtree(repo / ".dvc" / "cache")
    with pytest.raises(UserError, match=r"merged v0.0.1 \(commit \w{7}\) could not be read from the DVC cache .*dvc fetch -"):
        registry.resolve("prod", repo)
    assert not list((repo / "models").glob(".registry/*"))  # nothing half-copied is left to be reused


def test_a_commit_without_a_release_decision_is_promoted_only_by_force(project):
    repo, _, _ = project
    run(["git", "rm", "-q", "metrics/release.json"], repo)
    run(["git", "commit", "-q", "-m", "no release stage run"], repo)
    registry.register(repo, ["merged"])
    assert "release gate: missing (no release decision" in tag_message(repo, "merged@v0.0.1")
    with pytest.raises(UserError, match=r"v0.0.1 has no release decision \(metrics/release.json is not in commit \w{7}\)"):
        registry.promote("staging", repo, artifacts=["merged"])
    registry.promote("staging", repo, force=True, artifacts=["merged"])
    assert "forced: no release decision" in tag_message(repo, "merged#staging#1")


def test_cli_refuses_a_failed_gate_in_one_line(project):
    repo, _, _ = project
    registry.register(repo)
    result = run([sys.executable, "-m", "langfoundry.release.registry", "--root", str(repo), "promote", "--stage", "prod"],
                 repo, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: v0.0.1 failed its release gate: ")
    assert "make promote STAGE=prod VERSION=v0.0.1 FORCE=1" in result.stderr
    rows = [line.split()[:2] for line in registry.show(repo).splitlines()[1:]]
    assert rows == [[name, "v0.0.1"] for name in registry.ARTIFACTS]
