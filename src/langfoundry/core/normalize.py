"""Text normalisation per script, applied before anything filters, compares or scores text.

Steps, in this order (the order makes the result idempotent):
1. Malayalam legacy chillu sequences (consonant + virama + ZWJ) become the atomic chillu
   letters U+0D7A..U+0D7F; this runs first because step 2 may drop the ZWJ they need.
2. Control characters go; zero-width characters follow the `zero_width` policy:
   - keep_joiners: drop ZWSP, word joiner, BOM, soft hyphen, invisible operators and the
     Mongolian vowel separator; keep ZWJ/ZWNJ only between letters or marks of scripts whose
     spelling they change (Indic, Arabic-type joining scripts, N'Ko ...) and inside emoji
     sequences; drop them elsewhere.
   - remove: drop all of the above, joiners included.
   - keep: leave every zero-width character alone.
   Bidirectional controls (LRM, RLM, isolates) are left alone under every policy: they carry
   direction in mixed N'Ko/Latin text.
3. NFC (after the removals, so marks that become adjacent are put in canonical order).
4. N'Ko combining marks in canonical order (see `_nko_mark_rank`).
5. Whitespace: every Unicode space becomes ' ', runs collapse, ends are stripped; multi-line
   kinds keep single newlines between non-empty lines, other kinds become one line.

`comparison_key` is the looser form dedup and split compare: casefolded, punctuation gone,
but combining marks (tones, viramas, N'Ko marks) kept, since "ba" and "bà" are different words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, Literal

import regex

ZeroWidthPolicy = Literal["keep_joiners", "remove", "keep"]

# Kinds whose text is running prose or dialogue: single newlines are kept there.
MULTILINE_KINDS = frozenset({"monolingual", "transcription", "ocr", "conversation", "instruction", "feedback"})

# --- Malayalam ---------------------------------------------------------------------------
# Before Unicode 5.1 a chillu was written consonant + VIRAMA (U+0D4D) + ZWJ; since then it has
# its own code point. NFC does not map one to the other (chillus have no decomposition).
_ATOMIC_CHILLU = {
    "\u0d23": "\u0d7a",  # ണ -> ൺ
    "\u0d28": "\u0d7b",  # ന -> ൻ
    "\u0d30": "\u0d7c",  # ര -> ർ
    "\u0d32": "\u0d7d",  # ല -> ൽ
    "\u0d33": "\u0d7e",  # ള -> ൾ
    "\u0d15": "\u0d7f",  # ക -> ൿ
}
_LEGACY_CHILLU = regex.compile("([\u0d23\u0d28\u0d30\u0d32\u0d33\u0d15])\u0d4d\u200d")

# --- N'Ko ------------------------------------------------------------------------------------
# unicodedata.combining gives the tone marks U+07EB..U+07F1 and the double dot above U+07F3 class
# 230, the nasalization mark U+07F2 and dantayalan U+07FD class 220. NFC's canonical ordering
# therefore already puts the class-220 marks before the class-230 ones, but it never reorders
# marks of one class, so "tone + double dot" and "double dot + tone" stay different strings.
# Our order refines NFC's (so the result stays NFC): by combining class first; within class 230
# the double dot above (it changes which consonant the letter is) before the tone marks; then
# by code point. Python's sort is stable, so repeated marks keep their relative order.
_NKO_MARKS = "\u07eb-\u07f3\u07fd"
_NKO_MARK_RUN = regex.compile(f"[{_NKO_MARKS}]{{2,}}")


def _nko_mark_rank(mark: str) -> tuple[int, int, int]:
    return unicodedata.combining(mark), 0 if mark == "\u07f3" else 1, ord(mark)


def _sort_nko_marks(match: regex.Match) -> str:
    return "".join(sorted(match.group(), key=_nko_mark_rank))


# --- zero-width characters ---------------------------------------------------------------------
_JOINERS = "\u200c\u200d"  # ZWNJ, ZWJ
# ZWSP, word joiner, BOM/ZWNBSP, soft hyphen, invisible operators, Mongolian vowel separator
_INVISIBLE = "\u200b\u2060\ufeff\u00ad\u2061-\u2064\u180e"
# Scripts in which ZWJ/ZWNJ change how a word is written (conjuncts, chillus, cursive joining).
_JOINING_SCRIPTS = ("Mlym", "Deva", "Beng", "Guru", "Gujr", "Orya", "Taml", "Telu", "Knda", "Sinh",
                    "Arab", "Syrc", "Nkoo", "Mong", "Adlm", "Mymr", "Khmr", "Java", "Bali", "Sund", "Bugi")
_JOINING_SCRIPT_CLASS = "".join(f"\\p{{sc={code}}}" for code in _JOINING_SCRIPTS)
_JOINABLE_BEFORE = rf"(?:[[\p{{L}}\p{{M}}]&&[{_JOINING_SCRIPT_CLASS}]]|[\p{{Extended_Pictographic}}\p{{Emoji_Modifier}}\ufe0f])"
_JOINABLE_AFTER = rf"(?:[[\p{{L}}\p{{M}}]&&[{_JOINING_SCRIPT_CLASS}]]|\p{{Extended_Pictographic}})"
# Control characters other than whitespace (tabs and line breaks are handled in step 5).
_CONTROL = r"[\p{Cc}--\s]"

_DROP = {
    "keep": regex.compile(rf"(?V1){_CONTROL}"),
    "remove": regex.compile(rf"(?V1){_CONTROL}|[{_INVISIBLE}{_JOINERS}]"),
    "keep_joiners": regex.compile(
        rf"(?V1){_CONTROL}|[{_INVISIBLE}]|(?<!{_JOINABLE_BEFORE})[{_JOINERS}]|[{_JOINERS}](?!{_JOINABLE_AFTER})"
    ),
}

ZERO_WIDTH_POLICIES = tuple(_DROP)


def _collapse_whitespace(text: str, multiline: bool) -> str:
    # str.split() with no argument splits on every Unicode space (Zs, tabs, line and paragraph
    # separators) in C, which is all this step needs and several times faster than a regex.
    if multiline:
        lines = (" ".join(line.split()) for line in text.splitlines())
        return "\n".join(line for line in lines if line)
    return " ".join(text.split())


def normalize_text(text: str, zero_width: ZeroWidthPolicy = "keep_joiners", multiline: bool = False) -> str:
    """One string through steps 1-5 of the module docstring."""
    if zero_width not in _DROP:
        raise ValueError(f"zero_width must be one of {', '.join(ZERO_WIDTH_POLICIES)}, not {zero_width!r}")
    # Printable text has no controls, no zero-width (format) characters and no spaces but ' ':
    # steps 1 and 2 have nothing to do, which is the common case and worth the check.
    if not text.isprintable():
        if "\u200d" in text:
            text = _LEGACY_CHILLU.sub(lambda match: _ATOMIC_CHILLU[match.group(1)], text)
        text = _DROP[zero_width].sub("", text)
    text = unicodedata.normalize("NFC", text)
    if not text.isascii():
        text = _NKO_MARK_RUN.sub(_sort_nko_marks, text)
    return _collapse_whitespace(text, multiline)


# --- text inside meta ---------------------------------------------------------------------------

# Keys of meta that hold language text, per kind: (key, keep newlines).
INSTRUCTION_KEYS = ("instruction", "input", "output")
EXAMPLE_KEYS = ("examples", "example")


def map_meta_texts(meta: dict[str, Any], kind: str, transform: Callable[[str, bool], str]) -> dict[str, Any]:
    """A copy of meta with transform(text, multiline) applied to its language text.

    conversation: every message's "content"; instruction: instruction/input/output;
    dictionary: usage examples (a string, a list of strings, or a list of {text, translation}).
    Other keys (part of speech, media paths, roles) are left as they are.
    """
    out = dict(meta)
    if kind == "conversation" and isinstance(meta.get("messages"), list):
        out["messages"] = [
            {**message, "content": transform(message["content"], True)}
            if isinstance(message, dict) and isinstance(message.get("content"), str) else message
            for message in meta["messages"]
        ]
    elif kind == "instruction":
        for key in INSTRUCTION_KEYS:
            if isinstance(meta.get(key), str):
                out[key] = transform(meta[key], True)
    elif kind == "dictionary":
        for key in EXAMPLE_KEYS:
            if key in meta:
                out[key] = _map_examples(meta[key], transform)
    return out


def _map_examples(value: Any, transform: Callable[[str, bool], str]) -> Any:
    if isinstance(value, str):
        return transform(value, False)
    if isinstance(value, list):
        return [_map_examples(item, transform) for item in value]
    if isinstance(value, dict):
        return {key: transform(item, False) if isinstance(item, str) else item for key, item in value.items()}
    return value


def meta_texts(meta: dict[str, Any], kind: str) -> list[str]:
    """The language text inside meta, in a fixed order (what map_meta_texts would transform)."""
    found: list[str] = []

    def collect(text: str, multiline: bool) -> str:
        found.append(text)
        return text

    map_meta_texts(meta, kind, collect)
    return found


# --- comparison key -------------------------------------------------------------------------------

# Apostrophes stay: in regional orthographies they write a glottal stop ("ma'" is not "ma").
_APOSTROPHE_FORMS = ("\u2019", "\u2018", "\u02bc")
_PUNCTUATION_OR_SYMBOL = regex.compile(r"(?V1)[[\p{P}\p{S}]--[']]+")
# Fast path for Latin-1 text (most Latin-script text): one bytes.translate lower-cases and turns
# punctuation, symbols and every kind of space into ' ', in C. The table comes from unicodedata; within Latin-1,
# lower() equals casefold() but for ß and µ, which take the general path, and the result is NFC.
_LATIN1_KEY_TABLE = bytes(
    b if b == ord("'") else 32 if chr(b).isspace() or unicodedata.category(chr(b))[0] in "PS" else ord(chr(b).lower())
    for b in range(256))


def latin1_bytes(text: str) -> bytes | None:
    """The text as Latin-1 bytes, or None when it has characters beyond U+00FF."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def comparison_key(text: str) -> str:
    """Casefolded text with punctuation and symbols (but apostrophes) as spaces, spaces collapsed.

    Combining marks are never removed, so tones and viramas still tell words apart.
    Casefolding can leave text that is not NFC (e.g. a capital with no precomposed lower
    case form), hence the NFC after it.
    """
    data = latin1_bytes(text) if "\u00df" not in text and "\u00b5" not in text else None
    if data is not None:
        return b" ".join(data.translate(_LATIN1_KEY_TABLE).split()).decode("latin-1")
    return _general_comparison_key(text)


def _general_comparison_key(text: str) -> str:
    folded = unicodedata.normalize("NFC", text.casefold())
    for form in _APOSTROPHE_FORMS:
        folded = folded.replace(form, "'")
    return " ".join(_PUNCTUATION_OR_SYMBOL.sub(" ", folded).split())
