"""The clean stage: normalise, scrub personal data, and reject rows that fail a quality filter.

Filters run in this fixed order and a row is rejected by the first one it fails (its name is the
reject reason); each side of a pair is checked (pivot_text when the row has one):

  empty          text, or the pivot side of a pair, is empty after normalisation
  length         a side has fewer than min_chars or more than max_chars characters
  length_ratio   (kinds in length_ratio_kinds) longer side / shorter side > max_length_ratio,
                 in whitespace-separated words or in characters (length_ratio_unit)
  script_ratio   share of letters (\\p{L}) written in the side's language script (inventory)
                 < min_script_ratio; a side with no letters at all has ratio 0, or passes with
                 script_ratio_without_letters: pass (as letters-only script checks elsewhere do)
  letter_ratio   share of letters and their combining marks among non-space characters
                 < min_letter_ratio: catches lines of digits and punctuation that carry a few
                 letters, which a letters-only script check lets through
  repetition     one word repeated back to back more than max_word_repeats times (words are
                 compared casefolded, punctuation between them ignored); with repetition_unit:
                 substrings, any string of 3 to 101 characters (see repeated_substring)
  char_whitelist (languages listed in char_whitelist) a character outside the list

Rows of plain Latin-1 text (most rows of Latin-script corpora) are measured and screened for
repetition a batch at a time (langfoundry.clean.columnar); the others one text at a time. clean_parquet
streams a file through worker processes in batches.

Personal data is not a reject reason: e-mail addresses, phone numbers and national ID numbers
are replaced by <EMAIL>, <PHONE>, <ID_NUMBER> before filtering (in text, pivot_text and the
language text inside meta), and the placeholders are left out of the script and letter counts.
"""

from __future__ import annotations

import bisect
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from langfoundry.clean import columnar

from langfoundry.core.config import CleanParams
from langfoundry.core.errors import UserError
from langfoundry.core.normalize import MULTILINE_KINDS, latin1_bytes, map_meta_texts, normalize_text
from langfoundry.core.records import REJECT_SCHEMA, RECORD_COLUMNS, make_reject, meta_json
from langfoundry.core.streaming import SortedParquetWriter, open_parquet, ordered_map, worker_count

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


MIN_REPEAT_CHARS, MAX_REPEAT_CHARS = 3, 101  # length of a repeated substring (repetition_unit: substrings)


def repeated_substring(text: str, max_repeats: int) -> tuple[str, int] | None:
    """The first string of MIN_REPEAT_CHARS to MAX_REPEAT_CHARS characters (starting with a
    non-space, within one line) found back to back more than max_repeats times in all, spaces
    between the copies allowed, and how many times it occurs.

    The same answer as searching with the regex (\\S.{2,100}?)(?: *\\1){max_repeats,}, which tries
    every length at every position (about 300 us a sentence); here only lengths that put a copy of
    the first three characters where the next copy must start are tried. A test holds the two alike.
    """
    places: dict[str, list[int]] = {}
    for start in range(len(text) - MIN_REPEAT_CHARS + 1):
        places.setdefault(text[start:start + MIN_REPEAT_CHARS], []).append(start)
    # every copy starts with the same three characters: only those found often enough can start a run
    starts = sorted(start for head, found in places.items() if len(found) > max_repeats
                    and not head[0].isspace() and "\n" not in head for start in found)
    for start in starts:
        found = places[text[start:start + MIN_REPEAT_CHARS]]
        for follower in found[bisect.bisect_left(found, start + MIN_REPEAT_CHARS):]:
            spaces = 0  # right before the next copy: the end of this copy may stop anywhere in them
            while text[follower - spaces - 1] == " " and follower - spaces - 1 > start:
                spaces += 1
            shortest = max(follower - spaces - start, MIN_REPEAT_CHARS)
            if shortest > MAX_REPEAT_CHARS:
                break
            for length in range(shortest, min(follower - start, MAX_REPEAT_CHARS) + 1):
                unit = text[start:start + length]
                if "\n" in unit:
                    break
                copies, position = 1, start + length
                while True:
                    while text.startswith(" ", position):
                        position += 1
                    if not text.startswith(unit, position):
                        break
                    copies, position = copies + 1, position + length
                if copies > max_repeats:
                    return unit, copies
    return None


