"""langfoundry serve: the OpenAI-compatible API against real servers on 127.0.0.1, tiny models, SQLite logs."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from local_server import serving
from tiny_models import build_tiny_base, subprocess_env, write_examples

from langfoundry.core.config import Params, ServeParams
from langfoundry.core.errors import UserError
from langfoundry.serve.app import ServeSettings, create_app
from langfoundry.serve.cli import plan
from langfoundry.serve.generation import Generation, ResolvedModel, ServedModel, folder_version, resolve_model
from langfoundry.serve.routing import user_bucket
from langfoundry.serve.store import DATABASE_ENV, Store

REPO = Path(__file__).resolve().parents[1]
SALT = "13"
CAP = 32  # serve.max_new_tokens of the test servers
BODY_LIMIT = 100_000
PROMPT = "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\ninyong"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny scratch models of different weights: champion/ and challenger/."""
    root = tmp_path_factory.mktemp("serve-models")
    train, _ = write_examples(root)
    build_tiny_base(root / "champion", train, steps=2)
    build_tiny_base(root / "challenger", train, seed=14, steps=2)
    return {role: root / role for role in ("champion", "challenger")}


@pytest.fixture(scope="module")
def models(model_dirs) -> dict[str, ServedModel]:
    return {role: ServedModel.load(ResolvedModel(folder_version(path), path), f"serve.{role}")
            for role, path in model_dirs.items()}


@dataclass
class Running:
    url: str
    store: Store
    app: object

    def post(self, path: str, body=None, **options) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=60, **options)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0)

    def wait_for_shadow(self, done: int) -> None:
        deadline = time.monotonic() + 60
        while (shadow := httpx.get(self.url + "/health").json()["shadow"])["pending"] or shadow["done"] < done:
            assert time.monotonic() < deadline, shadow
            time.sleep(0.05)


def settings(mode: str = "ab", **overrides) -> ServeSettings:
    return ServeSettings(**{"mode": mode, "challenger_share": 0.5, "salt": SALT, "max_new_tokens": CAP,
                            "max_body_bytes": BODY_LIMIT, **overrides})


@pytest.fixture
def start(models, tmp_path) -> Iterator[Callable[..., Running]]:
    """start(mode, served=models, **settings): a server of its own, logging into its own SQLite file."""
    with ExitStack() as stack:
        def start_server(mode: str = "ab", served: dict | None = None, **overrides) -> Running:
            store = Store(f"sqlite:///{tmp_path / f'serve-{len(stack._exit_callbacks)}.db'}")
            stack.callback(store.close)
            app = create_app(served or models, store, settings(mode, **overrides))
            return Running(stack.enter_context(serving(app)), store, app)

        yield start_server


