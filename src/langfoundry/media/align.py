"""Sentence alignment of parallel documents that are not line-aligned (a story and its translation).

Each document is split into sentences by a small rule-based splitter per script, then the two sentence
lists are aligned by Gale–Church dynamic programming on character lengths, strengthened with anchors from
a bilingual dictionary: a link whose sentences share headword -> gloss pairs costs less, and a link that
leaves known words without their counterpart costs more. Links are 1-1, 1-2, 2-1, 1-0 and 0-1, each with
a score in [0, 1]; links 1-0 and 0-1 are rejected as `unaligned`, pairs under the minimum score as
`low_score`. Pure Python, no torch, deterministic: the same inputs give the same links.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langfoundry.core.errors import UserError

# --- sentence splitting ----------------------------------------------------------------------------------

# Sentence-final marks per script. Malayalam writes the Latin full stop today and the danda in older text;
# N'Ko ends a sentence with the Latin full stop or its own exclamation mark and asks with the Arabic
# question mark (U+061F).
TERMINATORS = {
    "latin": ".!?…",
    "devanagari": "।॥.!?",
    "malayalam": ".!?।॥",
    "nko": ".!?\u07f9\u061f",
    "other": ".!?。！？।॥",
}
CLOSERS = "\"'”’»)]"
# Words written with a full stop that do not end a sentence; tiny on purpose (keyed by language tag or its
# primary subtag, casefolded, without the dot).
ABBREVIATIONS = {
    "id": frozenset({"dll", "dsb", "dst", "tsb", "yth", "dr", "drs", "ir", "prof", "no", "hlm", "jl", "sdr", "bpk"}),
    "jv": frozenset({"dll", "lsp", "dr", "no", "jl", "pak", "bu"}),
    "en": frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "no", "vs", "e.g", "i.e"}),
    "ml": frozenset({"ഡോ", "പ്രൊ"}),
    "nqo": frozenset(),
}
_SCRIPT_PREFIXES = (("LATIN", "latin"), ("DEVANAGARI", "devanagari"), ("MALAYALAM", "malayalam"), ("NKO", "nko"))
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def script_of(text: str) -> str:
    """The script most of the text's letters are written in: latin, devanagari, malayalam, nko or other."""
    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            script = next((label for prefix, label in _SCRIPT_PREFIXES if name.startswith(prefix)), "other")
            counts[script] = counts.get(script, 0) + 1
    return max(sorted(counts), key=counts.__getitem__) if counts else "other"


def abbreviations_for(lang: str) -> frozenset[str]:
    return ABBREVIATIONS.get(lang.casefold(), ABBREVIATIONS.get(lang.casefold().split("-")[0], frozenset()))


