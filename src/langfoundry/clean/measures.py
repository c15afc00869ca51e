"""What the clean filters measure: per-text counts (characters, words, letters, script letters,
letters and marks, non-space characters), casefolded words, and repeated words or substrings.

Each measure has a general path (regex, any text) and a fast path for text made only of Latin-1
characters (most rows of Latin-script corpora), which counts bytes in C. Whole batches of plain
Latin-1 rows are measured and screened for repetition with numpy (langfoundry.clean.columnar);
BatchSide joins the two for one side of a batch. Tests hold every fast path to the general one.

SourceTally adds up, per source, what the clean gate checks of the kept rows (script shares,
untranslated pivots): the clean stage fills it from the measures its filters took, so the gate
needs no second pass over the texts.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from langfoundry.clean import columnar
from langfoundry.clean.pii import PLACEHOLDER
from langfoundry.core.errors import UserError
from langfoundry.core.normalize import _LATIN1_KEY_TABLE, comparison_key, latin1_bytes

# --- per-text counts ------------------------------------------------------------------------------

_MEASURE_PATTERNS: dict[str, regex.Pattern] = {}


def _measure_pattern(script: str) -> regex.Pattern:
    """One pass that finds what is not a plain letter of the script; plain letters (the bulk of
    normal text) never match, so the scan is cheap."""
    if script not in _MEASURE_PATTERNS:
        try:
            _MEASURE_PATTERNS[script] = regex.compile(
                rf"(?V1)(?P<placeholder>{PLACEHOLDER})|(?P<mark>\p{{M}}+)|(?P<other>[^\p{{L}}\p{{M}} \n]+)"
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

    def take(self, rows: np.ndarray) -> SideMeasures:
        """The counts of the given rows."""
        return SideMeasures(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


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


# --- repetition ---------------------------------------------------------------------------------------

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


# --- one side of a batch ----------------------------------------------------------------------------


class BatchSide:
    """One side (text or pivot_text) of a batch, normalised: plain Latin-1 rows stay in Arrow (they are
    already normal), the others are normalised in Python; measures come from columnar for the former."""

    def __init__(self, column: pa.Array, plain: np.ndarray, prepared: dict[int, str]):
        self.column, self.plain, self.prepared = column, plain, prepared
        self.plain_rows = np.flatnonzero(plain)
        self.latin1 = columnar.Latin1Texts(column.take(pa.array(self.plain_rows))) if len(self.plain_rows) else None
        self._measured: tuple[list[str | None], SideMeasures] | None = None

    def text(self, row: int) -> str | None:
        return self.prepared[row] if row in self.prepared else self.column[row].as_py()

    def measures(self, scripts: list[str | None]) -> SideMeasures:
        """Counts per row, with each row's script; kept for a second call with the same scripts (the
        filters measure a batch, then the clean gate's tally reads the same counts)."""
        if self._measured is not None and self._measured[0] == scripts:
            return self._measured[1]
        counts = np.zeros((len(self.column), 6), dtype=np.int64)
        if self.latin1 is not None:
            counts[self.plain_rows] = _latin1_measures(self.latin1, [scripts[row] for row in self.plain_rows])
        for row, text in self.prepared.items():
            if text:
                counts[row] = measure_text(text, scripts[row])
        measured = SideMeasures(*counts.T)
        self._measured = (list(scripts), measured)
        return measured

    def repetition_candidates(self, unit: str, max_repeats: int) -> np.ndarray:
        """Rows whose repetition (in words or substrings) must be checked text by text: plain rows the
        batch-wide screen flags, and all others."""
        flagged = np.zeros(len(self.column), dtype=bool)
        flagged[list(self.prepared)] = True
        if self.latin1 is not None:
            if unit == "words":
                screen = columnar.word_run_candidates(self.latin1, _LATIN1_WORD_TABLE, max_repeats)
            else:
                screen = columnar.substring_run_candidates(self.latin1, max_repeats, MAX_REPEAT_CHARS)
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


