"""The whole loop: `langfoundry serve` answers, users send corrections, `make cycle` reads them from the serving
database, retrains because enough corrections arrived, and the corrections are in the training data."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from repo_copy import VENV_BIN, clone_built, env, override_params, run

CORRECTIONS = {"omah": "rumah", "banyu": "air", "sega": "nasi", "wong": "orang", "dalan": "jalan", "kali": "sungai"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(repo: Path, database: str, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "langfoundry.cli.main", "serve", "--champion", "models/merged",
               "--mode", "champion_only", "--database", database, "--port", str(port)]
    process = subprocess.Popen(command, cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server stopped: {process.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("the server did not answer within 120 s")


def make_cycle(repo: Path) -> subprocess.CompletedProcess:
    stamp = repo / ".venv-stamp"
    stamp.touch()
    later = time.time() + 60
    os.utime(stamp, (later, later))  # newer than pyproject.toml: make installs nothing
    return subprocess.run(["make", "--no-print-directory", "cycle", f"BIN={VENV_BIN}", f"STAMP={stamp}"],
                          cwd=repo, env=env(), capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_corrections_from_users_reach_the_training_data_through_make_cycle(tiny_pipeline: Path, tmp_path: Path) -> None:
    repo = clone_built(tiny_pipeline, tmp_path / "repo")
    database = f"sqlite:///{repo / 'data/serve/langfoundry.db'}"
    sources = yaml.safe_load((repo / "sources.yaml").read_text(encoding="utf-8"))
    [feedback] = [source for source in sources["sources"] if source["kind"] == "feedback"]
    feedback["planned"] = False
    (repo / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False, allow_unicode=True), encoding="utf-8")
    override_params(repo, {"retrain.min_corrections": len(CORRECTIONS)})
    run(["git", "commit", "-qam", "read the users' corrections"], repo)

    port = free_port()
    server = start_server(repo, database, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=60) as client:
            for number, (word, meaning) in enumerate(CORRECTIONS.items()):
                asked = client.post("/chat/completions", json={
                    "messages": [{"role": "user", "content": f"Apa arti kata Banyumasan \"{word}\" dalam bahasa Indonesia?"}],
                    "max_tokens": 8, "user": f"user-{number}"})
                assert asked.status_code == 200, asked.text
                rated = client.post("/feedback", json={"response_id": asked.json()["id"], "rating": 2, "correction": meaning},
                                    headers={"X-User-Id": f"user-{number}"})
                assert rated.status_code == 200, rated.text
            low = client.post("/chat/completions", json={"messages": [{"role": "user", "content": "Apa arti kata \"alas\"?"}],
                                                         "max_tokens": 8, "user": "user-x"})
            assert client.post("/feedback", json={"response_id": low.json()["id"], "rating": 1},
                               headers={"X-User-Id": "user-x"}).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)

    cycle = make_cycle(repo)
    assert cycle.returncode == 0, cycle.stdout[-3000:] + cycle.stderr[-3000:]
    assert f"{len(CORRECTIONS)} new corrections from users" in cycle.stdout
    retrain = json.loads((repo / "metrics/retrain.json").read_text(encoding="utf-8"))
    assert retrain["verdict"] == "none", "after the cycle's training the adapter has seen every correction"
    trained = json.loads((repo / "metrics/train.json").read_text(encoding="utf-8"))
    assert trained["data_version.feedback_rows"] == len(CORRECTIONS)

    examples = [json.loads(line) for split in ("train", "val", "test")
                for line in (repo / f"data/processed/{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    answers = {example["messages"][-1]["content"] for example in examples if example["task"] == "conversation"}
    assert answers == set(CORRECTIONS.values()), "every correction, and nothing else, became a conversation example"
    queue = [json.loads(line) for line in (repo / "reports/review_queue.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [item["rating"] for item in queue] == [1] and "alas" in queue[0]["messages"][-1]["content"]