@pytest.fixture(scope="module")
def server(models, tmp_path_factory) -> Iterator[Running]:
    """One A/B server (half the users to the challenger) shared by the tests that only send requests."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('serve-db') / 'serve.db'}")
    app = create_app(models, store, settings("ab"))
    with serving(app) as url:
        yield Running(url, store, app)
    store.close()


def users_of(role: str, count: int) -> list[str]:
    """User ids the A/B hash (share 0.5) sends to role."""
    wanted = (lambda bucket: bucket < 0.5) if role == "challenger" else (lambda bucket: bucket >= 0.5)
    return [user for user in (f"user-{index}" for index in range(1000)) if wanted(user_bucket(user, SALT))][:count]


def chat(content: str = PROMPT, **extra) -> dict:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 8, **extra}


# --- the OpenAI client ---------------------------------------------------------------------------------------


def test_openai_client_gets_an_answer_logged_with_its_model_version(server, models) -> None:
    completion = server.openai().chat.completions.create(
        model="champion", messages=[{"role": "developer", "content": "Jawab singkat."}, {"role": "user", "content": PROMPT}],
        max_tokens=8, temperature=0, user="alice")
    assert completion.id.startswith("resp-") and len(completion.id) == len("resp-") + 24
    assert completion.model == models["champion"].version
    assert completion.choices[0].message.role == "assistant"
    assert isinstance(completion.choices[0].message.content, str)
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 1 <= completion.usage.completion_tokens <= 8
    row = server.store.response(completion.id, "alice")
    assert row["model_version"] == models["champion"].version and row["role"] == "champion" and not row["shadow"]
    assert row["answer"] == completion.choices[0].message.content
    # logged as the model read it: OpenAI's "developer" role is the template's "system"
    assert row["prompt"] == [{"role": "system", "content": "Jawab singkat."}, {"role": "user", "content": PROMPT}]
    assert row["prompt_tokens"] == completion.usage.prompt_tokens == len(models["champion"].encode(row["prompt"]))
    assert row["latency_ms"] > 0


def test_greedy_answers_repeat_and_a_stop_sequence_cuts_the_answer(server) -> None:
    client = server.openai()
    answers = [client.chat.completions.create(model="champion", messages=[{"role": "user", "content": PROMPT}],
                                              max_tokens=12, temperature=0).choices[0].message.content for _ in range(2)]
    assert answers[0] == answers[1]
    if len(answers[0]) > 1:
        stop = answers[0][1]
        cut = client.chat.completions.create(model="champion", messages=[{"role": "user", "content": PROMPT}],
                                             max_tokens=12, temperature=0, stop=[stop])
        assert cut.choices[0].message.content == answers[0].split(stop)[0].strip()
        assert cut.choices[0].finish_reason == "stop"


def test_openai_client_lists_the_served_versions(server, models) -> None:
    listed = server.openai().models.list()
    assert {model.id for model in listed.data} == {models["champion"].version, models["challenger"].version}


def test_openai_client_sees_an_unknown_model_as_not_found(server) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        server.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    assert "gpt-4o" in str(raised.value)


def test_a_served_version_can_be_asked_for_by_name(server, models) -> None:
    version = models["challenger"].version
    completion = server.openai().chat.completions.create(model=version, messages=[{"role": "user", "content": PROMPT}],
                                                         max_tokens=4, user=users_of("champion", 1)[0])
    assert completion.model == version


# --- A/B and shadow routing ----------------------------------------------------------------------------------


def test_ab_sends_each_user_to_the_same_model_every_time(server, models) -> None:
    client = server.openai()
    for role in ("champion", "challenger"):
        for user in users_of(role, 3):
            by_body = [server.post("/v1/chat/completions", chat(user=user)).json()["model"] for _ in range(2)]
            by_header = server.post("/v1/chat/completions", chat(), headers={"X-User-Id": user}).json()["model"]
            by_client = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}],
                                                       max_tokens=4, user=user).model
            assert by_body + [by_header, by_client] == [models[role].version] * 4, (role, user)


def test_ab_sends_a_request_without_a_user_to_the_champion(server, models) -> None:
    assert {server.post("/v1/chat/completions", chat()).json()["model"] for _ in range(3)} == {models["champion"].version}


def test_shadow_mode_returns_the_champion_answer_and_logs_the_challenger_copy(start, models) -> None:
    running = start("shadow")
    users = users_of("challenger", 2)  # the A/B hash would send them to the challenger: shadow mode does not
    answers = [running.post("/v1/chat/completions", chat(user=user)).json() for user in users]
    running.wait_for_shadow(done=2)
    for answer, user in zip(answers, users):
        assert answer["model"] == models["champion"].version
        logged = running.store.responses_for_request(running.store.response(answer["id"], user)["request_id"])
        assert [(row["role"], row["model_version"], row["shadow"]) for row in logged] == [
            ("champion", models["champion"].version, False), ("challenger", models["challenger"].version, True)]
        assert logged[0]["answer"] == answer["choices"][0]["message"]["content"]
        assert logged[1]["prompt"] == logged[0]["prompt"] and logged[1]["user_id"] == user
        # a shadow answer is never shown, not even to the user whose request it copied
        shadow_id = logged[1]["id"]
        assert httpx.get(f"{running.url}/v1/responses/{shadow_id}", headers={"X-User-Id": user}).status_code == 404
    assert running.store.count_responses(shadow=True) == running.store.count_responses(shadow=False) == 2


# --- feedback and a user's own answers -----------------------------------------------------------------------


def test_feedback_from_the_user_who_received_the_answer_is_stored(server) -> None:
    answer = server.post("/v1/chat/completions", chat(user="rater")).json()
    reply = server.post("/v1/feedback", {"response_id": answer["id"], "rating": 2,
                                         "correction": "saya (tanya budi@example.com)"}, headers={"X-User-Id": "rater"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["response_id"] == answer["id"] and reply.json()["rating"] == 2
    rows = [row for row in server.store.feedback_rows() if row["response_id"] == answer["id"]]
    assert len(rows) == 1
    assert rows[0]["rating"] == 2 and rows[0]["correction"] == "saya (tanya <EMAIL>)"
    assert rows[0]["answer"] == answer["choices"][0]["message"]["content"] and rows[0]["model_version"] == answer["model"]


@pytest.mark.parametrize("case", ["unknown id", "another user", "no user", "anonymous answer, named rater"])
def test_feedback_on_an_answer_the_user_did_not_receive_is_not_found(server, case: str) -> None:
    owner = None if case.startswith("anonymous") else "owner"
    answer = server.post("/v1/chat/completions", chat(**({"user": owner} if owner else {}))).json()
    response_id, rater = {"unknown id": ("resp-" + "0" * 24, "owner"), "another user": (answer["id"], "intruder"),
                          "no user": (answer["id"], None), "anonymous answer, named rater": (answer["id"], "owner")}[case]
    reply = server.post("/v1/feedback", {"response_id": response_id, "rating": 5, **({"user": rater} if rater else {})})
    assert reply.status_code == 404
    assert reply.json()["error"]["param"] == "response_id"
    assert not [row for row in server.store.feedback_rows() if row["response_id"] == response_id]


@pytest.mark.parametrize("rating", [0, 6, -1, "5", 4.5, None, True])
def test_a_rating_outside_1_to_5_is_refused(server, rating) -> None:
    answer = server.post("/v1/chat/completions", chat(user="rater")).json()
    reply = server.post("/v1/feedback", {"response_id": answer["id"], "rating": rating, "user": "rater"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "rating"


def test_a_logged_answer_is_returned_only_to_its_user(server) -> None:
    answer = server.post("/v1/chat/completions", chat(content="rahasia inyong", user="owner")).json()
    url = f"{server.url}/v1/responses/{answer['id']}"
    mine = httpx.get(url, headers={"X-User-Id": "owner"})
    assert mine.status_code == 200
    assert mine.json()["messages"] == [{"role": "user", "content": "rahasia inyong"}]
    assert mine.json()["answer"] == answer["choices"][0]["message"]["content"]
    for headers in ({"X-User-Id": "somebody-else"}, {}):
        other = httpx.get(url, headers=headers)
        assert other.status_code == 404 and "rahasia" not in other.text


# --- bad requests --------------------------------------------------------------------------------------------

BAD_REQUESTS = {
    # name: (body (bytes are sent as they are), extra headers, status, param)
    "malformed JSON": (b'{"messages": [', {}, 400, None),
    "not an object": ([chat()], {}, 400, None),
    "no body": (b"", {}, 400, None),
    "not JSON content type": (json.dumps(chat()).encode(), {"content-type": "text/plain"}, 400, None),
    "messages missing": ({"max_tokens": 4}, {}, 400, "messages"),
    "messages not a list": ({"messages": "hello"}, {}, 400, "messages"),
    "empty messages": ({"messages": []}, {}, 400, "messages"),
    "bad role": ({"messages": [{"role": "tool", "content": "x"}]}, {}, 400, "messages[0].role"),
    "no user turn": ({"messages": [{"role": "system", "content": "x"}]}, {}, 400, "messages"),
    "content a number": ({"messages": [{"role": "user", "content": 5}]}, {}, 400, "messages[0].content"),
    "image content": ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
                      {}, 400, "messages[0].content"),
    "max_tokens a string": (chat(max_tokens="5"), {}, 400, "max_tokens"),
    "max_tokens zero": (chat(max_tokens=0), {}, 400, "max_tokens"),
    "max_tokens negative": (chat(max_tokens=-3), {}, 400, "max_tokens"),
    "max_tokens over the cap": (chat(max_tokens=CAP + 1), {}, 400, "max_tokens"),
    "max_tokens huge": (chat(max_tokens=10**12), {}, 400, "max_tokens"),
    "two different limits": (chat(max_tokens=4, max_completion_tokens=5), {}, 400, "max_tokens"),
    "temperature a string": (chat(temperature="hot"), {}, 400, "temperature"),
    "temperature too high": (chat(temperature=3.5), {}, 400, "temperature"),
    "unknown model": (chat(model="gpt-4o"), {}, 404, "model"),
    "unknown field": (chat(max_token=4), {}, 400, "max_token"),
    "stream": (chat(stream=True), {}, 400, "stream"),
    "several choices": (chat(n=3), {}, 400, "n"),
    "two users": (chat(user="a"), {"X-User-Id": "b"}, 400, "user"),
    "user not a string": (chat(user=42), {}, 400, "user"),
    "body over the limit": (chat(content="x" * (BODY_LIMIT + 1)), {}, 413, None),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_a_bad_request_gets_a_json_4xx_naming_the_problem(server, name: str) -> None:
    body, headers, status, param = BAD_REQUESTS[name]
    before = server.store.count_responses()
    if isinstance(body, bytes):
        reply = httpx.post(server.url + "/v1/chat/completions", content=body,
                           headers={"content-type": "application/json", **headers}, timeout=60)
    else:
        reply = server.post("/v1/chat/completions", body, headers=headers)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and error["message"]
    assert "Traceback" not in reply.text and "File \"" not in reply.text
    assert server.store.count_responses() == before  # nothing answered, nothing logged


def test_a_body_over_the_limit_sent_in_chunks_is_refused_too(server) -> None:
    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(BODY_LIMIT // 10_000 + 1):
            yield b"x" * 10_000
        yield b'"}]}'

    reply = httpx.post(server.url + "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"


def words_for(model: ServedModel, low: int, high: int) -> str:
    """A user message whose prompt is between low and high tokens long in model's template."""
    for count in range(1, 10_000):
        text = " ".join(["kata"] * count)
        if low <= len(model.encode([{"role": "user", "content": text}])) <= high:
            return text
    raise AssertionError(f"no prompt of {low}-{high} tokens")


