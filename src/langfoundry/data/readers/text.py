"""Plain text: one segment per line, or two line-aligned files (parallel text as OPUS/Moses distribute it)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, count
from pathlib import Path
from typing import NamedTuple

from langfoundry.core.config import Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers.detect import reader_codec
from langfoundry.data.readers.encoding import Line, iter_line_blocks, iter_lines
from langfoundry.data.readers.rows import BadRow, Header, Item, Row, raw_json


def read_lines(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Every line is a row (a blank one too, so line numbers and alignment stay meaningful)."""
    codec = reader_codec(path, name, source.encoding, source.lang)
    yield Header(name, ("text",))
    for line in iter_lines(path, codec):
        origin = f"{name}:{line.number}"
        if line.text is None:
            yield BadRow(origin, line.reason or "unreadable", line.detail or "", line.raw)
        else:
            yield Row(origin, {"text": line.text})


def _remaining(lines: Iterator) -> int:
    return sum(1 for _ in lines)


def read_aligned(path: Path, name: str, pivot_path: Path, pivot_name: str, source: Source) -> Iterator[Item]:
    """Line n of the target file and line n of the pivot file make one row; origin names the target file.

    Both files must have the same number of lines: a difference means they are not aligned, and
    pairing them would silently mistranslate everything after the first gap.
    """
    for item in aligned_blocks(path, name, pivot_path, pivot_name, source):
        if isinstance(item, AlignedBlock):
            for number, target, pivot in zip(count(item.first), item.texts, item.pivots):
                yield Row(f"{name}:{number}", {"text": target, "pivot_text": pivot})
        else:
            yield item


class AlignedBlock(NamedTuple):
    """Consecutive good rows of two aligned files: line numbers from `first`, one text per side."""
    first: int
    texts: list[str]
    pivots: list[str]


def aligned_blocks(path: Path, name: str, pivot_path: Path, pivot_name: str,
                   source: Source) -> Iterator[Item | AlignedBlock]:
    """read_aligned's items with its good rows in blocks (AlignedBlock), so a large parallel corpus
    is read without an object per row (see ingest.ParallelColumns)."""
    codec = reader_codec(path, name, source.encoding, source.lang)
    pivot_codec = reader_codec(pivot_path, pivot_name, source.encoding, source.pivot_lang)
    yield Header(name, ("text", "pivot_text"))
    target_blocks, pivot_blocks = iter_line_blocks(path, codec), iter_line_blocks(pivot_path, pivot_codec)
    targets: list = []
    pivots: list = []
    paired = 0
    while True:
        targets = targets or next(target_blocks, [])
        pivots = pivots or next(pivot_blocks, [])
        if not targets or not pivots:
            if targets or pivots:
                target_count = paired + len(targets) + _remaining(chain.from_iterable(target_blocks))
                pivot_count = paired + len(pivots) + _remaining(chain.from_iterable(pivot_blocks))
                raise UserError(f"{name} has {target_count} lines but {pivot_name} has {pivot_count}; line-aligned "
                                f"parallel files need the same number of lines (check for a missing or extra line)")
            return
        size = min(len(targets), len(pivots))
        these, targets = targets[:size], targets[size:]
        those, pivots = pivots[:size], pivots[size:]
        start = 0
        for bad in [index for index, (target, pivot) in enumerate(zip(these, those))
                    if type(target) is not str or type(pivot) is not str]:
            if bad > start:
                yield AlignedBlock(paired + start + 1, these[start:bad], those[start:bad])
            yield _bad_pair(paired + bad + 1, these[bad], those[bad], name, pivot_name)
            start = bad + 1
        if start < size:
            yield AlignedBlock(paired + start + 1, these[start:], those[start:])
        paired += size


def _bad_pair(number: int, target: str | Line, pivot: str | Line, name: str, pivot_name: str) -> BadRow:
    target = target if isinstance(target, Line) else Line(number, target, target)
    pivot = pivot if isinstance(pivot, Line) else Line(number, pivot, pivot)
    bad, bad_name = (target, name) if target.text is None else (pivot, pivot_name)
    return BadRow(f"{name}:{number}", bad.reason or "unreadable", f"{bad.detail} in {bad_name}",
                  raw_json({"text": target.raw, "pivot_text": pivot.raw}))
