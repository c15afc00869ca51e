"""How a gate runs at scale: in a process that imported Great Expectations while the stage worked
(scipy.stats, altair and sqlalchemy left out until used), batches validated by several processes at once, and the data
fingerprint taken from Arrow. Each must give the verdict, failure table and Data Docs of validating
in the stage, one batch at a time."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from test_quality import PARAMETERS, REPO, entry, ingested

from langfoundry.core.errors import UserError
from langfoundry.gates import batches
from langfoundry.gates import gate as gate_module
from langfoundry.gates.batches import batch_fingerprint
from langfoundry.gates.early import EarlyGate, early_gate, suite_types
from langfoundry.gates.gate import failure_table, validate


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    return tmp_path


def planted_rows() -> list[dict]:
    """60 good rows and, spread over them, an unknown language, broken meta and a line read twice."""
    rows = [entry(i) for i in range(60)]
    rows[5] = entry(5, lang="xx-nowhere")
    rows[41] = dict(entry(41), meta="{")
    return rows + [dict(rows[23])]


def pages(root: Path, name: str) -> dict[str, str]:
    return {page.relative_to(root).as_posix(): page.read_text(encoding="utf-8")
            for page in sorted((root / "reports/quality" / name).rglob("*.html"))}


def test_batches_validated_by_several_processes_give_the_one_process_result(root: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tables = ingested(root, planted_rows(), [], {"kamus": 61})
    alone = validate("ingested", tables, PARAMETERS, root, batch_rows=8)  # 61 rows: 8 batches
    alone_pages = pages(root, "ingested")
    monkeypatch.setattr(gate_module, "worker_count", lambda: 3)
    started = []
    real_map = batches.ordered_map

    def counting_map(function, items, workers, *args):
        started.append(workers)
        return real_map(function, items, workers, *args)

    monkeypatch.setattr(batches, "ordered_map", counting_map)
    shared = validate("ingested", tables, PARAMETERS, root, batch_rows=8)
    assert started[0] == 3  # the rows' eight batches went to three processes
    assert (shared.evaluated, shared.passed, shared.rows) == (alone.evaluated, alone.passed, alone.rows) == \
        (alone.evaluated, alone.evaluated - 3, 61)
    assert failure_table(shared) == failure_table(alone)
    assert pages(root, "ingested") == alone_pages


def test_the_fingerprint_is_of_the_values_not_of_how_they_lie_in_memory() -> None:
    table = pa.table({"id": [f"{i:04x}" for i in range(50)], "text": [f"kata {i}" for i in range(50)]})
    rechunked = pa.concat_tables([table.slice(0, 17), table.slice(17)])
    assert rechunked.column("id").num_chunks == 2
    assert batch_fingerprint(rechunked) == batch_fingerprint(table) == batch_fingerprint(table.slice(0))
    changed = table.set_column(1, "text", pa.array([f"kata {i}" for i in range(49)] + ["kata 0"]))
    assert batch_fingerprint(changed) != batch_fingerprint(table)
    assert batch_fingerprint(table.slice(0, 49)) != batch_fingerprint(table)


def test_a_gate_in_its_own_process_gives_the_result_of_one_in_the_stage(root: Path) -> None:
    tables = ingested(root, planted_rows(), [], {"kamus": 61})
    here = validate("ingested", tables, PARAMETERS, root)
    here_pages = pages(root, "ingested")
    shutil.rmtree(root / "reports")
    early = EarlyGate()
    there = early.validate("ingested", tables, PARAMETERS, root)
    assert not early._process.is_alive() and early._process.exitcode == 0
    assert (there.evaluated, there.passed, there.rows) == (here.evaluated, here.passed, here.rows)
    assert failure_table(there) == failure_table(here) and there.failures
    assert pages(root, "ingested") == here_pages
    assert 0 <= there.import_seconds <= there.seconds


def test_a_gate_process_raises_the_error_it_met_in_the_stage(root: Path) -> None:
    (root / "expectations/ingested.json").unlink()
    with pytest.raises(UserError, match="expectations/ingested.json: expectation suite not found"):
        with early_gate() as early:
            early.validate("ingested", ingested(root, [entry(0)], [], {"kamus": 1}), PARAMETERS, root)


def test_a_stage_that_fails_before_its_gate_leaves_no_gate_process() -> None:
    with pytest.raises(UserError, match="the stage's own error"):
        with early_gate() as early:
            process = early._process
            assert process.is_alive()
            raise UserError("the stage's own error")
    assert not process.is_alive() and not multiprocessing.active_children()
    with early_gate(False) as nothing:
        assert nothing is None


DEFERRED = """
import sys
from langfoundry.gates.gate import import_great_expectations
import_great_expectations()
from great_expectations.compatibility import aws as gx_aws, sqlalchemy as gx_sql
loaded = ["scipy.stats._stats_py" in sys.modules, "altair.vegalite" in sys.modules, "sqlalchemy" in sys.modules,
          "boto3" in sys.modules or "botocore" in sys.modules]
