"""How a stage script runs: parse its options, load params.yaml strictly, call its importable `main`.

A stage's `main(params, paths=None, gate=True)` does the work; paths default to params.paths, so a
benchmark or a test can point one stage at other files and call it directly.
"""

from __future__ import annotations

import argparse
import importlib.abc
import logging
import sys
from collections.abc import Callable
from typing import Any

from langfoundry.core.config import Params, load_params
from langfoundry.core.errors import stage_entry


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ImportError("pandas is not imported for pyarrow's question (langfoundry.core.stage.spare_pandas)")


def spare_pandas() -> None:
    """Keep pyarrow from importing pandas only to ask whether Python objects it converts are pandas
    objects: it does so the first time it converts any (pa.array of a list), half a second of CPU or
    more in a stage that never hands it one. pyarrow asks once, and here the import fails while it
    asks; pandas still imports as usual for anything that uses it (to_pandas, the quality gates), and
    pyarrow then takes it up again. No effect in a process that has pandas already."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([])
    finally:
        sys.meta_path.remove(finder)


def run_stage(main: Callable[..., Any], description: str, gated: bool = False,
              parser: argparse.ArgumentParser | None = None,
              extra: Callable[[argparse.Namespace], dict[str, Any]] | None = None, pandas: bool = True) -> None:
    """The `if __name__ == "__main__"` of every stage: --params, --no-gate (gated stages), --verbose.
    pandas=False: the stage hands pyarrow no pandas objects (spare_pandas)."""
    if not pandas:
        spare_pandas()
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="the parameter file (default: params.yaml)")
    if gated:
        parser.add_argument("--no-gate", action="store_true", help="skip the quality gate at the end")

    def call(args: argparse.Namespace) -> None:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        params: Params = load_params(args.params)
        options = {"gate": not args.no_gate} if gated else {}
        main(params, **options, **(extra(args) if extra else {}))

    stage_entry(call, parser)
