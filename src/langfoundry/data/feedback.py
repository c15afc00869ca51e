"""Users' corrections from the serving database become a source: `acquire: {feedback: {database: URL}}`.

`langfoundry serve` logs every answer (table `responses`) and `POST /v1/feedback` stores ratings and
corrections (table `feedback`). A snapshot of them is what ingest reads, so the training data is a
versioned file like any other source, not a live query:

- feedback.jsonl: one conversation per corrected answer, the prompt's messages followed by the
  correction as the assistant's turn (the latest feedback on an answer wins);
- the review queue (reports/review_queue.jsonl, written by the acquire stage): answers rated below
  `review_below_rating` without a correction, for a person to correct or drop; they never train.

Rows are sorted by response id and carry no time of acquisition, so the same database gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from langfoundry.core.config import FeedbackSpec, Source
from langfoundry.core.errors import UserError
from langfoundry.core.storage import write_jsonl

FEEDBACK_FILE = "feedback.jsonl"
DATABASE_ENV = "LANGFOUNDRY_DATABASE_URL"  # the server's override; the snapshot honours it too

# The serving database's tables as langfoundry.serve.store writes them; read with plain SQL so the data
# stages need SQLAlchemy only, not the server.
QUERY = """
SELECT f.id AS feedback_id, f.response_id, f.rating, f.correction, r.prompt, r.answer, r.model_version
FROM feedback AS f JOIN responses AS r ON r.id = f.response_id
ORDER BY f.response_id, f.id
"""


def database_url(spec: FeedbackSpec) -> str:
    return os.environ.get(DATABASE_ENV) or spec.database


def _sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def read_feedback(url: str, where: str) -> list[dict[str, Any]]:
    """The latest feedback row of each rated response, joined with the response it rates."""
    import sqlalchemy as sa  # only feedback sources need it

    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():
        return []  # no server has run yet: no feedback
    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("feedback"):
                return []
            rows = [dict(row._mapping) for row in connection.execute(sa.text(QUERY))]
    except sa.exc.SQLAlchemyError as error:
        raise UserError(f"{where}: cannot read the serving database {url!r}: {str(error).splitlines()[0]}") from None
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:  # ordered by feedback id within a response: the last one wins
        latest[row["response_id"]] = row
    return [latest[key] for key in sorted(latest)]


def _messages(row: dict[str, Any], where: str) -> list[dict[str, str]]:
    try:
        messages = json.loads(row["prompt"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: response {row['response_id']}: its prompt is not JSON messages") from None
    return [{"role": str(message.get("role")), "content": str(message.get("content", ""))} for message in messages]


def snapshot_feedback(source: Source, spec: FeedbackSpec, dest: Path) -> list[dict[str, Any]]:
    """Write feedback.jsonl into dest; returns the rows for the review queue."""
    where = f"sources.yaml: source {source.id!r}"
    corrections, queue = [], []
    for row in read_feedback(database_url(spec), where):
        correction = (row["correction"] or "").strip()
        messages = _messages(row, where)
        base = {"response_id": row["response_id"], "rating": row["rating"], "model_version": row["model_version"]}
        if correction:
            corrections.append({**base, "messages": [*messages, {"role": "assistant", "content": correction}]})
        elif row["rating"] is not None and row["rating"] < spec.review_below_rating:
            queue.append({**base, "source": source.id, "messages": messages, "answer": row["answer"]})
    write_jsonl(corrections, dest / FEEDBACK_FILE)
    return queue