def split_sentences(text: str, lang: str) -> list[str]:
    """The sentences of one paragraph: split after a sentence-final mark followed by a space, unless the mark
    is the full stop of an abbreviation or an initial, or (in a cased script) the next word starts lower case."""
    text = " ".join(text.split())
    if not text:
        return []
    script = script_of(text)
    ends = re.escape(TERMINATORS[script])
    boundary = re.compile(f"[{ends}]+[{re.escape(CLOSERS)}]*(?= )")
    abbreviations = abbreviations_for(lang)
    sentences, start = [], 0
    for match in boundary.finditer(text):
        if match.group().rstrip(CLOSERS) == ".":
            word = text[start:match.start()].rsplit(" ", 1)[-1].casefold()
            if word in abbreviations or (len(word) == 1 and word.isalpha()):
                continue
        following = text[match.end() + 1:match.end() + 2]
        if following.islower():  # "dll. lalu": a lower-case word after a full stop continues the sentence
            continue
        sentences.append(text[start:match.end()].strip())
        start = match.end() + 1
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs: text between blank lines, each with its inner line breaks joined."""
    return [" ".join(part.split()) for part in _PARAGRAPH_BREAK.split(text) if part.strip()]


# --- bilingual dictionary --------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\s.,;:!?()\[\]\"“”‘’«»/।॥\u07f8\u07f9\u061f\u060c…]+")
_GLOSS_NOTE = re.compile(r"\([^)]*\)")  # "makan (kasar)": the note in brackets is not part of the gloss


def tokens(text: str) -> frozenset[str]:
    return frozenset(token.strip("'-") for token in _TOKEN.findall(text.casefold())) - {""}


def gloss_alternatives(gloss: str) -> list[str]:
    """The alternatives of one gloss: "susah / sukar" -> ["susah", "sukar"], notes in brackets dropped."""
    return [part.strip() for part in re.split(r"[/;,]", _GLOSS_NOTE.sub(" ", gloss)) if part.strip()]


@dataclass(frozen=True)
class Dictionary:
    """Headword -> gloss pairs, indexed for finding which headwords a sentence holds and whose gloss it holds.

    A headword is one bit of an int mask, so the anchors of a candidate link are two ANDs and a bit count."""

    source_phrases: dict[str, list[tuple[frozenset[str], int]]] = field(default_factory=dict)
    target_phrases: dict[str, list[tuple[frozenset[str], int]]] = field(default_factory=dict)
    size: int = 0

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Dictionary:
        ids: dict[str, int] = {}
        source: dict[str, list[tuple[frozenset[str], int]]] = {}
        target: dict[str, list[tuple[frozenset[str], int]]] = {}
        for headword, gloss in pairs:
            head_tokens = tokens(headword)
            if not head_tokens:
                continue
            key = " ".join(sorted(head_tokens))
            if key not in ids:
                ids[key] = len(ids)
                _index(source, head_tokens, ids[key])
            for alternative in gloss_alternatives(gloss):
                if gloss_tokens := tokens(alternative):
                    _index(target, gloss_tokens, ids[key])
        return cls(source, target, len(ids))

    def source_words(self, sentence: str) -> list[int]:
        """One mask per headword the sentence holds: the bit of that headword."""
        return _found(self.source_phrases, tokens(sentence))

    def target_words(self, sentence: str) -> list[int]:
        """One mask per gloss the sentence holds: the bits of every headword it glosses ("tidur" glosses several)."""
        return _found(self.target_phrases, tokens(sentence))


def _index(index: dict[str, list[tuple[frozenset[str], int]]], phrase: frozenset[str], head_id: int) -> None:
    index.setdefault(min(phrase), []).append((phrase, head_id))


def _found(index: dict[str, list[tuple[frozenset[str], int]]], words: frozenset[str]) -> list[int]:
    masks: dict[frozenset[str], int] = {}
    for word in sorted(words):
        for phrase, head_id in index.get(word, ()):
            if phrase <= words:
                masks[phrase] = masks.get(phrase, 0) | 1 << head_id
    return list(masks.values())


def load_dictionary(path: Path, records_key: str | None, headword_key: str, gloss_key: str) -> Dictionary:
    """A dictionary from a JSON file of records (a list, or the list under records_key), two fields each."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read the alignment dictionary ({err}); point the source at a JSON file") from err
    records = data.get(records_key) if records_key and isinstance(data, dict) else data
    if not isinstance(records, list):
        raise UserError(f"{path}: no list of records{f' under key {records_key!r}' if records_key else ''}; "
                        "set records_key to the key that holds the entries")
    pairs = []
    for number, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get(headword_key), str) \
                or not isinstance(record.get(gloss_key), str):
            raise UserError(f"{path}: record {number} has no text fields {headword_key!r} and {gloss_key!r}; "
                            "set columns.headword and columns.gloss to the file's field names")
        pairs.append((record[headword_key], record[gloss_key]))
    return Dictionary.from_pairs(pairs)


# --- alignment -------------------------------------------------------------------------------------------

# Gale and Church (1993): link priors and the variance of the length difference per character. nltk's
# gale_church module aligns on lengths alone; no maintained Python package does Gale–Church with dictionary
# anchors, so the dynamic programme is written here.
PRIORS = {(1, 1): 0.89, (1, 0): 0.0099, (0, 1): 0.0099, (2, 1): 0.089, (1, 2): 0.089}
STEPS = ((1, 1), (1, 0), (0, 1), (2, 1), (1, 2))  # this order breaks ties, so equal costs always pick the same link


