"""JSON text: parsed so that a key repeated in one object is seen, and JSON Lines, read a line or a
block of lines at a time (the block form lets ingest parse a large file on all cores)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langfoundry.core.config import Source
from langfoundry.data.readers.detect import reader_codec
from langfoundry.data.readers.encoding import Line, iter_joined_blocks, iter_line_blocks
from langfoundry.data.readers.rows import BadRow, Header, Item, Row


class _RepeatedKeys(dict):
    """A JSON object in which a key appears more than once: json keeps the last value silently."""

    repeated: tuple[str, ...] = ()


def parse_json(text: str) -> tuple[Any, bool]:
    """json.loads, and whether some object in the text repeats a key (see repeated_keys).

    json keeps a repeated key's last value without a word, so the pairs must be seen: a hook that
    sees each object's pairs halves json.loads' speed, and most texts need none. Every key in JSON
    text is followed by a colon, so a text with no more colons than its parsed value has keys
    cannot repeat one; only the rest (a colon inside a value, or a key twice) is parsed again."""
    value = json.loads(text)
    colons = text.count(":")
    if (type(value) is dict and len(value) >= colons) or _has_a_key_per_colon(value, colons):
        return value, False
    repeated = False

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        value = dict(pairs)
        if len(value) == len(pairs):
            return value
        repeated = True
        counts = Counter(key for key, _ in pairs)
        marked = _RepeatedKeys(value)
        marked.repeated = tuple(key for key in counts if counts[key] > 1)
        return marked

    return json.loads(text, object_pairs_hook=build), repeated


def _has_a_key_per_colon(value: Any, colons: int) -> bool:
    """Whether the objects in value hold at least `colons` keys (a stack, not recursion: any depth
    json parses)."""
    keys, stack = 0, [value]
    while stack and keys < colons:
        item = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if isinstance(item, dict):
            keys += len(item)
        stack.extend(child for child in children if isinstance(child, (dict, list)))
    return keys >= colons


def repeated_keys(value: Any) -> tuple[str, ...]:
    """Keys some object inside a parsed JSON value repeats (empty for most values)."""
    if isinstance(value, _RepeatedKeys):
        return value.repeated
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        if isinstance(child, (dict, list)) and (found := repeated_keys(child)):
            return found
    return ()


def repeated_detail(keys: tuple[str, ...]) -> str:
    return (f"key {', '.join(map(repr, keys))} appears more than once in one object (JSON would keep only "
            f"the last value); keep one")


def jsonl_item(number: int, line: str | Line, name: str) -> Row | BadRow | None:
    """What line `number` of a JSON Lines file is (a line as iter_line_blocks gives it): a row, a
    reject, or None for a blank line, which is not a row."""
    origin = f"{name}:{number}"
    if isinstance(line, Line):
        return BadRow(origin, line.reason or "unreadable", line.detail or "", line.raw)
    if not line.strip():
        return None
    try:
        record, repeated = parse_json(line)
    except json.JSONDecodeError as err:
        return BadRow(origin, "invalid_json", f"line {number}, column {err.colno}: {err.msg}", line)
    except (ValueError, RecursionError) as err:
        return BadRow(origin, "invalid_json", f"line {number}: {err}", line)
    if not isinstance(record, dict):
        return BadRow(origin, "not_an_object", f"line {number} is a JSON {type(record).__name__}", line)
    if repeated and (keys := repeated_keys(record)):
        return BadRow(origin, "duplicate_key", f"line {number}: {repeated_detail(keys)}", line)
    return Row(origin, record)


def numbered_blocks(path: Path, name: str, source: Source,
                    joined: bool = False) -> Iterator[tuple[int, list[str | Line] | str]]:
    """The file's lines a block at a time, each block with the number of its first line (joined:
    a block of good lines may come as one str, see iter_joined_blocks)."""
    codec = reader_codec(path, name, source.encoding, source.lang)
    blocks = iter_joined_blocks(path, codec) if joined else ((len(block), block) for block in iter_line_blocks(path, codec))
    number = 0
    for count, block in blocks:
        yield number + 1, block
        number += count


def read_jsonl(path: Path, name: str, source: Source) -> Iterator[Item]:
    """One JSON object per line; a broken line is a reject, blank lines are not rows.

    The header (every key seen) comes after the rows, since a stream has no header line.
    """
    columns: dict[str, None] = {}
    for first, block in numbered_blocks(path, name, source):
        for number, line in enumerate(block, first):
            item = jsonl_item(number, line, name)
            if isinstance(item, Row):
                columns.update(dict.fromkeys(item.fields))
            if item is not None:
                yield item
    if columns:
        yield Header(name, tuple(columns))
