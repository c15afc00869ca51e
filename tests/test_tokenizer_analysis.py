"""Tokenizer analysis on hand-made tokenizers and texts: words, fertility, fallback, coverage, parity, verdict, report."""

from __future__ import annotations

import math
import re

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from langfoundry.model.base import train_tokenizer
from langfoundry.model.tokenizer_analysis import (
    TokenizerAnalysis,
    TokenizerProbe,
    analyse,
    collect_corpus,
    tokens_per_word,
    verdict,
    word_spans,
)
from langfoundry.reports.tokenizer_report import plot_fertility, render_markdown

MALAYALAM = "മലയാളം കേരളത്തിൽ"  # vowel signs, anusvara, virama: combining marks inside the words
NKO = "ߒ߬ߞߏ ߞߊ߲ߞߊ߲ ߓߍ߯"  # N'Ko tone and nasalisation marks, inside and at the end of words


def known_tokenizer() -> PreTrainedTokenizerFast:
    """A BPE that cuts "kepriwe" into kep|ri|we and keeps "rika" whole; x, y, z are unknown."""
    vocab = {token: index for index, token in enumerate(
        ["[UNK]", "k", "e", "p", "r", "i", "w", "a", "ke", "kep", "ri", "we", "rik", "rika"])}
    merges = [("k", "e"), ("ke", "p"), ("r", "i"), ("w", "e"), ("ri", "k"), ("rik", "a")]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")


def test_words_keep_malayalam_and_nko_combining_marks() -> None:
    for text, words in ((MALAYALAM, ["മലയാളം", "കേരളത്തിൽ"]), (NKO, ["ߒ߬ߞߏ", "ߞߊ߲ߞߊ߲", "ߓߍ߯"])):
        assert [text[start:end] for start, end in word_spans(text)] == words
        assert len(re.findall(r"\w+", text)) > len(words), "the standard re module cuts these words at their marks"
    chillu_with_joiner = "കാര്\u200d"
    assert [chillu_with_joiner[s:e] for s, e in word_spans(chillu_with_joiner)] == [chillu_with_joiner]


def test_tokens_count_for_the_words_they_overlap() -> None:
    # "ab cd": tokens "a", "b", " " (a lone space), " c" (with its space), "d"
    assert tokens_per_word([(0, 2), (3, 5)], [(0, 1), (1, 2), (2, 3), (2, 4), (4, 5)]) == [2, 2]
    # three byte tokens of one character all carry its span; an empty span counts for nothing
    assert tokens_per_word([(0, 1)], [(0, 1), (0, 1), (0, 1), (1, 1)]) == [3]


def test_fertility_of_a_known_tokenizer_on_known_words() -> None:
    figures = TokenizerProbe(known_tokenizer()).measure("jv", ["kepriwe rika"])
    assert (figures.words, figures.tokens) == (2, 4)
    assert figures.fertility == 2.0 and figures.continued_share == 0.5
    assert figures.chars_per_token == len("kepriwe rika") / 4
    assert figures.unknown_rate == 0 and figures.char_coverage == 1.0 and figures.uncovered == []


def test_unknown_tokens_and_uncovered_characters_are_listed() -> None:
    figures = TokenizerProbe(known_tokenizer()).measure("jv", ["kepriwe xyz"])
    assert figures.unknown_tokens == 3 and figures.unknown_rate == 0.5
    assert figures.uncovered == ["x", "y", "z"]
    assert figures.char_coverage == pytest.approx(6 / 9)  # k e p r i w covered


def test_byte_level_fallback_on_a_script_the_vocabulary_lacks() -> None:
    tokenizer = train_tokenizer(["abot rika kepriwe mangan ngombe"] * 20, vocab_size=300)
    figures = TokenizerProbe(tokenizer).measure("ml", ["കടൽ"])
    assert figures.words == 1, "one Malayalam word, however many tokens"
    assert figures.tokens == len("കടൽ".encode()) and figures.fertility == figures.tokens
    assert figures.byte_fallback_rate == 1.0 and figures.unknown_rate == 0.0
    assert figures.uncovered == sorted("കടൽ") and figures.char_coverage == 0.0
    latin = TokenizerProbe(tokenizer).measure("jv", ["abot rika"])
    assert latin.byte_fallback_rate == 0.0 and latin.char_coverage == 1.0


def test_verdict_thresholds() -> None:
    assert [verdict(ratio) for ratio in (1.0, 1.99, 2.0, 2.5, 3.0, 3.01, 7.0)] == [
        "fine", "fine", "acceptable", "acceptable", "acceptable", "extend", "extend"]


def translation(task: str, source: str, reference: str) -> dict:
    return {"task": task, "lang": "jv", "pivot_lang": "id", "source_text": source, "reference": reference,
            "messages": []}


def test_corpus_takes_both_directions_as_one_pair() -> None:
    corpus = collect_corpus([
        translation("translate_to_pivot", "kepriwe", "rika"),
        translation("translate_from_pivot", "rika", "kepriwe"),
        translation("vocabulary", "kepriwe", "rika\nKelas kata: n"),
    ])
    assert corpus.pairs == {("jv", "id"): [("kepriwe", "rika")]}
    assert corpus.texts == {"id": ["rika"], "jv": ["kepriwe"]}
    assert corpus.pivots() == {"jv": ("id", [("kepriwe", "rika")])}


def test_parity_fertility_ratio_and_verdict_against_the_pivot() -> None:
    corpus = collect_corpus([translation("translate_to_pivot", "kepriwe", "rika")])
    figures = analyse(known_tokenizer(), corpus)
    target = figures["jv"]
    assert target.pivot == "id" and target.pairs == 1
    assert target.parity == 3.0, "kep|ri|we against rika"
    assert target.fertility_ratio == 3.0 and target.verdict == "acceptable"
    assert figures["id"].pivot is None and figures["id"].verdict is None
    metrics = TokenizerAnalysis(figures, vocab_size=14).metrics()
    assert metrics["languages"]["jv"]["verdict"] == "acceptable" and "parity" not in metrics["languages"]["id"]


def test_report_lists_verdict_and_missing_characters(tmp_path) -> None:
    corpus = collect_corpus([translation("translate_to_pivot", "kepriwe xyz", "rika")])
    analysis = TokenizerAnalysis(analyse(known_tokenizer(), corpus), vocab_size=14)
    report = render_markdown(analysis, "models/base", "tokenizer.png")
    assert "| jv |" in report and "consider extending the vocabulary" in report  # 5 tokens for 2 words, vs 1
    assert "`x` U+0078" in report and "![fertility per language](tokenizer.png)" in report
    assert not math.isnan(analysis.figures["jv"].fertility_ratio)


def test_plot_is_a_deterministic_png_without_metadata(tmp_path) -> None:
    corpus = collect_corpus([translation("translate_to_pivot", "kepriwe", "rika")])
    analysis = TokenizerAnalysis(analyse(known_tokenizer(), corpus), vocab_size=14)
    plot_fertility(analysis, tmp_path / "a.png")
    plot_fertility(analysis, tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data.startswith(b"\x89PNG") and data == (tmp_path / "b.png").read_bytes()
    assert b"Software" not in data and b"tIME" not in data
