"""How badly the base model's tokenizer fragments each language of the project's own data.

Per language: fertility (tokens per word), the share of words split into two or more tokens
(continued words), characters and UTF-8 bytes per token, the share of unknown tokens and of byte
fallback tokens (pieces of one character's bytes), and character coverage (the share of the text's
distinct characters that the vocabulary holds as single tokens). Per target language, against its
pivot on the parallel pairs: parity (target tokens over pivot tokens) and the fertility ratio, which
the rule of thumb turns into a verdict.

Words are runs of grapheme clusters that start with a word character (the `regex` module's Unicode
`\\w` and `\\X`), so Malayalam vowel signs and viramas or N'Ko tone marks never cut a word; the
standard `re` module's `\\w` leaves combining marks out and would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from langfoundry.core.errors import UserError
from langfoundry.core.storage import read_jsonl
from langfoundry.model.scoring import target_language_texts
from langfoundry.model.vocab_extension import ORIGINAL_TOKENIZER_DIR, read_extension

WORD = regex.compile(r"(?:(?=\w)\X)+")

TRANSLATION_TASKS = ("translate_to_pivot", "translate_from_pivot")

# The rule of thumb on the fertility ratio (target tokens per word over the pivot's).
FINE_BELOW = 2.0
ACCEPTABLE_UP_TO = 3.0
VERDICTS = {
    "fine": "fine",
    "acceptable": "acceptable, training is slower",
    "extend": "consider extending the vocabulary",
}


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the words of a text."""
    return [match.span() for match in WORD.finditer(text)]


def tokens_per_word(words: Sequence[tuple[int, int]], tokens: Sequence[tuple[int, int]]) -> list[int]:
    """For each word span, the number of token spans that share at least one character with it.

    Both lists are in text order. A token that is only the space before a word does not count; the
    several byte tokens of one character all carry that character's span, so each of them counts.
    """
    counts = []
    first = 0
    for start, end in words:
        while first < len(tokens) and tokens[first][1] <= start:
            first += 1
        count = 0
        index = first
        while index < len(tokens) and tokens[index][0] < end:
            if tokens[index][1] > start and tokens[index][1] > tokens[index][0]:
                count += 1
            index += 1
        counts.append(count)
    return counts


def verdict(fertility_ratio: float) -> str:
    """fine under 2 times the pivot's fertility, acceptable from 2 to 3 times, extend above 3 times."""
    if fertility_ratio < FINE_BELOW:
        return "fine"
    if fertility_ratio <= ACCEPTABLE_UP_TO:
        return "acceptable"
    return "extend"


# --- the texts --------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Distinct texts per language and distinct (target, pivot) pairs per (language, pivot language)."""

    texts: dict[str, list[str]]
    pairs: dict[tuple[str, str], list[tuple[str, str]]]

    def pivots(self) -> dict[str, tuple[str, list[tuple[str, str]]]]:
        """Each target language's main pivot (the one with most pairs) and those pairs."""
        best: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        for (lang, pivot), pairs in sorted(self.pairs.items()):
            if lang not in best or len(pairs) > len(best[lang][1]):
                best[lang] = (pivot, pairs)
        return best


def collect_corpus(examples: Iterable[Mapping[str, Any]]) -> Corpus:
    """The record-language side of every example, the pivot side of translations, and the translation pairs."""
    examples = list(examples)
    texts: dict[str, set[str]] = defaultdict(set)
    pairs: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for lang, text in target_language_texts(examples):
        texts[lang].add(text)
    for example in examples:
        if example.get("task") not in TRANSLATION_TASKS or not example.get("pivot_lang"):
            continue
        target, pivot = example["source_text"], example["reference"]
        if example["task"] == "translate_from_pivot":
            target, pivot = pivot, target
        if target.strip() and pivot.strip():
            texts[example["pivot_lang"]].add(pivot)
            pairs[(example["lang"], example["pivot_lang"])].add((target, pivot))
    return Corpus({lang: sorted(found) for lang, found in sorted(texts.items())},
                  {key: sorted(found) for key, found in sorted(pairs.items())})


# --- the figures ------------------------------------------------------------------------------------------


