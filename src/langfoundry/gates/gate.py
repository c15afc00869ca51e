"""Data-quality gates: a data stage checks its output against expectations/<suite>.json before it finishes.

A suite is Great Expectations' own JSON for an ExpectationSuite. Its expectations run on the rows
table a stage wrote, except those whose `meta` says `{"table": "sources"}`, which run on the
stage's per-source table (langfoundry.gates.tables). Values that cannot live in the JSON are
suite parameters, written `{"$PARAMETER": "name"}` and filled in at validation time:

  inventory_tags                the tags of data/inventory/languages.csv, read when the gate runs
  record_kinds                  the record kinds (langfoundry.core.records.KINDS)
  min_chars, max_chars          params.yaml clean.min_chars / clean.max_chars
  max_text_equals_pivot_share   params.yaml quality.*
  min_mean_script_ratio
  min_examples_per_label        quality.min_examples_per_label (the classification gate)
  min_test_examples_per_label   1, or 0 when split.test_fraction is 0

Per-source reject limits differ by source (quality.max_reject_rate_by_source), so they are a column
of the per-source table (`allowed_reject_rate`) rather than a parameter.

The rows table is read and validated in batches (langfoundry.gates.rows, .batches), so a gate needs
memory for a batch or two of rows per validating process, not for the table; with several batches
they are validated by several processes at once, one per core (GX_WORKERS at most). The batches'
results are added up into one result per suite, which the failure table, the metrics and the Data
Docs all show.

Every gate writes its Data Docs to reports/quality/<suite>/ and its counts of evaluated, passed and
failed expectations to metrics/quality/<suite>.json, whether it passes or fails; a failure prints
which expectations failed with up to five offending rows (their origin, file and line) and stops
the stage with a non-zero exit. Great Expectations takes seconds to import, so the stages' other
work never waits for it: it is imported inside `validate` only, and a gated stage calls `validate`
in a process that started importing it when the stage started (langfoundry.gates.early).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import Language
from langfoundry.core.pool import worker_count
from langfoundry.core.records import KINDS
from langfoundry.core.storage import write_metrics
from langfoundry.gates.batches import SHOWN_ROWS, check_batchable, run_batches
from langfoundry.gates.gx_import import import_great_expectations
from langfoundry.gates.rows import BATCH_ROWS, RowStream, TableRows
from langfoundry.gates.tables import GateTables

if TYPE_CHECKING:  # early imports this module
    from langfoundry.gates.early import EarlyGate

QUALITY = "quality"  # reports/quality/<suite>/ and metrics/quality/<suite>.json
GX_WORKERS = 4  # processes validating batches at once: each holds a batch of BATCH_ROWS records and GX (300 MB)
SOURCES_TABLE = "sources"
# Reports name this run time so that reruns write byte-identical pages (see _settle_pages).
RUN_TIME = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass
class Failure:
    expectation: str  # e.g. "expect_column_values_to_be_unique(id)"
    description: str | None  # the suite's words for it
    table: str  # "rows" or "sources"
    rows_failed: int | None  # None for expectations on a whole column or table
    observed: str | None  # what was seen, for expectations without offending rows
    examples: list[str] = field(default_factory=list)  # "origin: column=value", at most SHOWN_ROWS


@dataclass
class GateResult:
    suite: str
    evaluated: int
    passed: int
    failures: list[Failure]
    rows: int
    seconds: float  # the whole gate: import, validation, report
    import_seconds: float  # of which importing Great Expectations (nothing once a process has it)
    report: Path

    @property
    def failed(self) -> int:
        return self.evaluated - self.passed

    @property
    def success(self) -> bool:
        return self.failed == 0


def suite_parameters(params: Params, inventory: Mapping[str, Language]) -> dict[str, Any]:
    """The values the suites' {"$PARAMETER": name} placeholders stand for."""
    return {
        "inventory_tags": sorted(inventory),
        "record_kinds": list(KINDS),
        "min_chars": params.clean.min_chars,
        "max_chars": params.clean.max_chars,
        "max_text_equals_pivot_share": params.quality.max_text_equals_pivot_share,
        "min_mean_script_ratio": params.quality.min_mean_script_ratio,
        "min_examples_per_label": params.quality.min_examples_per_label,
        "min_test_examples_per_label": 1 if params.split.test_fraction > 0 else 0,
    }


