"""Importing Great Expectations: seconds of CPU, most of a small gate's time, so only what a gate uses.

A gate validates pandas frames and renders Data Docs. Of what `import great_expectations` pulls in,
four serve neither:

- scipy.stats (DEFERRED_IMPORTS): for expectations on distributions (KL divergence, KS tests),
  which a rows table validated batch by batch cannot run; imported when first used.
- altair (DEFERRED_IMPORTS): charts for the KL divergence expectation; imported when first used.
- sqlalchemy (OPTIONAL_EXTRAS): GX's SQL datasources, an optional extra of GX (`great_expectations[sql]`)
  that this project installs for its serving database. GX is imported as it would be without that
  extra, which it supports; a process that imported sqlalchemy before keeps GX's SQL support.
- boto3 and botocore (OPTIONAL_EXTRAS): GX's S3 stores and datasources (the `great_expectations[s3]`
  extra); this project installs them for its S3 remote, while gates keep their results and Data Docs
  on local disk. Left out the same way.

On an idle core this takes the import (pandas already imported) from about 3.5 s to 1.5 s of CPU; `make bench-data`
shows what a gate costs a stage.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import types
from collections.abc import Iterator
from typing import Any

DEFERRED_IMPORTS = ("scipy.stats", "altair")
OPTIONAL_EXTRAS = ("sqlalchemy", "boto3", "botocore")


class _Deferred(types.ModuleType):
    """Stands in for a module in sys.modules until something reads from it, then imports it (and
    gives way to it): for a module imported by a library that seldom uses it."""

    def __getattr__(self, name: str) -> Any:
        real = self.__dict__.get("_real")
        if real is None:
            del sys.modules[self.__name__]
            real = self.__dict__["_real"] = importlib.import_module(self.__name__)
        return getattr(real, name)


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
    with _without(OPTIONAL_EXTRAS):
        import great_expectations  # noqa: F401
