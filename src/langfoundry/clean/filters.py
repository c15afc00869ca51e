"""The clean filters: one small object per quality filter, and FILTERS, the order they apply in.

A row is rejected by the first filter in FILTERS that it fails: that filter's name is the reject
reason and its detail says why. Each side of a pair is checked (pivot_text when the row has one).
A filter looks at a whole batch at once (FilterBatch: the normalised, scrubbed sides and their
measures) and yields the rows it rejects among those no earlier filter rejected.

To add a filter: add its parameters to CleanParams (core/config.py), write a frozen dataclass here
whose fields are named like those parameters (configured() fills them in), with a `name` and a
`check`, and put it in FILTERS where it should apply. The screening filters (blocklists, toxicity:
langfoundry.clean.screening) need files and endpoints besides parameters; the driver passes them to
first_failures as `screens`, which apply after FILTERS.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import ClassVar, Protocol

import numpy as np
import regex

from langfoundry.clean.measures import BatchSide, SideMeasures, repeated_run, repeated_substring
from langfoundry.clean.pii import PLACEHOLDER
from langfoundry.core.config import CleanParams

PAIR_KINDS = frozenset({"dictionary", "parallel"})  # these always need a pivot side
SIDES = ("text", "pivot_text")

Rejections = Iterator[tuple[int, str]]  # (row, detail); a row yielded twice keeps its first detail


@dataclass(frozen=True)
class FilterBatch:
    """What the filters see of one batch, one value per row in each array and list."""

    kinds: list[str]
    langs: Mapping[str, list[str | None]]  # side -> language tag (None: the row has no pivot language)
    scripts: Mapping[str, str]  # language tag -> ISO 15924 script
    sides: Mapping[str, BatchSide]  # side -> normalised and scrubbed texts
    measures: Mapping[str, SideMeasures]
    needs_pivot: np.ndarray  # a pair kind, or a row that names a pivot language
    checked: Mapping[str, np.ndarray]  # side -> rows where the filters check that side


def filter_batch(kinds: list[str], langs: list[str], pivot_langs: list[str | None], sides: Mapping[str, BatchSide],
                 scripts: Mapping[str, str]) -> FilterBatch:
    """The batch measured, and which sides each row has: a pair kind or a pivot language needs one."""
    measures = {"text": sides["text"].measures([scripts[lang] for lang in langs]),
                "pivot_text": sides["pivot_text"].measures([scripts[lang] if lang else None for lang in pivot_langs])}
    needs_pivot = np.array([kind in PAIR_KINDS or pivot_lang is not None for kind, pivot_lang in zip(kinds, pivot_langs)],
                           dtype=bool)
    has_pivot = needs_pivot | (measures["pivot_text"].chars > 0)
    return FilterBatch(kinds=kinds, langs={"text": langs, "pivot_text": pivot_langs}, scripts=scripts, sides=sides,
                       measures=measures, needs_pivot=needs_pivot,
                       checked={"text": np.ones(len(kinds), dtype=bool), "pivot_text": has_pivot})


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole, 0 where whole is 0 (a side with nothing to count fails a share check)."""
    out = np.zeros(len(whole), dtype=np.float64)
    np.divide(part, whole, out=out, where=whole > 0)
    return out


class Filter(Protocol):
    name: ClassVar[str]

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        """The rows among open_rows (a bool mask) that fail this filter, with their details."""


@dataclass(frozen=True)
class EmptyFilter:
    """text, or the pivot side of a pair, is empty after normalisation."""

    name: ClassVar[str] = "empty"

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        for side in SIDES:
            must_have = batch.needs_pivot if side == "pivot_text" else batch.checked[side]
            for row in np.flatnonzero((batch.measures[side].chars == 0) & must_have & open_rows):
                yield row, f"{side} is empty after normalisation"


@dataclass(frozen=True)
class LengthFilter:
    """A side has fewer than min_chars or more than max_chars characters."""

    name: ClassVar[str] = "length"
    min_chars: int
    max_chars: int

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        for side in SIDES:
            chars = batch.measures[side].chars
            for row in np.flatnonzero(batch.checked[side] & (chars < self.min_chars) & open_rows):
                yield row, f"{side} has {chars[row]} characters (min {self.min_chars})"
            for row in np.flatnonzero(batch.checked[side] & (chars > self.max_chars) & open_rows):
                yield row, f"{side} has {chars[row]} characters (max {self.max_chars})"


@dataclass(frozen=True)
class LengthRatioFilter:
    """(Kinds in length_ratio_kinds) longer side / shorter side > max_length_ratio, in
    whitespace-separated words or in characters (length_ratio_unit)."""

    name: ClassVar[str] = "length_ratio"
    max_length_ratio: float
    length_ratio_unit: str
    length_ratio_kinds: list[str]

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        unit = self.length_ratio_unit
        sizes = [getattr(batch.measures[side], unit) for side in SIDES]
        ratio = np.maximum(*sizes) / np.maximum(np.minimum(*sizes), 1)
        applies = batch.checked["pivot_text"] & np.isin(np.array(batch.kinds, dtype=object), list(self.length_ratio_kinds))
        for row in np.flatnonzero(applies & (ratio > self.max_length_ratio) & open_rows):
            yield row, (f"text has {sizes[0][row]} {unit}, pivot_text {sizes[1][row]}: "
                        f"ratio {ratio[row]:.2f} (max {self.max_length_ratio})")


