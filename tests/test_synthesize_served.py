"""The synthesize stage against the real `langfoundry serve` (the command, in its own process, on a free port
of 127.0.0.1) serving tiny scratch models in A/B mode: every request answered, the answers cached, the served
version recorded as each variation's model, every request in the server's database, and the tiny model's
noise parsed or dropped with a reason. tests/test_synthesize.py covers the stage against a stand-in server."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select
from test_synthesize import make_project, run_stage, written
from tiny_models import build_tiny_base, subprocess_env, write_examples

from langfoundry.core.errors import UserError
from langfoundry.core.synth_config import SynthesizeParams
from langfoundry.data.synth_client import SynthClient
from langfoundry.serve.store import DATABASE_ENV, Store, responses

# a fresh interpreter imports torch, transformers and FastAPI for the server: 10-25 s on 2 cores
pytestmark = pytest.mark.slow

MAX_TOKENS = 48  # under serve.max_new_tokens (128 by default), so the server takes it
SENT_FIELDS = {"model", "temperature", "seed", "max_tokens", "messages"}
ACCESS_LINE = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')
SEEDS, REGISTERS = 5, 3  # test_synthesize's project: 3 instructions and 2 dictionary entries; formal, business, casual


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    database: str
    log: Path  # the server's stdout and stderr
    project: Path  # its params.yaml is the server's too
    versions: dict[str, str]  # role -> served version, as /health reports them

    def access_statuses(self) -> Counter:
        """HTTP status -> chat completions the server's access log shows."""
        return Counter(int(status) for status in ACCESS_LINE.findall(self.log.read_text(encoding="utf-8")))

    def logged_rows(self) -> list[dict]:
        store = Store(self.database)
        try:
            with store.engine.connect() as connection:
                return [dict(row) for row in connection.execute(select(responses).order_by(responses.c.created_at)).mappings()]
        finally:
            store.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command() -> list[str]:
    """The installed `langfoundry` console script, else the same entry point through this interpreter."""
    script = shutil.which("langfoundry", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "import sys; from langfoundry.cli.main import main; "
                                                           "sys.exit(main())"]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("synthesize-served")
    train, _ = write_examples(root)
    for seed, role in ((13, "champion"), (14, "challenger")):
        build_tiny_base(root / role, train, seed=seed, steps=2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    project = make_project(root / "project", f"{url}/v1", variations=3, max_tokens=MAX_TOKENS, timeout_s=60.0)
    database = f"sqlite:///{root / 'serve.db'}"
    log = root / "serve.log"
    # params.yaml's serve section as a user leaves it (mode ab, max_new_tokens 128); the models are folders
    command = [*serve_command(), "serve", "--params", "params.yaml", "--host", "127.0.0.1", "--port", str(port),
               "--champion", str(root / "champion"), "--challenger", str(root / "challenger"), "--database", database]
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(command, cwd=project, env=subprocess_env(**{DATABASE_ENV: ""}),
                                   stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, f"the server did not come up:\n{log.read_text(encoding='utf-8')}"
            try:
                health = httpx.get(f"{url}/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield Served(url, database, log, project, health.json()["models"])
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text(encoding="utf-8")
    assert "Traceback" not in log.read_text(encoding="utf-8")


def outputs(project: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((project / "data/interim/media/synthesize").iterdir())}


def cached(project: Path) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted((project / "data/synthetic_cache").glob("*.json"))]


def test_synthesize_against_langfoundry_serve_answers_caches_and_records_the_served_version(served, monkeypatch):
    champion = served.versions["champion"]
    assert set(served.versions) == {"champion", "challenger"}  # mode ab, as params.yaml leaves it
    listed = httpx.get(f"{served.url}/v1/models", timeout=10).json()["data"]
    assert {entry["id"] for entry in listed} == set(served.versions.values())
    rows_before, access_before = len(served.logged_rows()), served.access_statuses()
    requests = SEEDS * REGISTERS

    metrics = run_stage(served.project, monkeypatch)  # a 4xx would raise UserError here

    # every request answered with a 200; none refused for a field synthesize sends
    assert served.access_statuses() - access_before == Counter({200: requests})
    assert (metrics["seeds"], metrics["requests"], metrics["requested"]) == (SEEDS, requests, requests * 3)
    assert metrics["cache"] == {"hits": 0, "misses": requests}
    answers = cached(served.project)
    assert len(answers) == requests
    for answer in answers:
        assert set(answer["request"]) == SENT_FIELDS
        assert answer["request"]["model"] == "auto" and answer["request"]["max_tokens"] == MAX_TOKENS
        assert answer["response"]["model"] == champion  # no user id: A/B sends the request to the champion

    # the tiny model's noise: each answer parsed or counted unparseable, each parsed item kept or dropped by reason
    dropped = metrics["dropped"]
    assert dropped["unparseable"] <= requests
    assert metrics["returned"] == metrics["kept"] + sum(count for reason, count in dropped.items() if reason != "unparseable")
    assert metrics["kept"] == metrics["review"]["pending"]
    lines = written(served.project)
    assert len(lines) == metrics["kept"]
    for line in lines:
        assert line["meta"]["model"] == champion and f"model {champion} #" in line["origin"]
        assert line["variation_text"] and line["variation_text"] != line["seed_text"]
    print(f"served synthesis: {requests} requests, {metrics['returned']} variations returned, {metrics['kept']} kept, "
          f"dropped {dropped}")

    # the server logged each request: the prompt synthesize sent, the answer it cached, the champion's version
    rows = served.logged_rows()[rows_before:]
    assert len(rows) == requests
    assert all((row["model_version"], row["role"], row["shadow"], row["user_id"]) == (champion, "champion", False, None)
               for row in rows)
    assert sorted(json.loads(row["prompt"])[-1]["content"] for row in rows) == \
        sorted(answer["request"]["messages"][-1]["content"] for answer in answers)
    assert sorted(row["answer"] for row in rows) == sorted(answer["response"]["content"] for answer in answers)

    # a rerun asks nothing and writes the same bytes
    first = outputs(served.project)
    metrics = run_stage(served.project, monkeypatch)
    assert metrics["cache"] == {"hits": requests, "misses": 0}
    assert outputs(served.project) == first
    assert served.access_statuses() - access_before == Counter({200: requests})
    assert len(served.logged_rows()) == rows_before + requests


def test_a_served_version_named_as_the_model_is_answered_by_it(served, tmp_path, monkeypatch):
    challenger = served.versions["challenger"]
    project = make_project(tmp_path, f"{served.url}/v1", sources=["tiny-dict"], registers=["casual"], variations=2,
                           max_tokens=MAX_TOKENS, model=challenger, timeout_s=60.0)
    rows_before = len(served.logged_rows())
    metrics = run_stage(project, monkeypatch)
    assert metrics["cache"] == {"hits": 0, "misses": 2}
    assert {answer["response"]["model"] for answer in cached(project)} == {challenger}
    assert all(line["meta"]["model"] == challenger for line in written(project))
    rows = served.logged_rows()[rows_before:]
    assert [(row["model_version"], row["role"]) for row in rows] == [(challenger, "challenger")] * 2


def test_max_tokens_over_the_servers_cap_stops_with_one_line_and_caches_nothing(served, tmp_path, monkeypatch):
    cap = yaml.safe_load((served.project / "params.yaml").read_text(encoding="utf-8"))["serve"]["max_new_tokens"]
    project = make_project(tmp_path, f"{served.url}/v1", sources=["tiny-dict"], max_tokens=cap + 1, timeout_s=60.0)
    access_before, rows_before = served.access_statuses(), len(served.logged_rows())
    with pytest.raises(UserError) as caught:
        run_stage(project, monkeypatch)
    message = str(caught.value)
    assert "\n" not in message and "HTTP 400" in message
    assert f"max_tokens {cap + 1} is over this server's limit of {cap}" in message
    assert message.endswith("check synthesize.max_tokens")  # the setting to change, named
    assert served.access_statuses() - access_before == Counter({400: 1})  # refused at once, not retried
    assert cached(project) == [] and len(served.logged_rows()) == rows_before


def test_the_default_settings_are_taken_by_the_default_server(served, tmp_path):
    # synthesize's defaults point at langfoundry serve: its default request must fit serve's default cap
    settings = SynthesizeParams(endpoint=f"{served.url}/v1", timeout_s=60.0, retries=0)
    client = SynthClient(settings, tmp_path / "cache")
    try:
        answer = client.ask("Tulis ulang kalimat ini dengan bahasa resmi: Saya mau cek saldo.")
    finally:
        client.close()
    assert answer.model == served.versions["champion"] and client.misses == 1
    request = json.loads(next((tmp_path / "cache").glob("*.json")).read_text(encoding="utf-8"))["request"]
    assert request["max_tokens"] == SynthesizeParams().max_tokens
