"""Rows to records: a SourceMapper maps a row's columns to the record fields of its source's kind.

Column names come from `columns` in sources.yaml (record field -> column in the file); without a
mapping a field is read from the column of the same name (for text and TMX files
`text`/`pivot_text`, for PO files msgstr/msgid). Any kind may take its language from a column
(`columns: {lang: ...}`) and its split group from one (`group_by`); a dotted name such as
metadata.language reads a key of a JSON object. A row that cannot become a record raises Rejected,
which names the reason; ingest turns it into a reject. ParallelColumns builds the records of plain
parallel rows column by column: the records SourceMapper would make, without a dict per row.
"""

from __future__ import annotations

import datetime
import decimal
import difflib
import json
import math
from hashlib import sha256
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from langfoundry.core.config import Source
from langfoundry.core.errors import UserError
from langfoundry.core.records import RECORD_SCHEMA, make_record
from langfoundry.data.readers import Header, Row
from langfoundry.data.readers.encoding import MAX_LINE_CHARS
from langfoundry.data.readers.text import AlignedBlock
from langfoundry.data.split import declared_group

if TYPE_CHECKING:  # a type only: ingest imports this module
    from langfoundry.data.ingest import TableBuffer

# kind -> (required fields, optional fields); a row without a required field is a reject.
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dictionary": (("headword", "gloss"), ("pos", "examples")),
    "parallel": (("text", "pivot_text"), ()),
    "monolingual": (("text",), ()),
    "transcription": (("text",), ("pivot_text", "media")),
    "ocr": (("text",), ("pivot_text", "media")),
    "feedback": (("messages",), ()),  # a user's prompt and the corrected answer (data/feedback.py)
    "conversation": (("messages",), ()),
    "instruction": (("instruction", "output"), ("input",)),
    "labelled": (("text", "label"), ()),
}
PIVOT_FIELDS = {"gloss", "pivot_text"}
ROW_FIELDS = ("lang",)  # fields any kind may read from a column: the row's language tag
STRUCTURED_FIELDS = {"messages", "examples"}  # lists, or JSON text of a list
ROLES = ("system", "user", "assistant")
# Readers of these formats name their columns themselves; a field falls back to the column given here.
FORMAT_COLUMNS = {
    "txt": {"headword": "text", "gloss": "pivot_text"},
    "tmx": {"headword": "text", "gloss": "pivot_text"},
    "po": {"text": "msgstr", "headword": "msgstr", "pivot_text": "msgid", "gloss": "msgid"},
}