def test_a_prompt_longer_than_the_context_is_refused(server, models) -> None:
    context = models["champion"].context_length
    reply = server.post("/v1/chat/completions", chat(content="kata " * context, model="champion", max_tokens=None))
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "context_length_exceeded"
    assert str(context) in reply.json()["error"]["message"]


def test_a_prompt_that_leaves_no_room_for_max_tokens_is_refused_and_without_it_the_answer_is_shortened(server, models) -> None:
    champion = models["champion"]
    text = words_for(champion, champion.context_length - CAP + 2, champion.context_length - 2)
    room = champion.context_length - len(champion.encode([{"role": "user", "content": text}]))
    refused = server.post("/v1/chat/completions", chat(content=text, model="champion", max_tokens=CAP))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    answered = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": text}], "model": "champion"})
    assert answered.status_code == 200, answered.text
    assert answered.json()["usage"]["completion_tokens"] <= room < CAP


def test_unknown_paths_and_methods_get_json_errors(server) -> None:
    missing = httpx.get(server.url + "/v1/nothing")
    wrong_method = httpx.get(server.url + "/v1/chat/completions")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert missing.json()["error"]["message"] and wrong_method.json()["error"]["message"]


# --- what the database keeps ---------------------------------------------------------------------------------


class EchoModel:
    """A stand-in model that answers with the user's last message, so what it says is known in advance."""

    def __init__(self, version: str, path: Path):
        self.version, self.path, self.context_length = version, path, 4096

    def encode(self, messages: list[dict]) -> list[int]:
        return [ord(char) for char in messages[-1]["content"]]

    def generate(self, prompt_ids: list[int], max_new_tokens: int, *options) -> Generation:
        text = "".join(map(chr, prompt_ids))
        return Generation(text, len(prompt_ids), len(prompt_ids), "stop", 0.001)