import scipy.stats
from scipy.stats import norm
import altair
import sqlalchemy
import boto3
print(*loaded, round(scipy.stats.entropy([0.5, 0.5]), 6), norm.cdf(0.0), "scipy.stats._stats_py" in sys.modules,
      altair.Chart.__name__, sqlalchemy.__name__ in sys.modules, bool(gx_sql.sqlalchemy),
      boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s").meta.region_name,
      bool(gx_aws.boto3))
"""


def test_great_expectations_imports_without_distributions_charts_sql_or_s3_which_import_when_used() -> None:
    done = subprocess.run([sys.executable, "-c", DEFERRED], capture_output=True, text=True, check=True)
    # not loaded by the import; each works when used; GX itself runs as without its SQL and S3 extras
    assert done.stdout.split() == ["False", "False", "False", "False", "0.693147", "0.5", "True", "Chart", "True",
                                   "False", "us-east-1", "False"]


DATASOURCES_WHEN_READ = """
import sys, tempfile
from langfoundry.gates.gx_import import UNUSED_DATASOURCES, import_great_expectations
import_great_expectations()
import great_expectations as gx
import great_expectations.datasource.fluent as fluent
loaded = [name for name in UNUSED_DATASOURCES if name in sys.modules]
frame = gx.get_context(mode="ephemeral").data_sources.add_pandas("tables")  # what the gates use
from great_expectations.datasource.fluent import PandasFilesystemDatasource
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource
context = gx.get_context(mode="ephemeral")
files = context.data_sources.add_pandas_filesystem("files", base_directory=tempfile.mkdtemp())
print(len(loaded), type(frame).__name__, PandasFilesystemDatasource.__module__.rsplit(".", 1)[1],
      type(files) is PandasFilesystemDatasource, hasattr(files, "add_csv_asset"), fluent.SQLDatasource is SQLDatasource,
      hasattr(fluent, "NoSuchDatasource"))
"""


def test_unused_datasources_import_when_first_read_and_then_work() -> None:
    done = subprocess.run([sys.executable, "-c", DATASOURCES_WHEN_READ], capture_output=True, text=True, check=True)
    # none of them loaded by the import; read afterwards, each is GX's real class, registered with the context
    assert done.stdout.split() == ["0", "PandasDatasource", "pandas_filesystem_datasource", "True", "True", "True",
                                   "False"]


EXPECTATIONS_WHEN_USED = """
import sys
import pandas as pd
from langfoundry.gates.gx_import import import_expectations, import_great_expectations
import_great_expectations()
import great_expectations as gx
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.registry import get_expectation_impl
prefix = "great_expectations.expectations.core.expect_"
loaded = sorted(name for name in sys.modules if name.startswith(prefix))
mean = ExpectationConfiguration(type="expect_column_mean_to_be_between", kwargs={"column": "n", "min_value": 5}).to_domain_obj()
batch = (gx.get_context(mode="ephemeral").data_sources.add_pandas("t").add_dataframe_asset("a")
         .add_batch_definition_whole_dataframe("b").get_batch(batch_parameters={"dataframe": pd.DataFrame({"n": [1, 2, 9]})}))
