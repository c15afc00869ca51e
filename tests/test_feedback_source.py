"""A feedback source: the serving database's corrections become conversation examples, low-rated answers
without a correction go to the review queue, and the snapshot is byte-stable."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langfoundry.core.config import FormatParams, IngestParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.data.acquire import acquire_sources
from langfoundry.data.chat import format_records
from langfoundry.data.feedback import FEEDBACK_FILE
from langfoundry.data.ingest import ingest_to_files

REPO = Path(__file__).resolve().parents[1]

SCHEMA = """
CREATE TABLE responses (id TEXT PRIMARY KEY, request_id TEXT, created_at FLOAT, user_id TEXT, model_version TEXT,
  role TEXT, shadow BOOLEAN, prompt TEXT, answer TEXT, latency_ms FLOAT, prompt_tokens INT, completion_tokens INT);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, response_id TEXT, user_id TEXT, rating INT,
  correction TEXT, created_at FLOAT);
"""


def make_database(path: Path, feedback: list[tuple[str, int, str | None]]) -> str:
    connection = sqlite3.connect(path)
    connection.executescript(SCHEMA)
    for number, word in enumerate(["omah", "banyu", "sega", "wong"]):
        prompt = json.dumps([{"role": "user", "content": f"Terjemahkan ke bahasa Indonesia: {word}"}])
        connection.execute("INSERT INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           (f"resp-{number}", f"req-{number}", 1.0 + number, "u1", "merged@v0.0.1", "champion", False,
                            prompt, "jawaban salah", 5.0, 9, 2))
    connection.executemany("INSERT INTO feedback (response_id, user_id, rating, correction, created_at) VALUES (?,?,?,?,?)",
                           [(response, "u1", rating, correction, 10.0) for response, rating, correction in feedback])
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def feedback_source(url: str) -> Source:
    return Source.model_validate({"id": "corrections", "kind": "feedback", "lang": "jv-x-banyumas", "format": "jsonl",
                                  "acquire": {"feedback": {"database": url}}})


def test_corrections_train_and_low_ratings_wait_for_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LANGFOUNDRY_DATABASE_URL", raising=False)
    url = make_database(tmp_path / "serve.db", [
        ("resp-0", 2, None),             # superseded below: the latest feedback on an answer wins
        ("resp-0", 4, "rumah"),
        ("resp-1", 1, None),             # low, no correction: review queue
        ("resp-2", 5, None),             # fine as it is: neither
        ("resp-3", 1, "  orang  "),      # low but corrected: trains
    ])
    queue: list[dict] = []
    [folder] = acquire_sources([feedback_source(url)], tmp_path, review_queue=queue)
    rows = [json.loads(line) for line in (folder / FEEDBACK_FILE).read_text(encoding="utf-8").splitlines()]
    assert [row["response_id"] for row in rows] == ["resp-0", "resp-3"]
    assert [row["messages"][-1] for row in rows] == [{"role": "assistant", "content": "rumah"},
                                                     {"role": "assistant", "content": "orang"}]
    assert [item["response_id"] for item in queue] == ["resp-1"] and queue[0]["answer"] == "jawaban salah"

    first = (folder / FEEDBACK_FILE).read_bytes()
    acquire_sources([feedback_source(url)], tmp_path)
    assert (folder / FEEDBACK_FILE).read_bytes() == first, "the same database gives the same bytes"


def test_a_correction_becomes_a_conversation_example(tmp_path: Path) -> None:
    url = make_database(tmp_path / "serve.db", [("resp-2", 2, "nasi")])
    source = feedback_source(url)
    acquire_sources([source], tmp_path)
    shutil.copytree(REPO / "data/inventory", tmp_path / "data/inventory")
    ingest_to_files([source], IngestParams(), load_inventory(tmp_path / "data/inventory/languages.csv"),
                    records_path=tmp_path / "records.parquet", rejects_path=tmp_path / "rejects.parquet",
                    metrics_path=tmp_path / "ingest.json", root=tmp_path)
    records = pq.read_table(tmp_path / "records.parquet")
    assert records.column("kind").to_pylist() == ["feedback"]
    split = records.append_column("split", pa.array(["train"])).append_column("group", pa.array(["g"]))
    result = format_records(split, FormatParams(), seed=13)
    [example] = result.examples["train"]
    assert example["task"] == "conversation"
    assert example["messages"][-1] == {"role": "assistant", "content": "nasi"}
    assert "sega" in example["messages"][-2]["content"]


def test_no_database_yet_gives_an_empty_source_and_a_bad_url_one_line(tmp_path: Path) -> None:
    [folder] = acquire_sources([feedback_source(f"sqlite:///{tmp_path / 'absent.db'}")], tmp_path)
    assert (folder / FEEDBACK_FILE).read_text(encoding="utf-8") == ""
    (tmp_path / "broken.db").write_bytes(b"this is not a database file" * 100)
    with pytest.raises(UserError, match="corrections.*cannot read the serving database"):
        acquire_sources([feedback_source(f"sqlite:///{tmp_path / 'broken.db'}")], tmp_path)
