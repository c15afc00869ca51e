"""The clean stage's work: normalise, scrub personal data, and reject rows that fail a quality filter.

clean_batch does one batch: it normalises each side (text, pivot_text, and the language text inside
meta), replaces personal data with placeholders (langfoundry.clean.pii), and asks the filters
(langfoundry.clean.filters) which rows to reject. Rows of plain Latin-1 text are already normal and
hold no personal data, so they stay in Arrow untouched. clean_files streams a file through worker
processes in batches; clean_metrics sums the counts for metrics/clean.json. After the quality filters
come the screening filters (langfoundry.clean.screening: blocklists, the optional toxicity classifier),
whose rejects are counted per list and language too. Each batch also tallies,
per source, its rows in, kept and rejected and the measures of its kept rows that the clean gate
checks (measures.SourceTally), from the counts the filters took: the gate reads no text again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.clean import columnar, screening
from langfoundry.clean.filters import FILTER_NAMES, SIDES, first_failures
from langfoundry.clean.measures import BatchSide, SourceTally, count_sources, kept_measures
from langfoundry.clean.pii import PII_TYPES, scrub_pii
from langfoundry.core.config import CleanParams
from langfoundry.core.errors import UserError
from langfoundry.core.normalize import MULTILINE_KINDS, map_meta_texts, normalize_text
from langfoundry.core.pool import WorkerParquet, ordered_map, worker_count
from langfoundry.core.records import REJECT_SCHEMA, meta_json, record_rejects
from langfoundry.core.streaming import SortedParquetWriter, open_parquet, written_together

META_TEXT_KINDS = frozenset({"conversation", "instruction", "dictionary"})


@dataclass
class CleanResult:
    kept: list[pa.Table] = field(default_factory=list)
    rejects: list[pa.Table] = field(default_factory=list)
    # ("in"|"kept", lang), ("dropped", filter, lang), ("pii", type, lang), ("screening", list, lang)
    counts: Counter = field(default_factory=Counter)

    def kept_table(self, schema: pa.Schema) -> pa.Table:
        return pa.concat_tables(self.kept) if self.kept else schema.empty_table()

    def rejects_table(self) -> pa.Table:
        return pa.concat_tables(self.rejects) if self.rejects else REJECT_SCHEMA.empty_table()


class TextPreparer:
    """Normalises (and, with scrub_pii, scrubs) texts, remembering the personal data found per row."""

    def __init__(self, params: CleanParams):
        self.params = params
        self.pii_by_row: dict[int, Counter] = {}

    def __call__(self, text: str, multiline: bool, row: int) -> str:
        text = normalize_text(text, self.params.zero_width, multiline)
        if self.params.scrub_pii:
            text, found = scrub_pii(text)
            if found:
                self.pii_by_row.setdefault(row, Counter()).update(found)
        return text


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _replaced(column: pa.Array, values: Mapping[int, str | None]) -> pa.Array:
    """The column with the given rows' values replaced."""
    if not values:
        return column
    rows = sorted(values)
    mask = np.zeros(len(column), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(column, pa.array(mask), pa.array([values[row] for row in rows], type=column.type))


def _prepared_sides(table: pa.Table, kinds: list[str], prepare: TextPreparer) -> dict[str, BatchSide]:
    """Each side, with the rows that are not plain Latin-1 normalised and scrubbed."""
    sides: dict[str, BatchSide] = {}
    for side in SIDES:
        column = _column(table, side)
        plain = columnar.plain_rows(column, prepare.params.scrub_pii)
        others = np.flatnonzero(~plain & column.is_valid().to_numpy(zero_copy_only=False))
        values = column.take(pa.array(others, type=pa.int64())).to_pylist()
        sides[side] = BatchSide(column, plain, {int(row): prepare(text, kinds[row] in MULTILINE_KINDS, int(row))
                                                for row, text in zip(others, values)})
    return sides


def _prepared_metas(table: pa.Table, kinds: list[str], prepare: TextPreparer, where: str) -> dict[int, str]:
    """The meta JSON of rows whose language text inside meta changed when prepared, by row."""
    meta_rows = [row for row, kind in enumerate(kinds) if kind in META_TEXT_KINDS]
    changed_metas: dict[int, str] = {}
    for row, meta_text in zip(meta_rows, _column(table, "meta").take(pa.array(meta_rows, type=pa.int64())).to_pylist()):
        if meta_text in ("", "{}"):
            continue
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError as err:
            meta = err
        if not isinstance(meta, dict):
            origin = table.column("origin")[row].as_py()
            raise UserError(f"{where}: record {table.column('id')[row].as_py()} ({origin}) has meta that is not a JSON "
                            f"object; fix that row of the source and rerun ingest")
        changed = map_meta_texts(meta, kind=kinds[row], transform=lambda text, flag, row=row: prepare(text, flag, row))
        if changed != meta:
            changed_metas[row] = meta_json(changed)
    return changed_metas


def _counts(langs: list[str], failures: list[tuple[str, str] | None], pii_by_row: Mapping[int, Counter]) -> Counter:
    """Rows in and kept per language, drops per filter and language, placeholders in the kept rows."""
    kept = [i for i, failure in enumerate(failures) if failure is None]
    counts: Counter = Counter()
    counts.update({("in", lang): number for lang, number in Counter(langs).items()})
    counts.update({("kept", lang): number for lang, number in Counter(langs[i] for i in kept).items()})
    for i, failure in enumerate(failures):
        if failure is not None:
            counts[("dropped", failure[0], langs[i])] += 1
            if failure[0] == screening.BlocklistFilter.name:
                counts[("screening", screening.list_of(failure[1]), langs[i])] += 1
    for i in kept:
        for kind, number in pii_by_row.get(i, {}).items():
            counts[("pii", kind, langs[i])] += number
    return counts


def _reject_table(table: pa.Table, failures: list[tuple[str, str] | None]) -> pa.Table:
    """Reject records for the failed rows, each carrying the row as it came in."""
    rejected = [i for i, failure in enumerate(failures) if failure is not None]
    return record_rejects(table.take(pa.array(rejected, type=pa.int64())), "clean",
                          [failures[i][0] for i in rejected], [failures[i][1] for i in rejected])


def clean_batch(batch: pa.Table | pa.RecordBatch, params: CleanParams, scripts: Mapping[str, str],
                where: str = "data/interim/ingested.parquet",
                blocklists: screening.Blocklists | None = None) -> tuple[pa.Table, pa.Table, Counter]:
    """Normalise, scrub, filter and screen one batch of records: (kept, rejects, counts)."""
    return _clean_batch(batch, params, scripts, where, blocklists=blocklists)[:3]


def _source_tally(table: pa.Table, kept_table: pa.Table, kept: list[int], langs: list[str],
                  pivot_langs: list[str | None], sides: Mapping[str, BatchSide], scripts: Mapping[str, str]) -> SourceTally:
    """The batch's rows per source in, kept and rejected, and its kept rows' measures (those the
    filters took: measures() returns them again for the same scripts)."""
    tally = SourceTally(scripts)
    tally.rows_in.update(count_sources(table.column("source")))
    tally.kept.update(count_sources(kept_table.column("source")))
    tally.rejected.update(tally.rows_in - tally.kept)
    if kept_table.num_rows:
        rows = np.array(kept, dtype=np.int64)
        side_scripts = {"text": [scripts[lang] for lang in langs],
                        "pivot_text": [scripts[lang] if lang else None for lang in pivot_langs]}
        measured = {side: sides[side].measures(names).take(rows) for side, names in side_scripts.items()}
        tally.add_measured(kept_table.column("source"), kept_measures(kept_table, scripts, measured, (sides, rows)))
    return tally


def _clean_batch(batch: pa.Table | pa.RecordBatch, params: CleanParams, scripts: Mapping[str, str],
                 where: str, tally: bool = False, blocklists: screening.Blocklists | None = None,
                 ) -> tuple[pa.Table, pa.Table, Counter, SourceTally | None]:
    """clean_batch, and with tally the batch's SourceTally."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    kinds, langs, pivot_langs = (table.column(name).to_pylist() for name in ("kind", "lang", "pivot_lang"))
    unknown = sorted({tag for tag in langs + pivot_langs if tag and tag not in scripts})
    if unknown:
        raise UserError(f"{where}: language tag(s) {', '.join(map(repr, unknown))} not in data/inventory/languages.csv; "
                        f"add a row there (with its script) and rerun")
    prepare = TextPreparer(params)
    sides = _prepared_sides(table, kinds, prepare)
    changed_metas = _prepared_metas(table, kinds, prepare, where)
    failures = first_failures(kinds, langs, pivot_langs, sides, params, scripts, screening.screens(params, blocklists))

    normalised = table
    for name, values in {"text": _replaced(sides["text"].column, sides["text"].prepared),
                         "pivot_text": _replaced(sides["pivot_text"].column, sides["pivot_text"].prepared),
                         "meta": _replaced(_column(table, "meta"), changed_metas)}.items():
        normalised = normalised.set_column(table.schema.get_field_index(name), table.schema.field(name), values)
    kept = [i for i, failure in enumerate(failures) if failure is None]
    kept_table = normalised.take(pa.array(kept, type=pa.int64()))
    sources = _source_tally(table, kept_table, kept, langs, pivot_langs, sides, scripts) if tally else None
    return kept_table, _reject_table(table, failures), _counts(langs, failures, prepare.pii_by_row), sources


def clean_batches(batches: Iterable[pa.Table | pa.RecordBatch], params: CleanParams, scripts: Mapping[str, str],
                  where: str = "data/interim/ingested.parquet", blocklists: screening.Blocklists | None = None,
                  ) -> CleanResult:
    """Clean batches in this process, holding the results in memory (see clean_parquet for files)."""
    result = CleanResult()
    for batch in batches:
        kept, rejects, counts = clean_batch(batch, params, scripts, where, blocklists)
        result.kept.append(kept)
        result.rejects.append(rejects)
        result.counts.update(counts)
    return result


CLEAN_BATCH_ROWS = 20_000  # rows a worker cleans at a time: enough to amortise the batch-wide passes
# A file of this many row groups or more is shared out a row group at a time, each read by the worker that
# cleans it, so this process, which writes the output, does not read and pickle every batch for them. A
# smaller file is read here in batches, which share its few row groups out evenly. Not a count per worker: how a
# file is cut into batches must not depend on the machine (the per-source sums are added up per batch).
ROW_GROUP_JOBS_FROM = 8
_WORKER_SETTINGS: tuple = ()


def _start_clean_worker(params: CleanParams, scripts: Mapping[str, str], where: str,
                        blocklists: screening.Blocklists | None, path: Path | None = None,
                        batch_rows: int = CLEAN_BATCH_ROWS) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = (params, scripts, where, blocklists, WorkerParquet(path) if path is not None else None, batch_rows)


BatchResult = tuple[pa.Table, pa.Table, Counter, SourceTally | None]


def _clean_in_worker(job: pa.RecordBatch | int) -> list[BatchResult]:
    """A batch read by the main process, or the row group of that number, read here and cleaned in
    batches of batch_rows: each batch's result, in order."""
    params, scripts, where, blocklists, source, batch_rows = _WORKER_SETTINGS
    if not isinstance(job, int):
        return [_clean_batch(job, params, scripts, where, tally=True, blocklists=blocklists)]
    rows = source.read_row_group(job)
    return [_clean_batch(rows.slice(start, batch_rows), params, scripts, where, tally=True, blocklists=blocklists)
            for start in range(0, rows.num_rows, batch_rows) or [0]]


@dataclass
class CleanOutcome:
    counts: Counter  # for clean_metrics
    sources: SourceTally  # per source: rows in, kept, rejected, and the kept rows' measures (the clean gate's)


def clean_files(input_path: str | Path, kept_path: str | Path, rejects_path: str | Path, params: CleanParams,
                scripts: Mapping[str, str], where: str | None = None, batch_rows: int = CLEAN_BATCH_ROWS,
                workers: int | None = None, blocklists: screening.Blocklists | None = None) -> CleanOutcome:
    """Clean a record file into kept and rejects files, sorted by (id, origin), streaming in batches
    over `workers` processes (all usable cores by default); returns the counts for clean_metrics and
    the per-source tally for the clean gate. blocklists: screening.load_blocklists' lists (none: no lists).

    Memory holds a few batches per worker; the kept rows keep the input's (id, origin) order, so
    they are written straight through, and rejects spill to disk only when they arrive out of order
    and outgrow memory (langfoundry.core.streaming).
    """
    source = open_parquet(input_path)
    outcome = CleanOutcome(Counter(), SourceTally(dict(scripts)))
    settings = (params, dict(scripts), where or str(input_path), blocklists, Path(input_path), batch_rows)
    groups = source.metadata.num_row_groups
    jobs = iter(range(groups)) if groups >= ROW_GROUP_JOBS_FROM else source.iter_batches(batch_size=batch_rows)
    with written_together(SortedParquetWriter(kept_path, source.schema_arrow, ("id", "origin")),
                          SortedParquetWriter(rejects_path, REJECT_SCHEMA, ("id", "origin"))) as (kept, rejects):
        results = ordered_map(_clean_in_worker, jobs, worker_count() if workers is None else workers,
                              _start_clean_worker, settings)
        for kept_rows, rejected_rows, batch_counts, batch_sources in (part for parts in results for part in parts):
            kept.write(kept_rows)
            rejects.write(rejected_rows)
            outcome.counts.update(batch_counts)
            outcome.sources.merge(batch_sources)
    return outcome


def clean_parquet(input_path: str | Path, kept_path: str | Path, rejects_path: str | Path, params: CleanParams,
                  scripts: Mapping[str, str], where: str | None = None, batch_rows: int = CLEAN_BATCH_ROWS,
                  workers: int | None = None) -> Counter:
    """clean_files, returning only the counts for clean_metrics."""
    return clean_files(input_path, kept_path, rejects_path, params, scripts, where, batch_rows, workers).counts


def clean_metrics(counts: Counter, blocklists: screening.Blocklists | None = None) -> dict[str, Any]:
    """Rows in/kept/rejected, drops per filter and language, placeholders per type and language in
    the kept rows (what the training data would otherwise have carried), and per blocklist its terms
    and the rows it rejected per language."""
    rows_in = sum(n for key, n in counts.items() if key[0] == "in")
    kept = sum(n for key, n in counts.items() if key[0] == "kept")
    metrics: dict[str, Any] = {"rows": {"in": rows_in, "kept": kept, "rejected": rows_in - kept},
                               "dropped": {name: {"total": 0} for name in FILTER_NAMES + screening.SCREEN_NAMES},
                               "pii": {kind: {"total": 0} for kind in PII_TYPES},
                               "lang": {}}
    lists = {blocklist.id: {"terms": len(blocklist.terms), "rejected": {"total": 0}}
             for blocklist in (blocklists.lists if blocklists else ())}
    if lists:
        metrics["screening"] = lists
    for key, number in sorted(counts.items()):
        if key[0] in ("in", "kept"):
            metrics["lang"].setdefault(key[1], {"in": 0, "kept": 0})[key[0]] = number
        elif key[0] == "screening":
            group = metrics.setdefault("screening", {}).setdefault(key[1], {"rejected": {"total": 0}})["rejected"]
            group[key[2]] = number
            group["total"] += number
        else:
            group = metrics[key[0]][key[1]]
            group[key[2]] = number
            group["total"] += number
    return metrics