@dataclass(frozen=True)
class ScriptRatioFilter:
    """Share of letters (\\p{L}) written in the side's language script (inventory) < min_script_ratio;
    a side with no letters at all has ratio 0, or passes with script_ratio_without_letters: pass (as
    letters-only script checks elsewhere do)."""

    name: ClassVar[str] = "script_ratio"
    min_script_ratio: float
    script_ratio_without_letters: str

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        for side in SIDES:
            letters = batch.measures[side].letters
            share = _share(batch.measures[side].script_letters, letters)
            if self.script_ratio_without_letters == "pass":
                share[letters == 0] = 1.0
            for row in np.flatnonzero(batch.checked[side] & (share < self.min_script_ratio) & open_rows):
                if letters[row] == 0:
                    yield row, f"{side} has no letters"
                else:
                    script = batch.scripts.get(batch.langs[side][row] or "", "its script")
                    yield row, f"{side}: {share[row]:.2f} of its letters are in {script} (min {self.min_script_ratio})"


@dataclass(frozen=True)
class LetterRatioFilter:
    """Share of letters and their combining marks among non-space characters < min_letter_ratio:
    catches lines of digits and punctuation that carry a few letters, which a letters-only script
    check lets through."""

    name: ClassVar[str] = "letter_ratio"
    min_letter_ratio: float

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        for side in SIDES:
            share = _share(batch.measures[side].word_chars, batch.measures[side].nonspace)
            for row in np.flatnonzero(batch.checked[side] & (share < self.min_letter_ratio) & open_rows):
                yield row, f"{side}: letters are {share[row]:.2f} of its non-space characters (min {self.min_letter_ratio})"


@dataclass(frozen=True)
class RepetitionFilter:
    """One word repeated back to back more than max_word_repeats times (words are compared
    casefolded, punctuation between them ignored); with repetition_unit: substrings, any string of
    3 to 101 characters (measures.repeated_substring)."""

    name: ClassVar[str] = "repetition"
    max_word_repeats: int
    repetition_unit: str

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        # text by text, only at rows the batch-wide screen flags
        repeated = repeated_run if self.repetition_unit == "words" else repeated_substring
        candidates = {side: batch.sides[side].repetition_candidates(self.repetition_unit, self.max_word_repeats)
                      for side in SIDES}
        for row in np.flatnonzero((candidates["text"] | candidates["pivot_text"]) & open_rows):
            for side in SIDES:
                text = batch.sides[side].text(row) if candidates[side][row] else None
                if text and (run := repeated(text, self.max_word_repeats)):
                    yield row, f"{side} repeats {run[0]!r} {run[1]} times in a row (max {self.max_word_repeats})"
                    break


@dataclass(frozen=True)
class CharWhitelistFilter:
    """(Languages listed in char_whitelist) a character outside the list; spaces and personal-data
    placeholders are always allowed."""

    name: ClassVar[str] = "char_whitelist"
    char_whitelist: dict[str, str]

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        whitelists = {lang: set(unicodedata.normalize("NFC", chars)) | {" ", "\n"}
                      for lang, chars in self.char_whitelist.items()}
        if not whitelists:
            return
        placeholder = regex.compile(PLACEHOLDER)
        for row in np.flatnonzero(open_rows).tolist():
            for side in SIDES:
                lang = batch.langs[side][row]
                allowed = whitelists.get(lang or "")
                text = batch.sides[side].text(row) if allowed is not None else None
                outside = sorted(set(placeholder.sub("", text)) - allowed) if text else None
                if outside:
                    shown = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in outside[:10])
                    yield row, f"{side} has characters outside the {lang} whitelist: {shown}"
                    break


# The filters in the order they apply: a row's reject reason is the first one it fails.
FILTERS: tuple[type[Filter], ...] = (
    EmptyFilter,
    LengthFilter,
    LengthRatioFilter,
    ScriptRatioFilter,
    LetterRatioFilter,
    RepetitionFilter,
    CharWhitelistFilter,
)
FILTER_NAMES = tuple(rule.name for rule in FILTERS)


def configured(params: CleanParams) -> list[Filter]:
    """FILTERS set up from params: each field of a filter takes the CleanParams value of that name."""
    return [rule(**{field.name: getattr(params, field.name) for field in fields(rule)}) for rule in FILTERS]


def first_failures(kinds: list[str], langs: list[str], pivot_langs: list[str | None], sides: Mapping[str, BatchSide],
                   params: CleanParams, scripts: Mapping[str, str],
                   screens: Sequence[Filter] = ()) -> list[tuple[str, str] | None]:
    """For each row, (filter, detail) of the first filter it fails, or None when it passes all.

    sides hold the normalised (and scrubbed) text and pivot_text; scripts maps language tag -> ISO 15924;
    screens (screening filters) apply after FILTERS, to the rows those pass.
    """
    batch = filter_batch(kinds, langs, pivot_langs, sides, scripts)
    failures: list[tuple[str, str] | None] = [None] * len(kinds)
    for rule in [*configured(params), *screens]:
        open_rows = np.array([failure is None for failure in failures], dtype=bool)
        for row, detail in rule.check(batch, open_rows):
            if failures[row] is None:
                failures[row] = (rule.name, detail)
    return failures
