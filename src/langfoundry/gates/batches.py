"""One Great Expectations result for a table validated batch by batch.

Each batch of a rows table (langfoundry.gates.rows) is validated on its own; `BatchResults` adds
the batches' results up, expectation by expectation, into one ExpectationSuiteValidationResult
that reads as if the whole table had been validated at once:

- map expectations (a verdict per row): element, missing and unexpected counts summed, the first
  SHOWN_ROWS offending rows kept, success decided again on the sums (GX's own rule, `mostly`
  included). Uniqueness is exact because a batch never splits the rows of one id (rows.py);
- row counts: the batches' counts summed and judged again by the expectation itself;
- the table's columns: the same in every batch, so the first failing batch's result stands.

Anything else (a column's mean, median or distinct values, an order across rows) cannot be
decided batch by batch: `check_batchable` refuses it on the rows table before anything runs.
Great Expectations is imported by the functions that need it, never at module import.

The data fingerprint in the result's batch markers is a digest of every batch's Arrow data
(`batch_fingerprint`), taken here rather than by GX: GX hashes each batch's data frame value by
value in pandas (0.3 s per 100,000 records, a third of its time on them), so its own hashing is
switched off.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from langfoundry.core.errors import UserError
from langfoundry.core.pool import ordered_map
from langfoundry.gates.rows import RowStream, whole_key_ranges

SHOWN_ROWS = 5
# Expectations on rows that a batch decides only when it holds every row of a key (rows.py cuts so).
KEYED = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
         "expect_multicolumn_values_to_be_unique"}
# Map expectations that look beyond a row at the whole column (its order, mean or spread).
WHOLE_COLUMN = {"expect_column_values_to_be_increasing", "expect_column_values_to_be_decreasing",
                "expect_column_value_z_scores_to_be_less_than", "expect_column_values_to_not_be_outliers"}
ROW_COUNT = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
SAME_IN_EVERY_BATCH = {"expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
                       "expect_column_to_exist", "expect_table_column_count_to_equal",
                       "expect_table_column_count_to_be_between"}


def _columns(kwargs: dict[str, Any]) -> list[str]:
    return [kwargs[name] for name in ("column", "column_A", "column_B") if name in kwargs] + \
        list(kwargs.get("column_list") or [])


def check_batchable(suite: Any, key: str | None, path: Path) -> None:
    """Stop with the suite's place for a rows expectation that batches cannot decide exactly."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    maps = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    for index, expectation in enumerate(suite.expectations):
        kind = expectation.expectation_type
        columns = _columns(expectation.configuration.kwargs)
        if kind in KEYED and key in columns:
            continue
        if kind in KEYED:
            reason = f"uniqueness is checked batch by batch only over columns that include {key!r}, the rows' sort key"
        elif kind in WHOLE_COLUMN or not (isinstance(expectation, maps) or kind in ROW_COUNT | SAME_IN_EVERY_BATCH):
            reason = "it depends on the whole column, and the rows table is validated batch by batch"
        else:
            continue
        raise UserError(f"{path}: expectation {kind!r} ({suite.name}, number {index + 1}) cannot run on the rows "
                        f"table: {reason}; check it on the per-source table (meta.table: sources) instead")


def _is_map(result: dict[str, Any]) -> bool:
    return "unexpected_count" in result


def _percent(part: int | None, whole: int) -> float | None:
    return None if part is None or whole <= 0 else part / whole * 100


