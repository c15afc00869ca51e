"""Sentence alignment (media/align.py) and its measurement (media/alignment_eval.py) on the shipped dictionary."""

from __future__ import annotations

import importlib.resources
import json
import random

import pytest

from langfoundry.core.errors import UserError
from langfoundry.media.align import (
    AlignSettings,
    Dictionary,
    align_documents,
    align_sentences,
    load_dictionary,
    split_sentences,
)
from langfoundry.media.alignment_eval import alignment_metrics, evaluate_alignment, sentence_pairs, usable_entries

CORPUS = importlib.resources.files("banyumasan_corpus") / "data/corpus.json"
LANGS = ("jv-x-banyumas", "id")


@pytest.fixture(scope="module")
def entries() -> list[tuple[str, str]]:
    return [(entry["ngapak"], entry["indonesia"]) for entry in json.loads(CORPUS.read_text(encoding="utf-8"))["entries"]]


@pytest.fixture(scope="module")
def dictionary(entries) -> Dictionary:
    return Dictionary.from_pairs(entries)


@pytest.fixture(scope="module")
def pairs(entries) -> list[tuple[str, str]]:
    return sentence_pairs(usable_entries(entries), 12, random.Random(7), min_words=5, max_words=10, coverage=1.0)


def link_keys(alignment) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    return [(link.source, link.target) for link in alignment.links]


# --- sentence splitting ------------------------------------------------------------------------------------


def test_latin_splitter_keeps_abbreviations_and_initials_inside_a_sentence() -> None:
    text = "Yth. Bapak Dr. Budi datang, dll. lalu pulang. Apa kabar? Baik! J. Sutrisno menulis buku."
    assert split_sentences(text, "id") == ["Yth. Bapak Dr. Budi datang, dll. lalu pulang.", "Apa kabar?", "Baik!",
                                           "J. Sutrisno menulis buku."]


def test_abbreviations_are_per_language() -> None:
    text = "Kuwe Pak. Slamet teka."
    assert len(split_sentences(text, "jv-x-banyumas")) == 1  # "Pak." is a Javanese abbreviation
    assert len(split_sentences(text, "id")) == 2


def test_danda_ends_devanagari_and_malayalam_sentences() -> None:
    assert split_sentences("राम घर गया। सीता आई॥ फिर क्या?", "hi") == ["राम घर गया।", "सीता आई॥", "फिर क्या?"]
    assert split_sentences("അവൻ വന്നു। അവൾ പോയി. ഡോ. രാമൻ ഇവിടെ ഉണ്ട്.", "ml") == [
        "അവൻ വന്നു।", "അവൾ പോയി.", "ഡോ. രാമൻ ഇവിടെ ഉണ്ട്."]


def test_nko_exclamation_and_arabic_question_mark_end_sentences() -> None:
    text = "ߒ ߓߊ߯ ߕߊ߯ ߹ ߌ ߞߊ߫ ߘߌ ߦߋ߫؟ ߊ߬ ߞߊ߫ ߢߌ߲߫."
    assert split_sentences(text, "nqo") == ["ߒ ߓߊ߯ ߕߊ߯ ߹", "ߌ ߞߊ߫ ߘߌ ߦߋ߫؟", "ߊ߬ ߞߊ߫ ߢߌ߲߫."]


# --- alignment ---------------------------------------------------------------------------------------------


def test_an_unperturbed_document_is_recovered_exactly_as_accepted_one_to_one_links(pairs, dictionary) -> None:
    source = " ".join(s for s, _ in pairs)
    target = " ".join(t for _, t in pairs)
    alignment = align_documents(source, target, *LANGS, dictionary)
    assert link_keys(alignment) == [((i,), (i,)) for i in range(len(pairs))]
    assert all(link.accepted and 0.3 <= link.score <= 1.0 for link in alignment.links)
    assert [t for _, t, _ in alignment.pairs()] == [t for _, t in pairs]


def test_merges_splits_and_drops_come_back_as_two_one_one_two_and_null_links(pairs, dictionary) -> None:
    (s0, t0), (s1, t1), (s2, t2), (s3, t3), (s4, t4), (s5, t5), (s6, t6), (s7, t7) = pairs[:8]
    half = len(t3.split()) // 2
    t3a, t3b = " ".join(t3.split()[:half]) + ".", " ".join(t3.split()[half:]).capitalize()
    source = [s0, s1, s2, s3, s4, s5, s6, s7]
    # target: t1 and t2 merged into one sentence, t3 split in two, t5 dropped; the source lacks t7's sentence
    target = [t0, t1.rstrip(".") + ", " + t2[0].lower() + t2[1:], t3a, t3b, t4, t6, t7]
    source = source[:7]
    alignment = align_documents(" ".join(source), " ".join(target), *LANGS, dictionary)
    assert len(alignment.target_sentences) == 7 and len(alignment.source_sentences) == 7
    links = {(link.source, link.target): link for link in alignment.links}
    assert links[((1, 2), (1,))].kind == "2-1" and links[((1, 2), (1,))].accepted
    assert links[((3,), (2, 3))].kind == "1-2" and links[((3,), (2, 3))].accepted
    assert links[((5,), ())].reason == "unaligned"
    assert links[((), (6,))].reason == "unaligned"
    assert link_keys(alignment) == [((0,), (0,)), ((1, 2), (1,)), ((3,), (2, 3)), ((4,), (4,)), ((5,), ()),
                                    ((6,), (5,)), ((), (6,))]


