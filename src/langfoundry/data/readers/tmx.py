"""TMX translation memories, streamed <tu> by <tu> so large memories need little memory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from langfoundry.core.config import Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers.rows import BadRow, Header, Item, Row, one_line, raw_json

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Inline codes stand for formatting in the original document (e.g. "<b>"); their content is not text.
CODE_ELEMENTS = {"bpt", "ept", "it", "ph", "ut"}


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def segment_text(seg) -> str:
    """The text of a <seg>: its own text and <hi>/<sub> content, without inline codes."""
    parts = [seg.text or ""]
    for child in seg:
        if _local(child.tag) not in CODE_ELEMENTS:
            parts.append(segment_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0]


def pick_languages(variants: list[tuple[str, str]], wanted: list[str]) -> list[int | None]:
    """For each wanted tag, the index of its variant: an exact (case-insensitive) match first, else the
    first unused variant with the same primary subtag (so "id" finds "id-ID", "en" finds "EN-GB")."""
    tags = [tag.lower() for tag, _ in variants]
    chosen: list[int | None] = []
    for want in (tag.lower() for tag in wanted):
        exact = [i for i, tag in enumerate(tags) if tag == want and i not in chosen]
        chosen.append(exact[0] if exact else None)
    for slot, want in enumerate(tag.lower() for tag in wanted):
        if chosen[slot] is None:
            loose = [i for i, tag in enumerate(tags) if _primary(tag) == _primary(want) and i not in chosen]
            chosen[slot] = loose[0] if loose else None
    return chosen


def read_tmx(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Rows with `text` (the source's lang) and `pivot_text` (its pivot_lang); origin is the <tu>'s line.

    A <tu> without a variant for one of the languages is a reject (missing_language), not an error.
    """
    from lxml import etree

    wanted = [source.lang] + ([source.pivot_lang] if source.pivot_lang else [])
    fields = ("text", "pivot_text")[: len(wanted)]
    yield Header(name, fields)
    # No DTD, no entities, no network: a TMX file is data, not instructions to the parser.
    events = etree.iterparse(str(path), events=("end",), tag=("tu", "{*}tu"), encoding=source.encoding,
                             resolve_entities=False, load_dtd=False, no_network=True, huge_tree=True)
    try:
        for _, unit in events:
            origin = f"{name}:{unit.sourceline}"
            variants = []
            for tuv in unit:
                if _local(tuv.tag) != "tuv":
                    continue
                tag = tuv.get(XML_LANG) or tuv.get("lang") or ""
                seg = next((child for child in tuv if _local(child.tag) == "seg"), None)
                variants.append((tag, segment_text(seg) if seg is not None else ""))
            chosen = pick_languages(variants, wanted)
            if None in chosen:
                missing = [tag for tag, index in zip(wanted, chosen) if index is None]
                present = ", ".join(tag for tag, _ in variants) or "none"
                yield BadRow(origin, "missing_language", f"no <tuv> for {', '.join(missing)} (languages here: {present})",
                             raw_json(dict(variants)))
            else:
                yield Row(origin, {field: variants[index][1] for field, index in zip(fields, chosen)})
            # Free what has been read: the element and the siblings before it.
            unit.clear()
            while unit.getprevious() is not None:
                del unit.getparent()[0]
    except etree.XMLSyntaxError as err:
        line, column = err.position if err.position else (0, 0)
        raise UserError(f"{name}:{line}:{column}: not well-formed TMX/XML ({one_line(err.msg)}); fix the file there") from None
    except LookupError as err:  # an unknown encoding given in sources.yaml
        raise UserError(f"{name}: {one_line(err)}; fix `encoding:` for this source") from None
