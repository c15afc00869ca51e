"""The whole-batch paths give the per-text answers: plain Latin-1 rows, their measures, the repetition
screens (never miss a row the per-text check rejects), dedup keys, and lines read in blocks."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langfoundry.clean import columnar
from langfoundry.clean.dedup import content_keys
from langfoundry.clean.measures import (
    _LATIN1_WORD_TABLE,
    MAX_REPEAT_CHARS,
    _latin1_measures,
    measure_text,
    repeated_run,
    repeated_substring,
)
from langfoundry.clean.pii import scrub_pii
from langfoundry.core.normalize import comparison_key, normalize_text
from langfoundry.core.records import make_record, records_table
from langfoundry.data.readers import encoding

LATIN1_SAMPLE = "ab cdeé Ààß µª x.,;'!?-<@12 3\u00a0\u00ad\x7f\t"
plain_texts = st.text(alphabet="abcé Àe.,'!-1", max_size=40).map(lambda text: " ".join(text.split()))
mixed_texts = st.text(alphabet=LATIN1_SAMPLE + "ന\u200b", max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(mixed_texts, min_size=1, max_size=8), st.booleans())
def test_plain_rows_need_no_normalising_or_scrubbing(texts: list[str], scrub: bool) -> None:
    plain = columnar.plain_rows(pa.array(texts), scrub)
    for text, is_plain in zip(texts, plain):
        if is_plain:
            assert normalize_text(text) == text and "<" not in text
            if scrub:
                assert scrub_pii(text) == (text, None)
    spaced = " ".join("".join(char for char in text if char.isalpha() and char <= "\xff").split()) or "a"
    assert columnar.plain_rows(pa.array([spaced.lower()]), scrub)[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(plain_texts, min_size=1, max_size=8), st.sampled_from(["Latn", "Mlym", None]))
def test_latin1_measures_equal_measure_text(texts: list[str], script: str | None) -> None:
    counts = _latin1_measures(columnar.Latin1Texts(pa.array(texts)), [script] * len(texts))
    expected = [measure_text(text, script) if text else (0,) * 6 for text in texts]
    assert counts.tolist() == [list(row) for row in expected]


words = st.lists(st.sampled_from(["ka", "Ka", "ka,", "ba", "é", "kaé", "ß", "1", "-"]), max_size=14)


@settings(max_examples=300, deadline=None)
@given(st.lists(words.map(" ".join), min_size=1, max_size=6), st.integers(1, 4))
def test_word_run_screen_flags_every_repeated_run(texts: list[str], max_repeats: int) -> None:
    texts = [" ".join(text.split()) for text in texts]
    flagged = columnar.word_run_candidates(columnar.Latin1Texts(pa.array(texts)), _LATIN1_WORD_TABLE, max_repeats)
    for text, flag in zip(texts, flagged):
        if repeated_run(text, max_repeats):
            assert flag, text


OPUSFILTER_PATTERN = r"(\S.{2,100}?)(?: *\1){%d,}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="ab c.", max_size=40), st.integers(1, 3))
def test_repeated_substring_finds_what_the_regex_finds(text: str, max_repeats: int) -> None:
    text = " ".join(text.split())
    match = re.search(OPUSFILTER_PATTERN % max_repeats, text)
    found = repeated_substring(text, max_repeats)
    assert (found is None) == (match is None), text
    if found:
        assert found[0] == match.group(1) and found[1] > max_repeats


def test_repeated_substring_examples() -> None:
    assert repeated_substring("iku et et et wis", 2) == ("et ", 3)
    assert repeated_substring("iku et et et.", 2) is None  # the last copy is "et.", not "et "
    assert repeated_substring("hahaha ha", 2) is None  # "ha" is shorter than three characters
    assert repeated_substring("a b a ba b", 2) == ("a b", 3)  # a space between some copies, none between others


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab c", max_size=30).map(lambda text: " ".join(text.split())), min_size=1, max_size=6),
       st.integers(1, 3))
def test_substring_screen_flags_every_repeated_substring(texts: list[str], max_repeats: int) -> None:
    flagged = columnar.substring_run_candidates(columnar.Latin1Texts(pa.array(texts)), max_repeats, MAX_REPEAT_CHARS)
    for text, flag in zip(texts, flagged):
        if repeated_substring(text, max_repeats):
            assert flag, text


def test_substring_screen_on_long_periods() -> None:
    unit = "sakabehing wong ngapak "  # 23 characters, 21 without spaces: the anchored squares find it
    texts = ["wiwitan " + unit * 3 + "pungkasan", "wiwitan " + unit * 2 + "pungkasan", "x " + unit * 4]
    flagged = columnar.substring_run_candidates(columnar.Latin1Texts(pa.array(texts)), 2, MAX_REPEAT_CHARS)
    assert [bool(repeated_substring(text, 2)) for text in texts] == [True, False, True]
    assert flagged.tolist()[0] and flagged.tolist()[2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(mixed_texts, st.one_of(st.none(), mixed_texts)), min_size=1, max_size=8))
def test_dedup_content_keys_use_comparison_key(pairs: list[tuple[str, str | None]]) -> None:
    rows = [make_record(source="s", kind="parallel", lang="jv", text=text, pivot_lang="id" if pivot is not None else None,
                        pivot_text=pivot, origin=f"f:{line}") for line, (text, pivot) in enumerate(pairs)]
    assert content_keys(records_table(rows)) == [comparison_key(text) + "\x1f" + comparison_key(pivot or "")
                                                 for text, pivot in pairs]


def test_hex_ids_sort_as_numbers() -> None:
    ids = ["00000000000000ff", "ffffffffffffffff", "0123456789abcdef", "0000000000000000"]
    numbers = columnar.hex_numbers(pa.array(ids))
    assert numbers.tolist() == [int(value, 16) for value in ids]
    assert columnar.hex_numbers(pa.array(["xyz"])) is None


# --- lines in blocks --------------------------------------------------------------------------------------


def reference_lines(path: Path, codec: str, max_chars: int) -> list[tuple]:
    """Line by line with readline, the way lines were read before blocks."""
    out = []
    with path.open("rb") as binary:
        stream = io.TextIOWrapper(binary, encoding=codec, errors=encoding._ERROR_HANDLER, newline=None)
        number = 0
        while line := stream.readline(max_chars + 1):
            number += 1
            if len(line) > max_chars and not line.endswith("\n"):
                length, piece = len(line), line
                while not piece.endswith("\n") and (piece := stream.readline(max_chars)):
                    length += len(piece)
                length -= piece.endswith("\n")
                out.append((number, None, "line_too_long", length,
                            line[:encoding.RAW_PREFIX_CHARS].replace(encoding._INVALID_MARK, "")))
                continue
            line = line.removesuffix("\n")
            if number == 1:
                line = line.removeprefix("\ufeff")
            out.append((number, None, "invalid", None, line.replace(encoding._INVALID_MARK, ""))
                       if encoding._INVALID_MARK in line else (number, line, None, None, line))
    return out


def as_tuple(line: encoding.Line) -> tuple:
    length = int(re.search(r"has ([0-9,]+) characters", line.detail).group(1).replace(",", "")) \
        if line.reason == "line_too_long" else None
    reason = line.reason if line.reason in (None, "line_too_long") else "invalid"
    return line.number, line.text, reason, length, line.raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=60).map(lambda data: data.replace(b"\x00", b"a")), st.integers(1, 9), st.integers(1, 6))
def test_lines_in_blocks_equal_lines_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes,
                                                max_chars: int, block: int) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"\xef\xbb\xbf" + data if data[:1] == b"x" else data.replace(b"y", b"\r").replace(b"z", b"\r\n"))
    monkeypatch.setattr(encoding, "READ_BLOCK_CHARS", block)
    assert [as_tuple(line) for line in encoding.iter_lines(path, "utf-8", max_chars)] == \
        reference_lines(path, "utf-8", max_chars)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=60).map(lambda data: data.replace(b"\x00", b"a")), st.integers(1, 12), st.integers(1, 6))
def test_joined_blocks_hold_the_lines_of_line_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes,
                                                     max_chars: int, block: int) -> None:
    """A block that comes joined (one str) splits into the very lines iter_line_blocks gives, and the
    counts number them as it does; undecodable, over-long and BOM lines come as iter_line_blocks'."""
    path = tmp_path / "lines.txt"
    path.write_bytes(b"\xef\xbb\xbf" + data if data[:1] == b"x" else data.replace(b"y", b"\r").replace(b"z", b"\r\n"))
    monkeypatch.setattr(encoding, "READ_BLOCK_CHARS", block)
    joined, counted = [], 0
    for count, lines in encoding.iter_joined_blocks(path, "utf-8", max_chars):
        lines = lines.split("\n") if isinstance(lines, str) else lines
        assert count == len(lines)
        joined += lines
        counted += count
    one_by_one = [line for lines in encoding.iter_line_blocks(path, "utf-8", max_chars) for line in lines]
    assert joined == one_by_one and counted == len(one_by_one)


