"""An ordered process pool: the data stages' batches worked on all cores, results in input order."""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

MAX_WORKERS = 8  # each worker holds a batch or two; more would trade memory for little


def worker_count() -> int:
    """The cores this process may use (its CPU affinity, not the host's count), at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds with the parent's imports; spawn where fork does not exist
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def ordered_map(function: Callable[[Any], Any], items: Iterable[Any], workers: int,
                initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]:
    """function(item) for each item, in item order, computed by `workers` processes.

    At most two items per worker are in flight, so a long input never piles up in memory
    (multiprocessing's imap reads its whole input ahead). With one worker, or one item, it runs
    here. function and initializer must be importable module-level functions.
    """
    items = iter(items)
    head = [item for _, item in zip(range(2), items)]
    if workers <= 1 or len(head) < 2:
        if initializer is not None:
            initializer(*initargs)
        for item in itertools.chain(head, items):
            yield function(item)
        return
    pa.array([0])  # pyarrow imports pandas on its first conversion (0.3 s): here, so forked workers share it
    with _pool_context().Pool(workers, initializer, initargs) as pool:
        in_flight: deque = deque()
        for item in itertools.chain(head, items):
            in_flight.append(pool.apply_async(function, (item,)))
            if len(in_flight) >= 2 * workers:
                yield in_flight.popleft().get()
        while in_flight:
            yield in_flight.popleft().get()


class WorkerParquet:
    """A Parquet file that each process reading it opens once, on its first read: a pool's workers read
    their own row groups (rather than have the main process read and send them), and each opens the
    file itself, not through a handle its parent held when it forked."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._opened: tuple[int, Any] | None = None  # (the process that opened it, its pq.ParquetFile)

    def __getstate__(self) -> dict:
        return {"path": self.path, "_opened": None}

    def read_row_group(self, index: int, columns: Sequence[str] | None = None) -> pa.Table:
        if self._opened is None or self._opened[0] != os.getpid():
            from langfoundry.core.streaming import open_parquet  # here: importing the pool stays light (gates use it)

            self._opened = (os.getpid(), open_parquet(self.path))
        return self._opened[1].read_row_group(index, columns=None if columns is None else list(columns))
