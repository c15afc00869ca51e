"""Exact and near-duplicate removal: keys, marks, thresholds, keep-first order, short words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from langfoundry.clean.dedup import dedup_metrics, dedup_table, minhash_signatures, shingle_hashes
from langfoundry.clean.dedup.decision import RowKeys, find_duplicates
from langfoundry.core.config import DedupParams, NearDedupParams
from langfoundry.core.normalize import comparison_key
from langfoundry.core.records import REJECT_COLUMNS, make_record, records_table
from langfoundry.core.storage import write_parquet

PARAMS = DedupParams()
SENTENCE = ("Wong Banyumas kuwe nek ngomong ora nganggo basa krama, ananging nganggo basa ngapak "
            "sing blakasuta lan cablaka marang sapa bae")
GLOSS = ("Orang Banyumas itu kalau berbicara tidak memakai bahasa halus, tetapi memakai bahasa ngapak "
         "yang terus terang dan apa adanya kepada siapa saja")


def record(text: str, pivot: str | None = "arti", *, kind: str = "dictionary", lang: str = "jv-x-banyumas",
           pivot_lang: str | None = "id", source: str = "test", line: int = 1, meta: dict | None = None) -> dict:
    return make_record(source=source, kind=kind, lang=lang, text=text, pivot_lang=pivot_lang if pivot else None,
                       pivot_text=pivot, origin=f"data/raw/{source}.csv:{line}", meta=meta)


def run(rows: list[dict], params: DedupParams = PARAMS):
    result = dedup_table(records_table(rows), params)
    kept = set(result.kept.column("origin").to_pylist())
    rejects = {row["origin"]: row for row in result.rejects.to_pylist()}
    return kept, rejects, result


def shingles(text: str, width: int = 4) -> set[str]:
    return {text[i:i + width] for i in range(len(text) - width + 1)}


def jaccard(left: str, right: str) -> float:
    a, b = shingles(left), shingles(right)
    return len(a & b) / len(a | b)


# --- exact --------------------------------------------------------------------------------------------


def test_exact_duplicates_up_to_case_space_and_punctuation() -> None:
    rows = [record("Adem", "sejuk", line=1), record("  adem ", "Sejuk.", line=2), record("ADEM!", "sejuk", line=3)]
    kept, rejects, _ = run(rows)
    assert kept == {"data/raw/test.csv:1"}
    for origin in ("data/raw/test.csv:2", "data/raw/test.csv:3"):
        assert rejects[origin]["reason"] == "exact_duplicate"
        assert rejects[origin]["detail"] == rows[0]["id"]
        assert rejects[origin]["stage"] == "dedup"
        assert json.loads(rejects[origin]["raw"])["text"] == next(r["text"] for r in rows if r["origin"] == origin)


def test_marks_keep_words_apart() -> None:
    rows = [record("ba", "x", line=1), record("bà", "x", line=2), record("ba\u0323", "x", line=3),
            record("\u07d3\u07eb", "x", lang="nqo", line=4), record("\u07d3\u07ec", "x", lang="nqo", line=5),
            record("ക\u0d4dക", "x", lang="ml", line=6), record("കക", "x", lang="ml", line=7)]
    kept, rejects, _ = run(rows)
    assert len(kept) == len(rows) and not rejects


def test_same_word_with_another_gloss_or_language_is_not_a_duplicate() -> None:
    rows = [record("adem", "sejuk", line=1), record("adem", "dingin", line=2),
            record("adem", "sejuk", lang="jv", line=3), record("adem", "sejuk", kind="parallel", line=4)]
    kept, rejects, _ = run(rows)
    assert len(kept) == 4 and not rejects


def test_conversation_rows_compare_their_messages() -> None:
    def chat(answer: str, line: int) -> dict:
        return record("piye kabare", None, kind="conversation", line=line,
                      meta={"messages": [{"role": "user", "content": "Piye kabare?"},
                                         {"role": "assistant", "content": answer}]})
    kept, rejects, _ = run([chat("Apik.", 1), chat("apik", 2), chat("Lagi lara.", 3)])
    assert kept == {"data/raw/test.csv:1", "data/raw/test.csv:3"}
    assert rejects["data/raw/test.csv:2"]["reason"] == "exact_duplicate"


# --- keep-first order -------------------------------------------------------------------------------------


def test_first_row_in_source_order_is_kept_with_numeric_line_order() -> None:
    rows = [record("adem", "sejuk", line=10), record("Adem", "sejuk", line=9), record("ADEM", "sejuk", line=100)]
    kept, rejects, _ = run(rows)
    assert kept == {"data/raw/test.csv:9"}  # 9 < 10 < 100 although "10" < "100" < "9" as text
    assert {reject["detail"] for reject in rejects.values()} == {rows[1]["id"]}


def test_sources_are_visited_in_id_order() -> None:
    kept, _, _ = run([record("adem", "sejuk", source="b-dict"), record("Adem", "sejuk", source="a-dict")])
    assert kept == {"data/raw/a-dict.csv:1"}


def test_input_row_order_does_not_change_the_result(tmp_path: Path) -> None:
    rows = [record("Adem", "sejuk", line=i % 5) for i in range(10)]
    rows += [record(SENTENCE + str(i), GLOSS, kind="parallel", line=i) for i in range(5)]
    outputs = []
    for attempt, ordered in enumerate((rows, rows[::-1], rows)):
        result = dedup_table(records_table(ordered), PARAMS)
        write_parquet(result.kept, tmp_path / f"k{attempt}.parquet", sort_by=("id", "origin"))
        write_parquet(result.rejects, tmp_path / f"r{attempt}.parquet", sort_by=("id", "origin"))
        outputs.append(((tmp_path / f"k{attempt}.parquet").read_bytes(), (tmp_path / f"r{attempt}.parquet").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]


# --- near -------------------------------------------------------------------------------------------------


def test_near_duplicate_above_threshold_is_removed() -> None:
    variant = SENTENCE.replace("marang", "maring")
    assert jaccard(SENTENCE.lower(), variant.lower()) >= 0.9
    rows = [record(SENTENCE, GLOSS, kind="parallel", line=1), record(variant, GLOSS, kind="parallel", line=2)]
    kept, rejects, result = run(rows)
    assert kept == {"data/raw/test.csv:1"}
    assert rejects["data/raw/test.csv:2"]["reason"] == "near_duplicate"
    assert rejects["data/raw/test.csv:2"]["detail"] == rows[0]["id"]
    assert dedup_metrics(result.counts)["rows"] == {"in": 2, "exact_removed": 0, "near_removed": 1, "kept": 1}


def test_under_the_threshold_both_stay_and_the_threshold_decides() -> None:
    variant = SENTENCE.replace("kuwe nek ngomong ora nganggo basa krama", "nek guneman ora nganggo krama")
    variant_gloss = GLOSS.replace("itu kalau berbicara tidak", "kalau bicara tidak")
    similarity = jaccard(f"{comparison_key(SENTENCE)}\x1f{comparison_key(GLOSS)}",
                         f"{comparison_key(variant)}\x1f{comparison_key(variant_gloss)}")
    assert 0.75 < similarity < 0.85
    rows = [record(SENTENCE, GLOSS, kind="parallel", line=1), record(variant, variant_gloss, kind="parallel", line=2)]
    kept, _, _ = run(rows)
    assert len(kept) == 2
    looser = DedupParams(near=NearDedupParams(threshold=0.7))
    kept, rejects, _ = run(rows, looser)
    assert kept == {"data/raw/test.csv:1"} and rejects["data/raw/test.csv:2"]["reason"] == "near_duplicate"


def test_near_dedup_stays_within_one_language() -> None:
    variant = SENTENCE.replace("marang", "maring")
    kept, _, _ = run([record(SENTENCE, GLOSS, kind="parallel", line=1),
                      record(variant, GLOSS, kind="parallel", lang="jv", line=2)])
    assert len(kept) == 2


def test_near_dedup_can_be_turned_off() -> None:
    variant = SENTENCE.replace("marang", "maring")
    rows = [record(SENTENCE, GLOSS, kind="parallel", line=1), record(variant, GLOSS, kind="parallel", line=2)]
    kept, _, _ = run(rows, DedupParams(near=NearDedupParams(enabled=False)))
    assert len(kept) == 2


def test_different_short_dictionary_words_both_survive() -> None:
    rows = [record("adem", "sejuk", line=1), record("adhem", "dingin", line=2),
            record("nanana", "bunyi", line=3), record("nananana", "bunyi", line=4)]
    kept, rejects, _ = run(rows)
    assert len(kept) == 4 and not rejects
    # the shingle sets of the last two are identical: only the length guard keeps them apart
    assert jaccard("nanana\x1fbunyi", "nananana\x1fbunyi") == 1.0
    kept, rejects, _ = run(rows, DedupParams(near=NearDedupParams(min_shingles=1)))
    assert rejects["data/raw/test.csv:4"]["reason"] == "near_duplicate"


def test_counts_add_up_per_language() -> None:
    rows = ([record("adem", "sejuk", line=i) for i in range(1, 4)] + [record("wong", "orang", lang="jv", line=9)]
            + [record(SENTENCE, GLOSS, kind="parallel", line=5), record(SENTENCE + "!", GLOSS, kind="parallel", line=6),
               record(SENTENCE.replace("marang", "maring"), GLOSS, kind="parallel", line=7)])
    _, _, result = run(rows)
    metrics = dedup_metrics(result.counts)
    assert metrics["rows"] == {"in": 7, "exact_removed": 3, "near_removed": 1, "kept": 3}
    assert metrics["lang"]["jv"] == {"in": 1, "exact_removed": 0, "near_removed": 0, "kept": 1}
    assert result.kept.num_rows + result.rejects.num_rows == len(rows)
    assert result.rejects.column_names == REJECT_COLUMNS


def test_empty_table() -> None:
    result = dedup_table(records_table([]), PARAMS)
    assert result.kept.num_rows == 0 and result.rejects.num_rows == 0


# --- MinHash ------------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=6), st.sampled_from([16, 64, 128]))
def test_batched_signatures_equal_datasketch(texts: list[str], num_perm: int) -> None:
    hashes, offsets = shingle_hashes(texts, 4)
    signatures = minhash_signatures(hashes, offsets, num_perm)
    for row in range(len(texts)):
        expected = MinHash(num_perm=num_perm, hashfunc=int)
        expected.update_batch(hashes[offsets[row]:offsets[row + 1]].tolist())
        assert np.array_equal(signatures[row], expected.hashvalues)


def test_shingle_hashes_cover_every_window_of_each_text() -> None:
    texts = ["abcdef", "", "ab", "abcd"]
    _, offsets = shingle_hashes(texts, 4)
    assert np.diff(offsets).tolist() == [3, 0, 1, 1]
    hashes, _ = shingle_hashes(["xxabcdxx", "abcd"], 4)
    assert hashes[2] == hashes[-1]  # the same window hashes alike wherever it is


def test_reject_table_is_typed() -> None:
    result = dedup_table(records_table([record("adem", "sejuk"), record("Adem", "sejuk", line=2)]), PARAMS)
    assert result.rejects.schema.field("detail").type == pa.string()


def test_stage_twice_gives_identical_bytes(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "data/interim").mkdir(parents=True)
    shutil.copy(repo / "params.yaml", tmp_path / "params.yaml")
    rows = [record("Adem", "sejuk", line=i % 7) for i in range(20)]
    rows += [record(SENTENCE, GLOSS, kind="parallel", line=30), record(SENTENCE + " ya", GLOSS, kind="parallel", line=31)]
    write_parquet(records_table(rows), tmp_path / "data/interim/clean.parquet")
    outputs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(repo / "stages/dedup.py")], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outputs.append([(tmp_path / name).read_bytes() for name in
                        ("data/interim/dedup.parquet", "data/interim/dedup_rejects.parquet", "metrics/dedup.json")])
    assert outputs[0] == outputs[1]
    metrics = json.loads((tmp_path / "metrics/dedup.json").read_text())
    assert metrics["rows.in"] == 22 == metrics["rows.kept"] + metrics["rows.exact_removed"] + metrics["rows.near_removed"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 3), st.integers(-1, 3), st.integers(0, 3)),
                max_size=40))
def test_each_digest_keeps_its_first_row_in_keep_order(rows: list[tuple[int, ...]]) -> None:
    """find_duplicates on compact keys against the rule written out: visit rows by (place, number, id),
    ties in input order; the first row with a digest is kept and every later one repeats it."""
    digests = np.array([row[:2] for row in rows], dtype=np.uint64).reshape(-1, 2)
    places, numbers, ids = (np.array([row[index] for row in rows], dtype=dtype)
                            for index, dtype in ((2, np.int64), (3, np.int64), (4, np.uint64)))
    keys = RowKeys(digests, places, numbers, ids, np.zeros(len(rows), dtype=np.int64), [("parallel", "jv", "id")],
                   np.zeros(len(rows), dtype=bool), None)
    duplicate_of, reasons = find_duplicates(keys, PARAMS, lambda wanted: {})
    visit = sorted(range(len(rows)), key=lambda row: (rows[row][2], rows[row][3], rows[row][4], row))
    first: dict[tuple[int, int], int] = {}
    expected = [-1] * len(rows)
    for row in visit:
        keeper = first.setdefault(rows[row][:2], row)
        expected[row] = -1 if keeper == row else keeper
    assert duplicate_of.tolist() == expected
    assert reasons.tolist() == [0 if keeper == -1 else 1 for keeper in expected]