def test_anchors_beat_length_alone_on_the_perturbed_set(entries) -> None:
    anchored = evaluate_alignment(entries, documents=3, pairs_per_document=60, seed=3)
    length_only = evaluate_alignment(entries, documents=3, pairs_per_document=60, seed=3, use_anchors=False)
    assert anchored["gold_links"] == length_only["gold_links"] > 150  # the same documents
    assert anchored["f1"] >= 0.95, anchored
    assert anchored["f1"] > length_only["f1"] + 0.1, (anchored["f1"], length_only["f1"])
    assert anchored["by_kind"]["1-0"]["recall"] > length_only["by_kind"]["1-0"]["recall"]


def test_a_free_translation_scores_low_and_is_rejected_with_its_reason(pairs, dictionary, entries) -> None:
    unrelated = sentence_pairs(usable_entries(entries), 1, random.Random(99), min_words=5, max_words=10)[0][1]
    source = [s for s, _ in pairs[:4]]
    target = [pairs[0][1], pairs[1][1], unrelated, pairs[3][1]]
    links = align_sentences(source, target, dictionary, AlignSettings(min_score=0.7))
    assert [(link.source, link.target) for link in links] == [((i,), (i,)) for i in range(4)]
    assert links[2].reason == "low_score" and links[2].score < 0.7
    assert all(link.accepted for i, link in enumerate(links) if i != 2)


def test_the_same_inputs_give_the_same_links_and_scores(entries, dictionary) -> None:
    first = evaluate_alignment(entries, documents=2, pairs_per_document=40, seed=5)
    second = evaluate_alignment(entries, documents=2, pairs_per_document=40, seed=5)
    for metrics in (first, second):
        metrics.pop("seconds_per_1000_sentences")
    assert first == second
    assert evaluate_alignment(entries, documents=2, pairs_per_document=40, seed=6)["gold_links"] != 0


def test_alignment_metrics_count_exact_links_only() -> None:
    gold = [((0,), (0,)), ((1, 2), (1,)), ((3,), ())]
    predicted = [((0,), (0,)), ((1,), (1,)), ((2,), ()), ((3,), ())]
    metrics = alignment_metrics(gold, predicted)
    assert (metrics["precision"], metrics["recall"]) == (0.5, round(2 / 3, 4))
    assert metrics["f1"] == round(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 4)
    assert metrics["by_kind"]["2-1"] == {"links": 1, "recall": 0.0}


# --- bad input ---------------------------------------------------------------------------------------------


def test_two_empty_documents_are_a_user_error() -> None:
    with pytest.raises(UserError, match="story.txt: both documents are empty"):
        align_documents(" \n\n ", "", *LANGS, where="story.txt")


def test_a_document_without_its_translation_leaves_every_sentence_unaligned(pairs, dictionary) -> None:
    alignment = align_documents(" ".join(s for s, _ in pairs[:3]), "", *LANGS, dictionary)
    assert [(link.source, link.target, link.reason) for link in alignment.links] == [
        ((0,), (), "unaligned"), ((1,), (), "unaligned"), ((2,), (), "unaligned")]
    assert alignment.pairs() == []


def test_a_document_paired_with_itself_is_refused_as_one_language(pairs, dictionary) -> None:
    text = " ".join(s for s, _ in pairs)
    with pytest.raises(UserError, match="story.txt: .* one language"):
        align_documents(text, text, *LANGS, dictionary, where="story.txt")


def test_a_dictionary_with_wrong_field_names_names_the_file_and_the_fix(tmp_path) -> None:
    path = tmp_path / "dict.json"
    path.write_text(json.dumps({"entries": [{"ngapak": "abot", "indonesia": "berat"}]}), encoding="utf-8")
    assert load_dictionary(path, "entries", "ngapak", "indonesia").size == 1
    with pytest.raises(UserError, match=r"dict.json: record 0 has no text fields 'headword'.*columns.headword"):
        load_dictionary(path, "entries", "headword", "indonesia")
    with pytest.raises(UserError, match="dict.json: no list of records under key 'rows'"):
        load_dictionary(path, "rows", "ngapak", "indonesia")


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(UserError, match="min_score must lie in"):
        AlignSettings(min_score=1.5)
