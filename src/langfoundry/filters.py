"""The clean stage: normalise, scrub personal data, and reject rows that fail a quality filter.

Filters run in this fixed order and a row is rejected by the first one it fails (its name is the
reject reason); each side of a pair is checked (pivot_text when the row has one):

  empty          text, or the pivot side of a pair, is empty after normalisation
  length         a side has fewer than min_chars or more than max_chars characters
  length_ratio   (kinds in length_ratio_kinds) longer side / shorter side > max_length_ratio,
                 in whitespace-separated words or in characters (length_ratio_unit)
  script_ratio   share of letters (\\p{L}) written in the side's language script (inventory)
                 < min_script_ratio; a side with no letters at all has ratio 0
  letter_ratio   share of letters and their combining marks among non-space characters
                 < min_letter_ratio: catches lines of digits and punctuation that carry a few
                 letters, which a letters-only script check lets through
  repetition     one word repeated back to back more than max_word_repeats times (words are
                 compared casefolded, punctuation between them ignored)
  char_whitelist (languages listed in char_whitelist) a character outside the list

Personal data is not a reject reason: e-mail addresses, phone numbers and national ID numbers
are replaced by <EMAIL>, <PHONE>, <ID_NUMBER> before filtering (in text, pivot_text and the
language text inside meta), and the placeholders are left out of the script and letter counts.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import regex

from .config import CleanParams
from .errors import UserError
from .normalize import MULTILINE_KINDS, latin1_bytes, map_meta_texts, normalize_text
from .records import REJECT_SCHEMA, RECORD_COLUMNS, make_reject, meta_json

FILTERS = ("empty", "length", "length_ratio", "script_ratio", "letter_ratio", "repetition", "char_whitelist")
PAIR_KINDS = frozenset({"dictionary", "parallel"})  # these always need a pivot side
META_TEXT_KINDS = frozenset({"conversation", "instruction", "dictionary"})
SIDES = ("text", "pivot_text")

# --- personal data ------------------------------------------------------------------------------

PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "id_number": "<ID_NUMBER>"}
PII_TYPES = tuple(PLACEHOLDERS)
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
_PLACEHOLDER = "<(?:EMAIL|PHONE|ID_NUMBER)>"
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


# --- measures ---------------------------------------------------------------------------------------

_MEASURE_PATTERNS: dict[str, regex.Pattern] = {}


def _measure_pattern(script: str) -> regex.Pattern:
    """One pass that finds what is not a plain letter of the script; plain letters (the bulk of
    normal text) never match, so the scan is cheap."""
    if script not in _MEASURE_PATTERNS:
        try:
            _MEASURE_PATTERNS[script] = regex.compile(
                rf"(?V1)(?P<placeholder>{_PLACEHOLDER})|(?P<mark>\p{{M}}+)|(?P<other>[^\p{{L}}\p{{M}} \n]+)"
                rf"|(?P<foreign>[\p{{L}}--\p{{sc={script}}}]+)")
        except regex.error:
            raise UserError(f"data/inventory/languages.csv: script {script!r} is not an ISO 15924 code "
                            f"(e.g. Latn, Mlym, Nkoo); fix the script column") from None
    return _MEASURE_PATTERNS[script]


# Fast path for text made only of Latin-1 characters (most Latin-script text): bytes.translate
# counts classes in C, several times faster than a regex scan. The byte tables come from
# unicodedata and the regex module at import, so both paths count alike (a test checks it);
# Latin-1 has no combining marks.
_LATIN1_LETTERS = bytes(b for b in range(256) if unicodedata.category(chr(b)).startswith("L"))
_LATIN1_FOREIGN: dict[str, bytes] = {}


def _latin1_foreign(script: str) -> bytes:
    if script not in _LATIN1_FOREIGN:
        in_script = regex.compile(rf"\p{{sc={script}}}")
        _LATIN1_FOREIGN[script] = bytes(b for b in _LATIN1_LETTERS if not in_script.match(chr(b)))
    return _LATIN1_FOREIGN[script]


@dataclass
class SideMeasures:
    chars: np.ndarray  # characters (code points)
    words: np.ndarray  # whitespace-separated words
    letters: np.ndarray  # \p{L}, placeholders left out
    script_letters: np.ndarray  # letters of the side's script
    word_chars: np.ndarray  # letters and combining marks
    nonspace: np.ndarray  # non-space characters, placeholders left out


def measure_text(text: str, script: str | None) -> tuple[int, int, int, int, int, int]:
    """SideMeasures' counts for one normalised text (spaces are ' ' and '\n'); with a None
    script every letter counts as the script's."""
    spaces = text.count(" ") + text.count("\n")
    data = latin1_bytes(text) if "<" not in text else None
    if data is not None:
        letters = len(data) - len(data.translate(None, _LATIN1_LETTERS))
        foreign = len(data) - len(data.translate(None, _latin1_foreign(script))) if script else 0
        return len(text), len(text.split()), letters, letters - foreign, letters, len(text) - spaces
    return _general_measure(text, script)


