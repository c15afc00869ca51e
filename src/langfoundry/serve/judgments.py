"""The `judgments` table: one row per blind comparison a reviewer made (langfoundry review).

It lives in the serving database (SQLite by default, PostgreSQL by URL) beside `responses` and
`feedback`, with its own MetaData so the review tool creates it without the server's tables. The
choice is stored un-blinded (candidate, reference, tie, both_bad); `candidate_position` keeps the
side the candidate was shown on, so position bias can be measured later.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from langfoundry.core.errors import UserError
from langfoundry.serve.store import DATABASE_ENV, Store

CHOICES = ("candidate", "reference", "tie", "both_bad")
POSITIONS = ("A", "B")

metadata = sa.MetaData()

judgments = sa.Table(
    "judgments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),  # unix seconds
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),  # JSON list of chat messages, as shown
    sa.Column("candidate", sa.Text, nullable=False),  # model name or version
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("candidate_position", sa.Text, nullable=False),
    sa.Column("choice", sa.Text, nullable=False),
    sa.Column("correction", sa.Text, nullable=True),  # the answer as the reviewer would have it
    sa.Column("pair_key", sa.Text, nullable=False, index=True),
    # a reviewer judges a pair once: a resubmitted form replaces the earlier judgment, never counts twice
    sa.UniqueConstraint("reviewer", "pair_key", name="uq_judgments_reviewer_pair"),
    sa.CheckConstraint("candidate_position IN ('A', 'B')", name="ck_judgments_position"),
    sa.CheckConstraint("choice IN ('candidate', 'reference', 'tie', 'both_bad')", name="ck_judgments_choice"),
)


def open_database(url: str) -> Engine:
    """An engine on `url` with the judgments table in place, opened the way the server opens it (SQLite: its
    folder created, WAL mode and a busy timeout, so the review tool and a running server can both write)."""
    try:
        engine = Store(url).engine
        metadata.create_all(engine)
    except OperationalError as err:
        raise UserError(f"database {make_url(url).render_as_string(hide_password=True)}: cannot open it ({err.orig}); "
                        f"check --database, ${DATABASE_ENV} or serve.database in params.yaml") from err
    return engine


def record_judgment(engine: Engine, *, reviewer: str, pair_key: str, prompt: str, candidate: str, reference: str,
                    candidate_position: str, choice: str, correction: str | None = None,
                    created_at: float | None = None) -> int:
    """Store one un-blinded judgment, replacing this reviewer's earlier one on the same pair; returns its id."""
    if choice not in CHOICES:
        raise ValueError(f"choice {choice!r} is not one of {', '.join(CHOICES)}")
    if candidate_position not in POSITIONS:
        raise ValueError(f"candidate_position {candidate_position!r} is not A or B")
    row = {"reviewer": reviewer, "pair_key": pair_key, "prompt": prompt, "candidate": candidate, "reference": reference,
           "candidate_position": candidate_position, "choice": choice, "correction": correction,
           "created_at": time.time() if created_at is None else created_at}
    with engine.begin() as connection:
        connection.execute(judgments.delete().where(judgments.c.reviewer == reviewer, judgments.c.pair_key == pair_key))
        return connection.execute(judgments.insert().values(**row)).inserted_primary_key[0]


def judged_keys(engine: Engine, reviewer: str) -> set[str]:
    """The pair keys this reviewer has judged."""
    with engine.connect() as connection:
        return set(connection.scalars(sa.select(judgments.c.pair_key).where(judgments.c.reviewer == reviewer)))


def choices_for(engine: Engine, candidate: str, reference: str, pair_keys: Iterable[str]) -> list[str]:
    """Every reviewer's choices between these two models on these pairs (judgments of other pairs, such as
    those of an earlier adapter's answers, do not count)."""
    keys = set(pair_keys)
    query = (sa.select(judgments.c.pair_key, judgments.c.choice)
             .where(judgments.c.candidate == candidate, judgments.c.reference == reference)
             .order_by(judgments.c.id))
    with engine.connect() as connection:
        return [choice for key, choice in connection.execute(query) if key in keys]


def judgment_rows(engine: Engine, reviewer: str | None = None) -> list[dict]:
    """The stored judgments as dicts, oldest first (optionally one reviewer's)."""
    query = sa.select(judgments).order_by(judgments.c.id)
    if reviewer is not None:
        query = query.where(judgments.c.reviewer == reviewer)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
