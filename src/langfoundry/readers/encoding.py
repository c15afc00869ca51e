"""Decoding input files: BOM sniffing, a declared encoding, and line-by-line decoding that
isolates undecodable lines instead of failing the whole file."""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import Iterator, NamedTuple

from ..errors import UserError

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

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),  # the utf-16 codec reads the BOM to pick the byte order
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class Line(NamedTuple):
    number: int  # 1-based
    text: str | None  # None when the line could not be decoded
    raw: str  # the line as decoded, undecodable bytes written as \xNN escapes


def choose_codec(path: Path, declared: str | None) -> str:
    """The codec to read a file with: a BOM wins over the UTF-8 default; a declared encoding is honoured."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if declared:
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            raise UserError(f"{path}: unknown encoding {declared!r} in sources.yaml; use a Python codec name "
                            f"such as utf-8, utf-16, cp1252 or latin-1") from None
        if name == "utf-8" and head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        return name
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if b"\x00" in head:
        raise UserError(f"{path}: NUL bytes at the start: UTF-16 or UTF-32 without a byte order mark, or not a "
                        f"text file; set `encoding:` (e.g. utf-16-le) for this source or save it as UTF-8")
    return "utf-8"


def invalid_reason(codec: str) -> str:
    return "invalid_utf8" if codec.replace("_", "-").startswith("utf-8") else "invalid_encoding"


def iter_lines(path: Path, codec: str) -> Iterator[Line]:
    """Yield every line without its terminator; CRLF, CR and LF all end a line (mixed is fine).

    A line with bytes the codec cannot decode comes back with text None; its neighbours are unaffected.
    """
    with path.open("rb") as binary:
        # newline=None: universal newlines, so "\r\n" and a lone "\r" both end a line, while U+2028
        # and other characters str.splitlines would break on stay inside the line.
        stream = io.TextIOWrapper(binary, encoding=codec, errors=_ERROR_HANDLER, newline=None)
        for number, line in enumerate(stream, start=1):
            if line.endswith("\n"):
                line = line[:-1]
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]  # a BOM the declared codec did not consume
            if _INVALID_MARK in line:
                yield Line(number, None, line.replace(_INVALID_MARK, ""))
            else:
                yield Line(number, line, line)


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
