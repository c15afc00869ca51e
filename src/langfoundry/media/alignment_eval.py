"""How well sentence alignment recovers known links: a seeded test set of perturbed parallel documents.

From a dictionary's entries, sentence pairs are made of headwords and their glosses; a seeded share of the
pairs is then perturbed the way translations differ: two target sentences merged into one (a 2-1 link),
one split in two (1-2), the same on the source side (1-2, 2-1), a sentence dropped from either side (1-0,
0-1). The perturbed documents are rendered as text, aligned from scratch (sentence splitting included)
and the links compared with the known ones: `alignment_metrics` -> precision, recall and F1.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from langfoundry.media.align import DEFAULT_SETTINGS, AlignSettings, Dictionary, align_documents, gloss_alternatives, tokens

LinkKey = tuple[tuple[int, ...], tuple[int, ...]]
# Share of sentence pairs that get each perturbation (at most one each).
PERTURBATIONS = {"merge_target": 0.06, "merge_source": 0.06, "split_target": 0.06, "split_source": 0.06,
                 "drop_target": 0.04, "drop_source": 0.04}


@dataclass(frozen=True)
class PerturbedDocument:
    source_text: str
    target_text: str
    links: list[LinkKey]  # the known links, in document order


def _sentence(words: Sequence[str]) -> str:
    text = " ".join(words)
    return text[:1].upper() + text[1:] + "."


def _lower_first(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:]


def _join(first: str, second: str) -> str:
    return first.rstrip(".") + ", " + _lower_first(second)


def _halves(sentence: str, rng: random.Random) -> tuple[str, str]:
    words = sentence.rstrip(".").split()
    cut = rng.randint(1, len(words) - 1)
    return _sentence(words[:cut]), _sentence(words[cut:])


def usable_entries(entries: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Entries whose headword and first gloss alternative are plain words: (headword, gloss) pairs to build from."""
    usable = []
    for headword, gloss in entries:
        alternatives = gloss_alternatives(gloss)
        if tokens(headword) and alternatives and tokens(alternatives[0]):
            usable.append((headword.strip(), alternatives[0]))
    return usable


def sentence_pairs(entries: Sequence[tuple[str, str]], count: int, rng: random.Random, min_words: int = 3,
                   max_words: int = 14, coverage: float = 0.8) -> list[tuple[str, str]]:
    """count (source, target) sentences of min_words..max_words headwords and their glosses; a word's gloss is
    the dictionary's with probability coverage, else another entry's (a free translation the dictionary misses)."""
    pairs = []
    for _ in range(count):
        chosen = rng.sample(entries, rng.randint(min_words, max_words))
        glosses = [gloss if rng.random() < coverage else rng.choice(entries)[1] for _, gloss in chosen]
        pairs.append((_sentence([headword for headword, _ in chosen]), _sentence(glosses)))
    return pairs


def perturbed_document(pairs: Sequence[tuple[str, str]], rng: random.Random,
                       rates: dict[str, float] | None = None) -> PerturbedDocument:
    """Two documents from aligned pairs, a seeded share of them merged, split or dropped, with the known links."""
    rates = PERTURBATIONS if rates is None else rates
    source: list[str] = []
    target: list[str] = []
    links: list[LinkKey] = []

    def add(new_source: list[str], new_target: list[str]) -> None:
        links.append((tuple(range(len(source), len(source) + len(new_source))),
                      tuple(range(len(target), len(target) + len(new_target)))))
        source.extend(new_source)
        target.extend(new_target)

    index = 0
    while index < len(pairs):
        (source_sentence, target_sentence), roll = pairs[index], rng.random()
        has_next = index + 1 < len(pairs)
        kind, edge = None, 0.0
        for name, rate in rates.items():
            edge += rate
            if roll < edge:
                kind = name
                break
        if kind == "merge_target" and has_next:
            add([source_sentence, pairs[index + 1][0]], [_join(target_sentence, pairs[index + 1][1])])
            index += 1
        elif kind == "merge_source" and has_next:
            add([_join(source_sentence, pairs[index + 1][0])], [target_sentence, pairs[index + 1][1]])
            index += 1
        elif kind == "split_target" and len(target_sentence.split()) > 1:
            add([source_sentence], list(_halves(target_sentence, rng)))
        elif kind == "split_source" and len(source_sentence.split()) > 1:
            add(list(_halves(source_sentence, rng)), [target_sentence])
        elif kind == "drop_target":
            add([source_sentence], [])
        elif kind == "drop_source":
            add([], [target_sentence])
        else:
            add([source_sentence], [target_sentence])
        index += 1
    return PerturbedDocument(" ".join(source), " ".join(target), links)