@pytest.mark.parametrize("block", [3, 17, 1 << 20])
def test_aligned_rows_do_not_depend_on_block_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    from langfoundry.core.config import Source
    from langfoundry.core.errors import UserError
    from langfoundry.data.readers.text import read_aligned

    source = Source(id="s", kind="parallel", lang="jv", pivot_lang="id", path="a.txt", pivot_path="b.txt")
    (tmp_path / "a.txt").write_bytes(b"siji\nloro \xff\n\ntelu papat\r\nlima\n")
    (tmp_path / "b.txt").write_bytes(b"satu\ndua\ntiga\nempat lima\nenam\n")
    monkeypatch.setattr(encoding, "READ_BLOCK_CHARS", block)
    items = list(read_aligned(tmp_path / "a.txt", "a.txt", tmp_path / "b.txt", "b.txt", source))
    rows = [(item.origin, getattr(item, "fields", None), getattr(item, "reason", None)) for item in items[1:]]
    assert rows == [("a.txt:1", {"text": "siji", "pivot_text": "satu"}, None),
                    ("a.txt:2", None, "invalid_utf8"),
                    ("a.txt:3", {"text": "", "pivot_text": "tiga"}, None),
                    ("a.txt:4", {"text": "telu papat", "pivot_text": "empat lima"}, None),
                    ("a.txt:5", {"text": "lima", "pivot_text": "enam"}, None)]
    (tmp_path / "b.txt").write_bytes(b"satu\ndua\n")
    with pytest.raises(UserError, match="a.txt has 5 lines but b.txt has 2"):
        list(read_aligned(tmp_path / "a.txt", "a.txt", tmp_path / "b.txt", "b.txt", source))