class BrokenModel(EchoModel):
    def generate(self, prompt_ids: list[int], max_new_tokens: int, *options) -> Generation:
        raise RuntimeError("a bug deep in the model code")


PERSONAL = "kirim ke budi.santoso@example.co.id atau +62 812-3456-7890, NIK 3201234567890123"


@pytest.mark.parametrize("scrub", [True, False])
def test_personal_data_is_scrubbed_in_the_database_but_not_in_the_answer(start, tmp_path, scrub: bool) -> None:
    running = start("champion_only", served={"champion": EchoModel("echo-1", tmp_path)}, scrub_pii=scrub)
    answer = running.post("/v1/chat/completions", chat(content=PERSONAL, user="u")).json()
    assert answer["choices"][0]["message"]["content"] == PERSONAL  # the user gets the answer as the model gave it
    row = running.store.response(answer["id"], "u")
    logged = json.dumps(row["prompt"]) + row["answer"]
    if scrub:
        assert row["answer"] == row["prompt"][0]["content"] == "kirim ke <EMAIL> atau <PHONE>, NIK <ID_NUMBER>"
        assert "budi" not in logged and "3456" not in logged and "3201" not in logged
    else:
        assert row["answer"] == PERSONAL and row["prompt"][0]["content"] == PERSONAL
    assert row["model_version"] == "echo-1"