class _Merged:
    """One expectation's results so far."""

    def __init__(self, first: Any):
        self.first = first  # its config, meta and (for table expectations) the result shown
        self.success = bool(first.success)
        self.exception = first.exception_info if _raised(first) else None
        self.result = dict(first.result or {})
        self.counts: Counter = Counter()
        self.shown_counts: dict[Any, Any] = {}
        self._count_values(self.result)

    def _count_values(self, result: dict[str, Any]) -> None:
        for item in result.get("partial_unexpected_counts") or []:
            if "value" in item:
                value = item["value"]
                key = repr(value)
                self.shown_counts.setdefault(key, value)
                self.counts[key] += item["count"]

    def add(self, later: Any) -> None:
        details = later.result or {}
        if self.exception is None and _raised(later):
            self.exception, self.first, self.result = later.exception_info, later, dict(details)
        kind = self.first.expectation_config.type
        if _is_map(self.result) and _is_map(details):
            for name in ("element_count", "unexpected_count", "missing_count"):
                if name in self.result:
                    self.result[name] = (self.result[name] or 0) + (details.get(name) or 0)
            for name in ("partial_unexpected_list", "partial_unexpected_index_list"):
                if name in self.result or name in details:
                    self.result[name] = (list(self.result.get(name) or []) + list(details.get(name) or []))[:SHOWN_ROWS]
            self._count_values(details)
        elif kind in ROW_COUNT:
            self.result["observed_value"] = (self.result.get("observed_value") or 0) + (details.get("observed_value") or 0)
        elif self.success and not later.success:
            self.first, self.result = later, dict(details)  # a table expectation: show the batch that failed
        self.success = self.success and bool(later.success)

    def finish(self) -> Any:
        from great_expectations.core.expectation_validation_result import ExpectationValidationResult

        config = self.first.expectation_config
        result, success = dict(self.result), self.success
        if self.exception is not None:
            success = False
        elif _is_map(result):
            success = self._map_success(result, config.kwargs.get("mostly"))
        elif config.type in ROW_COUNT:
            decided = config.to_domain_obj()._validate(metrics={"table.row_count": result.get("observed_value")})
            success, result = bool(decided["success"]), {**result, **decided.get("result", {})}
        return ExpectationValidationResult(success=success, expectation_config=config, result=result,
                                           meta=self.first.meta, exception_info=self.first.exception_info)

    def _map_success(self, result: dict[str, Any], mostly: float | None) -> bool:
        """GX's rule on the summed counts: vacuously true without rows; else the unexpected share
        of non-null rows within 1 - mostly (mostly defaults to 1)."""
        elements = result.get("element_count") or 0
        missing = result.get("missing_count")
        nonnull = elements - (missing or 0)
        unexpected = result.get("unexpected_count") or 0
        if missing is not None:
            result["missing_percent"] = _percent(missing, elements)
            result["unexpected_percent_total"] = _percent(unexpected, elements)
            result["unexpected_percent_nonmissing"] = _percent(unexpected, nonnull)
        result["unexpected_percent"] = _percent(unexpected, nonnull if missing is not None else elements)
        if self.counts:
            top = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:SHOWN_ROWS]
            result["partial_unexpected_counts"] = [{"value": self.shown_counts[key], "count": count}
                                                   for key, count in top]
        if elements == 0 or nonnull == 0:
            return True
        if mostly is None:
            return unexpected == 0
        return (nonnull - unexpected) / nonnull >= mostly


def _raised(result: Any) -> bool:
    info = result.exception_info
    if not isinstance(info, dict):
        return False
    return bool(info.get("raised_exception")) or any(
        isinstance(inner, dict) and inner.get("raised_exception") for inner in info.values())


class BatchResults:
    """The results of a suite's batches, added up into one suite result (see the module docstring)."""

    def __init__(self) -> None:
        self.batches = 0
        self.rows = 0
        self._template: Any = None
        self._merged: dict[str, _Merged] = {}
        self._order: list[str] = []
        self._fingerprints = hashlib.sha256()

    def add(self, outcome: Any, rows: int, fingerprint: str | None = None) -> None:
        """Add one batch's result; fingerprint: its data's (else GX's batch marker, if any)."""
        self.batches += 1
        self.rows += rows
        self._template = self._template or outcome
        markers = outcome.meta.get("batch_markers") or {}
        self._fingerprints.update(str(fingerprint or markers.get("pandas_data_fingerprint")).encode())
        for result in outcome.results:
            key = result.expectation_config.id or repr(result.expectation_config.to_json_dict())
            if key in self._merged:
                self._merged[key].add(result)
            else:
                self._merged[key] = _Merged(result)
                self._order.append(key)

    def finish(self) -> Any:
        """The suite's result over all batches, with batch markers that describe them all."""
        from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

        template = self._template
        results = [self._merged[key].finish() for key in self._order]
        passed = sum(1 for result in results if result.success)
        statistics = {"evaluated_expectations": len(results), "successful_expectations": passed,
                      "unsuccessful_expectations": len(results) - passed,
                      "success_percent": _percent(passed, len(results))}
        meta = dict(template.meta)
        meta["batch_markers"] = {**(meta.get("batch_markers") or {}),
                                 "pandas_data_fingerprint": self._fingerprints.hexdigest()[:32]}
        meta["batches"] = {"count": self.batches, "rows": self.rows}
        return ExpectationSuiteValidationResult(
            success=passed == len(results), results=results, suite_name=template.suite_name,
            suite_parameters=template.suite_parameters, statistics=statistics, meta=meta, batch_id=template.batch_id)


