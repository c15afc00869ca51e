"""Ingest: every source in sources.yaml into one table of records, and every row that could not
become a record into a table of rejects (each input row lands in exactly one of them).

Readers (langfoundry.data.readers) yield rows as read; langfoundry.data.mapping maps each row to a
record of its source's kind, or says why it cannot be one. The records and rejects are written
sorted, in bounded memory (ingest_to_files), with metrics that count rows per source and reason.

An empty file (no bytes, or only a byte order mark), whatever its format, gives zero rows and a
warning rather than an error, so one empty file in a folder of many does not stop the pipeline; the
metrics count such files (`empty_files`). A file with content but no rows (a CSV header alone) warns too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from langfoundry.core.config import IngestParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import Language, require_languages
from langfoundry.core.records import RECORD_SCHEMA, RECORD_SORT, REJECT_SCHEMA, make_reject, records_table, rejects_table
from langfoundry.core.storage import write_metrics
from langfoundry.core.streaming import SortedParquetWriter, written_together
from langfoundry.data.jsonl_columns import in_parallel, parsed_blocks
from langfoundry.data.mapping import ParallelColumns, Rejected, SourceMapper, check_source
from langfoundry.data.readers import BadRow, Header, Item, Row, SourceFile, read_file, source_files
from langfoundry.data.readers.encoding import RAW_PREFIX_CHARS, is_empty
from langfoundry.data.readers.rows import one_line, raw_json
from langfoundry.data.readers.text import AlignedBlock, aligned_blocks
from langfoundry.data.synth_records import SYNTHETIC_FORMAT, is_synthetic, read_synthetic, synthetic_files, synthetic_sources

log = logging.getLogger(__name__)

STAGE = "ingest"
REJECT_SORT = ("source", "origin", "reason", "detail", "raw")
PROGRESS_EVERY = 200_000


class TableBuffer:
    """Rows collected into Arrow tables a chunk at a time, so millions of rows do not stay Python dicts;
    with a sink (a streaming.SortedParquetWriter) each full chunk goes to it rather than staying in memory."""

    def __init__(self, to_table, chunk_rows: int = 50_000, sink: SortedParquetWriter | None = None):
        self.to_table, self.chunk_rows, self.sink = to_table, chunk_rows, sink
        self.rows: list[dict[str, Any]] = []
        self.tables: list[pa.Table] = []

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            table, self.rows = self.to_table(self.rows), []
            self.add_table(table)

    def add_table(self, table: pa.Table) -> None:
        """Rows already in a table (after the rows appended so far)."""
        self.flush()
        if self.sink is not None:
            self.sink.write(table)
        else:
            self.tables.append(table)

    def table(self) -> pa.Table:
        tables = self.tables + [self.to_table(self.rows)]
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


@dataclass
class SourceCounts:
    files: int = 0
    empty_files: int = 0
    rows_read: int = 0
    kept: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    # columns no record field reads -> how many files have them (stated, not counted in metrics)
    unused_columns: Counter = field(default_factory=Counter)
    unknown_lang_tags: Counter = field(default_factory=Counter)  # a lang column's tags the inventory lacks

    def as_metrics(self) -> dict[str, Any]:
        rejected = sum(self.rejected_by_reason.values())
        return {"files": self.files, "empty_files": self.empty_files, "rows_read": self.rows_read, "kept": self.kept,
                "rejected": rejected, "rejected_by_reason": dict(sorted(self.rejected_by_reason.items()))} | \
            ({"unknown_lang_tags": dict(sorted(self.unknown_lang_tags.items()))} if self.unknown_lang_tags else {})


def _ingest_file(file: SourceFile, source: Source, mapper: SourceMapper, counts: SourceCounts,
                 records: TableBuffer, rejects: TableBuffer) -> None:
    try:
        _read_into(file, source, mapper, counts, records, rejects)
    except OSError as err:  # a dangling symlink, a file without read permission, a file gone mid-run
        raise UserError(f"sources.yaml: source {source.id!r}: cannot read {file.name} "
                        f"({err.strerror or one_line(err)}); check the file exists and is readable") from None


def _read_into(file: SourceFile, source: Source, mapper: SourceMapper, counts: SourceCounts,
               records: TableBuffer, rejects: TableBuffer) -> None:
    if is_empty(file.path) and (file.pivot_path is None or is_empty(file.pivot_path)):
        counts.empty_files += 1
        log.warning("warning: %s (source %s) is empty; it adds no rows", file.name, source.id)
        return
    rows_before = counts.rows_read
    columns = ParallelColumns(source, mapper, records) if source.kind == "parallel" and not mapper.per_row else None
    if columns is not None and file.pivot_path is not None and set(mapper.required.values()) == {"text", "pivot_text"}:
        items = aligned_blocks(file.path, file.name, file.pivot_path, file.pivot_name or "", source)
    elif in_parallel(file, columns):  # a large JSON Lines file: parsed on all cores
        items = _parsed_in_parallel(file, source, mapper, counts, records)
    elif file.format == SYNTHETIC_FORMAT:  # the synthesize stage's variations, with their provenance meta
        items = read_synthetic(file.path, file.name, source)
    else:
        items = read_file(file, source)
    for item in items:
        if isinstance(item, Header):
            counts.unused_columns.update(mapper.check_header(item))
            continue
        if isinstance(item, AlignedBlock):  # good rows of aligned lines: the others go row by row below
            before = counts.rows_read
            counts.rows_read += len(item.texts)
            if counts.rows_read // PROGRESS_EVERY > before // PROGRESS_EVERY:
                log.info("  %s: %d rows read", source.id, counts.rows_read)
            rows = columns.add_block(file.name, item)
            counts.kept += len(item.texts) - len(rows)
            for row in rows:
                _add_row(row, source, mapper, counts, records, rejects)
            continue
        counts.rows_read += 1
        if counts.rows_read % PROGRESS_EVERY == 0:
            log.info("  %s: %d rows read", source.id, counts.rows_read)
        if isinstance(item, BadRow):
            rejects.append(make_reject(source=source.id, origin=item.origin, stage=STAGE, reason=item.reason,
                                       detail=item.detail, raw=item.raw, lang=source.lang))
            counts.rejected_by_reason[item.reason] += 1
            continue
        if columns is None or not columns.add(item):
            _add_row(item, source, mapper, counts, records, rejects)
        else:
            counts.kept += 1
    if columns is not None:
        columns.flush()
    if counts.rows_read == rows_before:
        log.warning("warning: %s (source %s) has no rows; it adds nothing", file.name, source.id)


def _parsed_in_parallel(file: SourceFile, source: Source, mapper: SourceMapper, counts: SourceCounts,
                        records: TableBuffer) -> Iterator[Item]:
    """A JSON Lines file parsed by worker processes (data.jsonl_columns): the records of its plain rows
    go to records and are counted here; its other rows, then its header, are yielded to be handled
    as read_jsonl's are."""
    columns: dict[str, None] = {}
    for block in parsed_blocks(file, source, mapper):
        if block.records is not None:
            records.add_table(block.records)
            before = counts.rows_read
            counts.rows_read += block.records.num_rows
            counts.kept += block.records.num_rows
            if counts.rows_read // PROGRESS_EVERY > before // PROGRESS_EVERY:
                log.info("  %s: %d rows read", source.id, counts.rows_read)
        columns.update(dict.fromkeys(block.columns))
        yield from block.others
    if columns:
        yield Header(file.name, tuple(columns))