def _general_measure(text: str, script: str | None) -> tuple[int, int, int, int, int, int]:
    spaces = text.count(" ") + text.count("\n")
    skipped = {"placeholder": 0, "mark": 0, "other": 0, "foreign": 0}
    for match in _measure_pattern(script or "Zyyy").finditer(text):
        skipped[match.lastgroup] += match.end() - match.start()
    foreign = skipped["foreign"] if script else 0
    nonspace = len(text) - spaces - skipped["placeholder"]
    letters = nonspace - skipped["mark"] - skipped["other"]
    return len(text), len(text.split()), letters, letters - foreign, letters + skipped["mark"], nonspace


def measure(texts: list[str | None], scripts: list[str | None]) -> SideMeasures:
    """Counts per text; None counts as empty."""
    empty = (0, 0, 0, 0, 0, 0)
    counts = np.array([measure_text(text, script) if text else empty for text, script in zip(texts, scripts)],
                      dtype=np.int64).reshape(len(texts), 6)
    return SideMeasures(*counts.T)


_NON_WORD = regex.compile(r"[\p{P}\p{S}]+")
# Latin-1 fast path again: lower case and punctuation/symbols -> space in one bytes.translate.
# For Latin-1, lower() and casefold() differ only on ß and µ, which take the regex path.
_LATIN1_WORD_TABLE = bytes(
    32 if chr(b).isspace() or unicodedata.category(chr(b))[0] in "PS" else ord(chr(b).lower()) for b in range(256))


def words_of(text: str) -> list:
    """Casefolded words with punctuation and symbols between them ignored (str, or bytes on the fast path)."""
    data = latin1_bytes(text) if "ß" not in text and "µ" not in text else None
    if data is not None:
        return data.translate(_LATIN1_WORD_TABLE).split()
    return _general_words(text)


def _general_words(text: str) -> list[str]:
    return _NON_WORD.sub(" ", text.casefold()).split()


def repeated_run(text: str, max_repeats: int) -> tuple[str, int] | None:
    """The word with the longest back-to-back run, if that run is longer than max_repeats."""
    words = words_of(text)
    if len(words) - len(set(words)) < max_repeats:  # a run of max_repeats + 1 repeats a word that often
        return None
    longest_word, longest, run, previous = "", 0, 0, None
    for word in words:
        run = run + 1 if word == previous else 1
        previous = word
        if run > longest:
            longest_word, longest = word, run
    if longest <= max_repeats:
        return None
    return (longest_word.decode("latin-1") if isinstance(longest_word, bytes) else longest_word), longest