class _Digest:
    """A write-only file that hashes what is written to it instead of keeping it."""

    closed = False

    def __init__(self) -> None:
        # SHA-256: x86-64 CPUs with SHA-NI (AMD since Zen, Intel since Ice Lake) compute it at twice BLAKE2b's
        # speed through hashlib (1.6 against 0.8 GB/s here); a 10-million-row gate hashes 2.8 GB of batches
        self.hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return memoryview(data).nbytes

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def batch_fingerprint(table: pa.Table) -> str:
    """A digest of a batch's schema and values (its Arrow IPC stream, which does not depend on how
    the batch is cut into chunks in memory), hashed as it is written: a fifth of the time of
    writing the stream to memory first."""
    digest = _Digest()
    with pa.ipc.new_stream(pa.PythonFile(digest, mode="w"), table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return digest.hash.hexdigest()[:32]


def _skip_gx_hashing() -> None:
    """GX fingerprints a pandas batch (hash_pandas_object over every value) when it holds under
    HASH_THRESHOLD bytes; batch_fingerprint does it from the Arrow data at a seventh of the cost."""
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0


@contextlib.contextmanager
def _configurations_kept() -> Iterator[None]:
    """Within the block, each GX Expectation builds its `configuration` once. GX builds it anew (a
    pydantic dict of the whole expectation) on every read, and a run reads it for every key of every
    expectation: over a thousand times for the clean suite's 21, a fifth of a 200,000-row run. Nothing
    changes an expectation during a run; one that is assigned to builds it again all the same."""
    from great_expectations.expectations.expectation import Expectation

    built: dict[int, tuple[Any, Any]] = {}  # id -> (the expectation, held so the id stays its own; its configuration)
    reading, assigning = Expectation.__dict__["configuration"], Expectation.__setattr__

    def configuration(expectation: Any) -> Any:
        kept = built.get(id(expectation))
        if kept is None or kept[0] is not expectation:
            kept = built[id(expectation)] = (expectation, reading.fget(expectation))
        return kept[1]

    def assign(expectation: Any, name: str, value: Any) -> None:
        built.pop(id(expectation), None)
        assigning(expectation, name, value)

    own_setattr = "__setattr__" in Expectation.__dict__
    Expectation.configuration, Expectation.__setattr__ = property(configuration), assign
    try:
        yield
    finally:
        Expectation.configuration = reading
        if own_setattr:
            Expectation.__setattr__ = assigning
        else:
            del Expectation.__setattr__  # inherited again, as before


_VALIDATION: tuple = ()  # what a validating process runs each batch with (set before it forks)


def _start_validation(definition: Any, rows: RowStream, keys: tuple[str, ...], parameters: Mapping[str, Any],
                      run_id: Any) -> None:
    global _VALIDATION
    _VALIDATION = (definition, rows, keys, parameters, run_id)
    if multiprocessing.parent_process() is not None:
        # a forked validating process: what it inherited is never garbage here, so the collector
        # need not look at it (nor copy the pages it would touch); see _validate_batch
        gc.freeze()


def _validate_batch(span: tuple[int, int]) -> tuple[Any, int, str]:
    """One batch (rows start..stop of the stream), read here and run through GX: (its suite result,
    its rows, its data's fingerprint)."""
    definition, rows, keys, parameters, run_id = _VALIDATION
    # in one piece: on a frame of several Arrow chunks, each of GX's row selections costs a copy
    table = rows.read(*span).combine_chunks()
    frame = table.to_pandas()
    with _configurations_kept():
        outcome = definition.run(
            batch_parameters={"dataframe": frame}, expectation_parameters=dict(parameters),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SHOWN_ROWS,
                           "unexpected_index_column_names": [key for key in keys if key in frame.columns]},
            run_id=run_id)
    fingerprint = batch_fingerprint(table)
    if multiprocessing.parent_process() is not None:
        # GX leaves each run's objects in reference cycles that hold the batch's data frame until a
        # full collection, which comes rarely: without this a process kept several frames, and the
        # 10-million-row gate peaked at 2.0 to 2.2 GB instead of 1.3
        del frame
        gc.collect()
    return outcome, table.num_rows, fingerprint


def run_batches(context: Any, frames: Any, suite: Any, rows: RowStream, batch_rows: int, keys: tuple[str, ...],
                parameters: Mapping[str, Any], run_id: Any,
                shown_rows: Callable[[list[dict[str, Any]]], None] | None = None, workers: int = 1) -> Any:
    """Validate the rows batch by batch with the suite (GX's pandas datasource, a whole-dataframe
    batch each time) and add the results up; store the sum where Data Docs look for it. shown_rows
    may rewrite the offending rows the sum shows (GX's partial_unexpected_index_list entries) before
    it is stored.

    With several workers, batches are validated in that many forked processes at once (GX is
    single-threaded), each reading its own batches; their results come back in batch order, so the
    sum is the same."""
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier, ValidationResultIdentifier

    _skip_gx_hashing()
    batch = frames.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("whole")
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
    results = BatchResults()
    for outcome, count, fingerprint in ordered_map(_validate_batch, whole_key_ranges(rows, batch_rows), workers,
                                                   _start_validation, (definition, rows, keys, parameters, run_id)):
        results.add(outcome, count, fingerprint)
    outcome = results.finish()
    if shown_rows is not None:
        shown_rows([row for result in outcome.results for row in (result.result or {}).get(
            "partial_unexpected_index_list") or [] if isinstance(row, dict)])
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    # The last batch's result sits under this key; the sum replaces it, so Data Docs show the whole table.
    context.validation_results_store.store_validation_results(
        suite_validation_result=outcome, expectation_suite_identifier=suite_id,
        suite_validation_result_identifier=ValidationResultIdentifier(suite_id, run_id, outcome.batch_id))
    return outcome