def _add_row(row: Row, source: Source, mapper: SourceMapper, counts: SourceCounts, records: TableBuffer,
             rejects: TableBuffer) -> None:
    """The record SourceMapper makes of a row, or the reject that says why it cannot be one."""
    try:
        records.append(mapper.record(row))
        counts.kept += 1
    except Rejected as rejected:
        raw = raw_json(row.fields)
        if rejected.reason == "value_too_long":
            raw = raw[:RAW_PREFIX_CHARS]
        rejects.append(make_reject(source=source.id, origin=row.origin, stage=STAGE, reason=rejected.reason,
                                   detail=rejected.detail, raw=raw, lang=source.lang))
        counts.rejected_by_reason[rejected.reason] += 1
        if rejected.tag is not None:
            counts.unknown_lang_tags[rejected.tag] += 1


def ingest_source(source: Source, root: Path, allow_outside_repo: bool, records: TableBuffer,
                  rejects: TableBuffer, languages: Iterable[str] = ()) -> SourceCounts:
    """Read one source's files, appending its records and rejects; its counts. languages: the inventory's
    tags, which a row's own tag (a lang column) must be one of."""
    counts = SourceCounts()
    mappers: dict[str, SourceMapper] = {}
    files = synthetic_files(source, root) if is_synthetic(source) else source_files(source, root, allow_outside_repo)
    for file in files:
        counts.files += 1
        mapper = mappers.setdefault(file.format, SourceMapper(source, file.format, languages))
        _ingest_file(file, source, mapper, counts, records, rejects)
    return counts