def _share(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


@dataclass
class LanguageFigures:
    lang: str
    texts: int = 0
    words: int = 0
    tokens: int = 0
    word_tokens: int = 0  # tokens counted against words (a token shared by two words counts for both)
    continued_words: int = 0  # words of two or more tokens
    chars: int = 0
    bytes: int = 0
    unknown_tokens: int = 0
    fragment_tokens: int = 0  # byte fallback: tokens that hold part of a character's bytes
    distinct_chars: int = 0
    uncovered: list[str] = field(default_factory=list)  # distinct characters no single token holds
    pivot: str | None = None
    pairs: int = 0
    parity: float | None = None
    fertility_ratio: float | None = None

    @property
    def fertility(self) -> float:
        return _share(self.word_tokens, self.words)

    @property
    def continued_share(self) -> float:
        return _share(self.continued_words, self.words)

    @property
    def chars_per_token(self) -> float:
        return _share(self.chars, self.tokens)

    @property
    def bytes_per_token(self) -> float:
        return _share(self.bytes, self.tokens)

    @property
    def unknown_rate(self) -> float:
        return _share(self.unknown_tokens, self.tokens)

    @property
    def byte_fallback_rate(self) -> float:
        return _share(self.fragment_tokens, self.tokens)

    @property
    def char_coverage(self) -> float:
        return _share(self.distinct_chars - len(self.uncovered), self.distinct_chars)

    @property
    def verdict(self) -> str | None:
        return verdict(self.fertility_ratio) if self.fertility_ratio is not None else None

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "texts": self.texts, "words": self.words, "tokens": self.tokens, "fertility": self.fertility,
            "continued_words": self.continued_share, "chars_per_token": self.chars_per_token,
            "bytes_per_token": self.bytes_per_token, "unknown_rate": self.unknown_rate,
            "byte_fallback_rate": self.byte_fallback_rate, "char_coverage": self.char_coverage,
            "uncovered_chars": len(self.uncovered),
        }
        if self.pivot is not None:
            out.update(pivot=self.pivot, pairs=self.pairs, parity=self.parity, fertility_ratio=self.fertility_ratio,
                       verdict=self.verdict)
        return out


class TokenizerProbe:
    """One tokenizer's view of texts: token spans, unknown and fragment tokens, single-token characters."""

    def __init__(self, tokenizer):
        if not getattr(tokenizer, "is_fast", False):
            raise UserError("the base tokenizer is not a fast (tokenizers-backed) one; the analysis needs its token offsets")
        self.tokenizer = tokenizer
        self.unknown_id = tokenizer.unk_token_id
        self._fragment: dict[int, bool] = {}
        self._single_chars: set[str] | None = None

    def encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        if not texts:
            return [], []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return encoded["input_ids"], [[tuple(span) for span in spans] for spans in encoded["offset_mapping"]]

    def is_fragment(self, token_id: int) -> bool:
        """Whether a token alone decodes to an incomplete character (byte-level pieces, `<0xE0>` byte fallback)."""
        if token_id not in self._fragment:
            self._fragment[token_id] = "\ufffd" in self.tokenizer.decode([token_id])
        return self._fragment[token_id]

    def single_token_characters(self) -> set[str]:
        """Characters some vocabulary entry holds whole (alone, or after the tokenizer's word-start space)."""
        if self._single_chars is None:
            ids = sorted(set(self.tokenizer.get_vocab().values()) - set(self.tokenizer.all_special_ids))
            decoded = self.tokenizer.batch_decode([[token_id] for token_id in ids])
            self._single_chars = {text.strip() for text in decoded if len(text.strip()) == 1}
        return self._single_chars

    def token_count(self, texts: Sequence[str]) -> int:
        return sum(len(ids) for ids in self.encode(texts)[0])

    def measure(self, lang: str, texts: Sequence[str]) -> LanguageFigures:
        figures = LanguageFigures(lang=lang, texts=len(texts))
        all_ids, all_spans = self.encode(texts)
        characters: set[str] = set()
        for text, ids, spans in zip(texts, all_ids, all_spans):
            counts = tokens_per_word(word_spans(text), spans)
            figures.words += len(counts)
            figures.word_tokens += sum(counts)
            figures.continued_words += sum(1 for count in counts if count > 1)
            figures.tokens += len(ids)
            figures.chars += len(text)
            figures.bytes += len(text.encode("utf-8"))
            figures.unknown_tokens += sum(1 for token_id in ids if token_id == self.unknown_id)
            figures.fragment_tokens += sum(1 for token_id in ids if self.is_fragment(token_id))
            characters.update(char for char in text if not char.isspace())
        figures.distinct_chars = len(characters)
        figures.uncovered = sorted(characters - self.single_token_characters())
        return figures


