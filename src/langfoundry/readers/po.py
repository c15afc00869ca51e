"""gettext PO catalogues: msgid is the pivot side, msgstr the target side (swap with `columns`)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..config import Source
from ..errors import UserError
from .rows import BadRow, Header, Item, Row, one_line, raw_json


def read_po(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Rows with columns msgid and msgstr; origin is the entry's first line.

    A plural entry gives one row per form: msgid with msgstr[0], msgid_plural with msgstr[1] (and any
    further forms), each origin ending in its msgstr index. Fuzzy, untranslated and obsolete entries are
    rejects, so a half-finished catalogue never trains a model on guesses.
    """
    import polib

    try:
        catalogue = polib.pofile(str(path), encoding=source.encoding) if source.encoding else polib.pofile(str(path))
    except (OSError, ValueError) as err:  # polib reports syntax errors as OSError naming the line
        raise UserError(f"{name}: not a valid PO file ({one_line(err)}); fix the file there") from None
    yield Header(name, ("msgid", "msgstr"))
    for entry in catalogue:
        meta = {"context": entry.msgctxt} if entry.msgctxt else None
        if entry.msgid_plural:
            forms = [(f"{name}:{entry.linenum}:msgstr[{index}]", entry.msgid if index == 0 else entry.msgid_plural, text)
                     for index, text in sorted(entry.msgstr_plural.items())]
        else:
            forms = [(f"{name}:{entry.linenum}", entry.msgid, entry.msgstr)]
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