def load_suite(name: str, root: Path | str = ".", paths: PathsParams | None = None) -> dict[str, Any]:
    """The suite's JSON, checked for what the gate relies on (GX itself checks each expectation)."""
    suites = (paths or PathsParams()).expectations
    path = Path(root) / suites / f"{name}.json"
    if not path.exists():
        raise UserError(f"{path}: expectation suite not found; every gated table needs one (see {suites}/)")
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); fix the syntax there") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise UserError(f"{path}: not an expectation suite; it needs a list under \"expectations\"")
    if suite.get("name") != name:
        raise UserError(f"{path}: \"name\" is {suite.get('name')!r}; it must be {name!r}, the file's name")
    for index, expectation in enumerate(suite["expectations"]):
        if not isinstance(expectation, dict):
            raise UserError(f"{path}: expectation number {index + 1} is not an object with \"type\" and \"kwargs\"")
        if _table_of(expectation) not in ("rows", SOURCES_TABLE):
            raise UserError(f"{path}: expectation number {index + 1}: meta.table is {_table_of(expectation)!r}; "
                            f"use \"rows\" (the default) or \"{SOURCES_TABLE}\"")
    return suite


def _table_of(expectation: Mapping[str, Any]) -> Any:
    """Which table an expectation checks: its meta.table, "rows" by default."""
    meta = expectation.get("meta")
    return meta.get("table", "rows") if isinstance(meta, dict) else "rows"


def describe(config: Any) -> str:
    """An expectation as type(columns), e.g. expect_column_pair_values_to_be_equal(rows_in, accounted)."""
    kwargs = config.kwargs
    columns = [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]
    columns += list(kwargs.get("column_list") or [])
    return f"{config.type}({', '.join(map(str, columns))})"


def _show(value: Any) -> str:
    """A value as people read it: numbers plainly (numpy's too), text quoted and cut short."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return str(value)


def _observed(result: Mapping[str, Any], kwargs: Mapping[str, Any], parameters: Mapping[str, Any]) -> str | None:
    if "observed_value" not in result:
        return None
    bound = {key: kwargs.get(key) for key in ("min_value", "max_value")}
    bound = {key: parameters.get(value["$PARAMETER"]) if isinstance(value, dict) else value for key, value in bound.items()}
    bounds = [f"{name} {_show(bound[key])}" for key, name in (("min_value", ">="), ("max_value", "<="))
              if bound[key] is not None]
    return f"observed {_show(result['observed_value'])}" + (f", expected {' and '.join(bounds)}" if bounds else "")


def _exception_message(info: Any) -> str | None:
    """GX keeps the error of an expectation that could not run (a missing column), flat or per metric."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return info.get("exception_message")
    for inner in info.values():
        if isinstance(inner, dict) and inner.get("raised_exception"):
            return inner.get("exception_message")
    return None


def _failure(result: Any, table: str, keys: tuple[str, ...], parameters: Mapping[str, Any]) -> Failure:
    config = result.expectation_config
    details = result.result or {}
    examples = []
    for row in (details.get("partial_unexpected_index_list") or [])[:SHOWN_ROWS]:
        where = " ".join(str(row[key]) for key in keys if row.get(key) is not None)
        where = f"source {where}" if table == SOURCES_TABLE else where
        values = ", ".join(f"{name}={_show(value)}" for name, value in row.items() if name not in keys)
        examples.append(f"{where}: {values}" if values else where)
    error = _exception_message(result.exception_info)
    observed = f"could not run: {error}" if error else _observed(details, config.kwargs, parameters)
    return Failure(describe(config), config.description, table, details.get("unexpected_count"), observed, examples)


# GX's page views with their templates compiled once per machine (langfoundry.gates.docs_views)
_VIEWS = {kind: {"module_name": "langfoundry.gates.docs_views", "class_name": name}
          for kind, name in (("page", "CachedPageView"), ("index", "CachedIndexPageView"))}


