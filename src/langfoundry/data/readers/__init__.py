"""Readers turn a source's files into rows as read (Row), unreadable rows (BadRow) and headers.

Every reader is a generator over one file, so a source of any size streams through ingest.
Origins name the file (relative to the repository root) and the place in it: "file:line" (1-based
line), "file#index" (0-based record index: JSON, Parquet) or "file:Sheet!row" (Excel).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langfoundry.core.config import MEDIA_STAGE, Source, acquired_dir, media_records
from langfoundry.core.errors import UserError
from langfoundry.data.readers.rows import BadRow, Header, Item, Row

__all__ = ["BadRow", "Header", "Item", "Row", "SourceFile", "FORMAT_BY_SUFFIX", "source_files", "read_file"]

FORMAT_BY_SUFFIX = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx", ".txt": "txt", ".tmx": "tmx", ".po": "po",
}
PROVENANCE_FILE = "ACQUIRED.json"  # written by acquire beside what it fetched; not data


@dataclass(frozen=True)
class SourceFile:
    path: Path  # as found on disk (read through symlinks)
    name: str  # as origins show it: relative to the repository root, "/" separators
    format: str
    pivot_path: Path | None = None  # line-aligned pivot side of parallel text
    pivot_name: str | None = None


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _checked(path: Path, root: Path, source: Source, allow_outside: bool) -> Path:
    """The path, after refusing one that leads (itself or through a symlink) outside the repository."""
    resolved = path.resolve()
    if not allow_outside and not resolved.is_relative_to(root.resolve()):
        raise UserError(f"sources.yaml: source {source.id!r}: {_display(path, root)} leads to {resolved}, outside "
                        f"the repository; copy the data under data/raw/ (or set ingest.allow_outside_repo: true "
                        f"in params.yaml)")
    return path


def _format_of(path: Path, source: Source) -> str | None:
    if source.format is not None:
        return source.format
    return FORMAT_BY_SUFFIX.get(path.suffix.lower())


def _directory_files(directory: Path, root: Path, source: Source, allow_outside: bool) -> list[SourceFile]:
    files: list[SourceFile] = []
    skipped: list[str] = []
    linked: list[str] = []
    for folder, subfolders, names in os.walk(directory):  # symlinked folders are not entered: said below
        subfolders[:] = sorted(entry for entry in subfolders if not entry.startswith("."))
        linked += [_display(Path(folder) / entry, root) for entry in subfolders if (Path(folder) / entry).is_symlink()]
        for entry in sorted(names):
            if entry.startswith(".") or entry == PROVENANCE_FILE:
                continue
            path = Path(folder) / entry
            name = _display(path, root)
            fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
            if fmt is None or (source.format is not None and fmt != source.format):
                skipped.append(name)
                continue
            files.append(SourceFile(_checked(path, root, source, allow_outside), name, fmt))
    files.sort(key=lambda file: file.name)
    if not files:
        wanted = f"{source.format} files" if source.format else f"files ending in {', '.join(sorted(FORMAT_BY_SUFFIX))}"
        raise UserError(f"sources.yaml: source {source.id!r}: no {wanted} in {_display(directory, root)}"
                        + (f" (found {', '.join(skipped[:5])})" if skipped else ""))
    log = logging.getLogger(__name__)
    if skipped:
        log.warning("warning: source %s: skipped %d file(s) of another format in %s: %s", source.id,
                    len(skipped), _display(directory, root), ", ".join(skipped[:5]))
    if linked:
        log.warning("warning: source %s: did not enter %d symlinked folder(s): %s; list them as sources of "
                    "their own or copy their files in", source.id, len(linked), ", ".join(linked[:5]))
    return files


def source_files(source: Source, root: Path, allow_outside: bool = False) -> list[SourceFile]:
    """The files a source reads, in a stable order, after checking they exist and stay inside the repository."""
    root = root.absolute()
    if source.media is not None:  # the text a media stage extracted, in the source's place
        extracted = root / media_records(source)
        if not extracted.is_file():
            stage = MEDIA_STAGE[source.media]
            raise UserError(f"sources.yaml: source {source.id!r} (media: {source.media}): {_display(extracted, root)} "
                            f"does not exist; run `dvc repro {stage}` (or python stages/{stage}.py) first")
        return [SourceFile(extracted, _display(extracted, root), "media")]
    if source.path is None:
        directory = root / acquired_dir(source.id)
        if not directory.is_dir():
            raise UserError(f"sources.yaml: source {source.id!r} has an acquire spec and no path, and "
                            f"{_display(directory, root)} does not exist; run `dvc repro acquire` "
                            f"(or python stages/acquire.py) first")
        return _directory_files(directory, root, source, allow_outside)
    path = _checked(Path(os.path.normpath(root / source.path)), root, source, allow_outside)
    if not path.exists():
        raise UserError(f"sources.yaml: source {source.id!r}: path {source.path} does not exist; fix the path "
                        f"(relative to the repository root) or add the file")
    if source.pivot_path is not None:
        pivot = _checked(Path(os.path.normpath(root / source.pivot_path)), root, source, allow_outside)
        for side, candidate in (("path", path), ("pivot_path", pivot)):
            if not candidate.is_file():
                raise UserError(f"sources.yaml: source {source.id!r}: {side} {_display(candidate, root)} must be a "
                                f"file: line-aligned parallel text is one file per side")
        if source.format not in (None, "txt"):
            raise UserError(f"sources.yaml: source {source.id!r}: pivot_path is for line-aligned text files; "
                            f"remove format: {source.format} or pivot_path")
        return [SourceFile(path, _display(path, root), "txt", pivot, _display(pivot, root))]
    if path.is_dir():
        return _directory_files(path, root, source, allow_outside)
    name = _display(path, root)
    fmt = _format_of(path, source)
    if fmt is None:
        raise UserError(f"sources.yaml: source {source.id!r}: cannot tell the format of {name} from its name; "
                        f"add format: (one of {', '.join(sorted(set(FORMAT_BY_SUFFIX.values())))})")
    return [SourceFile(path, name, fmt)]


def read_file(file: SourceFile, source: Source) -> Iterator[Item]:
    """The rows of one file, in file order."""
    if file.format == "txt":
        from langfoundry.data.readers.text import read_aligned, read_lines

        if file.pivot_path is not None:
            return read_aligned(file.path, file.name, file.pivot_path, file.pivot_name or "", source)
        return read_lines(file.path, file.name, source)
    if file.format == "tmx":
        from langfoundry.data.readers.tmx import read_tmx

        return read_tmx(file.path, file.name, source)
    if file.format == "po":
        from langfoundry.data.readers.po import read_po

        return read_po(file.path, file.name, source)
    from langfoundry.data.readers import tabular

    if file.format == "media":
        return tabular.read_extracted(file.path, file.name, source)
    if file.format in ("csv", "tsv"):
        return tabular.read_delimited(file.path, file.name, source, tsv=file.format == "tsv")
    readers = {"json": tabular.read_json, "jsonl": tabular.read_jsonl, "parquet": tabular.read_parquet,
               "xlsx": tabular.read_xlsx}
    return readers[file.format](file.path, file.name, source)
