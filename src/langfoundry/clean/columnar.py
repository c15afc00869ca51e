"""Whole-batch versions of the clean filters' per-text work, for text that is plain Latin-1.

Most rows of a Latin-script corpus are already in normal form and use no character beyond U+00FF.
For those rows normalisation changes nothing, and the measures and repetition checks can run over the
batch's bytes with numpy in a few passes instead of a Python call per text. Every function here has a
per-text counterpart in langfoundry.clean.measures that defines the result; tests hold the two to the same
answers. Repetition is only screened here: rows the screen flags are confirmed by the per-text check,
so a flag never rejects a row by itself, and the screen never misses a row the check would reject.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Printable Latin-1 (no controls, no-break space or soft hyphen: str.isprintable() is true), single
# spaces between words and none at the ends: normalize_text returns such text unchanged. No "<"
# either: measure_text looks for personal-data placeholders in text that has one.
_PLAIN_CHAR = r"[\x{21}-\x{3B}\x{3D}-\x{7E}\x{A1}-\x{AC}\x{AE}-\x{FF}]"
PLAIN_LATIN1 = rf"^(?:{_PLAIN_CHAR}+(?: {_PLAIN_CHAR}+)*)?$"
PII_HINT = r"@|[0-9]{2}"  # scrub_pii leaves Latin-1 text without these alone
SPACE = 32


def plain_rows(array: pa.Array | pa.ChunkedArray, scrub_pii: bool) -> np.ndarray:
    """True for each text that is plain Latin-1 in normal form (and, when personal data is scrubbed,
    has nothing that could be personal data); null texts are False."""
    plain = pc.fill_null(pc.match_substring_regex(array, PLAIN_LATIN1), False)
    if scrub_pii:
        plain = pc.and_(plain, pc.invert(pc.fill_null(pc.match_substring_regex(array, PII_HINT), True)))
    return np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)


def segment_sums(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per segment [offsets[i], offsets[i+1]), how many flags (bools) are set."""
    lengths = np.diff(offsets)
    out = np.zeros(len(lengths), dtype=np.int64)
    filled = np.flatnonzero(lengths > 0)
    if len(filled):  # reduceat sums from each start to the next; empty segments are left out
        out[filled] = np.add.reduceat(flags.view(np.uint8), offsets[:-1][filled], dtype=np.int32)
    return out