# --- filters ----------------------------------------------------------------------------------------


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole, 0 where whole is 0 (a side with nothing to count fails a share check)."""
    out = np.zeros(len(whole), dtype=np.float64)
    np.divide(part, whole, out=out, where=whole > 0)
    return out


class BatchSide:
    """One side (text or pivot_text) of a batch, normalised: plain Latin-1 rows stay in Arrow (they are
    already normal), the others are normalised in Python; measures come from columnar for the former."""

    def __init__(self, column: pa.Array, plain: np.ndarray, prepared: dict[int, str]):
        self.column, self.plain, self.prepared = column, plain, prepared
        self.plain_rows = np.flatnonzero(plain)
        self.latin1 = columnar.Latin1Texts(column.take(pa.array(self.plain_rows))) if len(self.plain_rows) else None

    def text(self, row: int) -> str | None:
        return self.prepared[row] if row in self.prepared else self.column[row].as_py()

    def measures(self, scripts: list[str | None]) -> SideMeasures:
        counts = np.zeros((len(self.column), 6), dtype=np.int64)
        if self.latin1 is not None:
            counts[self.plain_rows] = _latin1_measures(self.latin1, [scripts[row] for row in self.plain_rows])
        for row, text in self.prepared.items():
            if text:
                counts[row] = measure_text(text, scripts[row])
        return SideMeasures(*counts.T)

    def repetition_candidates(self, params: CleanParams) -> np.ndarray:
        """Rows whose repetition must be checked text by text: flagged plain rows and all others."""
        flagged = np.zeros(len(self.column), dtype=bool)
        flagged[list(self.prepared)] = True
        if self.latin1 is not None:
            if params.repetition_unit == "words":
                screen = columnar.word_run_candidates(self.latin1, _LATIN1_WORD_TABLE, params.max_word_repeats)
            else:
                screen = columnar.substring_run_candidates(self.latin1, params.max_word_repeats, MAX_REPEAT_CHARS)
            flagged[self.plain_rows[screen]] = True
        return flagged


def _latin1_measures(texts: columnar.Latin1Texts, scripts: list[str | None]) -> np.ndarray:
    """measure_text's six counts for plain Latin-1 texts (one line, single spaces), a column each."""
    chars = texts.lengths
    spaces = texts.sums(texts.bytes == columnar.SPACE)
    letters = texts.sums(columnar.lookup(_LATIN1_LETTERS)[texts.bytes])
    foreign = np.zeros(texts.count, dtype=np.int64)
    for script in sorted({script for script in scripts if script}):
        rows = np.array([row_script == script for row_script in scripts], dtype=bool)
        foreign[rows] = texts.sums(columnar.lookup(_latin1_foreign(script))[texts.bytes])[rows]
    words = np.where(chars > 0, spaces + 1, 0)
    return np.stack([chars, words, letters, letters - foreign, letters, chars - spaces], axis=1)


