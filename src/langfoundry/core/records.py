"""The one record schema every row has once it leaves ingest (see ARCHITECTURE.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from langfoundry.core.errors import UserError

KINDS = (
    "dictionary",
    "parallel",
    "monolingual",
    "transcription",
    "ocr",
    "conversation",
    "instruction",
    "feedback",
    "labelled",  # a text and its class label (meta "label", "task"): the classification sets, not the LLM
)

# Column order is part of the contract: later stages append columns, never rename these.
RECORD_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("pivot_lang", pa.string()),
    pa.field("pivot_text", pa.string()),
    pa.field("meta", pa.string(), nullable=False),  # JSON object, keys sorted
    pa.field("origin", pa.string(), nullable=False),  # file:line, file#record, file:Sheet!row, file:line:msgstr[n] (origin_parts)
]
RECORD_SCHEMA = pa.schema(RECORD_FIELDS)
RECORD_COLUMNS = [field.name for field in RECORD_FIELDS]
RECORD_SORT = ("id", "origin")  # how ingest writes the records (the gates check the order)

# Every row an input loses lands here, with enough to find and fix it.
REJECT_FIELDS = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("origin", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # filter or error name, e.g. "script_ratio"
    pa.field("detail", pa.string()),  # human-readable specifics
    pa.field("id", pa.string()),  # record id when the row had become a record
    pa.field("lang", pa.string()),
    pa.field("raw", pa.string(), nullable=False),  # the row as read (JSON), so nothing is lost
]
REJECT_SCHEMA = pa.schema(REJECT_FIELDS)
REJECT_COLUMNS = [field.name for field in REJECT_FIELDS]

# The origins readers write (data/readers/__init__.py): "file:line", "file:line:msgstr[n]" (a PO plural
# form), "file#index" (JSON and Parquet records) and "file:Sheet!row" (Excel). A file name may hold any
# character, ":" "#" "!" and newlines too, so only the number at the very end (with what must stand
# before it) is parsed; an origin of another shape is all file. [0-9], not \d: Python's \d takes any digit.
ORIGIN_PATTERN = (r"(?s)^(?P<file>.*?)(?:(?::(?P<sheet>[^:]*)!|[:#])(?P<number>[0-9]{1,18})"
                  r"(?::msgstr\[(?P<form>[0-9]{1,9})\])?)?$")


def origin_parts(origins: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Each origin split by ORIGIN_PATTERN into file, sheet (Excel), number (line, record or row) and form
    (PO plural index), in the origins' order; sheet, number and form are null where an origin has none."""
    parts = pc.extract_regex(origins, ORIGIN_PATTERN)
    columns = {"file": pc.struct_field(parts, "file")}
    for name, kind in (("sheet", pa.string()), ("number", pa.int64()), ("form", pa.int64())):
        found = pc.struct_field(parts, name)
        # a group that took no part in the match reads as "", which no sheet or number is
        columns[name] = pc.cast(pc.if_else(pc.equal(found, ""), pa.scalar(None, pa.string()), found), kind)
    return pa.table(columns)


def meta_json(meta: Mapping[str, Any] | None) -> str:
    """Canonical JSON for the meta column: sorted keys, no ASCII escaping, no None values."""
    clean = {key: value for key, value in (meta or {}).items() if value not in (None, "", [], {})}
    if not clean:  # most rows of most kinds: skip the encoder
        return "{}"
    return json.dumps(clean, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def record_id(source: str, kind: str, lang: str, text: str, pivot_lang: str | None, pivot_text: str | None, meta: str) -> str:
    """A stable id from source and content, never from a row number (16 hex digits of SHA-256)."""
    payload = "\x1f".join([source, kind, lang, text, pivot_lang or "", pivot_text or "", meta])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def make_record(
    *,
    source: str,
    kind: str,
    lang: str,
    text: str,
    origin: str,
    pivot_lang: str | None = None,
    pivot_text: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    meta_text = meta_json(meta)
    return {
        "id": record_id(source, kind, lang, text, pivot_lang, pivot_text, meta_text),
        "source": source,
        "kind": kind,
        "lang": lang,
        "text": text,
        "pivot_lang": pivot_lang,
        "pivot_text": pivot_text,
        "meta": meta_text,
        "origin": origin,
    }


def make_reject(*, source: str, origin: str, stage: str, reason: str, raw: Any, detail: str | None = None,
                id: str | None = None, lang: str | None = None) -> dict[str, Any]:
    raw_text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    return {"source": source, "origin": origin, "stage": stage, "reason": reason, "detail": detail,
            "id": id, "lang": lang, "raw": raw_text}


def _table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    # Column by column: several times faster than pa.Table.from_pylist, with the same result
    # (a missing key is a null).
    rows = list(rows)
    return pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)


# json.dumps(..., ensure_ascii=False) escapes only these, and every other character below U+0020 as
# \u00XX; the backslash goes first so that no escape written here is escaped again.
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"),
                 ("\b", "\\b"), ("\f", "\\f"))
