"""The tables the quality gates validate, built with pyarrow from a stage's inputs and outputs.

A gate checks two tables against its suite (langfoundry.gates.gate):

- rows: the stage's output, one row per record (or per chat example), with a few columns computed
  only for checking: `group_in_several_splits` (leakage), and for chat examples `chat_valid` and
  `chat_problem`, `record_split` and `origin` (looked up from the split table by record id);
- sources: one row per source with what went in and out of the stage (`rows_in`, `kept`,
  `rejected`, `accounted` = kept + rejected), its `reject_rate` and `allowed_reject_rate`, the
  mean share of letters written in the language's script on either side (`mean_script_ratio`,
  `mean_pivot_script_ratio`), and the share of pairs whose text equals its pivot
  (`text_equals_pivot_share`, sides compared in comparison form). An expectation on this table
  fails on the source's row, so its message names the source.

The *_tables functions below build them from tables in memory; langfoundry.gates.streamed builds
the same from the files a stage wrote, in bounded memory, with the counts and sums of a
SourceTally (langfoundry.clean.measures), which the clean stage fills as it filters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.clean.measures import SourceTally, count_sources
from langfoundry.core.config import QualityParams
from langfoundry.core.errors import UserError
from langfoundry.data.chat import check_example
from langfoundry.gates.rows import ROW_SORT, RowStream

EXAMPLE_KEYS = ("origin", "id", "chat_problem")  # what names an offending chat example


@dataclass
class GateTables:
    # A table in memory, or a stream read batch by batch (langfoundry.gates.rows)
    rows: pa.Table | RowStream
    sources: pa.Table | None = None
    # Columns that identify an offending row in the failure table and the report.
    row_keys: tuple[str, ...] = ("origin",)
    # The order the rows are in (a table in memory is sorted so before validation).
    sorted_by: tuple[str, ...] = ROW_SORT
    # Rewrites the offending rows a report shows, in place (e.g. record ids to their origins).
    shown_rows: Callable[[list[dict[str, Any]]], None] | None = None


# --- per-row columns computed for checking ---------------------------------------------------------


def groups_in_several_splits(groups: pa.ChunkedArray | pa.Array, splits: pa.ChunkedArray | pa.Array) -> pa.Array:
    """True for each row whose group also has rows in another split: the split leaks."""
    pairs = pa.table({"group": groups, "split": splits})
    per_group = pairs.group_by("group", use_threads=False).aggregate([("split", "count_distinct")])
    leaking = per_group.filter(pc.greater(per_group.column("split_count_distinct"), 1)).column("group")
    return pc.fill_null(pc.is_in(pairs.column("group"), value_set=leaking.combine_chunks()), False)


# --- the per-source table ----------------------------------------------------------------------


def rows_per_source(table: pa.Table | None) -> Counter:
    if table is None or table.num_rows == 0:
        return Counter()
    return count_sources(table.column("source"))


MEASURE_COLUMNS = ("source", "text", "pivot_text", "lang", "pivot_lang")  # what SourceTally.add reads


def source_table(rows_in: Mapping[str, int], kept: pa.Table | SourceTally, rejects: pa.Table | Counter | None,
                 quality: QualityParams, scripts: Mapping[str, str] | None = None) -> pa.Table:
    """One row per source: rows in and out of the stage and, with scripts, measures of the kept rows.
    kept is the kept table or a tally of it (SourceTally), rejects the rejects table or its counts."""
    if isinstance(kept, pa.Table):
        tally = SourceTally(scripts)
        tally.add(kept)
        kept = tally
    rejected_counts = rejects if isinstance(rejects, Counter) else rows_per_source(rejects)
    names = sorted(set(rows_in) | set(kept.kept) | set(rejected_counts))
    columns: dict[str, Any] = {
        "source": names,
        "rows_in": [rows_in.get(name, 0) for name in names],
        "kept": [kept.kept[name] for name in names],
        "rejected": [rejected_counts[name] for name in names],
    }
    columns["accounted"] = [k + r for k, r in zip(columns["kept"], columns["rejected"])]
    columns["reject_rate"] = [r / n if n else 0.0 for r, n in zip(columns["rejected"], columns["rows_in"])]
    columns["allowed_reject_rate"] = [quality.max_reject_rate_by_source.get(name, quality.max_reject_rate)
                                      for name in names]
    if kept.scripts is not None:
        for column in SourceTally.MEANS:
            means = kept.means(column)
            columns[column] = pa.array([means.get(name) for name in names], pa.float64())
    return pa.table(columns)


# --- one function per gated table ----------------------------------------------------------------


def ingested_tables(records: pa.Table, rejects: pa.Table, rows_read: Mapping[str, int],
                    quality: QualityParams) -> GateTables:
    """ingest: rows read per source (as the readers counted them) = records + rejects written.

    No content measures here: script share and untranslated copies are what clean filters, so the
    clean gate judges them on what clean keeps (a gate judges what its own stage controls)."""
    check_source_limits(quality, rows_read)
    return GateTables(records, source_table(rows_read, records, rejects, quality))


def check_source_limits(quality: QualityParams, rows_read: Mapping[str, int]) -> None:
    """A per-source reject limit must name a source that was read (a typo would silently not apply)."""
    unknown = sorted(set(quality.max_reject_rate_by_source) - set(rows_read))
    if unknown:
        raise UserError(f"params.yaml: quality.max_reject_rate_by_source.{unknown[0]}: there is no source "
                        f"{unknown[0]!r} in sources.yaml (sources: {', '.join(sorted(rows_read)) or 'none'})")


def clean_tables(ingested: pa.Table, kept: pa.Table, rejects: pa.Table, scripts: Mapping[str, str],
                 quality: QualityParams) -> GateTables:
    """clean: ingested rows per source = kept + rejected by a filter."""
    return GateTables(kept, source_table(rows_per_source(ingested), kept, rejects, quality, scripts))


def split_tables(unsplit: pa.Table, split: pa.Table, quality: QualityParams) -> GateTables:
    """split: every input row is in exactly one split, and no group straddles two splits."""
    leaks = groups_in_several_splits(split.column("group"), split.column("split"))
    rows = split.append_column("group_in_several_splits", leaks)
    return GateTables(rows, source_table(rows_per_source(unsplit), split, None, quality))


def chat_problem(example: Mapping[str, Any]) -> str | None:
    """Why an example is not a well-formed chat (roles in order, no empty content, ends with the
    answer), or None when it is one."""
    try:
        check_example(example)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return str(err) or type(err).__name__
    return None


EXAMPLE_SCHEMA = pa.schema([(name, pa.string()) for name in ("id", "record_id", "task", "split", "lang", "pivot_lang",
                                                              "source", "group", "source_text", "reference")]
                           + [("turns", pa.int64()), ("chat_valid", pa.bool_()), ("chat_problem", pa.string()),
                              ("record_split", pa.string()), ("origin", pa.string()), ("copies", pa.int64())])


def example_row(example: Mapping[str, Any], split_name: str) -> dict[str, Any]:
    """An example's row of the processed table, less what the split table and its repeats tell
    (record_split, origin, copies)."""
    problem = chat_problem(example)
    return {
        "id": example.get("id"),
        "record_id": example.get("record_id"),
        "task": example.get("task"),
        "split": split_name,
        "lang": example.get("lang"),
        "pivot_lang": example.get("pivot_lang"),
        "source": example.get("source"),
        "group": example.get("group"),
        "source_text": example.get("source_text"),
        "reference": example.get("reference"),
        "turns": len(example.get("messages") or []),
        "chat_valid": problem is None,
        "chat_problem": problem,
    }


def processed_tables(examples: Mapping[str, Iterable[Mapping[str, Any]]], split: pa.Table) -> GateTables:
    """format: the train/val/test examples as one flat table, one row per distinct example (`copies`
    counts repeats a task weight above 1 made), each traced back to its record's origin and split.
    For examples in memory; the format stage's files are read in bounded memory by
    langfoundry.gates.streamed.processed_gate_tables."""
    origin_of = dict(zip(split.column("id").to_pylist(), split.column("origin").to_pylist()))
    split_of = dict(zip(split.column("id").to_pylist(), split.column("split").to_pylist()))
    rows: list[dict[str, Any]] = []
    copies: Counter = Counter()
    for split_name, split_examples in sorted(examples.items()):
        for example in split_examples:
            key = (split_name, example.get("id"))
            copies[key] += 1
            if copies[key] > 1:
                continue
            rows.append({**example_row(example, split_name), "record_split": split_of.get(example.get("record_id")),
                         "origin": origin_of.get(example.get("record_id"))})
    for row in rows:
        row["copies"] = copies[(row["split"], row["id"])]
    table = pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA)
    leaks = groups_in_several_splits(table.column("group"), table.column("split"))
    return GateTables(table.append_column("group_in_several_splits", leaks), None, EXAMPLE_KEYS, ("id",))