def column_side(column: pa.Array | pa.ChunkedArray) -> BatchSide:
    """A column of normalised texts as a BatchSide: plain Latin-1 rows measured in bulk, others one by one."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    plain = columnar.plain_rows(column, scrub_pii=False)
    others = np.flatnonzero(~plain & column.is_valid().to_numpy(zero_copy_only=False))
    texts = column.take(pa.array(others, type=pa.int64())).to_pylist()
    return BatchSide(column, plain, dict(zip(others.tolist(), texts)))


# --- per-source means of the kept rows (what the clean gate checks) ----------------------------------

SIDES = ("text", "pivot_text")
SOURCE_MEANS = ("mean_script_ratio", "mean_pivot_script_ratio", "text_equals_pivot_share")


def script_shares(measured: SideMeasures, present: np.ndarray) -> np.ndarray:
    """Share of each text's letters written in its language's script (as the script_ratio filter
    counts it): 0 for a text without letters, NaN where not present (no text, or no script known)."""
    shares = np.zeros(len(present), dtype=np.float64)
    np.divide(measured.script_letters, measured.letters, out=shares, where=measured.letters > 0)
    shares[~present] = np.nan
    return shares


_KEY_BYTES = np.frombuffer(_LATIN1_KEY_TABLE, dtype=np.uint8)


def _key_signatures(side: BatchSide) -> tuple[np.ndarray, np.ndarray]:
    """Per plain row of the side: how many characters its comparison key has besides spaces, and
    their sum (equal keys have equal signatures; unequal ones seldom do); and which plain rows hold ß
    or µ, which comparison_key casefolds beyond Latin-1 (the key table leaves them as they are)."""
    if side.latin1 is None:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=bool)
    texts = side.latin1
    mapped = _KEY_BYTES[texts.bytes]
    characters = texts.sums(mapped != columnar.SPACE)
    total = columnar.segment_sums_of(mapped, texts.offsets) - columnar.SPACE * (texts.lengths - characters)
    beyond = (texts.bytes == 0xDF) | (texts.bytes == 0xB5)
    folds = texts.sums(beyond) > 0 if beyond.any() else np.zeros(texts.count, dtype=bool)
    return np.stack([characters, total], axis=1), folds


def equal_pivots(texts: BatchSide, pivots: BatchSide, rows: np.ndarray | None = None) -> np.ndarray:
    """Per row (of `rows`, default all): 1.0 where the text equals its pivot in comparison form
    (normalize.comparison_key), 0.0 where not, NaN without a pivot (null or empty) or without a text.
    Rows plain on both sides whose keys' signatures differ are told apart for the whole batch at
    once; the others (copies, and the few rows not plain) are compared text by text."""
    rows = np.arange(len(texts.column)) if rows is None else np.asarray(rows, dtype=np.int64)
    values = {name: [side.text(int(row)) for row in rows[~side.plain[rows]]] for name, side in
              (("text", texts), ("pivot", pivots))}
    present = texts.column.take(pa.array(rows)).is_valid().to_numpy(zero_copy_only=False) & \
        pc.fill_null(pc.greater(pc.binary_length(pivots.column.take(pa.array(rows))), 0), False).to_numpy(zero_copy_only=False)
    present[~texts.plain[rows]] &= np.array([text is not None for text in values["text"]], dtype=bool)
    present[~pivots.plain[rows]] &= np.array([bool(pivot) for pivot in values["pivot"]], dtype=bool)
    out = np.full(len(rows), np.nan)
    compare = present.copy()
    fast = np.flatnonzero(present & texts.plain[rows] & pivots.plain[rows])
    if len(fast):
        (text_signatures, text_folds), (pivot_signatures, pivot_folds) = _key_signatures(texts), _key_signatures(pivots)
        at_text, at_pivot = (np.cumsum(side.plain)[rows[fast]] - 1 for side in (texts, pivots))
        differ = np.any(text_signatures[at_text] != pivot_signatures[at_pivot], axis=1)
        differ &= ~(text_folds[at_text] | pivot_folds[at_pivot])
        out[fast[differ]] = 0.0
        compare[fast[differ]] = False
    for at in np.flatnonzero(compare):
        row = int(rows[at])
        out[at] = float(comparison_key(texts.text(row)) == comparison_key(pivots.text(row)))
    return out


def kept_measures(table: pa.Table, scripts: Mapping[str, str], measured: Mapping[str, SideMeasures] | None = None,
                  batch: tuple[Mapping[str, BatchSide], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per row of a cleaned table, the values behind SOURCE_MEANS (NaN: none). The clean stage passes
    what its filters took: each side's counts of these rows (measured), and the batch's sides with
    the rows of it that the table holds (batch); without them the table's texts are measured here."""
    sides, rows = batch if batch is not None else ({side: column_side(table.column(side)) for side in SIDES}, None)
    values = {}
    tags = pa.array(sorted(scripts), pa.string())
    for side, lang_column, mean in (("text", "lang", "mean_script_ratio"),
                                    ("pivot_text", "pivot_lang", "mean_pivot_script_ratio")):
        langs = table.column(lang_column)
        if measured is not None:
            counts = measured[side]
        else:
            counts = column_side(table.column(side)).measures([scripts.get(lang) for lang in langs.to_pylist()])
        known = pc.fill_null(pc.is_in(langs, value_set=tags), False).to_numpy(zero_copy_only=False)
        values[mean] = script_shares(counts, np.asarray(known, dtype=bool) & (counts.chars > 0))
    values["text_equals_pivot_share"] = equal_pivots(sides["text"], sides["pivot_text"], rows)
    return values


