"""Ingest as the stage does (ingest_to_files) into a test's own folder, and what it wrote read back."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from langfoundry.core.config import IngestParams, Source
from langfoundry.core.inventory import Language
from langfoundry.data.ingest import ingest_to_files


@dataclass(frozen=True)
class Ingested:
    records: pa.Table  # as written: sorted by id, origin
    rejects: pa.Table  # as written: sorted by source, origin, reason, detail, raw
    metrics: dict[str, Any]  # as ingest_to_files returns them (nested)
    paths: tuple[Path, Path, Path]  # records, rejects, metrics

    def metrics_file(self) -> dict[str, Any]:
        """The metrics file as written (flat "a.b" keys)."""
        return json.loads(self.paths[2].read_text(encoding="utf-8"))


def ingest_into(folder: Path | str, sources: Iterable[Source], params: IngestParams, inventory: dict[str, Language],
                root: Path | str = ".") -> Ingested:
    """Run ingest_to_files with its three outputs in folder, and read them back."""
    folder = Path(folder)
    paths = (folder / "ingested.parquet", folder / "ingest_rejects.parquet", folder / "ingest.json")
    metrics = ingest_to_files(sources, params, inventory, records_path=paths[0], rejects_path=paths[1],
                              metrics_path=paths[2], root=root)
    return Ingested(pq.read_table(paths[0]), pq.read_table(paths[1]), metrics, paths)
