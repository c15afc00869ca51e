"""Does a text look like the language it is declared in? Its script, and pluggable language identifiers.

- Script: the dominant script of a text's letters, compared with the language's script in the
  inventory. Exact and cheap, so every row is checked.
- Identifiers, each behind the same small interface (`Identifier`), chosen by name in
  params.yaml (`coverage.identifiers`):
  - `ngram`: a closed-set character n-gram Naive Bayes classifier trained on the project's own
    clean data for the languages present in it. No public identifier knows Banyumasan, and the
    public ones confuse Indonesian with Malay; this one knows exactly the project's labels.
    It is scored by k-fold cross-validation over distinct texts, so every prediction (and the
    accuracy it reports) comes from a model that never saw that text.
  - `py3langid`: the model the py3langid package ships (offline), restricted to the inventory
    languages it knows; a tag counts as known through its language subtag (jv-x-banyumas -> jv).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Protocol

import regex

from langfoundry.core.errors import UserError

# --- scripts --------------------------------------------------------------------------------------


@cache
def script_codes() -> tuple[str, ...]:
    """ISO 15924 codes the regex module can match, from the IANA subtag registry that langcodes ships
    (its script subtags are the ISO 15924 codes), so no list of scripts is kept here."""
    from langcodes.registry_parser import parse_registry

    codes = []
    for entry in parse_registry():
        code = entry.get("Subtag", "")
        if entry.get("Type") != "script" or ".." in code:  # Qaaa..Qabx: private use
            continue
        try:
            regex.compile(rf"\p{{sc={code}}}")
        except regex.error:  # a code with no Unicode script of its own (Latf, Jpan ...)
            continue
        codes.append(code)
    return tuple(sorted(codes))


@cache
def _script_pattern(code: str) -> regex.Pattern:
    return regex.compile(rf"\p{{sc={code}}}")


@lru_cache(maxsize=65536)
def script_of(char: str) -> str:
    """The ISO 15924 code of one character's Unicode script ("Zzzz" if none matches)."""
    if char.isascii():
        return "Latn" if char.isalpha() else "Zyyy"
    for code in script_codes():
        if _script_pattern(code).match(char):
            return code
    return "Zzzz"


def dominant_script(text: str) -> str | None:
    """The script most of the text's letters are in (ties: the lowest code), None without letters."""
    if text.isascii():  # the common case, decided without looking at characters one by one
        return "Latn" if any(char.isalpha() for char in text) else None
    counts: Counter = Counter()
    for char, count in Counter(text).items():
        if char.isalpha():
            counts[script_of(char)] += count
    if not counts:
        return None
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


# --- identifiers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One distinct text of a language (by comparison key) with the first row that has it."""

    lang: str
    key: str  # normalize.comparison_key of the text
    text: str
    fold: int
    row_id: str
    origin: str
    source: str
    side: str  # text or pivot_text
    rows: int = 1  # rows of the table with this key in this language


@dataclass(frozen=True)
class Prediction:
    label: str | None  # None: the identifier abstains (a language it does not know)
    confidence: float


class Identifier(Protocol):
    name: str

    def labels(self) -> list[str]:
        """The languages it can answer with (inventory tags or their language subtags)."""

    def covers(self, tag: str) -> bool:
        """Whether a text declared as tag can be checked."""

    def agrees(self, tag: str, label: str) -> bool:
        """Whether a prediction confirms the declared tag."""

    def predict(self, samples: Sequence[Sample]) -> list[Prediction]:
        """One prediction per sample, never from a model that saw that sample's text."""


def char_ngrams(key: str, max_n: int) -> list[str]:
    """Character 1..max_n-grams of a comparison key, words padded with a space on each side."""
    padded = f" {key} "
    grams = []
    for n in range(1, max_n + 1):
        grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return [gram for gram in grams if gram.strip()]