def test_an_unexpected_error_is_a_json_500_without_a_traceback(start, tmp_path) -> None:
    running = start("champion_only", served={"champion": BrokenModel("broken-1", tmp_path)})
    reply = running.post("/v1/chat/completions", chat())
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "server_error"
    assert "deep in the model" not in reply.text and "Traceback" not in reply.text
    assert running.store.count_responses() == 0


# --- the command ---------------------------------------------------------------------------------------------


def args(**given) -> argparse.Namespace:
    defaults = {"champion": None, "challenger": None, "mode": None, "challenger_share": None, "database": None}
    return argparse.Namespace(**{**defaults, **given})


def test_the_command_line_overrides_params_and_the_environment_overrides_the_database() -> None:
    params = Params(serve=ServeParams(database="sqlite:///from-params.db", mode="ab", challenger_share=0.2))
    assert plan(params, args(), environ={}).database == "sqlite:///from-params.db"
    assert plan(params, args(), environ={DATABASE_ENV: "sqlite:///env.db"}).database == "sqlite:///env.db"
    flagged = plan(params, args(database="sqlite:///flag.db", mode="shadow", champion="models/merged",
                                challenger_share=0.7), environ={DATABASE_ENV: "sqlite:///env.db"})
    assert (flagged.database, flagged.mode, flagged.champion, flagged.challenger, flagged.challenger_share) == (
        "sqlite:///flag.db", "shadow", "models/merged", "staging", 0.7)
    assert plan(params, args(mode="champion_only"), environ={}).challenger is None
    assert plan(params, args(), environ={}).salt == str(params.seed)


def test_ab_without_a_challenger_is_a_one_line_error() -> None:
    params = Params(serve=ServeParams(challenger=None, mode="ab"))
    with pytest.raises(UserError, match="champion_only"):
        plan(params, args(), environ={})


def test_a_model_folder_resolves_to_itself_and_an_adapter_folder_is_refused(model_dirs, tmp_path) -> None:
    resolved = resolve_model(str(model_dirs["champion"]), "serve.champion")
    assert resolved.path.resolve() == model_dirs["champion"].resolve()
    assert resolved.version.startswith("champion-") and resolved.version != folder_version(model_dirs["challenger"])
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(UserError, match="merged"):
        ServedModel.load(ResolvedModel("adapter-x", adapter), "serve.challenger")


def test_an_unreachable_database_driver_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(UserError, match="not installed|cannot open") as raised:
        Store("postgresql+nosuchdriver://user:secret@localhost/db")
    assert "secret" not in str(raised.value)
    store = Store(f"sqlite:///{tmp_path / 'new' / 'folder' / 'serve.db'}")  # the folder is created
    assert store.count_responses() == 0
    store.close()


@pytest.mark.slow  # a fresh interpreter imports torch, transformers and FastAPI: 10-25 s on 2 cores
def test_the_serve_command_answers_and_drains_shadow_answers_when_stopped(model_dirs, tmp_path) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "langfoundry.serve.cli", "--params", str(REPO / "params.yaml"), "--port", str(port),
               "--champion", str(model_dirs["champion"]), "--challenger", str(model_dirs["challenger"]),
               "--mode", "shadow", "--database", database]
    process = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(**{DATABASE_ENV: ""}),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        answers = [httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(user=f"u{index}"), timeout=60)
                   for index in range(3)]
        assert [answer.status_code for answer in answers] == [200] * 3
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert "mode shadow" in output and "Traceback" not in output
    store = Store(database)
    assert store.count_responses(shadow=False) == store.count_responses(shadow=True) == 3  # every shadow copy logged
    store.close()

