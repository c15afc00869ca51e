"""Which codec a text file is read with, and the refusal of files that are not text.

An explicit `encoding:` always wins; then a byte order mark; then UTF-8 for a file that is valid UTF-8
(or mostly so); then a legacy code page that charset-normalizer is confident of, read with a note. An
unsure guess stops with one line naming it. A binary file (NUL bytes with undecodable bytes or a known
signature in its first block) stops with one line naming its format where filetype knows it.
"""

from __future__ import annotations

import codecs
import locale
import logging
import re
from pathlib import Path
from typing import NamedTuple

import charset_normalizer
import numpy as np
import pyarrow as pa

from langfoundry.core.errors import UserError

log = logging.getLogger(__name__)

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),  # the utf-16 codec reads the BOM to pick the byte order
    (codecs.BOM_UTF16_BE, "utf-16"),
)

HEAD_BYTES = 8192  # the first block, where a binary file shows itself (git and grep look as far)
SCAN_BYTES = 1 << 20  # the UTF-8 check reads the file in pieces of this size
SAMPLE_BYTES = 1 << 16  # what the detector sees: lines with non-ASCII bytes, from the first not UTF-8
# The detector's mess ratio (0: clean text) above which a guess is too unsure to read by, and the margin
# within which two mess ratios do not part two guesses (charset-normalizer's own, in its ordering).
CONFIDENT_CHAOS = 0.1
SAME_CHAOS = 0.005
# A file with at least one valid multi-byte UTF-8 character per this many undecodable bytes is UTF-8
# with some broken lines (they become rejects): read as a legacy code page, its UTF-8 would be mojibake.
UTF8_EVIDENCE_RATIO = 20
# cp1252 is Windows' code page for Western European text and for Latin-script languages without a
# code page of their own (Indonesian and its neighbours), so a tie between code pages goes to it.
WESTERN = ("cp1252", "iso8859-1", "iso8859-15")


class CodecChoice(NamedTuple):
    codec: str
    detected: bool  # guessed from the bytes, neither declared nor marked by a byte order mark


def choose_codec(path: Path, declared: str | None, name: str | None = None, lang: str | None = None) -> str:
    """The codec to read a file with: a declared encoding always wins, then a BOM, then UTF-8 when the
    file is valid UTF-8, then a legacy encoding the detector is confident of (see detect_codec).

    Refuses (UserError) an unknown declared encoding, a binary file (see _refuse_binary) and UTF-16/32
    without a byte order mark or a declared encoding.
    """
    return _choose(path, declared, name or _shown(path), lang).codec


def reader_codec(path: Path, name: str, declared: str | None, lang: str | None) -> str:
    """choose_codec for a reader, which also says, once per file read, when the codec was detected."""
    choice = _choose(path, declared, name, lang)
    if choice.detected:
        log.warning("%s: read as %s (detected; set encoding: in sources.yaml to make it explicit)", name, choice.codec)
    return choice.codec


def marked_codec(path: Path, name: str) -> str | None:
    """The codec a byte order mark names (None without one), after refusing a file that is not text;
    for formats that declare their own charset (PO)."""
    head = _head(path)
    marked = _bom_codec(head)
    if marked is None:
        _refuse_binary(head, name, None)
    return marked


def _choose(path: Path, declared: str | None, name: str, lang: str | None) -> CodecChoice:
    head = _head(path)
    if declared:
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            raise UserError(f"{name}: unknown encoding {declared!r} in sources.yaml; use a Python codec name "
                            f"such as utf-8, utf-16, cp1252 or latin-1") from None
        if codec == "utf-8" and head.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        if not _is_wide(codec):
            _refuse_binary(head, name, codec)
        return CodecChoice(codec, False)
    marked = _bom_codec(head)
    if marked is not None:
        return CodecChoice(marked, False)
    _refuse_binary(head, name, None)
    return detect_codec(path, name, lang)


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES)


def _shown(path: Path) -> str:
    """A path as messages name it: relative to the working directory when it lies under it."""
    try:
        return path.absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def _bom_codec(head: bytes) -> str | None:
    return next((codec for bom, codec in _BOMS if head.startswith(bom)), None)


def _is_wide(codec: str) -> bool:
    return codec.startswith(("utf-16", "utf-32"))