def _context(site: Path) -> Any:
    """An ephemeral GX context (nothing on disk but the Data Docs site), quiet and offline."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={"quality": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": _VIEWS["index"]},
            "site_section_builders": {section: {"view": _VIEWS["page"]}
                                      for section in ("expectations", "validations", "profiling")},
        }},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _gx_suite(name: str, expectations: list[dict[str, Any]], path: Path) -> Any:
    """The expectations as a GX suite, each one built here so that a bad one stops with its place
    (given dicts, GX logs a bad expectation and leaves it out of the suite)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built = []
    for index, expectation in enumerate(expectations):
        try:
            built.append(ExpectationConfiguration(**expectation).to_domain_obj())
        except Exception as err:  # GX raises several types for a malformed expectation; all are the file's to fix
            message = " ".join(str(err).split())[:300]
            raise UserError(f"{path}: expectation {expectation.get('type')!r} ({name}, number {index + 1}) is not "
                            f"valid: {message}") from None
    return gx.ExpectationSuite(name=name, expectations=built)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REMOTE_LOGO = re.compile(r'https://great-expectations-web-assets\.[^"]*/logo-long\.png\?[^"]*')
_TIMESTAMP = re.compile(r"\d{8}T\d{6}\.\d{6}Z")  # GX's time format, e.g. the batch's load time


def _number_blocks(html: str) -> str:
    """Each random block id of a page becomes block-1, block-2, ... in order of first use."""
    numbers: dict[str, str] = {}
    return _UUID.sub(lambda match: numbers.setdefault(match.group(), f"block-{len(numbers) + 1}"), html)