class Rejected(Exception):
    """A row that cannot become a record: the reason (a short name) and what exactly is wrong."""

    def __init__(self, reason: str, detail: str, tag: str | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.tag = reason, detail, tag  # tag: the unknown language tag, counted per tag


def column_value(fields: dict[str, Any], column: str) -> Any:
    """A row's value of a column; a dotted name (metadata.language) walks into JSON objects when no
    column has the whole name."""
    if column in fields or "." not in column:
        return fields.get(column)
    value: Any = fields
    for key in column.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def has_column(columns: tuple[str, ...], column: str) -> bool:
    return column in columns or ("." in column and column.split(".", 1)[0] in columns)


def as_text(value: Any, column: str) -> str | None:
    """A cell as text: numbers and dates as written, None for a missing value."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise Rejected("not_text", f"column {column!r} holds a {type(value).__name__}, not text")


def _json_list(value: Any, column: str) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise Rejected("invalid_json", f"column {column!r} is text but not a JSON list") from None
    if not isinstance(value, list):
        raise Rejected("not_a_list", f"column {column!r} holds a {type(value).__name__}, not a list")
    return value


def parse_messages(value: Any, column: str) -> list[dict[str, str]]:
    """Chat turns as [{role, content}], checked: known roles, non-empty text, at least one assistant turn."""
    turns = []
    for index, turn in enumerate(_json_list(value, column)):
        if not isinstance(turn, dict):
            raise Rejected("invalid_messages", f"turn {index} is a {type(turn).__name__}, not {{role, content}}")
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            raise Rejected("invalid_messages", f"turn {index}: role {role!r} is not one of {', '.join(ROLES)}")
        if role == "system" and index != 0:
            raise Rejected("invalid_messages", f"turn {index}: a system turn may only come first")
        if not isinstance(content, str) or not content.strip():
            raise Rejected("invalid_messages", f"turn {index} ({role}) has no text content")
        turns.append({"role": role, "content": content})
    if not any(turn["role"] == "assistant" for turn in turns):
        raise Rejected("invalid_messages", "no assistant turn" if turns else "no turns")
    return turns


def parse_examples(value: Any, column: str) -> list[str]:
    """Usage examples: a list, a JSON list in text, or one example per line of a cell."""
    if value is None:
        return []
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return [line.strip() for line in value.splitlines() if line.strip()]
    if not isinstance(value, (str, list)):
        value = [value]  # a single number or date in a spreadsheet cell
    examples = [as_text(item, column) for item in _json_list(value, column)]
    return [example for example in examples if example and example.strip()]


class SourceMapper:
    """Maps the rows of one file format of one source to records of the source's kind."""

    def __init__(self, source: Source, fmt: str, languages: Iterable[str] = ()):
        self.source = source
        required, optional = KIND_FIELDS[source.kind]
        if source.pivot_lang is None:
            optional = tuple(name for name in optional if name not in PIVOT_FIELDS)
        fallback = FORMAT_COLUMNS.get(fmt, {})
        # a media stage's records name their fields as records do; the source's columns were for its raw files
        columns = {} if fmt == "media" else source.columns
        column = lambda name: columns.get(name) or fallback.get(name, name)  # noqa: E731
        self.required = {name: column(name) for name in required}
        self.optional = {name: column(name) for name in optional}
        self.must_exist = dict(self.required, **{name: column(name) for name in optional if name in columns})
        # per-row language and split group; a media stage's records carry neither
        self.lang_column = columns.get("lang")
        self.group_column = None if fmt == "media" else source.group_by
        for name, mapped in (("lang", self.lang_column), ("group_by", self.group_column)):
            if mapped:
                self.must_exist[name] = mapped
        self.languages = {tag.lower(): tag for tag in languages}  # tags are case-insensitive (BCP 47)

    @property
    def per_row(self) -> bool:
        """Whether rows differ in language or group, which the column-wise parallel path assumes they do not."""
        return bool(self.lang_column or self.group_column)

    def check_header(self, header: Header) -> tuple[str, ...]:
        """Stop on a mapped column the file lacks (a typo or the wrong file) or has twice (which one is
        meant?); return the columns no record field reads, so the caller can say they are ignored."""
        for name, column in self.must_exist.items():
            if not has_column(header.columns, column):
                hint = difflib.get_close_matches(column, header.columns, n=1)
                maybe = f"; did you mean {hint[0]!r}?" if hint else ""
                mapped = "" if name in self.source.columns or name == "group_by" else \
                    f" (set columns.{name} in sources.yaml to map it)"
                raise UserError(f"sources.yaml: source {self.source.id!r}: {header.file} has no column {column!r} for "
                                f"{name}{maybe}{mapped}; its columns are: {', '.join(header.columns) or 'none'}")
            if column in header.duplicates:
                copies = [other for other in header.columns if other == column or other.startswith(f"{column}.")]
                raise UserError(f"sources.yaml: source {self.source.id!r}: {header.file} has more than one column "
                                f"named {column!r} (read as {', '.join(copies)}); rename them in the file, or map "
                                f"{name} to the one meant (columns: {{{name}: {copies[-1]}}} in sources.yaml)")
        used = {column.split(".", 1)[0] for column in (*self.required.values(), *self.optional.values(),
                                                       self.lang_column, self.group_column) if column}
        return tuple(column for column in header.columns if column not in used)

    def _values(self, row: Row) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, column in self.required.items():
            label = repr(column) if column == name else f"{column!r} ({name})"
            value = column_value(row.fields, column)
            if value is None and column not in row.fields:
                raise Rejected("missing_field", f"no column {label} in this row")
            values[name] = self._value(name, column, value)
            if values[name] is None or (isinstance(values[name], str) and not values[name].strip()):
                raise Rejected("missing_field", f"column {label} is empty")
        for name, column in self.optional.items():
            value = column_value(row.fields, column)
            if value is not None and not (isinstance(value, str) and not value.strip()):  # an empty cell is absent
                values[name] = self._value(name, column, value)
        return values

    @staticmethod
    def _value(name: str, column: str, value: Any) -> Any:
        if name in STRUCTURED_FIELDS:
            return value
        text = as_text(value, column)
        if text is not None and len(text) > MAX_LINE_CHARS:  # the bound line readers apply, for every format
            raise Rejected("value_too_long", f"column {column!r} has {len(text):,} characters, over the "
                                             f"{MAX_LINE_CHARS:,} a value may have")
        return text

    def record(self, row: Row) -> dict[str, Any]:
        """The record for a row; raises Rejected when the row cannot be one."""
        values = self._values(row)
        kind = self.source.kind
        pivot_text = None
        meta: dict[str, Any] = dict(row.meta or {})
        if kind == "dictionary":
            text, pivot_text = values["headword"], values["gloss"]
            examples_column = self.optional.get("examples", "examples")
            meta.update(pos=values.get("pos"), examples=parse_examples(values.get("examples"), examples_column))
        elif kind in ("conversation", "feedback"):
            turns = parse_messages(values["messages"], self.required["messages"])
            text = "\n".join(turn["content"] for turn in turns)
            meta["messages"] = turns
        elif kind == "instruction":
            parts = {name: values.get(name) for name in ("instruction", "input", "output")}
            text = "\n".join(part for part in parts.values() if part and part.strip())
            meta.update(parts)
        elif kind == "labelled":
            text = values["text"]
            meta.update(label=values["label"].strip(), task=self.source.task)
        else:
            text, pivot_text = values["text"], values.get("pivot_text")
            meta["media"] = values.get("media")
        if self.group_column:
            group = as_text(column_value(row.fields, self.group_column), self.group_column)
            if group is not None and group.strip():
                meta["group"] = declared_group(self.source.id, group.strip())
        try:
            return make_record(source=self.source.id, kind=kind, lang=self._lang(row), text=text, origin=row.origin,
                               pivot_lang=self.source.pivot_lang if pivot_text is not None else None,
                               pivot_text=pivot_text, meta=meta)
        except UnicodeEncodeError:  # hashing needs UTF-8, and so does Arrow
            raise Rejected("invalid_unicode", "a lone surrogate (an unpaired \\ud800-\\udfff escape) in the text") from None


    def _lang(self, row: Row) -> str:
        """The row's tag from its lang column (an empty cell: the source's lang), checked against the inventory."""
        if not self.lang_column:
            return self.source.lang
        value = as_text(column_value(row.fields, self.lang_column), self.lang_column)
        if value is None or not value.strip():
            return self.source.lang
        tag = value.strip()
        known = self.languages.get(tag.lower())
        if known is None:
            raise Rejected("unknown_lang", f"language tag {tag!r} in column {self.lang_column!r} is not in the "
                                           f"language inventory (add it to data/inventory/languages.csv)", tag=tag)
        return known


def check_source(source: Source) -> None:
    """Settings that can be checked before reading a byte."""
    required, optional = KIND_FIELDS[source.kind]
    allowed = required + optional + ROW_FIELDS
    for name in source.columns:
        if name not in allowed:
            hint = difflib.get_close_matches(name, allowed, n=1)
            maybe = f"; did you mean {hint[0]!r}?" if hint else ""
            raise UserError(f"sources.yaml: source {source.id!r}: columns.{name} is not a field of kind {source.kind}"
                            f"{maybe} (fields: {', '.join(allowed)})")
    needs_pivot = [name for name in required if name in PIVOT_FIELDS]
    needs_pivot += [name for name in optional if name in PIVOT_FIELDS and name in source.columns]
    if needs_pivot and source.pivot_lang is None:
        raise UserError(f"sources.yaml: source {source.id!r}: kind {source.kind} with {needs_pivot[0]} needs "
                        f"pivot_lang (the language tag of the {needs_pivot[0]} side)")


class ParallelColumns:
    """Records of a parallel source built column by column: for a row with both sides plain non-blank
    text (nearly every row of a parallel corpus), the record SourceMapper.record would make, without a
    dict per row. add() returns False for any other row, which then takes SourceMapper.record's path."""

    def __init__(self, source: Source, mapper: SourceMapper, records: TableBuffer, chunk_rows: int = 50_000):
        self.source, self.records, self.chunk_rows = source, records, chunk_rows
        self.text_column, self.pivot_column = mapper.required["text"], mapper.required["pivot_text"]
        self.columns: dict[str, list] = {"id": [], "text": [], "pivot_text": [], "origin": []}
        # record_id's payload around the two texts (meta is "{}"), a test holds the ids alike
        self.head = "\x1f".join((source.id, "parallel", source.lang, ""))
        self.middle = "\x1f".join(("", source.pivot_lang or "", ""))
        self.tail = "\x1f{}"

    def add(self, row: Row) -> bool:
        if row.meta:
            return False
        return self.add_values(row.origin, row.fields.get(self.text_column), row.fields.get(self.pivot_column))

    def add_values(self, origin: str, text: Any, pivot: Any) -> bool:
        if (type(text) is not str or type(pivot) is not str or not text or not pivot or text.isspace()
                or pivot.isspace() or len(text) > MAX_LINE_CHARS or len(pivot) > MAX_LINE_CHARS):
            return False
        try:
            record = sha256((self.head + text + self.middle + pivot + self.tail).encode("utf-8")).hexdigest()[:16]
        except UnicodeEncodeError:
            return False
        columns = self.columns
        columns["id"].append(record)
        columns["text"].append(text)
        columns["pivot_text"].append(pivot)
        columns["origin"].append(origin)
        if len(columns["id"]) >= self.chunk_rows:
            self.flush()
        return True

    def add_block(self, name: str, block: AlignedBlock) -> list[Row]:
        """A block of aligned lines, a list comprehension at a time; returns the rows (as Rows) that
        need SourceMapper.record's judgement, in order."""
        texts, pivots = block.texts, block.pivots
        plain = [bool(text) and bool(pivot) and not text.isspace() and not pivot.isspace()
                 and len(text) <= MAX_LINE_CHARS and len(pivot) <= MAX_LINE_CHARS for text, pivot in zip(texts, pivots)]
        origins = [f"{name}:{number}" for number in range(block.first, block.first + len(texts))]
        others = [Row(origin, {self.text_column: text, self.pivot_column: pivot})
                  for origin, text, pivot, ok in zip(origins, texts, pivots, plain) if not ok]
        if others:
            texts, pivots, origins = ([value for value, ok in zip(values, plain) if ok] for values in (texts, pivots, origins))
        head, middle, tail = self.head, self.middle, self.tail
        # decoded from a file, these texts are valid UTF-8: no encoding error to catch
        self.columns["id"].extend(sha256((head + text + middle + pivot + tail).encode("utf-8")).hexdigest()[:16]
                                  for text, pivot in zip(texts, pivots))
        self.columns["text"].extend(texts)
        self.columns["pivot_text"].extend(pivots)
        self.columns["origin"].extend(origins)
        if len(self.columns["id"]) >= self.chunk_rows:
            self.flush()
        return others

    def flush(self) -> None:
        count = len(self.columns["id"])
        if count:
            constant = {"source": self.source.id, "kind": "parallel", "lang": self.source.lang,
                        "pivot_lang": self.source.pivot_lang, "meta": "{}"}
            self.records.add_table(pa.table({name: self.columns[name] if name in self.columns
                                             else pa.repeat(pa.scalar(constant[name], pa.string()), count)
                                             for name in RECORD_SCHEMA.names}, schema=RECORD_SCHEMA))
            self.columns = {name: [] for name in self.columns}