verdicts = [batch.validate(mean).success, batch.validate(gx.expectations.ExpectColumnValuesToNotBeNull(column="n")).success]
import_expectations(["expect_column_min_to_be_between", "not_a_type"])
try:
    get_expectation_impl("expect_nothing_at_all")
    unknown = "found"
except Exception as err:
    unknown = type(err).__name__
maximum = gx.expectations.ExpectColumnMaxToBeBetween
print(len(loaded), *verdicts, type(mean).__module__.rsplit(".", 1)[1], maximum.__module__.rsplit(".", 1)[1],
      prefix + "column_min_to_be_between" in sys.modules, prefix + "column_median_to_be_between" in sys.modules,
      hasattr(gx.expectations, "ExpectNoSuchThing"), unknown)
"""


def test_expectation_types_import_when_a_suite_or_a_name_needs_them() -> None:
    done = subprocess.run([sys.executable, "-c", EXPECTATIONS_WHEN_USED], capture_output=True, text=True, check=True)
    # none loaded by the import; a type looked up is GX's real one and validates; import_expectations loads only
    # what it names; an unknown type is still GX's own error
    assert done.stdout.split() == ["0", "False", "True", "expect_column_mean_to_be_between",
                                   "expect_column_max_to_be_between", "True", "False", "False", "ExpectationNotFoundError"]


def test_the_early_gate_knows_the_types_its_suites_use(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"name": "a", "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}, "not an expectation", {"kwargs": {}}]}))
    (tmp_path / "b.json").write_text('{"name": "b", "expectations": [{"type": "expect_table_row_count_to_be_between"')
    (tmp_path / "c.json").write_text(json.dumps([1, 2]))
    assert suite_types(tmp_path) == {"expect_column_values_to_be_unique"}  # b (broken) and c are the gate's to report
    shipped = suite_types(Path(__file__).parents[1] / "expectations")
    assert {"expect_column_values_to_not_be_null", "expect_compound_columns_to_be_unique"} <= shipped
    assert suite_types(tmp_path / "missing") == set() == suite_types(None)


WITHOUT_PANDAS = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from langfoundry.core.stage import spare_pandas
spare_pandas()
import pyarrow as pa
from test_gate_early import planted_rows
from test_quality import PARAMETERS, ingested
from langfoundry.gates.early import early_gate
tables = ingested(Path(sys.argv[1]), planted_rows(), [], {"kamus": 61})  # pa.array of lists, the stage's own work
converted = pa.array([{"a": 1}]).type
before = "pandas" in sys.modules
with early_gate() as early:
    result = early.validate("ingested", tables, PARAMETERS, sys.argv[1])
print(json.dumps({"pandas_before_gate": before, "pandas_after": "pandas" in sys.modules, "type": str(converted),
                  "failed": sorted(failure.expectation for failure in result.failures), "rows": result.rows}))
"""


