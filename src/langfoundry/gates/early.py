"""Great Expectations imported alongside a stage's work rather than after it.

Importing Great Expectations takes seconds (its own classes, pandas; see langfoundry.gates.gx_import), most of a small
gate's time. A gated stage therefore starts an EarlyGate first: a process of its own that imports
it at once, while the stage reads, cleans or splits, then waits for the tables to validate. The
stage hands them over when it has written its outputs and gets the GateResult back (the process
validates, writes the Data Docs and the metrics, as langfoundry.gates.gate.validate always does).

The process is forked before the stage starts any thread or worker (spawned where fork does not
exist), so it holds nothing the stage opens later; it ends after one validation, when the stage
closes it, or when the stage dies (its end of the pipe closes). GateResult.import_seconds is then
the part of the import the stage still had to wait for: none when its work took longer.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from langfoundry.core.config import PathsParams
from langfoundry.gates.gate import GateResult, import_great_expectations, validate
from langfoundry.gates.gx_import import import_expectations
from langfoundry.gates.tables import GateTables


def suite_types(folder: Path | None) -> set[str]:
    """The expectation types the suites in folder use (a suite that cannot be read adds none: the
    gate itself says what is wrong with it)."""
    types: set[str] = set()
    for path in sorted(folder.glob("*.json")) if folder is not None and folder.is_dir() else ():
        try:
            suite = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        expectations = suite.get("expectations") if isinstance(suite, dict) else None
        types.update(item["type"] for item in expectations or () if isinstance(item, dict) and isinstance(item.get("type"), str))
    return types


def _serve(connection: Any, suites: Path | None) -> None:
    """The gate process: import Great Expectations and the suites' expectation types, then validate
    the one request that comes."""
    # The import makes hundreds of thousands of objects that live as long as the process, and next
    # to no garbage: without the collector during it and with its objects frozen afterwards (left
    # out of every later collection), the import and the validation each save a tenth of a second
    # or more on 2 cores. This process ends after one validation, so nothing frozen is kept long.
    gc.disable()
    try:
        import_great_expectations()
        import_expectations(suite_types(suites))
    finally:
        gc.enable()
    gc.freeze()
    imported = time.monotonic()
    try:
        request = connection.recv()
    except (EOFError, OSError):  # the stage ended (or failed) before its gate
        return
    try:
        answer: tuple[str, Any] = ("result", (validate(*request), imported))
    except BaseException as err:  # any failure goes back to the stage, which raises it there
        answer = ("error", err)
    with contextlib.suppress(OSError):
        try:
            connection.send(answer)
        except Exception as err:  # an answer the pipe cannot carry: its traceback as text instead
            failure = answer[1] if answer[0] == "error" else err
            connection.send(("error", RuntimeError("".join(traceback.format_exception(failure)))))
    connection.close()


class EarlyGate:
    """A process importing Great Expectations (and the expectation types of the suites in the
    suites folder) from the moment it is made; `validate` hands it a stage's tables (once) and
    returns the result."""

    def __init__(self, suites: Path | None = None) -> None:
        # pandas is not imported before the fork: the data stages never need it (core.stage.spare_pandas),
        # so the gate's process imports it, with Great Expectations, while the stage works.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._connection, theirs = context.Pipe()
        # not a daemon: it may start processes of its own to validate batches in parallel
        self._process = context.Process(target=_serve, args=(theirs, suites), name="quality-gate")
        self._process.start()
        theirs.close()
        self._asked = False

    def validate(self, name: str, tables: GateTables, parameters: Mapping[str, Any], root: Path | str = ".",
                 paths: PathsParams | None = None) -> GateResult:
        """validate() in the gate process; its exceptions are raised here."""
        asked, self._asked = time.monotonic(), True
        try:
            self._connection.send((name, tables, dict(parameters), root, paths))
            kind, value = self._connection.recv()
        except (EOFError, OSError) as err:
            raise RuntimeError(f"the quality gate's process ended without an answer (exit code "
                               f"{self._process.exitcode}); rerun with --no-gate to see whether the stage "
                               f"itself works") from err
        finally:
            self.close()
        if kind == "error":
            raise value
        result, imported = value
        result.seconds = time.monotonic() - asked
        result.import_seconds = max(0.0, imported - asked)  # what the stage still waited for
        return result

    def close(self) -> None:
        """End the process: it ends by itself once it has answered; unasked, it is stopped at once
        (it may still be importing)."""
        if self._connection.closed:
            return
        self._connection.close()
        if not self._asked:
            self._process.terminate()
        self._process.join()


@contextlib.contextmanager
def early_gate(enabled: bool = True, suites: Path | None = None) -> Iterator[EarlyGate | None]:
    """An EarlyGate for a stage's gate (None when the gate is off), closed when the stage ends;
    suites: the folder of expectation suites (params.yaml's paths.expectations)."""
    gate = EarlyGate(suites) if enabled else None
    try:
        yield gate
    finally:
        if gate is not None:
            gate.close()