def _lookup(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _refuse_binary(head: bytes, name: str, codec: str | None) -> None:
    """Refuse a file whose first block has NUL bytes with bytes the codec cannot decode or a known binary
    signature. Without a codec (nothing declared, no BOM), UTF-16 or UTF-32 that lacks its byte order mark
    asks for an encoding first. Text with a NUL character is still text: the row holding it carries it."""
    if b"\x00" not in head:
        return
    if codec is None:
        best = charset_normalizer.from_bytes(head).best()
        wide = _lookup(best.encoding) if best is not None else None
        if wide and _is_wide(wide) and best.chaos < SAME_CHAOS:  # a few NULs in short text can look like it
            raise UserError(f"{name}: NUL bytes at the start: looks like {wide} without a byte order mark; set "
                            f"`encoding:` {wide} for this source (or save the file as UTF-8)")
    import filetype

    try:
        codecs.getincrementaldecoder(codec or "utf-8")().decode(head)  # a character cut at the end is no error
    except UnicodeDecodeError:
        raise not_text(head, name) from None
    if filetype.guess(head) is not None:
        raise not_text(head, name)


def not_text(head: bytes, name: str) -> UserError:
    """The error for a file that is not text, naming its format when its first bytes are a known signature."""
    import filetype

    kind = filetype.guess(head)
    if kind is None:
        what = "it has NUL bytes"
    else:
        noun = "archive" if filetype.is_archive(head) else _NOUNS.get(kind.mime.partition("/")[0], "file")
        label = kind.extension.upper()
        article = "an" if label[0] in "AEFHILMNORSX" else "a"  # letters whose names start with a vowel sound
        what = f"it starts with the bytes of {article} {label} {noun}"
    return UserError(f"{name}: not a text file ({what}); check the path")


_NOUNS = {"image": "image", "video": "video", "audio": "audio file", "font": "font"}


class _Utf8Scan(NamedTuple):
    first_invalid: int | None  # byte offset of the first byte that is not UTF-8; None: all valid
    multibyte: int  # characters over U+007F that decoded: evidence the file is UTF-8
    invalid: int  # undecodable byte sequences


def _whole_utf8(block: bytes) -> bool:
    """Whether the bytes are valid UTF-8 that ends on a character's end (Arrow's check, a third of the
    time of decoding them into a str)."""
    offsets = pa.py_buffer(np.array([0, len(block)], dtype=np.int32))
    try:
        pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(block)]).cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _scan_utf8(path: Path) -> _Utf8Scan:
    """Read the whole file as UTF-8 (at C speed, a piece at a time) and count what decodes and what does not."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset, first, multibyte, invalid = 0, None, 0, 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(SCAN_BYTES)
            pending = len(decoder.getstate()[0])
            if block and not pending and _whole_utf8(block):
                # every character over U+007F has one lead byte (0xC2 to 0xF4), the only bytes >= 0xC0
                multibyte += int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) >= 0xC0))
                offset += len(block)
                continue
            text = decoder.decode(block, final=not block)
            bad = text.count("\ufffd")
            if bad and first is None:
                first = offset - pending + len(text[:text.index("\ufffd")].encode("utf-8"))
            multibyte += len(text) - len(text.encode("ascii", "ignore")) - bad
            invalid += bad
            offset += len(block)
            if not block:
                return _Utf8Scan(first, multibyte, invalid)


_NON_ASCII_LINE = re.compile(rb"[^\n]*[\x80-\xff][^\n]*\n?")


def _sample(path: Path, offset: int) -> bytes:
    """Up to SAMPLE_BYTES of the lines that hold bytes over 0x7f, from the line of byte `offset` on: the
    detector judges the evidence, not the ASCII around it."""
    lines: list[bytes] = []
    size = 0
    with path.open("rb") as handle:
        handle.seek(max(0, offset - 1024))  # a little before: the line of `offset` usually starts there
        carry = b""
        while size < SAMPLE_BYTES and (block := handle.read(SCAN_BYTES)):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            block, carry = (block[:cut], block[cut:]) if cut else (b"", block)
            for match in _NON_ASCII_LINE.finditer(block):
                lines.append(match.group())
                size += len(match.group())
        lines.extend(_NON_ASCII_LINE.findall(carry))
    return b"".join(lines)[:SAMPLE_BYTES]


def _preferred(lang: str | None) -> str:
    """The code page a tie goes to: the language's own legacy charset (from the C library's locale table)
    when it is not Western, else cp1252."""
    alias = locale.locale_alias.get((lang or "").split("-")[0].lower(), "")
    legacy = _lookup(alias.partition(".")[2]) if "." in alias else None
    if legacy is None or legacy in WESTERN or legacy.startswith("utf") or legacy == "ascii":
        return "cp1252"
    return legacy


def _pick(matches: list, sample: bytes, lang: str | None) -> tuple[str, object] | None:
    """The codec to read by and the detector's guess for it: the preferred code page when a guess as clean as
    the best decodes the sample as it does, else the best guess when the detector's own ordering puts it
    alone at the top; None when the top guesses disagree and none is preferred."""
    best, wanted = matches[0], _preferred(lang)
    try:
        text = sample.decode(wanted)
    except UnicodeDecodeError:
        text = None
    for match in matches:
        if match.chaos - best.chaos < SAME_CHAOS and str(match) == text:
            return wanted, match
    tied = [match for match in matches if not best < match]
    return (_lookup(best.encoding) or best.encoding, best) if len(tied) == 1 else None


def detect_codec(path: Path, name: str, lang: str | None = None) -> CodecChoice:
    """UTF-8 for a valid UTF-8 file (so valid UTF-8 is never turned into mojibake), and for one that is
    mostly UTF-8 with a few broken lines; else the legacy code page charset-normalizer is confident of
    around the first byte that is not UTF-8. Unsure, it stops with a UserError naming its best guess.

    A guess with no language in it (a few stray bytes) is no evidence: the file stays UTF-8 and the
    lines with those bytes are rejects, as in any UTF-8 file.
    """
    scan = _scan_utf8(path)
    if scan.first_invalid is None or scan.multibyte * UTF8_EVIDENCE_RATIO > scan.invalid:
        return CodecChoice("utf-8", False)
    sample = _sample(path, scan.first_invalid)
    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None or best.coherence <= 0 or _is_wide(_lookup(best.encoding) or ""):
        return CodecChoice("utf-8", False)
    picked = _pick(list(matches), sample, lang)
    if picked is not None and picked[1].chaos <= CONFIDENT_CHAOS:
        return CodecChoice(picked[0], True)
    guess = _lookup(best.encoding) or best.encoding
    close = [match for match in matches if match.chaos - best.chaos < SAME_CHAOS]
    others = sorted({_lookup(match.encoding) or match.encoding for match in close} - {guess})
    also = f" (or {', '.join(others[:3])}: the detector cannot tell)" if others else ""
    raise UserError(f"{name}: not UTF-8; looks like {guess}{also}; pass --encoding {guess} (or set encoding to "
                    f"{guess} in its sources.yaml entry)")
