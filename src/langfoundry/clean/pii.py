"""Personal-data scrubbing: e-mail addresses, phone numbers and national ID numbers become placeholders.

Personal data is not a reject reason: the clean stage replaces it with <EMAIL>, <PHONE> or
<ID_NUMBER> before filtering (in text, pivot_text and the language text inside meta), and the
measures leave the placeholders out of the script and letter counts (PLACEHOLDER finds them).
"""

from __future__ import annotations

from collections import Counter

import regex

PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "id_number": "<ID_NUMBER>"}
PII_TYPES = tuple(PLACEHOLDERS)
PLACEHOLDER = "<(?:EMAIL|PHONE|ID_NUMBER)>"  # a regular expression for any of the placeholders

_EMAIL = r"(?<![\w.%+-])[\w.%+-]+@(?:[\w-]+\.)+\w{2,}(?![\w-])"
# A number stands alone: not glued to a word, and not the tail or head of a decimal ("448.027").
_NUMBER_START = r"(?<![\w+])(?<!\d[.,/-])"
_NUMBER_END = r"(?!\w)(?![.,/-]\d)"
# Indonesian NIK: 16 digits, written solid or in groups of four (card numbers look the same).
_ID_NUMBER = rf"{_NUMBER_START}(?:\d{{16}}|\d{{4}}(?P<sep>[ .-])\d{{4}}(?P=sep)\d{{4}}(?P=sep)\d{{4}}){_NUMBER_END}"
# International (+62 812-3456-7890), Indonesian national (0812 3456 7890) and area-code
# ((021) 555 1234) forms. A number must start with +, (0 or 0 and have 9-15 digits, so years,
# prices and quantities ("tahun 2024", "3 kg", "Rp 15.000") never match.
_PHONE = (rf"{_NUMBER_START}(?:\+\d{{1,3}}[ .-]?(?:\(\d{{1,4}}\)[ .-]?)?|\(0\d{{1,4}}\)[ .-]?|0)"
          rf"\d{{2,4}}(?:[ .-]?\d{{2,4}}){{1,4}}{_NUMBER_END}")
_PII = regex.compile(f"(?P<email>{_EMAIL})|(?P<id_number>{_ID_NUMBER})|(?P<phone>{_PHONE})")
_PII_HINT = regex.compile(r"\d\d")  # every number above has two digits in a row
PHONE_DIGITS = (9, 15)  # E.164 allows at most 15


def scrub_pii(text: str) -> tuple[str, Counter | None]:
    """Text with personal data replaced by placeholders, and how many of each type were replaced."""
    if "@" not in text and not _PII_HINT.search(text):
        return text, None
    found: Counter = Counter()

    def replace(match: regex.Match) -> str:
        kind = next(name for name in PII_TYPES if match.group(name) is not None)
        if kind == "phone" and not PHONE_DIGITS[0] <= sum(c.isdigit() for c in match.group()) <= PHONE_DIGITS[1]:
            return match.group()
        found[kind] += 1
        return PLACEHOLDERS[kind]

    return _PII.sub(replace, text), found or None