# --- filters ----------------------------------------------------------------------------------------


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole, 0 where whole is 0 (a side with nothing to count fails a share check)."""
    out = np.zeros(len(whole), dtype=np.float64)
    np.divide(part, whole, out=out, where=whole > 0)
    return out


def first_failures(kinds: list[str], langs: list[str], pivot_langs: list[str | None], texts: list[str],
                   pivots: list[str | None], params: CleanParams, scripts: Mapping[str, str]) -> list[tuple[str, str] | None]:
    """For each row, (filter, detail) of the first filter it fails, or None when it passes all.

    texts and pivots are already normalised (and scrubbed); scripts maps language tag -> ISO 15924.
    """
    n = len(texts)
    needs_pivot = np.array([kind in PAIR_KINDS or pivot_lang is not None for kind, pivot_lang in zip(kinds, pivot_langs)], dtype=bool)
    has_pivot = needs_pivot | np.array([bool(pivot) for pivot in pivots], dtype=bool)
    side_langs = {"text": langs, "pivot_text": pivot_langs}
    side_texts = {"text": texts, "pivot_text": pivots}
    checked = {"text": np.ones(n, dtype=bool), "pivot_text": has_pivot}
    measures = {"text": measure(texts, [scripts[lang] for lang in langs]),
                "pivot_text": measure(pivots, [scripts[lang] if lang else None for lang in pivot_langs])}
    failures: list[tuple[str, str] | None] = [None] * n

    def reject(mask: np.ndarray, name: str, detail) -> None:
        for i in np.flatnonzero(mask):
            if failures[i] is None:
                failures[i] = (name, detail(i))

    # empty
    for side in SIDES:
        empty = (measures[side].chars == 0) & (needs_pivot if side == "pivot_text" else checked[side])
        reject(empty, "empty", lambda i, side=side: f"{side} is empty after normalisation")
    # length
    for side in SIDES:
        chars = measures[side].chars
        reject(checked[side] & (chars < params.min_chars), "length",
               lambda i, side=side, chars=chars: f"{side} has {chars[i]} characters (min {params.min_chars})")
        reject(checked[side] & (chars > params.max_chars), "length",
               lambda i, side=side, chars=chars: f"{side} has {chars[i]} characters (max {params.max_chars})")
    # length_ratio
    unit = params.length_ratio_unit
    sizes = [getattr(measures[side], unit) for side in SIDES]
    longer, shorter = np.maximum(*sizes), np.maximum(np.minimum(*sizes), 1)
    ratio = longer / shorter
    applies = has_pivot & np.isin(np.array(kinds, dtype=object), list(params.length_ratio_kinds))
    reject(applies & (ratio > params.max_length_ratio), "length_ratio",
           lambda i: f"text has {sizes[0][i]} {unit}, pivot_text {sizes[1][i]}: ratio {ratio[i]:.2f} "
                     f"(max {params.max_length_ratio})")
    # script_ratio
    for side in SIDES:
        m = measures[side]
        share = _share(m.script_letters, m.letters)
        reject(checked[side] & (share < params.min_script_ratio), "script_ratio",
               lambda i, side=side, m=m, share=share: (
                   f"{side} has no letters" if m.letters[i] == 0 else
                   f"{side}: {share[i]:.2f} of its letters are in {scripts.get(side_langs[side][i] or '', 'its script')} "
                   f"(min {params.min_script_ratio})"))
    # letter_ratio
    for side in SIDES:
        m = measures[side]
        share = _share(m.word_chars, m.nonspace)
        reject(checked[side] & (share < params.min_letter_ratio), "letter_ratio",
               lambda i, side=side, share=share: f"{side}: letters are {share[i]:.2f} of its non-space characters "
                                                 f"(min {params.min_letter_ratio})")
    # repetition and char_whitelist look at each surviving row in Python
    whitelists = {lang: set(unicodedata.normalize("NFC", chars)) | {" ", "\n"}
                  for lang, chars in params.char_whitelist.items()}
    placeholder = regex.compile(_PLACEHOLDER)
    for i in range(n):
        if failures[i] is not None:
            continue
        for side in SIDES:
            text = side_texts[side][i]
            if text and (run := repeated_run(text, params.max_word_repeats)):
                failures[i] = ("repetition", f"{side} repeats {run[0]!r} {run[1]} times in a row "
                                             f"(max {params.max_word_repeats})")
                break
        if failures[i] is not None or not whitelists:
            continue
        for side in SIDES:
            allowed = whitelists.get(side_langs[side][i] or "")
            text = side_texts[side][i]
            if allowed is not None and text:
                outside = sorted(set(placeholder.sub("", text)) - allowed)
                if outside:
                    shown = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in outside[:10])
                    failures[i] = ("char_whitelist", f"{side} has characters outside the {side_langs[side][i]} "
                                                     f"whitelist: {shown}")
                    break
    return failures


# --- the stage's work on one batch ---------------------------------------------------------------------


@dataclass
class CleanResult:
    kept: list[pa.Table] = field(default_factory=list)
    rejects: list[pa.Table] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # ("in"|"kept", lang), ("dropped", filter, lang), ("pii", type, lang)

    def kept_table(self, schema: pa.Schema) -> pa.Table:
        return pa.concat_tables(self.kept) if self.kept else schema.empty_table()

    def rejects_table(self) -> pa.Table:
        return pa.concat_tables(self.rejects) if self.rejects else REJECT_SCHEMA.empty_table()


def clean_batch(batch: pa.Table | pa.RecordBatch, params: CleanParams, scripts: Mapping[str, str],
                where: str = "data/interim/ingested.parquet") -> tuple[pa.Table, pa.Table, Counter]:
    """Normalise, scrub and filter one batch of records: (kept, rejects, counts)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    columns = {name: table.column(name).to_pylist() for name in RECORD_COLUMNS}
    kinds, langs, pivot_langs = columns["kind"], columns["lang"], columns["pivot_lang"]
    unknown = sorted({tag for tag in langs + pivot_langs if tag and tag not in scripts})
    if unknown:
        raise UserError(f"{where}: language tag(s) {', '.join(map(repr, unknown))} not in data/inventory/languages.csv; "
                        f"add a row there (with its script) and rerun")
    counts: Counter = Counter()
    row_pii: dict[int, Counter] = {}

    def prepare(text: str, multiline: bool, row: int) -> str:
        text = normalize_text(text, params.zero_width, multiline)
        if params.scrub_pii:
            text, found = scrub_pii(text)
            if found:
                row_pii.setdefault(row, Counter()).update(found)
        return text

    multiline = [kind in MULTILINE_KINDS for kind in kinds]
    texts = [prepare(text, flag, i) for i, (text, flag) in enumerate(zip(columns["text"], multiline))]
    pivots = [None if pivot is None else prepare(pivot, flag, i)
              for i, (pivot, flag) in enumerate(zip(columns["pivot_text"], multiline))]
    metas = list(columns["meta"])
    for i, (kind, meta_text) in enumerate(zip(kinds, metas)):
        if kind not in META_TEXT_KINDS or meta_text in ("", "{}"):
            continue
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError as err:
            meta = err
        if not isinstance(meta, dict):
            raise UserError(f"{where}: record {columns['id'][i]} ({columns['origin'][i]}) has meta that is not a JSON "
                            f"object; fix that row of the source and rerun ingest")
        changed = map_meta_texts(meta, kind, lambda text, flag, i=i: prepare(text, flag, i))
        if changed != meta:
            metas[i] = meta_json(changed)

    failures = first_failures(kinds, langs, pivot_langs, texts, pivots, params, scripts)
    kept = [i for i, failure in enumerate(failures) if failure is None]
    rejected = [i for i, failure in enumerate(failures) if failure is not None]

    counts.update(("in", lang) for lang in langs)
    counts.update(("kept", langs[i]) for i in kept)
    for i in rejected:
        counts[("dropped", failures[i][0], langs[i])] += 1
    for i in kept:
        for kind, number in row_pii.get(i, {}).items():
            counts[("pii", kind, langs[i])] += number

    indices = pa.array(kept, type=pa.int64())
    kept_table = table.take(indices)
    for name, values in (("text", texts), ("pivot_text", pivots), ("meta", metas)):
        position = kept_table.schema.get_field_index(name)
        kept_table = kept_table.set_column(position, kept_table.schema.field(name),
                                           pa.array([values[i] for i in kept], type=pa.string()))
    original_rows = table.take(pa.array(rejected, type=pa.int64())).to_pylist()
    rejects = pa.Table.from_pylist([
        make_reject(source=row["source"], origin=row["origin"], stage="clean", reason=failures[i][0],
                    detail=failures[i][1], id=row["id"], lang=row["lang"], raw={name: row[name] for name in RECORD_COLUMNS})
        for i, row in zip(rejected, original_rows)
    ], schema=REJECT_SCHEMA)
    return kept_table, rejects, counts


