"""Decoding input files line by line, isolating undecodable lines instead of failing the whole file.

Which codec a file is read with (declared, from a BOM, UTF-8 or a detected legacy code page), and the
refusal of binary files, live in langfoundry.data.readers.detect; choose_codec is re-exported here.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from langfoundry.core.errors import UserError
from langfoundry.data.readers.detect import choose_codec, marked_codec, reader_codec

__all__ = ["Line", "choose_codec", "marked_codec", "reader_codec", "iter_lines", "iter_line_blocks", "iter_joined_blocks",
           "read_text",
           "is_empty", "invalid_reason", "MAX_LINE_CHARS", "RAW_PREFIX_CHARS"]

# A lone surrogate never comes out of a successful decode (UTF-8 and UTF-16 codecs reject them),
# so it can mark the spot where bytes could not be decoded.
_INVALID_MARK = "\ud800"
_ERROR_HANDLER = "langfoundry-mark-invalid"


def _mark_invalid(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    escaped = "".join(f"\\x{byte:02x}" for byte in error.object[error.start:error.end])
    return _INVALID_MARK + escaped, error.end


codecs.register_error(_ERROR_HANDLER, _mark_invalid)

# A line longer than this is a reject (line_too_long) read in pieces and never held whole, so one
# runaway line (a file without newlines, a dump in one line) cannot exhaust memory; ingest rejects a
# longer value from a whole-document format (JSON, TMX, PO, Parquet) too (value_too_long). Not a
# parameter: it only bounds memory; clean.max_chars decides, far below it, which rows are long.
MAX_LINE_CHARS = 1_000_000
RAW_PREFIX_CHARS = 1_000  # how much of an over-long line its reject keeps


class Line(NamedTuple):
    number: int  # 1-based
    text: str | None  # None when the line could not be decoded or is too long
    raw: str  # the line as decoded, undecodable bytes written as \xNN escapes (the start of a long line)
    reason: str | None = None  # why text is None: invalid_utf8, invalid_encoding or line_too_long
    detail: str | None = None


def invalid_reason(codec: str) -> str:
    return "invalid_utf8" if codec.replace("_", "-").startswith("utf-8") else "invalid_encoding"


def iter_lines(path: Path, codec: str, max_chars: int = MAX_LINE_CHARS) -> Iterator[Line]:
    """Yield every line without its terminator; CRLF, CR and LF all end a line (mixed is fine).

    A line with bytes the codec cannot decode, or with more than max_chars characters, comes back
    with text None and a reason; its neighbours are unaffected.
    """
    number = 0
    for block in iter_line_blocks(path, codec, max_chars):
        for line in block:
            number += 1
            yield line if isinstance(line, Line) else Line(number, line, line)


# Characters decoded per read: lines are split in C, a block at a time. Half the longest line, so
# that a block with its tail from the last read is rarely longer than a line may be (_plain_lines).
READ_BLOCK_CHARS = MAX_LINE_CHARS // 2


def iter_line_blocks(path: Path, codec: str, max_chars: int = MAX_LINE_CHARS) -> Iterator[list[str | Line]]:
    """The lines of iter_lines a block at a time: each good line as its text (a str), each
    undecodable or over-long line as its Line. Line numbers follow from the order (the first is 1).

    An over-long line is read past a block at a time, never held whole.
    """
    for _, block in _counted_blocks(path, codec, max_chars, joined=False):
        yield block  # type: ignore[misc]


def iter_joined_blocks(path: Path, codec: str, max_chars: int = MAX_LINE_CHARS) -> Iterator[tuple[int, list[str | Line] | str]]:
    """iter_line_blocks' blocks with their number of lines, and a block of good lines only as one
    str, its lines joined by "\n" (its .split("\n") is the list): one string is far cheaper than
    thousands to send to another process."""
    return _counted_blocks(path, codec, max_chars, joined=True)


def _counted_blocks(path: Path, codec: str, max_chars: int, joined: bool) -> Iterator[tuple[int, list[str | Line] | str]]:
    with path.open("rb") as binary:
        # newline=None: universal newlines, so "\r\n" and a lone "\r" both end a line, while U+2028
        # and other characters str.splitlines would break on stay inside the line.
        stream = io.TextIOWrapper(binary, encoding=codec, errors=_ERROR_HANDLER, newline=None)
        number, tail = 0, ""
        while chunk := stream.read(READ_BLOCK_CHARS):
            text, first = tail + chunk, number
            if joined and (lines := _plain_lines(text, number, max_chars)):
                number += lines
                cut = text.rindex("\n")
                tail = text[cut + 1:]
                yield lines, text[:cut]
                continue
            pieces = text.split("\n")
            tail = pieces.pop()
            block: list[str | Line]
            if _all_plain(text, pieces, number, max_chars):  # nearly every block: no line needs a look
                block = pieces
                number += len(pieces)
            else:
                block = []
                for piece in pieces:
                    number += 1
                    block.append(_checked(number, piece, len(piece), codec, max_chars))
            if len(tail) > max_chars:  # a line longer than a line may be: count the rest, keep the start
                number += 1
                length, start = len(tail), tail[:RAW_PREFIX_CHARS]
                while chunk := stream.read(READ_BLOCK_CHARS):
                    end = chunk.find("\n")
                    if end >= 0:
                        length += end
                        tail = chunk[end + 1:]
                        break
                    length += len(chunk)
                else:
                    tail = ""
                block.append(_checked(number, start, length, codec, max_chars))
                # what followed the long line may hold whole lines: split it on the next round
                pieces = tail.split("\n")
                tail = pieces.pop()
                for piece in pieces:
                    number += 1
                    block.append(_checked(number, piece, len(piece), codec, max_chars))
            if block:
                yield number - first, block
        if tail:
            yield 1, [_checked(number + 1, tail, len(tail), codec, max_chars)]


def _plain_lines(text: str, number: int, max_chars: int) -> int:
    """How many whole lines the text holds when _checked would return each unchanged (0 when it has
    none, or one might not be: then the caller splits and checks). A text no longer than max_chars
    has no line longer than that; the checks are scans in C."""
    if len(text) > max_chars or _INVALID_MARK in text or (number == 0 and text.startswith("\ufeff")):
        return 0
    return text.count("\n")


def _all_plain(text: str, pieces: list[str], number: int, max_chars: int) -> bool:
    """Whether _checked would return every piece unchanged: no undecodable bytes in the text, no
    byte order mark to drop, no line too long. Three scans in C instead of a Python call a line."""
    return (_INVALID_MARK not in text and not (number == 0 and pieces and pieces[0].startswith("\ufeff"))
            and max(map(len, pieces), default=0) <= max_chars)


def _checked(number: int, line: str, length: int, codec: str, max_chars: int) -> str | Line:
    """A line as iter_line_blocks gives it (length: the whole line's, when line holds only its start)."""
    if length > max_chars:
        raw = line[:min(RAW_PREFIX_CHARS, max_chars + 1)].replace(_INVALID_MARK, "")
        return Line(number, None, raw, "line_too_long",
                    f"line {number} has {length:,} characters, over the {max_chars:,} a line may have; "
                    f"the reject keeps its first {RAW_PREFIX_CHARS:,}")
    if number == 1 and line.startswith("\ufeff"):
        line = line[1:]  # a BOM the declared codec did not consume
    if _INVALID_MARK in line:
        return Line(number, None, line.replace(_INVALID_MARK, ""), invalid_reason(codec),
                    f"bytes that are not valid {codec}")
    return line


def read_text(path: Path, codec: str, display: str) -> str:
    """A whole file as text (for whole-document formats such as JSON); undecodable bytes stop with a UserError."""
    data = path.read_bytes()
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UserError(f"{display}:{line}: bytes {data[err.start:err.end]!r} at offset {err.start} are not valid "
                        f"{codec}; re-save the file as UTF-8 or set `encoding:` for this source") from None
    return text.removeprefix("\ufeff")


def is_empty(path: Path) -> bool:
    """True for a file with no bytes, or nothing but a byte order mark."""
    size = path.stat().st_size
    if size > 3:
        return False
    head = path.read_bytes()
    return head in (b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
