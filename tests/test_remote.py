"""DVC remotes: push the outputs, pull them into a fresh clone, find it clean and with nothing to rerun.

A local-directory remote on a small pipeline, and an S3 remote (moto's S3-compatible server on 127.0.0.1,
reached through dvc-s3's endpointurl with credentials in DVC's local config) on the whole tiny pipeline.
"""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import yaml
from repo_copy import clone_built, run

from langfoundry.reports.reproducibility import declared_outputs


def cached_outputs(repo: Path) -> list[str]:
    """Paths of the outputs DVC keeps in its cache (cache: false ones live in git)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))
    paths = []
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            paths.append(out["path"])
    uncached = {out.path for out in declared_outputs(repo) if not out.cached}  # ${paths.*} resolved by DVC
    return sorted(set(paths) - uncached)


def digests(repo: Path, paths: list[str]) -> dict[str, str]:
    out = {}
    for name in paths:
        root = repo / name
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                out[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def push_clone_pull(repo: Path, clone: Path, local_settings: list[list[str]]) -> None:
    """Push from repo; git clone it; apply the same local (uncommitted) remote settings; pull into the clone."""
    run(["dvc", "push"], repo)
    run(["git", "clone", "-q", str(repo), str(clone)], repo.parent)
    for setting in local_settings:
        run(["dvc", "remote", "modify", "--local", *setting], clone)
    assert not any((clone / path).exists() for path in cached_outputs(repo)), "a fresh clone has no outputs"
    run(["dvc", "pull"], clone)


def assert_clone_matches(repo: Path, clone: Path) -> None:
    outputs = cached_outputs(repo)
    assert outputs
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout) == {}
    assert digests(clone, outputs) == digests(repo, outputs)
    again = run(["dvc", "repro", "--pull"], clone)
    assert "Running stage" not in again.stdout, again.stdout
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout) == {}


def small_pipeline(repo: Path) -> None:
    """A git+DVC repository with two stages whose outputs are a file and a directory."""
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    (repo / "words.txt").write_text("abot\nabrit\nabuh\n", encoding="utf-8")
    (repo / "params.yaml").write_text("repeat: 3\n", encoding="utf-8")
    stages = {"stages": {
        "expand": {"cmd": "python -c \"import yaml; n = yaml.safe_load(open('params.yaml'))['repeat']; "
                          "open('expanded.txt', 'w').write(open('words.txt').read() * n)\"",
                   "deps": ["words.txt"], "params": ["repeat"], "outs": ["expanded.txt"]},
        "split": {"cmd": "mkdir -p parts && split -l 3 expanded.txt parts/part-",
                  "deps": ["expanded.txt"], "outs": ["parts"]},
    }}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stages), encoding="utf-8")
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "pipeline"], repo)


def test_local_directory_remote_round_trip(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    small_pipeline(repo)
    storage = tmp_path / "storage"
    run(["dvc", "remote", "add", "--default", "storage", str(storage)], repo)
    run(["git", "commit", "-qam", "remote"], repo)
    push_clone_pull(repo, tmp_path / "clone", [])
    assert any(storage.rglob("*")), "the remote holds the pushed files"
    assert_clone_matches(repo, tmp_path / "clone")


# --- S3 ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """An S3-compatible server on 127.0.0.1 with one empty bucket; yields (endpoint url, bucket)."""
    import boto3
    from moto.server import ThreadedMotoServer

    # credentials come from DVC's local config only: nothing from the environment or ~/.aws
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test-key",
                     aws_secret_access_key="test-secret").create_bucket(Bucket="langfoundry")
        yield endpoint, "langfoundry"
    finally:
        server.stop()


@pytest.mark.slow
def test_s3_remote_round_trip_of_the_pipeline(tiny_pipeline: Path, tmp_path: Path, s3_server) -> None:
    import boto3

    endpoint, bucket = s3_server
    repo = clone_built(tiny_pipeline, tmp_path / "repo")
    # the remote and its endpoint are shared in git; the credentials stay in .dvc/config.local
    run(["dvc", "remote", "add", "--default", "storage", f"s3://{bucket}/cache"], repo)
    run(["dvc", "remote", "modify", "storage", "endpointurl", endpoint], repo)
    run(["dvc", "remote", "modify", "storage", "region", "us-east-1"], repo)
    credentials = [["storage", "access_key_id", "test-key"], ["storage", "secret_access_key", "test-secret"]]
    for setting in credentials:
        run(["dvc", "remote", "modify", "--local", *setting], repo)
    run(["git", "add", ".dvc/config"], repo)
    run(["git", "commit", "-qm", "S3 remote"], repo)
    assert "test-secret" not in run(["git", "show", "HEAD"], repo).stdout, "credentials never reach git"

    push_clone_pull(repo, tmp_path / "clone", credentials)
    listed = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test-key",
                          aws_secret_access_key="test-secret").list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) > 0, "the outputs are in the bucket"
    assert_clone_matches(repo, tmp_path / "clone")
