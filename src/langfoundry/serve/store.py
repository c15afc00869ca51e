"""The serving database: every answer (returned or shadow) and every rating, in SQLAlchemy Core.

The same code runs on SQLite (the default, a file under data/serve/, in WAL mode so concurrent writers
wait for each other instead of failing) and on PostgreSQL (a postgresql:// URL, for a team). Callers
scrub personal data before they log; the store keeps what it is given.

responses: one row per answer; a champion answer and its shadow copy share a request_id.
feedback: one row per rating, tied to a response the rating user received.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from langfoundry.core.errors import UserError

DATABASE_ENV = "LANGFOUNDRY_DATABASE_URL"  # wins over params.yaml's serve.database; --database wins over both
SQLITE_BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another to finish before giving up

metadata = MetaData()

responses = Table(
    "responses", metadata,
    Column("id", Text, primary_key=True),  # "resp-" + 24 hex digits, the id the API returns
    Column("request_id", Text, nullable=False, index=True),
    Column("created_at", Float, nullable=False),  # unix seconds
    Column("user_id", Text, index=True),
    Column("model_version", Text, nullable=False),
    Column("role", Text, nullable=False),  # champion | challenger
    Column("shadow", Boolean, nullable=False),  # answered a copy: logged, never returned
    Column("prompt", Text, nullable=False),  # JSON list of chat messages
    Column("answer", Text, nullable=False),
    Column("latency_ms", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("response_id", Text, ForeignKey("responses.id"), nullable=False, index=True),
    Column("user_id", Text),
    Column("rating", Integer, nullable=False),
    Column("correction", Text),
    Column("created_at", Float, nullable=False),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating_1_to_5"),
)


def database_url(configured: str, given: str | None = None, environ: dict[str, str] | None = None) -> str:
    """The database to log into: an explicit URL, else $LANGFOUNDRY_DATABASE_URL, else serve.database."""
    environ = os.environ if environ is None else environ
    return given or environ.get(DATABASE_ENV) or configured


def new_response_id() -> str:
    return "resp-" + secrets.token_hex(12)


def open_engine(url: str) -> Engine:
    """An engine for url; SQLite gets its folder created, WAL mode and a busy timeout on every connection."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise UserError(f"serve.database: {url!r} is not a database URL ({err}); use sqlite:///data/serve/langfoundry.db "
                        "or postgresql://user@host/db") from err
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed, **_engine_options(parsed))
    except ModuleNotFoundError as err:
        raise UserError(f"serve.database: {shown} needs the Python package {err.name!r}, which is not installed; install "
                        f"it (for PostgreSQL: pip install 'psycopg[binary]') or use a sqlite:/// URL") from err
    except (ArgumentError, ValueError) as err:
        raise UserError(f"serve.database: cannot open {shown}: {err}") from err
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _engine_options(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # every server thread may log; the pool keeps one connection per busy thread
        return {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                "pool_size": 8, "max_overflow": 32}
    return {"pool_size": 8, "max_overflow": 32, "pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, writers queue
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses at most the last commits
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """The responses and feedback tables of one database (created when missing)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = open_engine(url)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def log_response(self, *, request_id: str, user_id: str | None, model_version: str, role: str, shadow: bool,
                     prompt: list[dict] | str, answer: str, latency_ms: float | None = None,
                     prompt_tokens: int | None = None, completion_tokens: int | None = None,
                     id: str | None = None, created_at: float | None = None) -> str:
        """Insert one answer; returns its id (a new one unless given)."""
        row = {"id": id or new_response_id(), "request_id": request_id, "created_at": created_at or time.time(),
               "user_id": user_id, "model_version": model_version, "role": role, "shadow": shadow,
               "prompt": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
               "answer": answer, "latency_ms": latency_ms, "prompt_tokens": prompt_tokens,
               "completion_tokens": completion_tokens}
        with self.engine.begin() as connection:
            connection.execute(insert(responses).values(**row))
        return row["id"]

    def add_feedback(self, response_id: str, user_id: str | None, rating: int, correction: str | None) -> int:
        """Record a rating of a returned answer by the user who received it; KeyError when there is no such
        answer for that user (unknown, a shadow copy, or someone else's). Returns the feedback id."""
        # one INSERT ... SELECT: the check and the write are one statement, so no other writer comes between
        source = select(literal(response_id), literal(user_id, Text), literal(rating), literal(correction, Text),
                        literal(time.time())).where(_returned_to(response_id, user_id))
        statement = insert(feedback).from_select(["response_id", "user_id", "rating", "correction", "created_at"], source)
        with self.engine.begin() as connection:
            result = connection.execute(statement.returning(feedback.c.id))
            inserted = result.scalar_one_or_none()
        if inserted is None:
            raise KeyError(response_id)
        return inserted

    def response(self, response_id: str, user_id: str | None) -> dict | None:
        """A returned answer as logged, or None unless it went to this user (shadow copies go to no one)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(responses).where(_returned_to(response_id, user_id))).mappings().first()
        if row is None:
            return None
        return {**row, "prompt": json.loads(row["prompt"])}

    def count_responses(self, shadow: bool | None = None) -> int:
        """Logged answers: all, or only the shadow (True) or returned (False) ones."""
        query = select(func.count()).select_from(responses)
        if shadow is not None:
            query = query.where(responses.c.shadow == shadow)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def responses_for_request(self, request_id: str) -> list[dict]:
        """Every answer logged for one request: the returned one and its shadow copy, if any."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(responses).where(responses.c.request_id == request_id)
                                      .order_by(responses.c.shadow)).mappings().all()
        return [{**row, "prompt": json.loads(row["prompt"])} for row in rows]

    def feedback_rows(self) -> Iterator[dict]:
        """Every rating with the answer it rates, oldest first."""
        query = (select(feedback.c.response_id, responses.c.prompt, responses.c.answer, feedback.c.rating,
                        feedback.c.correction, responses.c.model_version, feedback.c.created_at)
                 .join(responses, responses.c.id == feedback.c.response_id).order_by(feedback.c.id))
        with self.engine.connect() as connection:
            for row in connection.execute(query).mappings():
                yield {**row, "prompt": json.loads(row["prompt"])}


def _returned_to(response_id: str, user_id: str | None):
    """The row of a returned (not shadow) answer that went to user_id (None: an anonymous request)."""
    same_user = responses.c.user_id.is_(None) if user_id is None else responses.c.user_id == user_id
    return and_(responses.c.id == response_id, responses.c.shadow.is_(False), same_user)