@dataclass(frozen=True)
class AlignSettings:
    min_score: float = 0.3  # pairs scoring lower are rejected as low_score
    # Tuned on the perturbed Banyumasan-Indonesian set (benchmarks/bench_align.py): a miss must cost much less
    # than a match gains, as free translations leave many known words without their dictionary gloss.
    anchor_weight: float = 3.0  # cost taken off per headword whose gloss is on the other side of a link
    miss_weight: float = 0.4  # cost added per known word of a link whose counterpart is not in it
    orphan_weight: float = 1.5  # cost added per sentence of a 2-1 or 1-2 link with almost no known word matched
    length_ratio: float | None = None  # target characters per source character; None: the documents' own ratio
    variance: float = 6.8  # of the length difference per character (Gale and Church)
    band: int = 40  # sentences either side of the diagonal the search looks at

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0 or min(self.anchor_weight, self.miss_weight, self.orphan_weight) < 0 \
                or self.variance <= 0 or self.band < 2 or (self.length_ratio is not None and self.length_ratio <= 0):
            raise UserError(f"alignment settings {self}: min_score must lie in [0, 1], weights be >= 0, "
                            "variance and length_ratio > 0, band >= 2")


DEFAULT_SETTINGS = AlignSettings()


@dataclass(frozen=True)
class Link:
    source: tuple[int, ...]  # sentence indices, consecutive
    target: tuple[int, ...]
    score: float
    reason: str | None = None  # None when accepted, else unaligned or low_score

    @property
    def kind(self) -> str:
        return f"{len(self.source)}-{len(self.target)}"

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Alignment:
    source_sentences: list[str]
    target_sentences: list[str]
    links: list[Link]

    def pairs(self) -> list[tuple[str, str, float]]:
        """The accepted links as (source text, target text, score)."""
        return [(" ".join(self.source_sentences[i] for i in link.source),
                 " ".join(self.target_sentences[j] for j in link.target), link.score)
                for link in self.links if link.accepted]


def align_sentences(source: list[str], target: list[str], dictionary: Dictionary | None = None,
                    settings: AlignSettings = DEFAULT_SETTINGS) -> list[Link]:
    """The cheapest monotonic chain of links between two sentence lists, each link scored and judged."""
    if not source or not target:  # nothing to pair with: every sentence is its own unaligned link
        return [Link((i,), (), 0.0, "unaligned") for i in range(len(source))] + \
               [Link((), (j,), 0.0, "unaligned") for j in range(len(target))]
    source_lengths = [len(sentence) for sentence in source]
    target_lengths = [len(sentence) for sentence in target]
    ratio = settings.length_ratio or sum(target_lengths) / max(1, sum(source_lengths))
    # per sentence: the bit of each headword it holds (source), the headword bits of each gloss it holds (target)
    source_words = [dictionary.source_words(s) if dictionary else [] for s in source]
    target_words = [dictionary.target_words(t) if dictionary else [] for t in target]

    def measure(i: int, j: int, step: tuple[int, int]) -> tuple[float, float]:
        """(cost, score) of the link that ends before source i and target j."""
        d_source, d_target = step
        prior = -math.log(PRIORS[step])
        if not d_source or not d_target:  # a sentence left out: its prior alone, whatever its length
            return prior, 0.0
        source_length = sum(source_lengths[i - d_source:i]) * ratio
        target_length = sum(target_lengths[j - d_target:j])
        mean = max(1.0, (source_length + target_length) / 2)
        length_probability = math.erfc(abs(source_length - target_length) / math.sqrt(2 * mean * settings.variance))
        cost = prior - math.log(max(length_probability, 1e-300))
        source_found = [mask for words in source_words[i - d_source:i] for mask in words]
        target_found = [mask for words in target_words[j - d_target:j] for mask in words]
        if not source_found and not target_found:
            return cost, length_probability
        source_mask, target_mask = _union(source_found), _union(target_found)
        # a gloss of k headwords ("jatuh" glosses several) is a 1/k anchor: common glosses match unrelated sentences
        anchors = [mask for mask in target_found if mask & source_mask]
        matched = sum(1 / mask.bit_count() for mask in anchors)
        # a known word with no counterpart in the link: a headword whose glosses are absent, a gloss of no headword
        missed = (source_mask & ~target_mask).bit_count() + sum(not mask & source_mask for mask in target_found)
        cost += settings.miss_weight * missed - settings.anchor_weight * matched
        if d_source == 2:  # a merge holding a sentence with almost nothing in common with the other side hides a drop
            cost += settings.orphan_weight * _orphans(source_words[i - 2:i], target_mask)
        if d_target == 2:
            cost += settings.orphan_weight * _orphans(target_words[j - 2:j], source_mask)
        return cost, (length_probability + 2 * len(anchors) / (2 * len(anchors) + missed)) / 2

    n, m = len(source), len(target)
    band = max(settings.band, 2 * abs(n - m))
    best: dict[tuple[int, int], tuple[float, tuple[int, int], float]] = {(0, 0): (0.0, (0, 0), 0.0)}
    for i in range(n + 1):
        centre = i * m / n
        for j in range(max(0, math.floor(centre - band)), min(m, math.ceil(centre + band)) + 1):
            if i == 0 and j == 0:
                continue
            choice = None
            for step in STEPS:
                before = best.get((i - step[0], j - step[1]))
                if before is None:
                    continue
                cost, score = measure(i, j, step)
                if choice is None or before[0] + cost < choice[0]:
                    choice = (before[0] + cost, step, score)
            if choice is not None:
                best[(i, j)] = choice
    if (n, m) not in best:
        raise UserError(f"no alignment within {band} sentences of the diagonal ({n} against {m} sentences); "
                        "raise the band or check that the two documents translate each other")
    links, i, j = [], n, m
    while (i, j) != (0, 0):
        _, (d_source, d_target), score = best[(i, j)]
        links.append(_judge(tuple(range(i - d_source, i)), tuple(range(j - d_target, j)), score, settings))
        i, j = i - d_source, j - d_target
    return links[::-1]