class NgramIdentifier:
    """Multinomial Naive Bayes over character n-grams, with k-fold held-out predictions.

    Written out rather than taken from scikit-learn: it is a few dozen lines, and the data stages
    stay free of scipy. A fold's model is the totals minus that fold's counts, so the k models cost
    one counting pass, and they are used one at a time.
    """

    name = "ngram"

    # alpha: additive smoothing; 0.5 was the best-calibrated of 0.01-1 on the default data (accuracy barely moves)
    def __init__(self, samples: Sequence[Sample], max_n: int = 4, alpha: float = 0.5):
        self.max_n, self.alpha = max_n, alpha
        self._labels = sorted({sample.lang for sample in samples})
        self.total: dict[str, Counter] = {lang: Counter() for lang in self._labels}
        self.total_docs: Counter = Counter()
        self.fold_counts: dict[int, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self.fold_docs: dict[int, Counter] = defaultdict(Counter)
        for sample in samples:
            grams = char_ngrams(sample.key, max_n)
            self.total[sample.lang].update(grams)
            self.total_docs[sample.lang] += 1
            self.fold_counts[sample.fold][sample.lang].update(grams)
            self.fold_docs[sample.fold][sample.lang] += 1

    def labels(self) -> list[str]:
        return list(self._labels)

    def covers(self, tag: str) -> bool:
        return tag in self._labels and len(self._labels) > 1

    def agrees(self, tag: str, label: str) -> bool:
        return tag == label

    def _fold_model(self, fold: int) -> tuple[dict[str, float], dict[str, float], dict[str, Counter]]:
        """(log prior, log denominator, held-out counts) of the model trained on every other fold."""
        held_out = {lang: self.fold_counts.get(fold, {}).get(lang, Counter()) for lang in self._labels}
        docs = {lang: self.total_docs[lang] - self.fold_docs[fold][lang] for lang in self._labels}
        docs = {lang: count for lang, count in docs.items() if count > 0}
        vocabulary = {gram for lang in docs for gram, count in self.total[lang].items() if count > held_out[lang][gram]}
        all_docs = sum(docs.values())
        prior, denominator = {}, {}
        for lang in sorted(docs):
            tokens = sum(self.total[lang].values()) - sum(held_out[lang].values())
            prior[lang] = math.log(docs[lang] / all_docs)
            denominator[lang] = math.log(tokens + self.alpha * (len(vocabulary) + 1))  # +1: the unseen gram
        return prior, denominator, held_out

    def predict(self, samples: Sequence[Sample]) -> list[Prediction]:
        predictions: list[Prediction] = [Prediction(None, 0.0)] * len(samples)
        by_fold: dict[int, list[int]] = defaultdict(list)
        for index, sample in enumerate(samples):
            by_fold[sample.fold].append(index)
        for fold in sorted(by_fold):
            prior, denominator, held_out = self._fold_model(fold)
            if len(prior) < 2:
                continue  # one language left: nothing to tell apart
            for index in by_fold[fold]:
                grams = Counter(char_ngrams(samples[index].key, self.max_n))
                if not grams:
                    continue
                scores = {}
                for lang in prior:
                    seen, removed = self.total[lang], held_out[lang]
                    scores[lang] = prior[lang] + sum(
                        count * (math.log(seen.get(gram, 0) - removed.get(gram, 0) + self.alpha) - denominator[lang])
                        for gram, count in grams.items())
                label, top = max(scores.items(), key=lambda item: (item[1], item[0]))
                posterior = 1.0 / sum(math.exp(score - top) for score in scores.values())
                predictions[index] = Prediction(label, posterior)
        return predictions


def language_subtag(tag: str) -> str:
    import langcodes

    return langcodes.Language.get(tag).language or tag


class PackagedIdentifier:
    """py3langid's shipped model, restricted to the inventory languages it has labels for."""

    name = "py3langid"

    def __init__(self, inventory_tags: Iterable[str]):
        try:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier
        except ImportError:
            raise UserError("params.yaml: coverage.identifiers names py3langid, which is not installed; "
                            "install the project's pinned dependencies (make venv) or drop it from the list") from None
        self.model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        known = set(self.model.labels)
        # A closed set: answers outside the inventory would only add noise to the comparison.
        self._labels = sorted({language_subtag(tag) for tag in inventory_tags} & known)
        if self._labels:
            self.model.set_languages(self._labels)

    def labels(self) -> list[str]:
        return list(self._labels)

    def covers(self, tag: str) -> bool:
        return language_subtag(tag) in self._labels and len(self._labels) > 1

    def agrees(self, tag: str, label: str) -> bool:
        return language_subtag(tag) == label

    def predict(self, samples: Sequence[Sample]) -> list[Prediction]:
        predictions = []
        for sample in samples:
            label, confidence = self.model.classify(sample.text)
            predictions.append(Prediction(label, float(confidence)))
        return predictions


IDENTIFIERS = ("ngram", "py3langid")


def make_identifier(name: str, samples: Sequence[Sample], inventory_tags: Iterable[str], max_n: int) -> Identifier:
    """An identifier by its name in params.yaml; samples carry their cross-validation fold."""
    if name == "ngram":
        return NgramIdentifier(samples, max_n=max_n)
    if name == "py3langid":
        return PackagedIdentifier(inventory_tags)
    raise UserError(f"params.yaml: coverage.identifiers has {name!r}; known identifiers: {', '.join(IDENTIFIERS)}")


# --- sampling -----------------------------------------------------------------------------------------


def _rank(lang: str, key: str) -> tuple[int, int]:
    """(rank, fold) of a text: two independent numbers from one hash, the same on every machine."""
    digest = hashlib.blake2b(f"{lang}\x1f{key}".encode(), digest_size=12).digest()
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big")


class SampleReservoir:
    """Up to `size` distinct texts per language, the same ones on every run and whatever the row
    order: those whose hash is lowest. Memory stays bounded however large the table is."""

    def __init__(self, size: int, folds: int):
        self.size, self.folds = size, folds
        self.kept: dict[str, dict[str, tuple[int, Sample]]] = defaultdict(dict)
        self.heaps: dict[str, list[tuple[int, str]]] = defaultdict(list)  # (-rank, key): the highest rank on top

    def offer(self, lang: str, key: str, text: str, row_id: str, origin: str, source: str, side: str) -> None:
        if not key:
            return
        kept, heap = self.kept[lang], self.heaps[lang]
        if key in kept:
            rank, sample = kept[key]
            kept[key] = (rank, replace(sample, rows=sample.rows + 1))
            return
        rank, fold_hash = _rank(lang, key)
        if len(kept) >= self.size:
            if rank >= -heap[0][0]:  # not lower than the highest rank kept
                return
            _, evicted = heapq.heappop(heap)
            del kept[evicted]
        kept[key] = (rank, Sample(lang, key, text, fold_hash % self.folds, row_id, origin, source, side))
        heapq.heappush(heap, (-rank, key))

    def samples(self) -> list[Sample]:
        return [sample for lang in sorted(self.kept)
                for _, sample in sorted(self.kept[lang].values(), key=lambda item: (item[0], item[1].key))]


# --- results --------------------------------------------------------------------------------------------


@dataclass
class IdentifierReport:
    name: str
    labels: list[str]
    checked: int  # samples of covered languages
    correct: int
    per_lang: dict[str, tuple[int, int]]  # lang -> (checked, correct)
    confusion: dict[tuple[str, str], int]  # (declared, predicted) -> count, disagreements only
    flags: list[tuple[Sample, Prediction]]

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.checked if self.checked else None


def run_identifier(identifier: Identifier, samples: Sequence[Sample], min_confidence: float) -> IdentifierReport:
    covered = [sample for sample in samples if identifier.covers(sample.lang)]
    predictions = identifier.predict(covered)
    per_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    confusion: Counter = Counter()
    flags = []
    correct = 0
    for sample, prediction in zip(covered, predictions):
        agrees = prediction.label is not None and identifier.agrees(sample.lang, prediction.label)
        per_lang[sample.lang][0] += 1
        if agrees:
            per_lang[sample.lang][1] += 1
            correct += 1
            continue
        confusion[(sample.lang, prediction.label or "none")] += 1
        if prediction.label is not None and prediction.confidence >= min_confidence:
            flags.append((sample, prediction))
    return IdentifierReport(identifier.name, identifier.labels(), len(covered), correct,
                            {lang: (n, ok) for lang, (n, ok) in sorted(per_lang.items())}, dict(sorted(confusion.items())), flags)


def script_mismatch(text: str | None, expected: str | None) -> str | None:
    """The observed dominant script when it is not the expected one (None when it matches or cannot tell)."""
    if not text or not expected:
        return None
    observed = dominant_script(text)
    return observed if observed is not None and observed != expected else None
