"""How a stage script runs: parse its options, load params.yaml strictly, call its importable `main`.

A stage's `main(params, paths=None, gate=True)` does the work; paths default to params.paths, so a
benchmark or a test can point one stage at other files and call it directly.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from langfoundry.core.config import Params, load_params
from langfoundry.core.errors import stage_entry


def run_stage(main: Callable[..., Any], description: str, gated: bool = False,
              parser: argparse.ArgumentParser | None = None,
              extra: Callable[[argparse.Namespace], dict[str, Any]] | None = None) -> None:
    """The `if __name__ == "__main__"` of every stage: --params, --no-gate (gated stages), --verbose."""
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