def analyse(tokenizer, corpus: Corpus) -> dict[str, LanguageFigures]:
    """Figures for every language of the corpus; target languages also get parity, fertility ratio and verdict."""
    probe = TokenizerProbe(tokenizer)
    figures = {lang: probe.measure(lang, texts) for lang, texts in corpus.texts.items()}
    for lang, (pivot, pairs) in corpus.pivots().items():
        target = figures[lang]
        target.pivot, target.pairs = pivot, len(pairs)
        # a ratio of totals: short pairs (single dictionary words) do not swing it the way a mean of ratios would
        target.parity = _share(probe.token_count([t for t, _ in pairs]), probe.token_count([p for _, p in pairs]))
        target.fertility_ratio = _share(target.fertility, figures[pivot].fertility)
    return figures


def figures_metrics(figures: Mapping[str, LanguageFigures]) -> dict[str, Any]:
    return {lang: figure.metrics() for lang, figure in sorted(figures.items())}


def fertility_of(tokenizer, texts_by_lang: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Just the fertility per language (for the held-out texts)."""
    probe = TokenizerProbe(tokenizer)
    return {lang: probe.measure(lang, texts).fertility for lang, texts in sorted(texts_by_lang.items())}


# --- the stage ----------------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")
HELD_OUT = ("val", "test")


def load_split_examples(processed_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The chat examples of each split that exists (val and test may be empty)."""
    processed_dir = Path(processed_dir)
    if not (processed_dir / "train.jsonl").exists():
        raise UserError(f"{processed_dir}/train.jsonl: not found; run the format stage first (dvc repro format)")
    return {split: read_jsonl(processed_dir / f"{split}.jsonl") for split in SPLITS
            if (processed_dir / f"{split}.jsonl").exists()}


@dataclass
class TokenizerAnalysis:
    figures: dict[str, LanguageFigures]  # with the tokenizer that training uses
    vocab_size: int
    before: dict[str, LanguageFigures] | None = None  # with the base tokenizer before the vocabulary extension
    heldout_fertility: dict[str, tuple[float, float]] | None = None  # lang -> (before, after) on val and test texts
    extension: dict[str, Any] | None = None

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"vocab_size": self.vocab_size, "languages": figures_metrics(self.figures)}
        if self.extension is not None and self.before is not None:
            out["extension"] = {"new_tokens": len(self.extension["new_tokens"]),
                                "original_vocab_size": self.extension["original_vocab_size"]}
            for lang, figure in sorted(self.before.items()):
                before = {"fertility": figure.fertility, "continued_words": figure.continued_share,
                          "chars_per_token": figure.chars_per_token}
                if figure.pivot is not None:
                    before.update(parity=figure.parity, fertility_ratio=figure.fertility_ratio, verdict=figure.verdict)
                out["languages"][lang]["before_extension"] = before
            for lang, (before_value, after_value) in sorted((self.heldout_fertility or {}).items()):
                out["languages"][lang]["heldout_fertility"] = after_value
                out["languages"][lang]["before_extension"]["heldout_fertility"] = before_value
        return out


def analyse_base(base_dir: str | Path, examples: Mapping[str, Sequence[Mapping[str, Any]]],
                 trust_remote_code: bool = False) -> TokenizerAnalysis:
    """Analyse the base model's tokenizer on every split; with an extended vocabulary, the original one too."""
    from transformers import AutoTokenizer

    base_dir = Path(base_dir)
    if not (base_dir / "tokenizer_config.json").exists():
        raise UserError(f"{base_dir}: no tokenizer there; run the base stage first (dvc repro base)")
    tokenizer = AutoTokenizer.from_pretrained(base_dir, trust_remote_code=trust_remote_code)
    corpus = collect_corpus(example for split in SPLITS for example in examples.get(split, []))
    analysis = TokenizerAnalysis(analyse(tokenizer, corpus), len(tokenizer))
    extension = read_extension(base_dir)
    if extension is not None:
        original = AutoTokenizer.from_pretrained(base_dir / ORIGINAL_TOKENIZER_DIR, trust_remote_code=trust_remote_code)
        analysis.extension = extension
        analysis.before = analyse(original, corpus)
        heldout = collect_corpus(example for split in HELD_OUT for example in examples.get(split, []))
        targets = {lang: heldout.texts[lang] for lang in heldout.pivots()}
        before, after = fertility_of(original, targets), fertility_of(tokenizer, targets)
        analysis.heldout_fertility = {lang: (before[lang], after[lang]) for lang in targets}
    return analysis
