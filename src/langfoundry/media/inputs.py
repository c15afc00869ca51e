"""What the media stages share about a source's inputs: its files of one kind, how a file is named in origins,
and the index each stage leaves beside the records it extracted."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path

from langfoundry.core.config import Source, acquired_dir
from langfoundry.core.errors import UserError


def media_files(source: Source, root: Path, suffixes: Collection[str], what: str) -> list[Path]:
    """The files of a media source with one of `suffixes`, in name order: its path (a file or a folder, hidden
    entries skipped) or its acquired folder. `what` names them in the error when there is none."""
    where = root / (source.path if source.path is not None else acquired_dir(source.id))
    if where.is_file():
        return [where]
    if not where.is_dir():
        hint = "run `dvc repro acquire` first" if source.path is None else "fix the path in sources.yaml"
        raise UserError(f"sources.yaml: source {source.id!r}: {where.relative_to(root).as_posix()} does not exist; {hint}")
    files = sorted(path for path in where.rglob("*") if path.is_file() and path.suffix.lower() in suffixes
                   and not any(part.startswith(".") for part in path.relative_to(where).parts))
    if not files:
        raise UserError(f"sources.yaml: source {source.id!r}: no {what} ({', '.join(sorted(suffixes))}) "
                        f"in {where.relative_to(root).as_posix()}")
    return files


def shown_path(path: Path, root: Path) -> str:
    """A file as origins name it: relative to the repository root where it lies inside it."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def write_source_index(folder: Path, records: Mapping[str, int]) -> None:
    """sources.json: records per source in a media stage's folder (which is then never empty: DVC warns of that)."""
    (folder / "sources.json").write_text(json.dumps(dict(records), indent=2, sort_keys=True) + "\n", encoding="utf-8")
