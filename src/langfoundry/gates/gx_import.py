"""Importing Great Expectations: seconds of CPU, most of a small gate's time, so only what a gate uses.

A gate validates pandas frames and renders Data Docs. Of what `import great_expectations` pulls in,
five parts serve neither, and of a sixth a gate uses a few:

- scipy.stats (DEFERRED_IMPORTS): for expectations on distributions (KL divergence, KS tests),
  which a rows table validated batch by batch cannot run; imported when first used.
- altair (DEFERRED_IMPORTS): charts for the KL divergence expectation; imported when first used.
- sqlalchemy (OPTIONAL_EXTRAS): GX's SQL datasources, an optional extra of GX (`great_expectations[sql]`)
  that this project installs for its serving database. GX is imported as it would be without that
  extra, which it supports; a process that imported sqlalchemy before keeps GX's SQL support.
- boto3 and botocore (OPTIONAL_EXTRAS): GX's S3 stores and datasources (the `great_expectations[s3]`
  extra); this project installs them for its S3 remote, while gates keep their results and Data Docs
  on local disk. Left out the same way.

- GX's datasources for files, cloud storage, Spark and SQL databases (UNUSED_DATASOURCES): a third of what
  is left. Gates build only the in-memory pandas datasource (`add_pandas`), yet the package
  `great_expectations.datasource.fluent` imports every datasource module, and the file-based ones build
  a pydantic model per pandas and Spark reader. During the import those modules are stand-ins; after
  it the package's names for them import the real modules when first read (PEP 562), and importing a
  module by name works as usual, which registers its datasource (`add_pandas_filesystem`, ...) then.

- GX's own expectations (`expectations/core/expect_*.py`: 63 pydantic models), of which the
  project's suites use eleven: stand-ins during the import too. A suite's type is imported when GX looks
  it up in its registry (ExpectationConfiguration.to_domain_obj does), or beforehand with
  import_expectations (the early gate names its suites' types while the stage works); the names
  `gx.expectations.ExpectColumnMeanToBeBetween` and the like import their module when read.

With pandas already imported, this takes the import from about 3.5 s of CPU to 1.1 to 1.6 s (the
expectations' part: 2.07 to 1.60 s, medians of 6 alternating runs on 2 cores); `make bench-data`
shows what a gate costs a stage.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

DEFERRED_IMPORTS = ("scipy.stats", "altair")
OPTIONAL_EXTRAS = ("sqlalchemy", "boto3", "botocore")
FLUENT = "great_expectations.datasource.fluent"
UNUSED_DATASOURCES = tuple(f"{FLUENT}.{name}" for name in (
    "alloy_datasource", "aurora_datasource", "bigquery_datasource", "citus_datasource", "databricks_sql_datasource",
    "fabric", "fabric_datasource", "neon_datasource", "pandas_azure_blob_storage_datasource",
    "pandas_dbfs_datasource", "pandas_file_path_datasource", "pandas_filesystem_datasource",
    "pandas_google_cloud_storage_datasource", "pandas_s3_datasource", "postgres_datasource", "redshift_datasource",
    "snowflake_datasource", "spark_azure_blob_storage_datasource", "spark_datasource", "spark_dbfs_datasource",
    "spark_file_path_datasource", "spark_filesystem_datasource", "spark_google_cloud_storage_datasource",
    "spark_s3_datasource", "sql_datasource", "sql_server_datasource", "sqlite_datasource"))


EXPECTATIONS = "great_expectations.expectations"


def _expectation_modules() -> dict[str, str]:
    """GX's own expectation types -> their modules (expectations/core/<type>.py), found without importing GX."""
    spec = importlib.util.find_spec("great_expectations")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "expectations" / "core"
    return {path.stem: f"{EXPECTATIONS}.core.{path.stem}" for path in sorted(folder.glob("expect_*.py"))}