_OTHER_CONTROLS = tuple(chr(code) for code in range(0x20) if chr(code) not in "\n\r\t\b\f")


def json_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each string as json.dumps(value, ensure_ascii=False) writes it, a null as null, for a whole
    column at once: rejects carry their rows as JSON, and json.dumps row by row took most of a
    stage's time on its rejects (17 us a row)."""
    text = values
    if pc.any(pc.match_substring_regex(text, r'["\\\x00-\x1f]')).as_py():  # most columns need no escape
        for plain, escaped in _JSON_ESCAPES:
            text = pc.replace_substring(text, plain, escaped)
        if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
            for char in _OTHER_CONTROLS:
                text = pc.replace_substring(text, char, f"\\u{ord(char):04x}")
    return pc.fill_null(pc.binary_join_element_wise('"', text, '"', ""), "null")


def raw_records_json(rows: pa.Table) -> pa.Array | pa.ChunkedArray:
    """Per row, its record columns as make_reject's raw JSON (json.dumps with sorted keys): the same
    text, written column by column."""
    parts: list[Any] = []
    for index, name in enumerate(sorted(RECORD_COLUMNS)):
        parts += [("{" if index == 0 else ", ") + json.dumps(name) + ": ", json_strings(rows.column(name))]
    return pc.binary_join_element_wise(*parts, "}", "")


def record_rejects(rows: pa.Table, stage: str, reasons: Sequence[str], details: Sequence[str | None]) -> pa.Table:
    """Rejects of records, one per row of rows (in order), each carrying its row as raw JSON: what
    make_reject gives row by row, built a column at a time."""
    count = rows.num_rows
    if not len(reasons) == len(details) == count:
        raise ValueError(f"{count} rows but {len(reasons)} reasons and {len(details)} details")
    columns = {"source": rows.column("source"), "origin": rows.column("origin"),
               "stage": pa.array([stage] * count, pa.string()), "reason": pa.array(reasons, pa.string()),
               "detail": pa.array(details, pa.string()), "id": rows.column("id"), "lang": rows.column("lang"),
               "raw": raw_records_json(rows)}
    return pa.Table.from_arrays([columns[name] for name in REJECT_COLUMNS], schema=REJECT_SCHEMA)


def records_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return _table(rows, RECORD_SCHEMA)


def rejects_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return _table(rows, REJECT_SCHEMA)


def require_record_columns(schema: pa.Schema, where: str, rerun: str) -> None:
    """One clear line when a table lacks record columns (an old or foreign file)."""
    missing = [name for name in RECORD_COLUMNS if name not in schema.names]
    if missing:
        raise UserError(f"{where}: missing column(s) {', '.join(missing)}; rerun {rerun}")


def read_records(path: Path, made_by: str) -> pa.Table:
    """A stage's input table, or one clear line naming the stage that makes it."""
    check_records_file(path, made_by)
    return pq.read_table(path)


def check_records_file(path: Path, made_by: str) -> None:
    """One clear line, naming the stage that makes it, when a stage's input file is missing or not a record table."""
    rerun = f"the {made_by} stage (dvc repro {made_by})"
    if not path.exists():
        raise UserError(f"{path}: not found; run {rerun} first")
    require_record_columns(pq.read_schema(path), str(path), rerun)