def test_a_stage_that_spares_pandas_never_imports_it_and_its_gate_still_validates(root: Path) -> None:
    """pyarrow would import pandas on the stage's first conversion of Python objects; spared, the stage's
    process never does, and the gate's process imports it itself and gives the verdict the stage would."""
    expected = validate("ingested", ingested(root, planted_rows(), [], {"kamus": 61}), PARAMETERS, root)
    done = subprocess.run([sys.executable, "-c", WITHOUT_PANDAS, str(root), str(Path(__file__).parent)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pandas_before_gate"] is False and seen["pandas_after"] is False
    assert seen["type"] == "struct<a: int64>" and seen["rows"] == expected.rows == 61
    assert seen["failed"] == sorted(failure.expectation for failure in expected.failures) and len(seen["failed"]) >= 3


def test_pyarrow_takes_pandas_up_again_once_something_uses_it() -> None:
    code = ("import sys\nfrom langfoundry.core.stage import spare_pandas\nspare_pandas()\nimport pyarrow as pa\n"
            "pa.array(['x'])\nspared = 'pandas' not in sys.modules\n"
            "frame = pa.table({'a': ['x', None]}).to_pandas()\nimport pandas as pd\n"
            "print(spared, type(frame).__name__, pa.array(pd.Series(pd.Categorical(['u', 'v']))).type)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # a categorical Series is a pandas object to pyarrow again: a dictionary array, not a list of strings
    spared, frame, categorical = done.stdout.strip().split(maxsplit=2)
    assert (spared, frame) == ("True", "DataFrame") and categorical.startswith("dictionary<values=large_string")


def test_a_process_that_imported_sqlalchemy_first_keeps_it_for_great_expectations() -> None:
    code = ("import sqlalchemy\nfrom langfoundry.gates.gate import import_great_expectations\n"
            "import_great_expectations()\nfrom great_expectations.compatibility import sqlalchemy as gx_sql\n"
            "print(gx_sql.sqlalchemy is sqlalchemy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True"]


def test_data_docs_from_the_cached_views_are_gx_own_pages(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jinja2 import FileSystemBytecodeCache

    from langfoundry.gates import docs_views

    tables = ingested(root, planted_rows(), [], {"kamus": 61})
    cache = root / "jinja-cache"
    cache.mkdir()
    docs_views.template_cache.cache_clear()
    monkeypatch.setattr(docs_views, "FileSystemBytecodeCache", lambda: FileSystemBytecodeCache(str(cache)))
    try:
        validate("ingested", tables, PARAMETERS, root)
        cached = pages(root, "ingested")
        compiled = sorted(path.name for path in cache.iterdir())
        validate("ingested", tables, PARAMETERS, root)  # from the cache this time
        assert pages(root, "ingested") == cached
        assert sorted(path.name for path in cache.iterdir()) == compiled and len(compiled) >= 5
        gx_views = {kind: {"module_name": "great_expectations.render.view", "class_name": name}
                    for kind, name in (("page", "DefaultJinjaPageView"), ("index", "DefaultJinjaIndexPageView"))}
        monkeypatch.setattr(gate_module, "_VIEWS", gx_views)
        validate("ingested", tables, PARAMETERS, root)
        assert pages(root, "ingested") == cached
    finally:
        docs_views.template_cache.cache_clear()


def test_expectations_built_once_per_run_give_the_same_verdict_and_pages(root: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from great_expectations.expectations.expectation import Expectation

    tables = ingested(root, planted_rows(), [], {"kamus": 61})
    kept = validate("ingested", tables, PARAMETERS, root, batch_rows=20)
    kept_pages = pages(root, "ingested")
    monkeypatch.setattr(batches, "_configurations_kept", contextlib.nullcontext)
    rebuilt = validate("ingested", tables, PARAMETERS, root, batch_rows=20)
    assert kept_pages == pages(root, "ingested")
    assert failure_table(kept) == failure_table(rebuilt) and len(kept.failures) >= 3
    monkeypatch.undo()
    # GX's own property and attribute setting are back after a run; inside one, an assignment builds anew
    assert "__setattr__" not in Expectation.__dict__ and Expectation.__dict__["configuration"].fget.__module__ == \
        Expectation.__module__
    from great_expectations.expectations.core.expect_column_to_exist import ExpectColumnToExist

    expectation = ExpectColumnToExist(column="text")
    with batches._configurations_kept():
        first = expectation.configuration
        assert expectation.configuration is first
        expectation.column = "lang"
        assert expectation.configuration.kwargs["column"] == "lang"
    assert expectation.configuration is not expectation.configuration  # built on every read again
