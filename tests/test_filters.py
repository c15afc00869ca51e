"""The clean stage: each filter, its order, personal data scrubbing, conservation, determinism."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langfoundry.clean import filters
from langfoundry.clean.driver import clean_batch, clean_batches, clean_metrics
from langfoundry.clean.filters import FILTER_NAMES
from langfoundry.clean.measures import _general_measure, _general_words, measure_text, words_of
from langfoundry.clean.pii import scrub_pii
from langfoundry.core.config import CleanParams
from langfoundry.core.errors import UserError
from langfoundry.core.records import REJECT_COLUMNS, make_record, records_table
from langfoundry.core.storage import write_parquet

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"jv-x-banyumas": "Latn", "id": "Latn", "jv": "Latn", "ml": "Mlym", "nqo": "Nkoo"}
PARAMS = CleanParams()


def record(text: str, pivot: str | None = "arti", kind: str = "dictionary", lang: str = "jv-x-banyumas",
           pivot_lang: str | None = "id", line: int = 1, meta: dict | None = None) -> dict:
    return make_record(source="test", kind=kind, lang=lang, text=text, pivot_lang=pivot_lang if pivot is not None else None,
                       pivot_text=pivot, origin=f"data/raw/test.csv:{line}", meta=meta)


def verdict(row: dict, params: CleanParams = PARAMS) -> tuple[str | None, str | None]:
    """(reason, detail) of the one row, (None, None) when it is kept."""
    kept, rejects, _ = clean_batch(records_table([row]), params, SCRIPTS)
    if kept.num_rows:
        return None, None
    return rejects.column("reason")[0].as_py(), rejects.column("detail")[0].as_py()


# --- each filter: a case it rejects and a close case it keeps ----------------------------------------


def test_empty() -> None:
    assert verdict(record(" \u200b ", "dingin"))[0] == "empty"
    assert verdict(record("adem", "\u00a0"))[0] == "empty"
    assert verdict(record("Aku mangan.", None, kind="parallel"))[0] == "empty"  # a pair needs its pivot side
    assert verdict(record("Aku mangan sega.", None, kind="monolingual"))[0] is None
    assert verdict(record("adem", "sejuk"))[0] is None


def test_length_bounds_on_each_side() -> None:
    params = CleanParams(min_chars=3, max_chars=20)
    assert verdict(record("ab", "sejuk"), params) == ("length", "text has 2 characters (min 3)")
    assert verdict(record("adem", "x" * 21), params) == ("length", "pivot_text has 21 characters (max 20)")
    assert verdict(record("abc", "x" * 20), params)[0] is None


def test_length_ratio_only_for_listed_kinds() -> None:
    long_pivot = "saya pergi ke pasar pagi ini juga"  # 7 words against 2
    reason, detail = verdict(record("Aku lunga", long_pivot, kind="parallel"))
    assert (reason, detail) == ("length_ratio", "text has 2 words, pivot_text 7: ratio 3.50 (max 3.0)")
    assert verdict(record("Aku lunga", "saya pergi ke pasar pagi ini", kind="parallel"))[0] is None  # 3.0 is allowed
    assert verdict(record("Aku lunga", long_pivot, kind="dictionary"))[0] is None  # not a listed kind
    chars = CleanParams(length_ratio_unit="chars", max_length_ratio=2.0)
    assert verdict(record("ab cd ef", "abcdefghijklmnopq", kind="parallel"), chars)[0] == "length_ratio"


def test_script_ratio_uses_each_sides_language_script() -> None:
    malayalam = "അവൻ വീട്ടിൽ പോയി"
    reason, detail = verdict(record(malayalam, "dia pulang", lang="jv-x-banyumas"))
    assert reason == "script_ratio" and detail.startswith("text: 0.00 of its letters are in Latn")
    assert verdict(record(malayalam, "dia pulang ke rumah", lang="ml", kind="parallel"))[0] is None
    assert verdict(record("adem", malayalam, lang="jv-x-banyumas"))[0] == "script_ratio"  # pivot is id: Latn


def test_script_ratio_rejects_text_without_letters() -> None:
    assert verdict(record("12345 !!!", "angka")) == ("script_ratio", "text has no letters")


def test_script_ratio_threshold_is_inclusive() -> None:
    mixed = "abcdefg" + "αβγ"  # 7 of 10 letters Latin
    assert verdict(record(mixed, "arti"), CleanParams(min_script_ratio=0.7))[0] is None
    assert verdict(record(mixed, "arti"), CleanParams(min_script_ratio=0.71))[0] == "script_ratio"


def test_letter_ratio_catches_digit_lines_the_script_check_passes() -> None:
    digits = "No 123 456.789 / 12 -- 9"  # its few letters are all Latin
    reason, detail = verdict(record("Aku mangan sega", digits, kind="parallel"))
    assert reason == "letter_ratio" and detail.startswith("pivot_text: letters are")
    assert verdict(record("Aku tuku sega", "Saya beli nasi Rp 15.000", kind="parallel"))[0] is None


def test_letter_ratio_counts_combining_marks_with_letters() -> None:
    nko = "\u07d3\u07eb\u07ca\u07f2 \u07db\u07ec"  # marks after most letters
    assert verdict(record(nko, "arti", lang="nqo"))[0] is None


def test_repetition() -> None:
    reason, detail = verdict(record("Ha ha, ha ha! lucu", "lucu sekali", kind="monolingual"))
    assert reason == "repetition" and "'ha' 4 times" in detail
    assert verdict(record("ha ha ha lucu", "lucu", kind="monolingual"))[0] is None  # 3 is allowed
    assert verdict(record("kupu-kupu", "kupu-kupu"))[0] is None
    assert verdict(record("wong iku wong apik lan wong pinter", "orang", kind="monolingual"))[0] is None


def test_repetition_in_malayalam_uses_whole_words() -> None:
    word = "വീട്ടിൽ"
    assert verdict(record(" ".join([word] * 4), None, kind="monolingual", lang="ml"))[0] == "repetition"
    assert verdict(record(" ".join([word, "വീട്", word, "വീട്"]), None, kind="monolingual", lang="ml"))[0] is None


def test_char_whitelist_names_the_characters() -> None:
    params = CleanParams(char_whitelist={"jv-x-banyumas": "abdeghijklmnoprstuwyé"})
    reason, detail = verdict(record("adhem", "sejuk"), params)
    assert reason is None
    reason, detail = verdict(record("adhem zaman", "sejuk"), params)
    assert reason == "char_whitelist" and "'z' (U+007A)" in detail
    assert verdict(record("adhem", "sejuk zaman"), params)[0] is None  # id has no whitelist


# --- the registry: each filter rejects its own rows, and the first one a row fails names it -----------

REGISTRY_PARAMS = CleanParams(min_chars=3, char_whitelist={"jv": "abdeghijklmnoprstuwyé"})
FAILS_ONLY = {  # filter -> a row that fails it and no other filter (empty: no filter before it)
    "empty": record(" \u200b ", "dingin"),
    "length": record("ab", "sejuk"),
    "length_ratio": record("Aku lunga", "saya pergi ke pasar pagi ini juga", kind="parallel"),
    "script_ratio": record("അവൻ വീട്ടിൽ പോയി", "dia pulang"),
    "letter_ratio": record("Aku mangan sega", "No 123 456.789 / 12 -- 9", kind="parallel"),
    "repetition": record("Ha ha, ha ha! lucu", "lucu sekali", kind="monolingual"),
    "char_whitelist": record("adhem zaman", "sejuk", lang="jv"),
}


def registry_without(monkeypatch, name: str) -> None:
    monkeypatch.setattr(filters, "FILTERS", tuple(rule for rule in filters.FILTERS if rule.name != name))


def test_every_registered_filter_has_a_row_that_fails_it() -> None:
    assert set(FAILS_ONLY) == set(FILTER_NAMES)


@pytest.mark.parametrize("name", FAILS_ONLY)
def test_each_filter_rejects_its_row_under_its_own_name(name: str, monkeypatch) -> None:
    assert verdict(FAILS_ONLY[name], REGISTRY_PARAMS)[0] == name
    assert verdict(record("adhem", "sejuk", lang="jv"), REGISTRY_PARAMS)[0] is None
    registry_without(monkeypatch, name)
    if name == "empty":  # an empty side also has too few characters
        assert verdict(FAILS_ONLY[name], REGISTRY_PARAMS)[0] == "length"
    else:
        assert verdict(FAILS_ONLY[name], REGISTRY_PARAMS)[0] is None


def test_first_failing_filter_in_registry_order_wins(monkeypatch) -> None:
    # fails length_ratio, script_ratio and letter_ratio (pivot) and repetition
    row = record("ha ha ha ha ha ha ha ha ha ha", "123", kind="parallel")
    assert verdict(row)[0] == "length_ratio"
    registry_without(monkeypatch, "length_ratio")
    assert verdict(row)[0] == "script_ratio"
    monkeypatch.setattr(filters, "FILTERS", tuple(reversed(filters.FILTERS)))
    assert verdict(row)[0] == "repetition"


# --- personal data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected, kinds", [
    ("tulis menyang budi.santoso@example.co.id ya", "tulis menyang <EMAIL> ya", {"email": 1}),
    ("telpon +62 812-3456-7890 saiki", "telpon <PHONE> saiki", {"phone": 1}),
    ("nomer 0812 3456 7890.", "nomer <PHONE>.", {"phone": 1}),
    ("kantor (021) 555 1234", "kantor <PHONE>", {"phone": 1}),
    ("NIK 3302011203850004 ilang", "NIK <ID_NUMBER> ilang", {"id_number": 1}),
    ("a@b.com lan 081234567890", "<EMAIL> lan <PHONE>", {"email": 1, "phone": 1}),
])
def test_scrub_pii_replaces(text: str, expected: str, kinds: dict) -> None:
    scrubbed, found = scrub_pii(text)
    assert scrubbed == expected
    assert dict(found) == kinds


@pytest.mark.parametrize("text", [
    "tahun 2024", "3 kg beras", "Rp 15.000", "jam 08.30", "tanggal 17-08-1945", "0,5 liter", "nomer 12",
    "1.500.000 jiwa", "kode 0812", "448.027 23439 29838", "nilai 0,012 3456 7890", "12 0812345",
])
def test_scrub_pii_leaves_ordinary_numbers(text: str) -> None:
    assert scrub_pii(text) == (text, None)


def test_pii_is_counted_per_type_and_language_and_not_a_reject() -> None:
    rows = [record("Hubungi 0812 3456 7890", "Hubungi <PHONE>", kind="parallel", line=1),
            record("Emailku a@b.id", "Email saya a@b.id", kind="parallel", line=2)]
    kept, rejects, counts = clean_batch(records_table(rows), PARAMS, SCRIPTS)
    assert kept.num_rows == 2 and rejects.num_rows == 0
    assert kept.column("text").to_pylist() == ["Hubungi <PHONE>", "Emailku <EMAIL>"]
    pii = clean_metrics(counts)["pii"]
    assert pii["phone"] == {"total": 1, "jv-x-banyumas": 1}
    assert pii["email"] == {"total": 2, "jv-x-banyumas": 2}  # both sides count toward the row's language
    assert pii["id_number"] == {"total": 0}


def test_placeholders_do_not_count_against_the_script() -> None:
    malayalam = "ഇമെയിൽ a@b.id"  # Latin only inside the address
    assert verdict(record(malayalam, None, kind="monolingual", lang="ml"))[0] is None


def test_pii_inside_meta_is_scrubbed() -> None:
    meta = {"messages": [{"role": "user", "content": "nomerku 0812 3456 7890"}]}
    kept, _, counts = clean_batch(records_table([record("nomerku", None, kind="conversation", meta=meta)]), PARAMS, SCRIPTS)
    assert json.loads(kept.column("meta")[0].as_py())["messages"][0]["content"] == "nomerku <PHONE>"
    assert counts[("pii", "phone", "jv-x-banyumas")] == 1


# --- the batch as a whole ---------------------------------------------------------------------------------


def sample_rows() -> list[dict]:
    return [
        record("adem", "sejuk", line=1),
        record("Adem\u00a0", "sejuk ", line=2),
        record("", "kosong", line=3),
        record("Aku lunga", "saya pergi ke pasar pagi ini", kind="parallel", line=4),
        record("12345", "angka", line=5),
        record("ha ha ha ha ha", "tertawa", line=6),
        record("cafe\u0301 \u200bku", "kafe saya", line=7),
        record("അവൻ", "dia", lang="ml", line=8),
        record("wong", "orang", lang="jv", line=9),
    ]


def test_conservation_and_reject_records() -> None:
    rows = sample_rows()
    kept, rejects, counts = clean_batch(records_table(rows), PARAMS, SCRIPTS)
    assert kept.num_rows + rejects.num_rows == len(rows)
    assert sorted(kept.column("id").to_pylist() + rejects.column("id").to_pylist()) == sorted(r["id"] for r in rows)
    assert rejects.column_names == REJECT_COLUMNS
    assert set(rejects.column("stage").to_pylist()) == {"clean"}
    by_id = {r["id"]: r for r in rows}
    for reject in rejects.to_pylist():
        assert json.loads(reject["raw"]) == by_id[reject["id"]]  # the record as it came in
        assert reject["lang"] == by_id[reject["id"]]["lang"] and reject["origin"] == by_id[reject["id"]]["origin"]
    metrics = clean_metrics(counts)
    assert metrics["rows"] == {"in": 9, "kept": kept.num_rows, "rejected": rejects.num_rows}
    assert sum(metrics["dropped"][name]["total"] for name in FILTER_NAMES) == rejects.num_rows
    assert metrics["dropped"]["script_ratio"] == {"total": 1, "jv-x-banyumas": 1}
    assert metrics["lang"]["ml"] == {"in": 1, "kept": 1}


def test_kept_rows_are_normalised_and_keep_their_ids() -> None:
    rows = sample_rows()
    kept, _, _ = clean_batch(records_table(rows), PARAMS, SCRIPTS)
    texts = dict(zip(kept.column("id").to_pylist(), kept.column("text").to_pylist()))
    assert texts[rows[1]["id"]] == "Adem"
    assert texts[rows[6]["id"]] == "café ku"
    assert kept.schema.names[:9] == list(rows[0])


def test_unknown_language_is_one_clear_error() -> None:
    with pytest.raises(UserError, match="'xx'.*languages.csv"):
        clean_batch(records_table([record("adem", "sejuk", lang="xx")]), PARAMS, SCRIPTS)


def test_batches_give_the_same_result_as_one_table_and_twice_the_same_bytes(tmp_path: Path) -> None:
    table = records_table(sample_rows() * 3)
    outputs = []
    for attempt, size in enumerate((4, 100, 4)):
        result = clean_batches(table.to_batches(max_chunksize=size), PARAMS, SCRIPTS)
        path = tmp_path / f"clean{attempt}.parquet"
        write_parquet(result.kept_table(table.schema), path, sort_by=("id", "origin"))
        write_parquet(result.rejects_table(), tmp_path / f"rejects{attempt}.parquet", sort_by=("id", "origin"))
        outputs.append((path.read_bytes(), (tmp_path / f"rejects{attempt}.parquet").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]


# --- fast paths agree with the general ones ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFF, exclude_characters="<\r\t\x0b\x0c"), max_size=40),
       st.sampled_from(["Latn", "Mlym", None]))
def test_latin1_measure_matches_the_general_measure(text: str, script: str | None) -> None:
    text = " ".join(text.split(" "))
    assert measure_text(text, script) == _general_measure(text, script)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=40))
def test_latin1_words_match_the_general_words(text: str) -> None:
    assert [w.decode("latin-1") if isinstance(w, bytes) else w for w in words_of(text)] == _general_words(text)


# --- the stage script ---------------------------------------------------------------------------------------


def stage_dir(tmp_path: Path) -> Path:
    (tmp_path / "data/inventory").mkdir(parents=True)
    shutil.copy(REPO / "data/inventory/languages.csv", tmp_path / "data/inventory/languages.csv")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")  # the stage's quality gate reads its suite
    return tmp_path


def test_stage_writes_outputs_and_reports_missing_input(tmp_path: Path) -> None:
    work = stage_dir(tmp_path)
    missing = subprocess.run([sys.executable, str(REPO / "stages/clean.py")], cwd=work, capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("error: data/interim/ingested.parquet: not found; "
                                      "run the ingest stage first (dvc repro ingest)")
    write_parquet(records_table(sample_rows()), work / "data/interim/ingested.parquet")
    done = subprocess.run([sys.executable, str(REPO / "stages/clean.py")], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((work / "metrics/clean.json").read_text())
    kept = pq.read_table(work / "data/interim/clean.parquet").num_rows
    rejected = pq.read_table(work / "data/interim/clean_rejects.parquet").num_rows
    assert metrics["rows.in"] == 9 == kept + rejected == metrics["rows.kept"] + metrics["rows.rejected"]
    assert metrics["dropped.script_ratio.jv-x-banyumas"] == 1