def count_sources(sources: pa.Array | pa.ChunkedArray) -> Counter:
    """Rows per value of a source column."""
    names, codes = _source_codes(sources)
    return Counter({name: count for name, count in zip(names, np.bincount(codes, minlength=len(names)).tolist()) if count})


def _source_codes(sources: pa.Array | pa.ChunkedArray) -> tuple[list[str | None], np.ndarray]:
    sources = sources.combine_chunks() if isinstance(sources, pa.ChunkedArray) else sources
    encoded = pc.dictionary_encode(sources, null_encoding="encode")
    return encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


class SourceTally:
    """Per source: rows into and out of a stage (`rows_in`, `kept`, `rejected`) and the sums and
    counts behind the means of the kept rows' measures (SOURCE_MEANS, with scripts). Added to batch by
    batch, so a table of any length needs memory for one batch."""

    MEANS = SOURCE_MEANS

    def __init__(self, scripts: Mapping[str, str] | None = None):
        self.scripts = scripts
        self.rows_in: Counter = Counter()
        self.kept: Counter = Counter()
        self.rejected: Counter = Counter()
        self.sums: dict[str, Counter] = {column: Counter() for column in self.MEANS}
        self.counts: dict[str, Counter] = {column: Counter() for column in self.MEANS}

    def add_measured(self, sources: pa.Array | pa.ChunkedArray, values: Mapping[str, np.ndarray]) -> None:
        """Add kept rows' values (one per row and mean; NaN for none) to their sources' sums."""
        names, codes = _source_codes(sources)
        for column, row_values in values.items():
            present = ~np.isnan(row_values)
            sums = np.bincount(codes[present], weights=row_values[present], minlength=len(names)).tolist()
            counts = np.bincount(codes[present], minlength=len(names)).tolist()
            for name, total, count in zip(names, sums, counts):
                if count:
                    self.sums[column][name] += total
                    self.counts[column][name] += count

    def add(self, kept: pa.Table) -> None:
        """Count (and, with scripts, measure) kept rows of a table in memory."""
        self.kept.update(count_sources(kept.column("source")))
        if self.scripts is not None and kept.num_rows:
            self.add_measured(kept.column("source"), kept_measures(kept, self.scripts))

    def merge(self, other: SourceTally) -> None:
        """Add another tally's counts and sums (of other rows) to this one."""
        for mine, theirs in ((self.rows_in, other.rows_in), (self.kept, other.kept), (self.rejected, other.rejected)):
            mine.update(theirs)
        for column in self.MEANS:
            self.sums[column].update(other.sums[column])
            self.counts[column].update(other.counts[column])

    def means(self, column: str) -> dict[str, float]:
        """Mean of the values per source; sources without any are left out."""
        return {source: self.sums[column][source] / count for source, count in self.counts[column].items() if count}
