"""What readers yield: rows as read, rows that could not be read, and the columns a file declares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Row:
    """One input row as read: column name -> value, plus where it came from."""
    origin: str  # "file:line", "file#index" (0-based record index) or "file:Sheet!row"
    fields: dict[str, Any]
    meta: dict[str, Any] | None = None  # extra context a format carries (e.g. a PO msgctxt)


@dataclass(frozen=True, slots=True)
class BadRow:
    """An input row the reader could not turn into columns; it goes to the rejects as it was."""
    origin: str
    reason: str
    detail: str
    raw: str


@dataclass(frozen=True, slots=True)
class Header:
    """The columns a file (or sheet) has; header formats send it before their rows, JSON Lines after."""
    file: str
    columns: tuple[str, ...]
    # names the file's header has more than once; columns holds them made distinct ("gloss", "gloss.1")
    duplicates: tuple[str, ...] = ()


Item = Union[Row, BadRow, Header]


def safe_text(text: str) -> str:
    """Text Arrow can store: lone surrogates (from JSON \\ud800 escapes) become backslash escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def raw_json(value: Any) -> str:
    """A row as one line of JSON, keys sorted, for the rejects' raw column."""
    return safe_text(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def one_line(error: object) -> str:
    """A library's error message on one line (some carry newlines), for a one-line UserError."""
    return " ".join(str(error).split())