def alignment_metrics(gold: Sequence[LinkKey], predicted: Sequence[LinkKey]) -> dict:
    """Precision, recall and F1 of predicted links against known ones (a link counts when both its sides match
    exactly), overall and per link kind (recall of the known links of that kind)."""
    gold_set, predicted_set = set(gold), set(predicted)
    correct = len(gold_set & predicted_set)
    precision = correct / len(predicted_set) if predicted_set else 0.0
    recall = correct / len(gold_set) if gold_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({f"{len(s)}-{len(t)}" for s, t in gold_set}):
        known = {link for link in gold_set if f"{len(link[0])}-{len(link[1])}" == kind}
        by_kind[kind] = {"links": len(known), "recall": round(len(known & predicted_set) / len(known), 4)}
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "gold_links": len(gold_set), "predicted_links": len(predicted_set), "correct_links": correct,
            "by_kind": by_kind}


def evaluate_alignment(entries: Sequence[tuple[str, str]], settings: AlignSettings = DEFAULT_SETTINGS, seed: int = 13,
                       documents: int = 10, pairs_per_document: int = 100, coverage: float = 0.8,
                       use_anchors: bool = True, rates: dict[str, float] | None = None,
                       langs: tuple[str, str] = ("jv-x-banyumas", "id")) -> dict:
    """Align `documents` seeded perturbed documents built from entries; metrics over all their links, the
    accepted pairs' precision, and the time taken."""
    usable = usable_entries(entries)
    if len(usable) < 20:
        raise ValueError(f"{len(usable)} usable dictionary entries: the test set needs at least 20")
    rng = random.Random(seed)
    dictionary = Dictionary.from_pairs(entries) if use_anchors else None
    gold: list[LinkKey] = []
    predicted: list[LinkKey] = []
    accepted = accepted_correct = source_offset = target_offset = 0
    seconds = 0.0
    for _ in range(documents):
        document = perturbed_document(sentence_pairs(usable, pairs_per_document, rng, coverage=coverage), rng, rates)
        started = time.perf_counter()
        alignment = align_documents(document.source_text, document.target_text, *langs, dictionary, settings)
        seconds += time.perf_counter() - started
        known = set(document.links)
        for link in alignment.links:
            if link.accepted:
                accepted += 1
                accepted_correct += (link.source, link.target) in known
        # indices shifted past the documents before, so links of different documents stay apart
        gold.extend(_shift(document.links, source_offset, target_offset))
        predicted.extend(_shift([(link.source, link.target) for link in alignment.links], source_offset, target_offset))
        source_offset += len(alignment.source_sentences)
        target_offset += len(alignment.target_sentences)
    metrics = alignment_metrics(gold, predicted)
    sentences = source_offset + target_offset
    metrics.update(accepted_links=accepted, accepted_precision=round(accepted_correct / accepted, 4) if accepted else 0.0,
                   documents=documents, sentences=sentences, anchors=use_anchors, coverage=coverage, seed=seed,
                   seconds_per_1000_sentences=round(1000 * seconds / max(1, sentences), 3))
    return metrics


def _shift(links: Sequence[LinkKey], source_offset: int, target_offset: int) -> list[LinkKey]:
    return [(tuple(i + source_offset for i in source), tuple(j + target_offset for j in target)) for source, target in links]