def first_failures(kinds: list[str], langs: list[str], pivot_langs: list[str | None], sides: Mapping[str, BatchSide],
                   params: CleanParams, scripts: Mapping[str, str]) -> list[tuple[str, str] | None]:
    """For each row, (filter, detail) of the first filter it fails, or None when it passes all.

    sides hold the normalised (and scrubbed) text and pivot_text; scripts maps language tag -> ISO 15924.
    """
    n = len(kinds)
    side_langs = {"text": langs, "pivot_text": pivot_langs}
    measures = {"text": sides["text"].measures([scripts[lang] for lang in langs]),
                "pivot_text": sides["pivot_text"].measures([scripts[lang] if lang else None for lang in pivot_langs])}
    needs_pivot = np.array([kind in PAIR_KINDS or pivot_lang is not None for kind, pivot_lang in zip(kinds, pivot_langs)], dtype=bool)
    has_pivot = needs_pivot | (measures["pivot_text"].chars > 0)
    checked = {"text": np.ones(n, dtype=bool), "pivot_text": has_pivot}
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
        if params.script_ratio_without_letters == "pass":
            share[m.letters == 0] = 1.0
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
    # repetition and char_whitelist look at surviving rows in Python (repetition only at rows the
    # batch-wide screen flags)
    repeated = repeated_run if params.repetition_unit == "words" else repeated_substring
    candidates = {side: sides[side].repetition_candidates(params) for side in SIDES}
    for i in np.flatnonzero(candidates["text"] | candidates["pivot_text"]):
        if failures[i] is not None:
            continue
        for side in SIDES:
            text = sides[side].text(i) if candidates[side][i] else None
            if text and (run := repeated(text, params.max_word_repeats)):
                failures[i] = ("repetition", f"{side} repeats {run[0]!r} {run[1]} times in a row "
                                             f"(max {params.max_word_repeats})")
                break
    whitelists = {lang: set(unicodedata.normalize("NFC", chars)) | {" ", "\n"}
                  for lang, chars in params.char_whitelist.items()}
    placeholder = regex.compile(_PLACEHOLDER)
    for i in range(n) if whitelists else ():
        if failures[i] is not None:
            continue
        for side in SIDES:
            allowed = whitelists.get(side_langs[side][i] or "")
            text = sides[side].text(i) if allowed is not None else None
            if text:
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


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _replaced(column: pa.Array, values: Mapping[int, str | None]) -> pa.Array:
    """The column with the given rows' values replaced."""
    if not values:
        return column
    rows = sorted(values)
    mask = np.zeros(len(column), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(column, pa.array(mask), pa.array([values[row] for row in rows], type=column.type))


def clean_batch(batch: pa.Table | pa.RecordBatch, params: CleanParams, scripts: Mapping[str, str],
                where: str = "data/interim/ingested.parquet") -> tuple[pa.Table, pa.Table, Counter]:
    """Normalise, scrub and filter one batch of records: (kept, rejects, counts)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    kinds, langs, pivot_langs = (table.column(name).to_pylist() for name in ("kind", "lang", "pivot_lang"))
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

    # Plain Latin-1 text is already normal and holds no personal data: only the rest is prepared here.
    sides: dict[str, BatchSide] = {}
    for side in SIDES:
        column = _column(table, side)
        plain = columnar.plain_rows(column, params.scrub_pii)
        others = np.flatnonzero(~plain & column.is_valid().to_numpy(zero_copy_only=False))
        values = column.take(pa.array(others, type=pa.int64())).to_pylist()
        sides[side] = BatchSide(column, plain, {int(row): prepare(text, kinds[row] in MULTILINE_KINDS, int(row))
                                                for row, text in zip(others, values)})
    meta_rows = [row for row, kind in enumerate(kinds) if kind in META_TEXT_KINDS]
    meta_column = _column(table, "meta")
    changed_metas: dict[int, str] = {}
    for row, meta_text in zip(meta_rows, meta_column.take(pa.array(meta_rows, type=pa.int64())).to_pylist()):
        if meta_text in ("", "{}"):
            continue
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError as err:
            meta = err
        if not isinstance(meta, dict):
            origin = table.column("origin")[row].as_py()
            raise UserError(f"{where}: record {table.column('id')[row].as_py()} ({origin}) has meta that is not a JSON "
                            f"object; fix that row of the source and rerun ingest")
        changed = map_meta_texts(meta, kind=kinds[row], transform=lambda text, flag, row=row: prepare(text, flag, row))
        if changed != meta:
            changed_metas[row] = meta_json(changed)

    failures = first_failures(kinds, langs, pivot_langs, sides, params, scripts)
    kept = [i for i, failure in enumerate(failures) if failure is None]
    rejected = [i for i, failure in enumerate(failures) if failure is not None]

    counts.update({("in", lang): number for lang, number in Counter(langs).items()})
    counts.update({("kept", lang): number for lang, number in Counter(langs[i] for i in kept).items()})
    for i in rejected:
        counts[("dropped", failures[i][0], langs[i])] += 1
    for i in kept:
        for kind, number in row_pii.get(i, {}).items():
            counts[("pii", kind, langs[i])] += number

    columns = {"text": _replaced(sides["text"].column, sides["text"].prepared),
               "pivot_text": _replaced(sides["pivot_text"].column, sides["pivot_text"].prepared),
               "meta": _replaced(meta_column, changed_metas)}
    normalised = table
    for name, values in columns.items():
        position = table.schema.get_field_index(name)
        normalised = normalised.set_column(position, table.schema.field(name), values)
    kept_table = normalised.take(pa.array(kept, type=pa.int64()))
    original_rows = table.take(pa.array(rejected, type=pa.int64())).to_pylist()
    rejects = pa.Table.from_pylist([
        make_reject(source=row["source"], origin=row["origin"], stage="clean", reason=failures[i][0],
                    detail=failures[i][1], id=row["id"], lang=row["lang"], raw={name: row[name] for name in RECORD_COLUMNS})
        for i, row in zip(rejected, original_rows)
    ], schema=REJECT_SCHEMA)
    return kept_table, rejects, counts


def clean_batches(batches: Iterable[pa.Table | pa.RecordBatch], params: CleanParams, scripts: Mapping[str, str],
                  where: str = "data/interim/ingested.parquet") -> CleanResult:
    """Clean batches in this process, holding the results in memory (see clean_parquet for files)."""
    result = CleanResult()
    for batch in batches:
        kept, rejects, counts = clean_batch(batch, params, scripts, where)
        result.kept.append(kept)
        result.rejects.append(rejects)
        result.counts.update(counts)
    return result


CLEAN_BATCH_ROWS = 20_000  # rows a worker cleans at a time: enough to amortise the batch-wide passes
_WORKER_SETTINGS: tuple = ()


def _start_clean_worker(params: CleanParams, scripts: Mapping[str, str], where: str) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = (params, scripts, where)


def _clean_in_worker(batch: pa.RecordBatch) -> tuple[pa.Table, pa.Table, Counter]:
    return clean_batch(batch, *_WORKER_SETTINGS)


def clean_parquet(input_path: str | Path, kept_path: str | Path, rejects_path: str | Path, params: CleanParams,
                  scripts: Mapping[str, str], where: str | None = None, batch_rows: int = CLEAN_BATCH_ROWS,
                  workers: int | None = None) -> Counter:
    """Clean a record file into kept and rejects files, sorted by (id, origin), streaming in batches
    over `workers` processes (all usable cores by default); returns the counts for clean_metrics.

    Memory holds a few batches per worker; the kept rows keep the input's (id, origin) order, so
    they are written straight through, and rejects spill to disk only when they arrive out of order
    and outgrow memory (langfoundry.core.streaming).
    """
    source = open_parquet(input_path)
    counts: Counter = Counter()
    settings = (params, dict(scripts), where or str(input_path))
    with SortedParquetWriter(kept_path, source.schema_arrow, ("id", "origin")) as kept, \
            SortedParquetWriter(rejects_path, REJECT_SCHEMA, ("id", "origin")) as rejects:
        results = ordered_map(_clean_in_worker, source.iter_batches(batch_size=batch_rows),
                              worker_count() if workers is None else workers, _start_clean_worker, settings)
        for kept_rows, rejected_rows, batch_counts in results:
            kept.write(kept_rows)
            rejects.write(rejected_rows)
            counts.update(batch_counts)
    return counts


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