def _orphans(sentences: list[list[int]], other_side: int) -> int:
    """Sentences with at least two known words of which the other side of the link matches under a quarter
    (a common gloss such as "jatuh" can match one word of an unrelated sentence by chance)."""
    return sum(len(words) >= 2 and 4 * sum(bool(mask & other_side) for mask in words) < len(words) for words in sentences)


def _union(masks: list[int]) -> int:
    union = 0
    for mask in masks:
        union |= mask
    return union


def _judge(source: tuple[int, ...], target: tuple[int, ...], score: float, settings: AlignSettings) -> Link:
    score = round(score, 6)
    if not source or not target:
        return Link(source, target, score, "unaligned")
    return Link(source, target, score, None if score >= settings.min_score else "low_score")


def align_documents(source_text: str, target_text: str, source_lang: str, target_lang: str,
                    dictionary: Dictionary | None = None, settings: AlignSettings = DEFAULT_SETTINGS,
                    where: str = "document pair") -> Alignment:
    """Split both documents and align them; paragraph by paragraph when both have the same number of paragraphs
    (a paragraph boundary is then a hard boundary), else as one stream of sentences."""
    source_paragraphs, target_paragraphs = split_paragraphs(source_text), split_paragraphs(target_text)
    if not source_paragraphs and not target_paragraphs:
        raise UserError(f"{where}: both documents are empty; give each side the text of one document")
    source_groups = [split_sentences(p, source_lang) for p in source_paragraphs]
    target_groups = [split_sentences(p, target_lang) for p in target_paragraphs]
    source_sentences = [s for group in source_groups for s in group]
    target_sentences = [t for group in target_groups for t in group]
    _refuse_copies(source_sentences, target_sentences, where)
    if len(source_groups) != len(target_groups):
        source_groups, target_groups = [source_sentences], [target_sentences]
    links: list[Link] = []
    source_offset = target_offset = 0
    for source_group, target_group in zip(source_groups, target_groups):
        for link in align_sentences(source_group, target_group, dictionary, settings):
            links.append(Link(tuple(i + source_offset for i in link.source), tuple(j + target_offset for j in link.target),
                              link.score, link.reason))
        source_offset += len(source_group)
        target_offset += len(target_group)
    return Alignment(source_sentences, target_sentences, links)


def _refuse_copies(source: list[str], target: list[str], where: str) -> None:
    """Stop on a pair whose two sides are the same text: one language only, not a translation."""
    if not source or not target:
        return
    source_keys = {" ".join(sorted(tokens(s))) for s in source}
    copies = sum(" ".join(sorted(tokens(t))) in source_keys for t in target)
    if copies >= 0.5 * min(len(source), len(target)):
        raise UserError(f"{where}: {copies} of {len(target)} target sentences repeat a source sentence word for word; "
                        "both sides look like one language: pair the document with its translation")