def segment_sums_of(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per segment [offsets[i], offsets[i+1]), the sum of the values (bytes)."""
    lengths = np.diff(offsets)
    out = np.zeros(len(lengths), dtype=np.int64)
    filled = np.flatnonzero(lengths > 0)
    if len(filled):
        out[filled] = np.add.reduceat(values, offsets[:-1][filled], dtype=np.int64)
    return out


class Latin1Texts:
    """Texts (all Latin-1) as one byte per character, back to back, with per-text offsets."""

    def __init__(self, array: pa.Array | pa.ChunkedArray):
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        count = len(array)
        offset_type = np.int64 if array.type == pa.large_string() else np.int32
        offsets = np.frombuffer(array.buffers()[1], dtype=offset_type)[array.offset:array.offset + count + 1].astype(np.int64)
        data = array.buffers()[2]
        utf8 = (np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None and count
                else np.zeros(0, np.uint8))
        offsets -= offsets[0] if count else 0
        # UTF-8 of U+0080..U+00FF is a lead byte 0xC2/0xC3 and one continuation byte: fold the pair
        # into the code point, which is the Latin-1 byte.
        leads = np.flatnonzero((utf8 & 0xE0) == 0xC0)
        self.count = count
        if len(leads) == 0:  # ASCII: one byte per character already
            self.bytes, self.offsets = utf8, offsets
            return
        values = utf8.copy()
        values[leads] = ((utf8[leads] & 0x1F) << 6) | (utf8[leads + 1] & 0x3F)
        self.bytes = np.delete(values, leads + 1)
        self.offsets = offsets - np.searchsorted(leads + 1, offsets)  # less the continuation bytes before

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sums(self, flags: np.ndarray) -> np.ndarray:
        """Per text, how many of its characters are flagged (flags: one bool per character)."""
        return segment_sums(flags, self.offsets)

    def text_of(self, positions: np.ndarray) -> np.ndarray:
        """The text each of the given character positions belongs to."""
        return np.searchsorted(self.offsets, positions, side="right") - 1


def lookup(table: bytes) -> np.ndarray:
    """A 256-entry numpy table from a bytes object listing the members (as filters' tables do)."""
    members = np.zeros(256, dtype=bool)
    members[np.frombuffer(table, dtype=np.uint8)] = True
    return members


# --- repetition screens ---------------------------------------------------------------------------------


def word_run_candidates(texts: Latin1Texts, word_table: bytes, max_repeats: int) -> np.ndarray:
    """True for texts where one word may repeat back to back more than max_repeats times.

    Words as measures.words_of splits them (word_table lower-cases and turns punctuation, symbols
    and spaces into spaces), compared by length, first and last character: equal words always
    match, so a run of equal words is always flagged. Texts with ß or µ, which words_of casefolds
    another way, are flagged too.
    """
    mapped = np.frombuffer(word_table, dtype=np.uint8)[texts.bytes]
    flagged = texts.sums((texts.bytes == 0xDF) | (texts.bytes == 0xB5)) > 0
    in_word = mapped != SPACE
    text_start = np.zeros(len(in_word), dtype=bool)
    text_start[texts.offsets[:-1][texts.lengths > 0]] = True
    starts = np.flatnonzero(in_word & ~(np.concatenate(([False], in_word[:-1])) & ~text_start))
    ends = np.flatnonzero(in_word & ~(np.concatenate((in_word[1:], [False])) & ~np.concatenate((text_start[1:], [False]))))
    if len(starts) <= max_repeats:
        return flagged
    keys = ((ends - starts).astype(np.int64) << 16) | (mapped[starts].astype(np.int64) << 8) | mapped[ends]
    rows = texts.text_of(starts)
    same = (keys[1:] == keys[:-1]) & (rows[1:] == rows[:-1])
    # a run of more than max_repeats equal words is max_repeats equal neighbours in a row
    totals = np.concatenate(([0], np.cumsum(same.view(np.uint8), dtype=np.int32)))
    window = np.flatnonzero(totals[max_repeats:] - totals[:-max_repeats] == max_repeats)
    flagged[rows[window]] = True
    return flagged


def substring_run_candidates(texts: Latin1Texts, max_repeats: int, max_chars: int) -> np.ndarray:
    """True for texts (single-spaced, as plain rows are) where a string may repeat back to back
    (spaces between allowed) more than max_repeats times, as measures.repeated_substring defines it.

    Such a run, with its spaces removed, is max_repeats + 1 copies of one string (of at most
    max_chars characters) back to back. Copies of a string of length P cover 2P characters that
    equal the characters P later; with three copies or more the square starting at some multiple of
    P is whole, so looking only there (at up to 24 of its characters) finds every run in about 5
    passes over the text, not P. The texts are searched back to back with a control byte between
    them, so a window across two texts can only add a candidate.
    """
    copies = max_repeats + 1
    kept = texts.bytes != SPACE
    lengths = texts.sums(kept)
    # Longest texts first, so the texts long enough for copies of period P are a prefix of the values
    # (Arrow's take moves the texts in C).
    order = np.argsort(-lengths, kind="stable")
    squeezed = pa.LargeBinaryArray.from_buffers(pa.large_binary(), texts.count, [
        None, pa.py_buffer(np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)), pa.py_buffer(texts.bytes[kept])])
    ordered = squeezed.take(pa.array(order, type=pa.int64()))
    ends = np.cumsum(lengths[order])
    data = ordered.buffers()[2]
    # After each text a control byte (never in plain text), one of 31 in turn, so that equal texts
    # side by side (duplicates, sorted next to each other) do not look like copies of one string.
    separators = (np.arange(texts.count) % 31 + 1).astype(np.uint8)
    values = np.insert(np.frombuffer(data, dtype=np.uint8)[:ends[-1]] if data is not None and len(ends) else
                       np.zeros(0, np.uint8), ends, separators) if texts.count else np.zeros(0, np.uint8)
    starts = np.concatenate(([0], np.cumsum(lengths[order] + 1)))[:-1]  # where each text (in that order) begins
    padded = np.concatenate((values, np.zeros(8, dtype=np.uint8)))
    # the 8 characters from each position as one little-endian number: a view, no copy
    eights = np.ndarray(shape=(len(values),), dtype="<u8", buffer=padded, strides=(1,))
    flagged = np.zeros(texts.count, dtype=bool)
    # A copy of at least 3 characters has at least 2 that are not spaces in single-spaced text.
    for period in range(2, min(max_chars, int(lengths.max(initial=0)) // copies) + 1):
        long_enough = np.searchsorted(-lengths[order], -copies * period, side="right")  # texts of >= copies * P
        end = int(starts[long_enough - 1] + lengths[order][long_enough - 1]) if long_enough else 0
        region = values[:end]
        need = (copies - 1) * period  # equal characters P apart in a row
        if period <= 4 or copies < 3:  # every position
            equal = region[period:] == region[:-period]
            if need <= 16:
                window = equal[:len(equal) - need + 1].copy()
                for shift in range(1, need):
                    window &= equal[shift:len(equal) - need + 1 + shift]
                hits = np.flatnonzero(window)
            else:
                totals = np.concatenate(([0], np.cumsum(equal.view(np.uint8), dtype=np.int32)))
                hits = np.flatnonzero(totals[need:] - totals[:-need] == need)
        else:
            count = max(0, (end - 2 * period) // period + 1)  # anchors 0, P, 2P, ... (strided views, no gather)
            differ = eights[0:count * period:period] ^ eights[period:(count + 1) * period:period]
            if period < 8:
                differ &= np.uint64((1 << (8 * period)) - 1)
            hits = np.flatnonzero(differ == 0) * period
            if period >= 8:  # then the last 8 (so every character up to P = 16), and 8 in the middle
                for offset in {period - 8, period // 2 - 4}:
                    hits = hits[eights[hits + offset] == eights[hits + period + offset]]
            texts_hit = order[np.searchsorted(starts, hits, side="right") - 1]
            hits = hits[~flagged[texts_hit]]  # a text flagged already needs no more looking
            hits = hits[_in_copies(values, hits, period, copies)]
        if len(hits):
            flagged[order[np.searchsorted(starts, hits, side="right") - 1]] = True
    return flagged


def _in_copies(values: np.ndarray, anchors: np.ndarray, period: int, copies: int) -> np.ndarray:
    """For squares of `period` at the anchors: whether each lies in `copies` back-to-back copies,
    i.e. characters equal to the ones `period` later for (copies - 1) * period positions in a row
    (the square holds `period` of them; count how far the run reaches before and after it)."""
    reach = np.zeros(len(anchors), dtype=np.int64)
    for steps, direction in ((range(1, (copies - 2) * period + 1), -1), (range(period, (copies - 1) * period), 1)):
        going = np.ones(len(anchors), dtype=bool)
        for step in steps:
            positions = anchors + direction * step
            inside = (positions >= 0) & (positions + period < len(values))
            going &= inside
            going[going] &= values[positions[going]] == values[positions[going] + period]
            reach += going
            if not going.any():
                break
    return reach >= (copies - 2) * period


def squeezed(texts: Latin1Texts, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each text mapped through a 256-byte table, then " ".join(mapped.split()): runs of spaces
    become one, none at the ends. Returns (bytes back to back, per-text offsets)."""
    mapped = table[texts.bytes]
    word = mapped != SPACE
    text_start = np.zeros(len(mapped), dtype=bool)
    text_start[texts.offsets[:-1][texts.lengths > 0]] = True
    keep = word | (np.concatenate(([False], word[:-1])) & ~text_start)  # a space right after a word
    out, offsets = mapped[keep], np.concatenate(([0], np.cumsum(segment_sums(keep, texts.offsets))))
    # a text that ended in spaces kept the first of them: drop it
    ends = offsets[1:]
    filled = np.flatnonzero(ends > offsets[:-1])
    trailing = filled[out[ends[filled] - 1] == SPACE]
    if len(trailing):
        drop = np.zeros(len(out), dtype=bool)
        drop[ends[trailing] - 1] = True
        out = out[~drop]
        dropped = np.zeros(texts.count, dtype=np.int64)
        dropped[trailing] = 1
        offsets = offsets - np.concatenate(([0], np.cumsum(dropped)))
    return out, offsets


def to_utf8(latin1: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latin-1 bytes (with per-text offsets) as UTF-8: U+0080..U+00FF become two bytes."""
    high = np.flatnonzero(latin1 >= 0x80)
    if len(high) == 0:
        return latin1, offsets
    leads = latin1.copy()
    leads[high] = 0xC0 | (latin1[high] >> 6)
    out = np.insert(leads, high + 1, 0x80 | (latin1[high] & 0x3F))
    return out, offsets + np.searchsorted(high, offsets)  # plus the bytes added before


def key_words(texts: Latin1Texts, key_table: bytes) -> tuple[pa.Array, np.ndarray]:
    """The words of each text's comparison key (normalize.comparison_key: the text through its Latin-1
    key table, split on spaces), all texts' back to back, with the text each word is from. Texts with
    ß or µ, which comparison_key casefolds another way, need the per-text key."""
    mapped, offsets = to_utf8(np.frombuffer(key_table, dtype=np.uint8)[texts.bytes], texts.offsets)
    strings = pa.LargeStringArray.from_buffers(texts.count, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(mapped))
    words = pc.split_pattern(strings, " ")
    return pc.list_flatten(words), pc.list_parent_indices(words).to_numpy()


_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def hex_numbers(array: pa.Array | pa.ChunkedArray, digits: int = 16) -> np.ndarray | None:
    """Strings of exactly `digits` lowercase hex digits as uint64 numbers (which sort as the
    strings do), or None when some string is not one."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count or len(array) == 0:
        return None if array.null_count else np.zeros(0, dtype=np.uint64)
    array = array.cast(pa.large_string()) if array.type != pa.large_string() else array
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    if not np.all(np.diff(offsets) == digits):
        return None
    values = _HEX[np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]].reshape(-1, digits)
    if (values == 255).any():
        return None
    numbers = np.zeros(len(values), dtype=np.uint64)
    for column in range(digits):
        numbers = (numbers << np.uint64(4)) | values[:, column].astype(np.uint64)
    return numbers
