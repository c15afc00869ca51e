"""A Parquet writer that encodes and compresses on a thread of its own.

Encoding and compressing a row group is most of what writing costs (13.6 of the 45 s the dedup stage's
main process was busy on 10 million rows, sampled with py-spy), and pyarrow does it without the GIL, so a thread
can do it while the caller reads and filters the next rows. Row groups reach the file in the order they
were given, through one thread, so the bytes are those of writing them in place.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

QUEUED_TABLES = 2  # tables waiting for the thread: memory for two row groups beyond the one being written


class ThreadedParquetWriter:
    """pq.ParquetWriter's write_table and close, the writing done on a thread. An error on the thread
    comes back from the next write_table or from close; abort() stops without raising it."""

    def __init__(self, path: str | os.PathLike, schema: pa.Schema, **options: Any):
        self._writer = pq.ParquetWriter(path, schema, **options)
        self._tables: queue.Queue = queue.Queue(maxsize=QUEUED_TABLES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_queued, name=f"parquet {os.fspath(path)}", daemon=True)
        self._thread.start()

    def _write_queued(self) -> None:
        while (item := self._tables.get()) is not None:
            if self._error is not None:
                continue  # drain what is queued; the caller hears of the error
            table, row_group_size = item
            try:
                self._writer.write_table(table.combine_chunks(), row_group_size=row_group_size)
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def write_table(self, table: pa.Table, row_group_size: int) -> None:
        self._raise_error()
        self._tables.put((table, row_group_size))

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._tables.put(None)
            self._thread.join()

    def close(self) -> None:
        """Write what is queued and close the file; raises the thread's error, if any."""
        self._stop()
        self._writer.close()
        self._raise_error()

    def abort(self) -> None:
        """Stop writing (what is queued is dropped once an error occurred) and close the file."""
        self._error = self._error or _Aborted()
        self._stop()
        self._writer.close()


class _Aborted(Exception):
    """Marks a writer being aborted, so the thread drops what is still queued."""
