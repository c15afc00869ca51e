"""Plain text: one segment per line, or two line-aligned files (parallel text as OPUS/Moses distribute it)."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Iterator

from ..config import Source
from ..errors import UserError
from .encoding import Line, choose_codec, invalid_reason, iter_lines
from .rows import BadRow, Header, Item, Row, raw_json


def read_lines(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Every line is a row (a blank one too, so line numbers and alignment stay meaningful)."""
    codec = choose_codec(path, source.encoding)
    reason = invalid_reason(codec)
    yield Header(name, ("text",))
    for line in iter_lines(path, codec):
        origin = f"{name}:{line.number}"
        if line.text is None:
            yield BadRow(origin, reason, f"bytes that are not valid {codec}", line.raw)
        else:
            yield Row(origin, {"text": line.text})


def _remaining(lines: Iterator[Line]) -> int:
    return sum(1 for _ in lines)


def read_aligned(path: Path, name: str, pivot_path: Path, pivot_name: str, source: Source) -> Iterator[Item]:
    """Line n of the target file and line n of the pivot file make one row; origin names the target file.

    Both files must have the same number of lines: a difference means they are not aligned, and
    pairing them would silently mistranslate everything after the first gap.
    """
    codec = choose_codec(path, source.encoding)
    pivot_codec = choose_codec(pivot_path, source.encoding)
    yield Header(name, ("text", "pivot_text"))
    target_lines, pivot_lines = iter_lines(path, codec), iter_lines(pivot_path, pivot_codec)
    paired = 0
    for target, pivot in zip_longest(target_lines, pivot_lines):
        if target is None or pivot is None:
            target_count = paired + (target is not None) + _remaining(target_lines)
            pivot_count = paired + (pivot is not None) + _remaining(pivot_lines)
            raise UserError(f"{name} has {target_count} lines but {pivot_name} has {pivot_count}; line-aligned "
                            f"parallel files need the same number of lines (check for a missing or extra line)")
        paired += 1
        origin = f"{name}:{target.number}"
        if target.text is None or pivot.text is None:
            bad_name, bad_codec = (name, codec) if target.text is None else (pivot_name, pivot_codec)
            yield BadRow(origin, invalid_reason(bad_codec), f"bytes that are not valid {bad_codec} in {bad_name}",
                         raw_json({"text": target.raw, "pivot_text": pivot.raw}))
        else:
            yield Row(origin, {"text": target.text, "pivot_text": pivot.text})