def ingest_to_files(sources: Iterable[Source], params: IngestParams, inventory: dict[str, Language], *,
                    records_path: Path | str, rejects_path: Path | str, metrics_path: Path | str,
                    root: Path | str = ".") -> dict[str, Any]:
    """Read every source into the record and reject files, sorted, in bounded memory (rows that do not
    fit spill to disk, see langfoundry.core.streaming), and write the metrics; returns the metrics.
    Relative source paths are read from root; the output paths are taken as given."""
    root = Path(root)
    with written_together(SortedParquetWriter(records_path, RECORD_SCHEMA, RECORD_SORT),
                          SortedParquetWriter(rejects_path, REJECT_SCHEMA, REJECT_SORT)) as (records_file, rejects_file):
        records = TableBuffer(records_table, sink=records_file)
        rejects = TableBuffer(rejects_table, sink=rejects_file)
        metrics = _read_sources(sources, params, inventory, root, records, rejects)
        records.flush()
        rejects.flush()
    write_metrics(metrics_path, metrics)
    return metrics


def _read_sources(sources: Iterable[Source], params: IngestParams, inventory: dict[str, Language],
                  root: Path | str, records: TableBuffer, rejects: TableBuffer) -> dict[str, Any]:
    sources = list(sources)
    require_languages({tag for source in sources for tag in (source.lang, source.pivot_lang) if tag},
                      inventory, "sources.yaml")
    for source in sources:
        check_source(source)
    planned = [source.id for source in sources if source.planned]
    if planned:
        log.info("planned, not read (coverage lists them): %s", ", ".join(planned))
    sources = [source for source in sources if not source.planned]
    root = Path(root)
    sources += synthetic_sources(sources, root)  # <seed>.synthetic: variations the synthesize stage wrote
    per_source: dict[str, SourceCounts] = {}
    for source in sources:
        counts = per_source[source.id] = ingest_source(source, root, params.allow_outside_repo, records, rejects,
                                                        inventory)
        summary = counts.as_metrics()
        log.info("%s: %d rows read, %d kept, %d rejected%s", source.id, summary["rows_read"], summary["kept"],
                 summary["rejected"], "".join(f", {reason} {n}" for reason, n in summary["rejected_by_reason"].items()))
        if counts.unused_columns:
            log.info("%s: column(s) no record field reads, ignored: %s (map them with columns: in sources.yaml "
                     "to use them)", source.id, ", ".join(sorted(counts.unused_columns)))
    by_reason: Counter = Counter()
    for counts in per_source.values():
        by_reason.update(counts.rejected_by_reason)
    metrics = {
        "sources_read": len(per_source),
        "files": sum(counts.files for counts in per_source.values()),
        "rows_read": sum(counts.rows_read for counts in per_source.values()),
        "kept": sum(counts.kept for counts in per_source.values()),
        "rejected": sum(by_reason.values()),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "sources": {source_id: counts.as_metrics() for source_id, counts in sorted(per_source.items())},
    }
    return metrics