def clean_batches(batches: Iterable[pa.Table | pa.RecordBatch], params: CleanParams, scripts: Mapping[str, str],
                  where: str = "data/interim/ingested.parquet") -> CleanResult:
    result = CleanResult()
    for batch in batches:
        kept, rejects, counts = clean_batch(batch, params, scripts, where)
        result.kept.append(kept)
        result.rejects.append(rejects)
        result.counts.update(counts)
    return result


def clean_metrics(counts: Counter) -> dict[str, Any]:
    """Rows in/kept/rejected, drops per filter and language, and placeholders per type and
    language in the kept rows (what the training data would otherwise have carried)."""
    rows_in = sum(n for key, n in counts.items() if key[0] == "in")
    kept = sum(n for key, n in counts.items() if key[0] == "kept")
    metrics: dict[str, Any] = {"rows": {"in": rows_in, "kept": kept, "rejected": rows_in - kept},
                               "dropped": {name: {"total": 0} for name in FILTERS},
                               "pii": {kind: {"total": 0} for kind in PII_TYPES},
                               "lang": {}}
    for key, number in sorted(counts.items()):
        if key[0] in ("in", "kept"):
            metrics["lang"].setdefault(key[1], {"in": 0, "kept": 0})[key[0]] = number
        else:
            group = metrics[key[0]][key[1]]
            group[key[2]] = number
            group["total"] += number
    return metrics
