"""A large JSON Lines file of a parallel source, parsed on all cores.

Parsing JSON and hashing record ids is most of ingest's time on such a file, and one process does it
on one core. Here the main process reads and decodes the file a block of lines at a time, a block of
good lines as one string (readers.jsonl.numbered_blocks); each worker process splits and parses
GROUP_BLOCKS blocks at a time (orjson for a plain pair, see plain_object; readers.jsonl.jsonl_item for
every other line) and builds the records of their plain rows column by column (mapping.ParallelColumns),
returned as one Arrow table in the prefix order of its ids (core.buckets). Every other line (a
reject, a row that needs SourceMapper.record's judgement) comes back as the item read_jsonl gives, for
ingest to handle as it handles any row. The records are the ones read row by row would give, and
ingest writes them sorted by (id, origin): their order of arrival does not show in the output.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from langfoundry.core.buckets import in_bucket_order
from langfoundry.core.config import Source
from langfoundry.core.pool import ordered_map, worker_count
from langfoundry.core.records import RECORD_SORT
from langfoundry.data.mapping import ParallelColumns, SourceMapper
from langfoundry.data.readers import SourceFile
from langfoundry.data.readers.encoding import Line
from langfoundry.data.readers.jsonl import jsonl_item, numbered_blocks
from langfoundry.data.readers.rows import BadRow, Row

# Below this size one process is as quick: starting the workers costs more than they save.
PARALLEL_MIN_BYTES = 8 << 20
# Blocks of lines (half a million characters each) a worker parses at a time: its records come back
# as one table of tens of thousands of rows, which ingest's writer can cut by bucket in a few slices.
GROUP_BLOCKS = 16


@dataclass
class ParsedBlock:
    records: pa.Table | None  # the plain rows' records
    others: list[Row | BadRow]  # every other row, in file order
    columns: list[str]  # the keys the block's objects have, in order of appearance


def in_parallel(file: SourceFile, columns: ParallelColumns | None) -> bool:
    """Whether a file is read here: JSON Lines of a parallel source, large enough, with cores to use."""
    return (columns is not None and file.format == "jsonl" and file.pivot_path is None
            and file.path.stat().st_size >= PARALLEL_MIN_BYTES and worker_count() > 1)


class _Tables:
    """Where a worker's ParallelColumns puts its records (ingest's TableBuffer in the main process)."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []

    def add_table(self, table: pa.Table) -> None:
        self.tables.append(table)


_worker: tuple[str, Source, SourceMapper] | None = None  # set once in each worker process


def _start_worker(name: str, source: Source, mapper: SourceMapper) -> None:
    global _worker
    _worker = (name, source, mapper)


def plain_object(line: str | Line) -> dict[str, Any] | None:
    """The line's JSON object when orjson reads it and no key can repeat; None sends the line to
    jsonl_item, which judges every line alike.

    orjson parses a line in a quarter of json's time. It refuses what json takes (NaN, lone
    surrogates, depth over 1,024) and reads an integer over 64 bits as a float, so its object only
    serves a row whose two texts are plain strings, the one case where the values read are strings
    alone. With no more colons than keys, no key can be repeated (see readers.jsonl.parse_json)."""
    if type(line) is not str:
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict and len(value) >= line.count(":") else None


def parse_block(block: tuple[int, list[str | Line] | str]) -> ParsedBlock:
    """One block of lines (the number of its first line, its lines, or their text joined by "\n")
    parsed into records and others."""
    assert _worker is not None, "parse_block runs in a worker that _start_worker set up"
    name, source, mapper = _worker
    first, lines = block
    if isinstance(lines, str):
        lines = lines.split("\n")
    tables = _Tables()
    columns = ParallelColumns(source, mapper, tables, chunk_rows=len(lines) + 1)
    text_column, pivot_column = columns.text_column, columns.pivot_column
    others: list[Row | BadRow] = []
    seen: dict[str, None] = {}
    for number, line in enumerate(lines, first):
        value = plain_object(line)
        if value is not None:
            seen.update(dict.fromkeys(value))
            if columns.add_values(f"{name}:{number}", value.get(text_column), value.get(pivot_column)):
                continue
        item = jsonl_item(number, line, name)
        if item is None:
            continue
        if isinstance(item, Row):
            seen.update(dict.fromkeys(item.fields))
            if columns.add(item):
                continue
        others.append(item)
    columns.flush()
    records = pa.concat_tables(tables.tables) if tables.tables else None
    return ParsedBlock(records, others, list(seen))


def parse_blocks(blocks: list[tuple[int, list[str | Line] | str]]) -> ParsedBlock:
    """Consecutive blocks parsed as one: their records in one table, in the bucket order of their ids
    (ingest writes records sorted by id; see core.buckets.in_bucket_order), their other rows in file order."""
    parsed = [parse_block(block) for block in blocks]
    tables = [block.records for block in parsed if block.records is not None]
    records = in_bucket_order(pa.concat_tables(tables), RECORD_SORT[0]) if tables else None
    columns = dict.fromkeys(column for block in parsed for column in block.columns)
    return ParsedBlock(records, [row for block in parsed for row in block.others], list(columns))


def parsed_blocks(file: SourceFile, source: Source, mapper: SourceMapper) -> Iterator[ParsedBlock]:
    """The file's blocks, parsed by worker processes GROUP_BLOCKS at a time, in file order."""
    blocks = numbered_blocks(file.path, file.name, source, joined=True)
    groups = iter(lambda: list(itertools.islice(blocks, GROUP_BLOCKS)), [])
    yield from ordered_map(parse_blocks, groups, worker_count(), _start_worker, (file.name, source, mapper))
