"""Scores for generated text: sacrebleu BLEU/chrF/chrF++, exact match, a dictionary baseline.

Free of torch so it can be used (and tested) without loading a model.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import regex

from langfoundry.core.errors import UserError
from langfoundry.data.chat import TRANSLATION_TASKS, continued_text, hash_unit

# Words in any script: letters with their combining marks (Malayalam, N'Ko), digits, joiners.
WORD = regex.compile(r"[\w\p{M}\u200c\u200d]+")


def one_line(text: str) -> str:
    """Collapse whitespace: sacrebleu's command line reads one segment per line, so we score the same strings."""
    return " ".join(text.split())


class Scorer:
    """Corpus-level BLEU, chrF and chrF++ with fixed settings, and their sacrebleu signatures."""

    def __init__(self, bleu_tokenize: str = "intl"):
        from sacrebleu.metrics import BLEU, CHRF

        if bleu_tokenize not in BLEU.TOKENIZERS:
            raise UserError(f"params.yaml: evaluate.bleu_tokenize = {bleu_tokenize!r} is not a sacrebleu tokenizer; "
                            f"use one of {', '.join(sorted(BLEU.TOKENIZERS))}")
        self.metrics = {"bleu": BLEU(tokenize=bleu_tokenize), "chrf": CHRF(), "chrf_pp": CHRF(word_order=2)}

    def score(self, hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        hyps = [one_line(text) for text in hypotheses]
        refs = [[one_line(text) for text in references]]
        return {name: float(metric.corpus_score(hyps, refs).score) for name, metric in self.metrics.items()}

    def signatures(self) -> dict[str, str]:
        return {name: str(metric.get_signature()) for name, metric in self.metrics.items()}


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    pairs = list(zip(hypotheses, references))
    hits = sum(hyp.strip().casefold() == ref.strip().casefold() for hyp, ref in pairs)
    return hits / len(pairs) if pairs else 0.0


def direction(example: Mapping[str, Any]) -> str | None:
    """"src>tgt" for translation examples (">" because tags use hyphens and flat metric keys use dots)."""
    if example["task"] == "translate_to_pivot":
        return f"{example['lang']}>{example['pivot_lang']}"
    if example["task"] == "translate_from_pivot":
        return f"{example['pivot_lang']}>{example['lang']}"
    return None


def groups(example: Mapping[str, Any], regions: Mapping[str, str] | None = None) -> list[str]:
    """The metric groups an example counts in ("" is the overall group); regions maps tag -> region key."""
    keys = ["", example["task"], f"lang.{example['lang']}"]
    if regions is not None:
        keys.append(f"region.{regions.get(example['lang'], 'none')}")
    if example["task"] in TRANSLATION_TASKS:
        keys += ["translation", f"direction.{direction(example)}"]
    return keys


def score_predictions(examples: Sequence[Mapping[str, Any]], hypotheses: Sequence[str], scorer: Scorer,
                      regions: Mapping[str, str] | None = None) -> dict[str, float]:
    """Flat metrics for one model: overall, per task, per language, per region (given regions), per direction,
    plus vocabulary exact match."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        for key in groups(example, regions):
            members[key].append(index)
    metrics: dict[str, float] = {}
    for key, indices in sorted(members.items()):
        scores = scorer.score([hypotheses[i] for i in indices], [examples[i]["reference"] for i in indices])
        for name, value in scores.items():
            metrics[f"{key}.{name}" if key else name] = value
    if "vocabulary" in members:
        indices = members["vocabulary"]
        metrics["vocabulary.exact_match"] = exact_match([hypotheses[i] for i in indices],
                                                        [examples[i]["reference"] for i in indices])
    return metrics


def select_examples(examples: Sequence[Mapping[str, Any]], max_examples: int, seed: int) -> list[Mapping[str, Any]]:
    """All examples, or a seeded hash-chosen subset of max_examples, in id order."""
    chosen = list(examples)
    if 0 < max_examples < len(chosen):
        chosen = sorted(chosen, key=lambda example: (hash_unit(seed, example["id"]), example["id"]))[:max_examples]
    return sorted(chosen, key=lambda example: example["id"])


def target_language_texts(examples: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(lang, text) for the side of each example written in its record language, each once, sorted."""
    texts: set[tuple[str, str]] = set()
    for example in examples:
        if example["task"] == "continuation":  # the whole text: its first half is in the prompt, the rest answers
            text = continued_text(example["source_text"], example["reference"])
        elif example["task"] in ("translate_to_pivot", "vocabulary"):
            text = example["source_text"]
        else:  # translate_from_pivot, conversation and instruction answer in the record language
            text = example["reference"]
        if text.strip():
            texts.add((example["lang"], text))
    return sorted(texts)


class DictionaryBaseline:
    """Word-for-word lookup learnt from the training split's translation pairs.

    Per direction: a whole source phrase seen in training gets its most frequent translation;
    otherwise each word that was a one-word training source is replaced by its most frequent
    translation and every other word is copied through.
    """

    def __init__(self, train_examples: Iterable[Mapping[str, Any]]):
        words: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        phrases: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for example in train_examples:
            if example.get("task") not in TRANSLATION_TASKS:
                continue
            key, source, target = direction(example), one_line(example["source_text"]), one_line(example["reference"])
            if not source or not target:
                continue
            phrases[key][source.casefold()][target] += 1
            if WORD.fullmatch(source):
                words[key][source.casefold()][target] += 1
        self.words = {key: {word: _most_frequent(counts) for word, counts in table.items()} for key, table in words.items()}
        self.phrases = {key: {text: _most_frequent(counts) for text, counts in table.items()} for key, table in phrases.items()}

    def translate(self, text: str, direction_key: str) -> str:
        phrase = self.phrases.get(direction_key, {}).get(one_line(text).casefold())
        if phrase is not None:
            return phrase
        table = self.words.get(direction_key, {})
        return WORD.sub(lambda match: table.get(match.group().casefold(), match.group()), text).strip()

    def predict(self, example: Mapping[str, Any]) -> str:
        return self.translate(example["source_text"], direction(example))


def _most_frequent(counts: Counter) -> str:
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]  # ties: alphabetical, for determinism

