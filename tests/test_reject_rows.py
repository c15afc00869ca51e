"""Rejects built a column at a time carry the same raw JSON as make_reject writes row by row."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import polib
import pyarrow as pa
import pytest

from langfoundry.core.records import (
    RECORD_COLUMNS,
    REJECT_SCHEMA,
    json_strings,
    make_reject,
    record_rejects,
)

# every character json.dumps escapes, a few it must not (DEL, U+0085, U+2028, an emoji), and plain ones
ALPHABET = [chr(code) for code in range(0x20)] + list('"\\/ azé漢\x7f\u0085\u2028🙂')


def random_text(rng: random.Random) -> str | None:
    return None if rng.random() < 0.1 else "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14)))


def rejects_row_by_row(rows: pa.Table, stage: str, reasons: list[str], details: list[str | None]) -> pa.Table:
    return pa.Table.from_pylist([
        make_reject(source=row["source"], origin=row["origin"], stage=stage, reason=reason, detail=detail, id=row["id"],
                    lang=row["lang"], raw={name: row[name] for name in RECORD_COLUMNS})
        for row, reason, detail in zip(rows.to_pylist(), reasons, details)], schema=REJECT_SCHEMA)


@pytest.mark.parametrize("seed", range(4))
def test_json_strings_write_what_json_dumps_writes(seed: int) -> None:
    rng = random.Random(seed)
    values = [random_text(rng) for _ in range(2000)]
    written = json_strings(pa.array(values, pa.string())).to_pylist()
    assert written == [json.dumps(value, ensure_ascii=False) for value in values]
    assert [json.loads(text) for text in written] == values


def test_a_column_without_anything_to_escape_is_only_quoted() -> None:
    assert json_strings(pa.chunked_array([["a b", None], ["ü"]])).to_pylist() == ['"a b"', "null", '"ü"']


def test_record_rejects_match_make_reject_on_chunked_random_rows() -> None:
    rng = random.Random(7)
    schema = pa.schema([(name, pa.string()) for name in RECORD_COLUMNS])
    chunks = [pa.Table.from_pylist([{name: random_text(rng) for name in RECORD_COLUMNS} for _ in range(size)], schema)
              for size in (300, 1, 0, 250)]
    rows = pa.concat_tables(chunks)
    assert rows.column("text").num_chunks == 4
    reasons = [rng.choice(["exact_duplicate", "script_ratio"]) for _ in range(rows.num_rows)]
    details = [random_text(rng) for _ in range(rows.num_rows)]
    built = record_rejects(rows, "dedup", reasons, details)
    assert built.schema == REJECT_SCHEMA
    assert built.equals(rejects_row_by_row(rows, "dedup", reasons, details))


def test_record_rejects_match_make_reject_on_a_real_catalogue() -> None:
    """Django's Indonesian messages (format strings, quotes, plural forms): text nobody here wrote."""
    spec = importlib.util.find_spec("django")
    assert spec is not None, "django is missing: install the dev extras"
    catalogue = Path(spec.origin).parent / "conf" / "locale" / "id" / "LC_MESSAGES" / "django.po"
    entries = [entry for entry in polib.pofile(str(catalogue)) if entry.msgstr]
    assert len(entries) > 300
    rows = pa.Table.from_pylist([
        {"id": f"{index:016x}", "source": "django", "kind": "parallel", "lang": "id", "text": entry.msgstr,
         "pivot_lang": "en", "pivot_text": entry.msgid, "meta": json.dumps({"context": entry.msgctxt}) if entry.msgctxt
         else "{}", "origin": f"{catalogue.name}:{entry.linenum}"} for index, entry in enumerate(entries)])
    assert any('"' in text or "\n" in text for text in rows.column("pivot_text").to_pylist())
    reasons, details = ["min_chars"] * rows.num_rows, [None] * rows.num_rows
    built = record_rejects(rows, "clean", reasons, details)
    assert built.equals(rejects_row_by_row(rows, "clean", reasons, details))
    assert [json.loads(raw)["text"] for raw in built.column("raw").to_pylist()] == rows.column("text").to_pylist()


def test_record_rejects_refuse_reasons_that_do_not_match_the_rows() -> None:
    rows = pa.Table.from_pylist([{name: "x" for name in RECORD_COLUMNS}] * 3)
    with pytest.raises(ValueError, match="3 rows but 2 reasons"):
        record_rejects(rows, "dedup", ["a", "b"], [None, None])
