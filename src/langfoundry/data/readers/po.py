"""gettext PO catalogues: msgid is the pivot side, msgstr the target side (swap with `columns`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from langfoundry.core.config import Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers.detect import marked_codec
from langfoundry.data.readers.encoding import iter_lines
from langfoundry.data.readers.rows import BadRow, Header, Item, Row, one_line, raw_json

ENTRY_STARTS = ("msgctxt", "msgid", "#,", "#:", "#.", "#|", "#~")


def _first_entry_line(path: Path, codec: str | None) -> int:
    """The line the first entry starts on: polib numbers the first entry of a file without a header 0."""
    for line in iter_lines(path, codec or "utf-8"):
        if line.text is not None and line.text.lstrip().startswith(ENTRY_STARTS):
            return line.number
    return 1


def _undecodable_line(path: Path, codec: str) -> int | None:
    return next((line.number for line in iter_lines(path, codec) if line.reason and line.reason.startswith("invalid")), None)


def read_po(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Rows with columns msgid and msgstr; origin is the entry's first line.

    A plural entry gives one row per form: msgid with msgstr[0], msgid_plural with msgstr[1] (and any
    further forms), each origin ending in its msgstr index. Fuzzy, untranslated and obsolete entries are
    rejects, so a half-finished catalogue never trains a model on guesses. The charset comes from the
    `encoding` of the source, else a UTF-16/32 byte order mark, else the catalogue's Content-Type header.
    """
    import polib

    codec = source.encoding
    if codec is None:
        marked = marked_codec(path, name)  # also refuses a file that is not text
        codec = marked if marked in ("utf-16", "utf-32") else None
    try:
        catalogue = polib.pofile(str(path), encoding=codec) if codec else polib.pofile(str(path))
    except UnicodeDecodeError as err:
        line = _undecodable_line(path, err.encoding)
        where = f"{name}:{line}" if line else name
        raise UserError(f"{where}: bytes that are not valid {err.encoding} (the charset the catalogue declares or "
                        f"the default); re-save it in that charset or fix `charset=` in its Content-Type header") from None
    except LookupError as err:
        raise UserError(f"{name}: {one_line(err)}; fix the charset in the Content-Type header or `encoding:`") from None
    except (OSError, ValueError) as err:  # polib reports syntax errors as OSError naming the line
        raise UserError(f"{name}: not a valid PO file ({one_line(err)}); fix the file there") from None
    yield Header(name, ("msgid", "msgstr"))
    for entry in catalogue:
        linenum = entry.linenum or _first_entry_line(path, codec or catalogue.encoding)
        meta = {"context": entry.msgctxt} if entry.msgctxt else None
        if entry.msgid_plural:
            forms = [(f"{name}:{linenum}:msgstr[{index}]", entry.msgid if index == 0 else entry.msgid_plural, text)
                     for index, text in sorted(entry.msgstr_plural.items())]
        else:
            forms = [(f"{name}:{linenum}", entry.msgid, entry.msgstr)]
        for origin, msgid, msgstr in forms:
            raw = raw_json({"msgctxt": entry.msgctxt, "msgid": msgid, "msgstr": msgstr})
            if entry.obsolete:
                yield BadRow(origin, "obsolete", "an obsolete (#~) entry", raw)
            elif entry.fuzzy:
                yield BadRow(origin, "fuzzy", "marked fuzzy: the translation needs review", raw)
            elif not msgstr:
                yield BadRow(origin, "untranslated", "msgstr is empty", raw)
            else:
                yield Row(origin, {"msgid": msgid, "msgstr": msgstr}, meta)