class _ImportedOnLookup(dict):
    """GX's registry of expectation types: looking up a type whose module was left out imports it,
    which registers the type (GX's get_expectation_impl reads the registry with get)."""

    def __init__(self, registered: dict, modules: dict[str, str]) -> None:
        super().__init__(registered)
        self.modules = modules

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self and key in self.modules:
            importlib.import_module(self.modules[key])
        return super().get(key, default)


def import_expectations(names: Iterable[str]) -> None:
    """Import GX's expectation types among names (after import_great_expectations), so that a gate
    does not import them while the stage waits; other names are left alone."""
    registry = sys.modules.get(f"{EXPECTATIONS}.registry")
    expectations = getattr(registry, "_registered_expectations", None)
    if isinstance(expectations, _ImportedOnLookup):
        for name in names:
            expectations.get(name)


class _Deferred(types.ModuleType):
    """Stands in for a module in sys.modules until something reads from it, then imports it (and
    gives way to it): for a module imported by a library that seldom uses it."""

    def __getattr__(self, name: str) -> Any:
        real = self.__dict__.get("_real")
        if real is None:
            del sys.modules[self.__name__]
            real = self.__dict__["_real"] = importlib.import_module(self.__name__)
        return getattr(real, name)


class _StandIn(types.ModuleType):
    """A module imported during GX's import in place of a datasource module: every name read from it is
    an empty class, noted so that the names can be taken back afterwards (_import_when_read)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.names: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self.names.append(name)
        stand_in = type(name, (), {"__module__": self.__name__})
        setattr(self, name, stand_in)
        return stand_in


@contextlib.contextmanager
def _stood_in(names: tuple[str, ...]) -> Iterator[list[_StandIn]]:
    """Within the block, the named modules (not imported yet) are _StandIns; afterwards they import as usual."""
    stand_ins = [_StandIn(name) for name in names if name not in sys.modules]
    for module in stand_ins:
        sys.modules[module.__name__] = module
    try:
        yield stand_ins
    finally:
        for module in stand_ins:
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]


def _import_when_read(package: types.ModuleType, stand_ins: list[_StandIn]) -> None:
    """The package's names that came from stand-ins import their real module when read (PEP 562)."""
    where: dict[str, str] = {}
    for module in stand_ins:
        for name in module.names:
            if getattr(package, name, None) is getattr(module, name):
                delattr(package, name)
                where[name] = module.__name__
        if getattr(package, module.__name__.rsplit(".", 1)[1], None) is module:
            delattr(package, module.__name__.rsplit(".", 1)[1])

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(package, name, value)
        return value

    package.__getattr__ = __getattr__  # type: ignore[method-assign]


@contextlib.contextmanager
def _without(names: tuple[str, ...]) -> Iterator[None]:
    """Within the block, importing one of names (not imported yet) fails as if it were not installed
    (a None in sys.modules is Python's own marker for that); afterwards it imports as usual."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def import_great_expectations() -> None:
    """Import Great Expectations (once per process), quiet: it logs its own bookkeeping at INFO,
    which would drown a stage's output."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    if "great_expectations" in sys.modules:
        return
    for name in DEFERRED_IMPORTS:
        if name not in sys.modules:
            sys.modules[name] = _Deferred(name)
    expectation_modules = _expectation_modules()
    with (_without(OPTIONAL_EXTRAS), _stood_in(UNUSED_DATASOURCES) as datasources,
          _stood_in(tuple(expectation_modules.values())) as expectations):
        import great_expectations  # noqa: F401
    _import_when_read(sys.modules[FLUENT], datasources)
    _import_when_read(sys.modules[f"{EXPECTATIONS}.core"], expectations)
    _import_when_read(sys.modules[EXPECTATIONS], expectations)
    registry = sys.modules[f"{EXPECTATIONS}.registry"]
    registry._registered_expectations = _ImportedOnLookup(registry._registered_expectations,  # type: ignore[attr-defined]
                                                          expectation_modules)
