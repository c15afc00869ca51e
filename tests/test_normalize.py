"""Text normalisation: Malayalam chillus, N'Ko mark order, zero-width policy, NFC, whitespace."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langfoundry.core.normalize import (
    ZERO_WIDTH_POLICIES,
    _general_comparison_key,
    comparison_key,
    map_meta_texts,
    meta_texts,
    normalize_text,
)

ZWJ, ZWNJ, ZWSP, BOM, SOFT_HYPHEN, WORD_JOINER = "\u200d", "\u200c", "\u200b", "\ufeff", "\u00ad", "\u2060"
VIRAMA = "\u0d4d"
NKO_HIGH_TONE, NKO_LOW_TONE, NKO_NASAL, NKO_DOUBLE_DOT, NKO_DANTAYALAN = "\u07eb", "\u07ec", "\u07f2", "\u07f3", "\u07fd"
NKO_BA = "\u07d3"


# --- Malayalam ---------------------------------------------------------------------------------


def test_legacy_chillu_becomes_atomic() -> None:
    assert normalize_text("അവന" + VIRAMA + ZWJ) == "അവൻ"


@pytest.mark.parametrize("consonant, chillu", [
    ("\u0d23", "\u0d7a"), ("\u0d28", "\u0d7b"), ("\u0d30", "\u0d7c"),
    ("\u0d32", "\u0d7d"), ("\u0d33", "\u0d7e"), ("\u0d15", "\u0d7f"),
])
def test_every_legacy_chillu(consonant: str, chillu: str) -> None:
    for policy in ZERO_WIDTH_POLICIES:  # even "remove" must convert before dropping the ZWJ
        assert normalize_text("അ" + consonant + VIRAMA + ZWJ, policy) == "അ" + chillu


def test_virama_without_zwj_is_left_alone() -> None:
    conjunct = "ക" + VIRAMA + "ക"  # a conjunct, not a chillu
    assert normalize_text(conjunct) == conjunct


# --- N'Ko --------------------------------------------------------------------------------------


def test_nko_marks_combining_classes_are_what_the_order_assumes() -> None:
    tones = [chr(c) for c in range(0x07EB, 0x07F2)]
    assert {unicodedata.combining(mark) for mark in tones + [NKO_DOUBLE_DOT]} == {230}
    assert unicodedata.combining(NKO_NASAL) == unicodedata.combining(NKO_DANTAYALAN) == 220


def test_nfc_alone_keeps_same_class_marks_in_input_order() -> None:
    # this is why the normaliser has to order them itself
    one, other = NKO_BA + NKO_HIGH_TONE + NKO_DOUBLE_DOT, NKO_BA + NKO_DOUBLE_DOT + NKO_HIGH_TONE
    assert unicodedata.normalize("NFC", one) != unicodedata.normalize("NFC", other)


def test_nko_marks_in_canonical_order() -> None:
    expected = NKO_BA + NKO_NASAL + NKO_DOUBLE_DOT + NKO_HIGH_TONE
    for marks in (NKO_HIGH_TONE + NKO_DOUBLE_DOT + NKO_NASAL, NKO_NASAL + NKO_HIGH_TONE + NKO_DOUBLE_DOT,
                  NKO_DOUBLE_DOT + NKO_NASAL + NKO_HIGH_TONE):
        result = normalize_text(NKO_BA + marks)
        assert result == expected
        assert unicodedata.is_normalized("NFC", result)


def test_nko_tone_marks_sorted_by_code_point_and_distinct_tones_stay_distinct() -> None:
    assert normalize_text(NKO_BA + NKO_LOW_TONE + NKO_HIGH_TONE) == NKO_BA + NKO_HIGH_TONE + NKO_LOW_TONE
    assert normalize_text(NKO_BA + NKO_HIGH_TONE) != normalize_text(NKO_BA + NKO_LOW_TONE)


# --- zero-width characters ------------------------------------------------------------------------


def test_keep_joiners_drops_invisible_characters() -> None:
    text = f"ka{ZWSP}ta {BOM}wo{SOFT_HYPHEN}ng ora{WORD_JOINER}"
    assert normalize_text(text, "keep_joiners") == "kata wong ora"


def test_keep_joiners_keeps_joiners_inside_malayalam_and_drops_them_in_latin() -> None:
    malayalam = "ക" + VIRAMA + ZWNJ + "ക"
    assert normalize_text(malayalam, "keep_joiners") == malayalam
    assert normalize_text(f"a{ZWJ}b c{ZWNJ}d", "keep_joiners") == "ab cd"
    assert normalize_text(f"{ZWJ}ക", "keep_joiners") == "ക"  # nothing to join before it


def test_keep_joiners_keeps_emoji_sequences() -> None:
    family = f"\U0001F468{ZWJ}\U0001F469"
    assert normalize_text(family, "keep_joiners") == family


def test_remove_drops_every_zero_width_character() -> None:
    text = "ക" + VIRAMA + ZWNJ + "ക" + ZWSP + BOM
    assert normalize_text(text, "remove") == "ക" + VIRAMA + "ക"


def test_keep_leaves_zero_width_characters() -> None:
    text = f"a{ZWSP}b{ZWJ}c"
    assert normalize_text(text, "keep") == text


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="zero_width"):
        normalize_text("a", "strip")  # type: ignore[arg-type]


# --- NFC, controls, whitespace ---------------------------------------------------------------------


def test_decomposed_latin_is_composed() -> None:
    assert normalize_text("cafe\u0301") == "café"
    assert normalize_text("e\u0301") == "é"


def test_control_characters_are_removed() -> None:
    assert normalize_text("wo\x00ng\x07 ora\x7f") == "wong ora"


def test_unicode_spaces_collapse_and_strip() -> None:
    assert normalize_text("\u00a0 wong\u2003\u3000ora\t \u202fpiye  ") == "wong ora piye"


def test_single_line_kinds_join_lines() -> None:
    assert normalize_text("wong\r\nora\u2028piye") == "wong ora piye"


def test_multiline_keeps_single_newlines() -> None:
    text = "  first line  \r\n\r\n\n  second\u2029third \n"
    assert normalize_text(text, multiline=True) == "first line\nsecond\nthird"


# --- meta --------------------------------------------------------------------------------------------


def test_meta_text_is_mapped_per_kind() -> None:
    upper = lambda text, multiline: text.upper()  # noqa: E731
    conversation = {"messages": [{"role": "user", "content": "halo"}, {"role": "assistant", "content": "iya"}]}
    assert map_meta_texts(conversation, "conversation", upper)["messages"][1] == {"role": "assistant", "content": "IYA"}
    instruction = {"instruction": "tulis", "input": "aku", "output": "kowe", "source_url": "x"}
    assert map_meta_texts(instruction, "instruction", upper) == {"instruction": "TULIS", "input": "AKU",
                                                                  "output": "KOWE", "source_url": "x"}
    dictionary = {"pos": "adj", "examples": ["hawane adem", {"text": "banyune adem", "translation": "airnya sejuk"}]}
    mapped = map_meta_texts(dictionary, "dictionary", upper)
    assert mapped == {"pos": "adj", "examples": ["HAWANE ADEM", {"text": "BANYUNE ADEM", "translation": "AIRNYA SEJUK"}]}
    assert meta_texts(dictionary, "dictionary") == ["hawane adem", "banyune adem", "airnya sejuk"]
    assert map_meta_texts({"messages": [{"content": "x"}]}, "parallel", upper) == {"messages": [{"content": "x"}]}


# --- comparison key -------------------------------------------------------------------------------------


def test_comparison_key_folds_case_space_and_punctuation_but_keeps_marks() -> None:
    assert comparison_key("  Adem,  ADEM! ") == comparison_key("adem adem") == "adem adem"
    assert comparison_key("ba") != comparison_key("bà")
    assert comparison_key("ba") != comparison_key("ba\u0301")
    assert comparison_key(NKO_BA + NKO_HIGH_TONE) != comparison_key(NKO_BA + NKO_LOW_TONE)
    assert comparison_key("ക" + VIRAMA) != comparison_key("ക")


def test_comparison_key_keeps_glottal_apostrophe() -> None:
    assert comparison_key("ma'") != comparison_key("ma")
    assert comparison_key("ma\u2019") == comparison_key("ma'")


# --- properties ----------------------------------------------------------------------------------------

ALPHABET = st.sampled_from(
    list("aAeé ßµ\t\n\u00a0\u3000.,!'-") + ["e\u0301", "\u0301", "\u0323", ZWJ, ZWNJ, ZWSP, BOM, SOFT_HYPHEN, "\x00", "\r\n"]
    + list("അകനരലള\u0d4d\u0d3e\u0d46") + [chr(c) for c in range(0x07CA, 0x07D0)] + [chr(c) for c in range(0x07EB, 0x07F4)]
    + [NKO_DANTAYALAN, "\U0001F468"]
)
TEXTS = st.lists(ALPHABET, max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from(ZERO_WIDTH_POLICIES), st.booleans())
def test_normalisation_is_idempotent_and_nfc(text: str, policy: str, multiline: bool) -> None:
    once = normalize_text(text, policy, multiline)
    assert normalize_text(once, policy, multiline) == once
    assert unicodedata.is_normalized("NFC", once)
    assert once == once.strip()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=40))
def test_latin1_fast_path_of_comparison_key_matches_the_general_one(text: str) -> None:
    assert comparison_key(text) == _general_comparison_key(text)