def _settle_pages(site: Path) -> None:
    """Make the Data Docs pages byte-identical between runs and fully local.

    GX renders a random id into every collapsible block, the time it loaded the batch, and a logo
    URL carrying the render time (fetched from a web server when the page is opened); none of it
    is configurable, so the ids become per-page counters, times become RUN_TIME and the logo
    points at the copy in the site's static folder.
    """
    logo = site / "static" / "images" / "logo-long.png"
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        html = _number_blocks(html)
        html = _REMOTE_LOGO.sub(Path(os.path.relpath(logo, page.parent)).as_posix(), html)
        html = _TIMESTAMP.sub(RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ"), html)
        page.write_text(html, encoding="utf-8")


def _batch_rows(rows: RowStream, batch_rows: int) -> int:
    """Rows per batch: batch_rows, or all of them when they fit in two batches. Each GX run costs a
    quarter of a second whatever its size, and a second process costs a fork: two batches on two
    cores took 1.6 s of a 200,000-row gate, one batch here 1.2 s."""
    return max(batch_rows, rows.num_rows) if rows.num_rows <= 2 * batch_rows else batch_rows


def _validating_workers(rows: RowStream, batch_rows: int) -> int:
    """Processes to validate the rows in: one per batch, up to the cores (and GX_WORKERS); a single
    batch is validated here, without the cost of a fork."""
    return max(1, min(worker_count(), GX_WORKERS, -(-rows.num_rows // batch_rows)))


def validate(name: str, tables: GateTables, parameters: Mapping[str, Any], root: Path | str = ".",
             paths: PathsParams | None = None, batch_rows: int = BATCH_ROWS) -> GateResult:
    """Check the tables against expectations/<name>.json; write the report and the metrics; never raise
    for failed expectations (see `enforce`). Folders come from paths (params.yaml), below root.

    The rows table is validated batch_rows rows at a time (memory for one batch, not the table) and
    the batches' results added up into one (langfoundry.gates.batches); the per-source table whole."""
    started = time.perf_counter()
    root, paths = Path(root), paths or PathsParams()
    path = root / paths.expectations / f"{name}.json"
    suite = load_suite(name, root, paths)
    parts = {table: [e for e in suite["expectations"] if _table_of(e) == table] for table in ("rows", SOURCES_TABLE)}
    if parts[SOURCES_TABLE] and tables.sources is None:
        raise UserError(f"{path}: has expectations on the {SOURCES_TABLE} table, which the {name} gate does not build")
    rows = tables.rows if not isinstance(tables.rows, pa.Table) else TableRows(tables.rows, tables.sorted_by)

    import_great_expectations()  # timed on its own: the import is most of a small gate's time
    from great_expectations.core.run_identifier import RunIdentifier

    imported = time.perf_counter()
    site = root / paths.reports / QUALITY / name
    if site.exists():
        shutil.rmtree(site)  # pages of an earlier run must not outlive it
    context = _context(site)
    frames = context.data_sources.add_pandas("tables")
    run_id = RunIdentifier(run_name=name, run_time=RUN_TIME)
    outcomes: dict[str, Any] = {}
    if parts["rows"]:
        gx_suite = context.suites.add(_gx_suite(name, parts["rows"], path))
        check_batchable(gx_suite, rows.sorted_by[0] if rows.sorted_by else None, path)
        batch_rows = _batch_rows(rows, batch_rows)
        outcomes["rows"] = run_batches(context, frames, gx_suite, rows, batch_rows, tables.row_keys, parameters, run_id,
                                       tables.shown_rows, _validating_workers(rows, batch_rows))
    if parts[SOURCES_TABLE]:
        gx_suite = context.suites.add(_gx_suite(f"{name}_by_source", parts[SOURCES_TABLE], path))
        by_source = TableRows(tables.sources, sorted_by=())
        outcomes[SOURCES_TABLE] = run_batches(context, frames, gx_suite, by_source, max(by_source.num_rows, 1),
                                              ("source",), parameters, run_id)
    context.build_data_docs()
    _settle_pages(site)
    return _result(name, tables, outcomes, parameters, started, imported, site, root, paths)


def _result(name: str, tables: GateTables, outcomes: Mapping[str, Any], parameters: Mapping[str, Any],
            started: float, imported: float, site: Path, root: Path, paths: PathsParams) -> GateResult:
    """The gate's verdict from the suites' results, with its metrics written."""
    failures: list[Failure] = []
    evaluated = passed = 0
    for table_name, outcome in outcomes.items():
        keys = tables.row_keys if table_name == "rows" else ("source",)
        evaluated += outcome.statistics["evaluated_expectations"]
        passed += outcome.statistics["successful_expectations"]
        failures += [_failure(result, table_name, keys, parameters) for result in outcome.results if not result.success]
    failures.sort(key=lambda failure: failure.table != SOURCES_TABLE)  # per-source failures name the source: first
    rows = outcomes["rows"].meta["batches"]["rows"] if "rows" in outcomes else 0
    result = GateResult(name, evaluated, passed, failures, rows, time.perf_counter() - started,
                        imported - started, site / "index.html")
    write_metrics(root / paths.metrics / QUALITY / f"{name}.json", {
        "expectations": {"evaluated": result.evaluated, "passed": result.passed, "failed": result.failed},
        "rows": result.rows, "sources": 0 if tables.sources is None else tables.sources.num_rows})
    return result


def failure_table(result: GateResult) -> str:
    """The failed expectations, how many rows failed each, and up to five offending rows."""
    header = ("expectation", "rows failed")
    lines = [(f"{failure.expectation}" + (" [per source]" if failure.table == SOURCES_TABLE else ""),
              "-" if failure.rows_failed is None else str(failure.rows_failed)) for failure in result.failures]
    width = max(len(text) for text, _ in [header, *lines])
    out = [f"  {header[0]:<{width}}  {header[1]}"]
    for failure, (text, count) in zip(result.failures, lines):
        out.append(f"  {text:<{width}}  {count}")
        if failure.description:
            out.append(f"      {failure.description}")
        if failure.observed:
            out.append(f"      {failure.observed}")
        out.extend(f"      {example}" for example in failure.examples)
    return "\n".join(out)


def enforce(result: GateResult) -> None:
    """Print the gate's line; on a failure print the table and stop the stage (UserError, exit 1)."""
    print(f"gate {result.suite}: {result.passed}/{result.evaluated} expectations passed in {result.seconds:.2f} s "
          f"({result.import_seconds:.2f} s of it importing Great Expectations; report: {result.report})")
    if result.success:
        return
    print(failure_table(result), file=sys.stderr)
    first = result.failures[0]
    detail = first.examples[0] if first.examples else first.observed or first.expectation
    raise UserError(f"quality gate {result.suite} failed {result.failed} of {result.evaluated} expectations ({detail}); "
                    f"see the table above and {result.report}")


def gate(name: str, tables: GateTables, params: Params, inventory: Mapping[str, Language],
         paths: PathsParams | None = None, early: EarlyGate | None = None) -> GateResult:
    """Validate a stage's output against its suite and stop the stage if it fails; in the process of
    an EarlyGate (langfoundry.gates.early) when the stage started one, else here."""
    if early is not None:
        # what the stage freed goes back to the system (mimalloc keeps it otherwise) while the gate's
        # processes take theirs: a quarter of a GB after ingesting millions of rows
        pa.default_memory_pool().release_unused()
    check = early.validate if early is not None else validate
    result = check(name, tables, suite_parameters(params, inventory), ".", paths or params.paths)
    enforce(result)
    return result
