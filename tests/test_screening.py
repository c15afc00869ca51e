"""Screening in the clean stage: blocklists on word boundaries, the toxicity classifier, metrics, bad list files."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI, Request
from hypothesis import given, settings
from hypothesis import strategies as st
from local_server import serving

from langfoundry.clean import columnar
from langfoundry.clean.driver import clean_batch, clean_files, clean_metrics
from langfoundry.clean.filters import filter_batch
from langfoundry.clean.measures import column_side
from langfoundry.clean.screening import BlocklistFilter, Blocklists, load_blocklists
from langfoundry.core.config import CleanParams
from langfoundry.core.errors import UserError
from langfoundry.core.normalize import _LATIN1_KEY_TABLE, comparison_key, normalize_text
from langfoundry.core.records import make_record, records_table
from langfoundry.core.screening_config import ScreeningHttpParams, ScreeningParams
from langfoundry.core.storage import write_parquet

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"jv": "Latn", "id": "Latn", "ml": "Mlym", "th": "Thai"}
PARAMS = CleanParams()


def record(text: str, pivot: str | None = "arti", lang: str = "jv", pivot_lang: str | None = "id", line: int = 1,
           kind: str = "dictionary") -> dict:
    return make_record(source="test", kind=kind, lang=lang, text=text, pivot_lang=pivot_lang if pivot else None,
                       pivot_text=pivot, origin=f"data/raw/test.csv:{line}")


def lists(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "screening"
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def verdicts(rows: list[dict], blocklists: Blocklists, params: CleanParams = PARAMS) -> list[tuple[str | None, str | None]]:
    """(reason, detail) per row, in order; (None, None) for a kept row."""
    kept, rejects, _ = clean_batch(records_table(rows), params, SCRIPTS, blocklists=blocklists)
    by_id = {reject["id"]: (reject["reason"], reject["detail"]) for reject in rejects.to_pylist()}
    return [by_id.get(row["id"], (None, None)) for row in rows]


@pytest.fixture
def blocklists(tmp_path: Path) -> Blocklists:
    folder = lists(tmp_path, {
        "jv.txt": "# coarse words\n\nAsu\nbabi alas\n",
        "id/kasar.txt": "anjing\nCAFÉ\n",
        "id/lain.txt": "anjing\nkeparat\n",  # anjing is in kasar too: the first list (by name) claims it
        "ml.txt": "പട്ടി\n",
        "th.txt": "หมา\n",
    })
    return load_blocklists(folder, SCRIPTS)


def test_terms_match_whole_words_only(blocklists: Blocklists) -> None:
    rows = [record("asu"), record("Asu!"), record("'asu'"), record("asune"), record("basu"), record("asu-asu")]
    reasons = [reason for reason, _ in verdicts(rows, blocklists)]
    assert reasons == ["blocklist", "blocklist", "blocklist", None, None, "blocklist"]


def test_case_and_unicode_forms_match_after_normalisation(blocklists: Blocklists) -> None:
    # the list says CAFÉ (precomposed); the text has a decomposed é in lower case, and capitals
    rows = [record("kopi", "cafe\u0301 itu"), record("kopi", "Café"), record("kopi", "ANJING"), record("kopi", "cafeteria")]
    assert [detail for _, detail in verdicts(rows, blocklists)] == [
        "blocklist id/kasar: 'CAFÉ' in pivot_text", "blocklist id/kasar: 'CAFÉ' in pivot_text",
        "blocklist id/kasar: 'anjing' in pivot_text", None]


def test_multi_word_terms_match_those_words_in_a_row(blocklists: Blocklists) -> None:
    rows = [record("ana babi alas"), record("babi, alas!", kind="dictionary"), record("babi"), record("alas babi"),
            record("babi alasan")]
    assert [reason for reason, _ in verdicts(rows, blocklists)] == ["blocklist", "blocklist", None, None, None]
    assert verdicts([record("ana babi alas")], blocklists)[0][1] == "blocklist jv: 'babi alas' in text"


def test_each_side_is_screened_in_its_own_language(blocklists: Blocklists) -> None:
    rows = [record("anjing", "hewan"),  # an id term in jv text: jv has no such term
            record("kirik", "anjing"),
            record("kirik", "keparat"),
            record("kirik", "asu")]  # a jv term in the id side
    assert verdicts(rows, blocklists) == [(None, None), ("blocklist", "blocklist id/kasar: 'anjing' in pivot_text"),
                                          ("blocklist", "blocklist id/lain: 'keparat' in pivot_text"), (None, None)]


def test_malayalam_terms_stop_at_word_boundaries(blocklists: Blocklists) -> None:
    rows = [record("ഒരു പട്ടി വന്നു", None, lang="ml", kind="monolingual"),
            record("പട്ടികൾ വന്നു", None, lang="ml", kind="monolingual")]  # plural: a longer word
    assert verdicts(rows, blocklists) == [("blocklist", "blocklist ml: 'പട്ടി' in text"), (None, None)]


def test_scripts_without_spaces_match_anywhere(blocklists: Blocklists) -> None:
    params = CleanParams(min_script_ratio=0.0)
    assert verdicts([record("ฉันเห็นหมาตัวหนึ่ง", None, lang="th", kind="monolingual")], blocklists, params) == [
        ("blocklist", "blocklist th: 'หมา' in text")]


def test_quality_filters_come_first(blocklists: Blocklists) -> None:
    assert verdicts([record("asu asu asu asu asu", None, kind="monolingual")], blocklists)[0][0] == "repetition"


def test_rejects_keep_the_row_and_metrics_count_per_list_and_language(blocklists: Blocklists) -> None:
    rows = [record("asu", line=1), record("kirik", "anjing", line=2), record("kirik", "anjing", lang="ml", line=3),
            record("wong", "orang", line=4)]
    rows[2]["text"] = "നായ"
    kept, rejects, counts = clean_batch(records_table(rows), PARAMS, SCRIPTS, blocklists=blocklists)
    assert kept.num_rows == 1 and rejects.num_rows == 3
    by_id = {row["id"]: row for row in rows}
    for reject in rejects.to_pylist():
        assert reject["reason"] == "blocklist" and reject["stage"] == "clean"
        assert json.loads(reject["raw"]) == by_id[reject["id"]]  # the row as it came in
    metrics = clean_metrics(counts, blocklists)
    assert metrics["dropped"]["blocklist"] == {"total": 3, "jv": 2, "ml": 1}
    assert metrics["dropped"]["toxicity"] == {"total": 0}
    assert metrics["screening"] == {
        "id/kasar": {"terms": 2, "rejected": {"total": 2, "jv": 1, "ml": 1}},
        "id/lain": {"terms": 2, "rejected": {"total": 0}},
        "jv": {"terms": 2, "rejected": {"total": 1, "jv": 1}},
        "ml": {"terms": 1, "rejected": {"total": 0}},
        "th": {"terms": 1, "rejected": {"total": 0}},
    }


# --- the batch-wide screen of plain Latin-1 rows never changes a verdict ----------------------------------

LATIN1_TEXT = st.lists(st.sampled_from(list("abAB éÉßµ.,'’!-") + ["ss", "ab ", "  "]), max_size=10).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(LATIN1_TEXT, max_size=30))
def test_key_words_are_the_comparison_key_words(texts: list[str]) -> None:
    texts = [normalize_text(text) for text in texts if "ß" not in text and "µ" not in text and "’" not in text]
    words, text_of = columnar.key_words(columnar.Latin1Texts(pa.array(texts, type=pa.string())), _LATIN1_KEY_TABLE)
    found = [[] for _ in texts]
    for word, row in zip(words.to_pylist(), text_of.tolist()):
        if word:
            found[row].append(word)
    assert found == [comparison_key(text).split() for text in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(LATIN1_TEXT, min_size=1, max_size=30), st.lists(LATIN1_TEXT, min_size=1, max_size=4))
def test_the_screen_rejects_what_the_matcher_finds(tmp_path_factory, texts: list[str], terms: list[str]) -> None:
    terms = [term for term in terms if comparison_key(term).strip(" '")]
    blocklists = load_blocklists(lists(tmp_path_factory.mktemp("l"), {"jv.txt": "\n".join(terms)}), SCRIPTS)
    texts = [normalize_text(text) for text in texts]
    sides = {"text": column_side(pa.array(texts, type=pa.string())),
             "pivot_text": column_side(pa.array([None] * len(texts), type=pa.string()))}
    batch = filter_batch(["monolingual"] * len(texts), ["jv"] * len(texts), [None] * len(texts), sides, SCRIPTS)
    rejected = {row for row, _ in BlocklistFilter(blocklists).check(batch, np.ones(len(texts), dtype=bool))}
    matcher = blocklists.matchers.get("jv")
    assert rejected == {row for row, text in enumerate(texts) if text and matcher and matcher.find(text)}


# --- bad list files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("files, expected", [
    ({"xx.txt": "asu\n"}, "xx.txt: 'xx' is not a language tag of data/inventory/languages.csv; name the list "
                          "after one of its tags: id, jv, ml, th"),
    ({"jv/kasar words.txt": "asu\n"}, "jv/kasar words.txt: not a blocklist; lists are"),
    ({"jv.csv": "asu\n"}, "jv.csv: not a blocklist"),
    ({"jv.txt": b"asu\nbabi\n\xff\xfe alas\n"}, "jv.txt:3: byte 0xFF is not UTF-8; save the file as UTF-8"),
    ({"jv.txt": "asu\n!!!\n"}, "jv.txt:2: '!!!' has no letters or digits once punctuation is dropped"),
])
def test_bad_list_files_are_one_line_naming_the_file(tmp_path: Path, files: dict, expected: str) -> None:
    with pytest.raises(UserError) as err:
        load_blocklists(lists(tmp_path, files), SCRIPTS)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_readme_hidden_files_and_a_missing_folder_are_not_lists(tmp_path: Path) -> None:
    assert load_blocklists(lists(tmp_path, {"README.md": "# lists\n", ".gitkeep": ""}), SCRIPTS).lists == ()
    assert load_blocklists(tmp_path / "absent", SCRIPTS).lists == ()


# --- the classifier -------------------------------------------------------------------------------------


def classifier_app(requests: list[dict]):
    """A stand-in moderation server: a text's score is the share of its words that are 'jahat'."""
    app = FastAPI()
    lock = threading.Lock()

    def score(text: str) -> float:
        words = text.lower().split()
        return sum(word == "jahat" for word in words) / max(len(words), 1)

    @app.post("/v1/moderations")
    async def moderations(request: Request) -> dict:
        body = await request.json()
        with lock:
            requests.append(body)
        return {"results": [{"flagged": False, "category_scores": {"harassment": score(text) / 2, "hate": score(text)}}
                            for text in body["input"]]}

    @app.post("/score")
    async def scores(request: Request) -> dict:
        body = await request.json()
        with lock:
            requests.append(body)
        return {"scores": [score(text) for text in body["texts"]]}

    return app


def classified(url: str, api: str, rows: list[dict], batch_size: int = 2) -> list[tuple[str | None, str | None]]:
    params = CleanParams(screening=ScreeningParams(classifier="http", max_toxicity=0.5, http=ScreeningHttpParams(
        url=url, api=api, model="omni-moderation-latest", batch_size=batch_size)))
    return verdicts(rows, Blocklists(), params)


TOXIC_ROWS = [record("wong apik"), record("wong jahat"),  # exactly 0.5: at the threshold, rejected
              record("jahat jahat tenan"), record("wong", "orang jahat sekali"), record("kirik", "anjing")]


def test_openai_moderation_endpoint_scores_in_batches() -> None:
    requests: list[dict] = []
    with serving(classifier_app(requests)) as base:
        results = classified(f"{base}/v1", "openai", TOXIC_ROWS)
    assert results == [(None, None), ("toxicity", "text scores 0.500 for toxicity (rejected from 0.5)"),
                       ("toxicity", "text scores 0.667 for toxicity (rejected from 0.5)"), (None, None), (None, None)]
    # text: 5 jv texts in batches of 2; pivot: only the 3 rows still open, one language
    assert [len(body["input"]) for body in requests] == [2, 2, 1, 2, 1]
    assert {body["model"] for body in requests} == {"omni-moderation-latest"}


def test_json_endpoint_sends_the_language() -> None:
    requests: list[dict] = []
    with serving(classifier_app(requests)) as base:
        results = classified(f"{base}/score", "json", TOXIC_ROWS, batch_size=64)
    assert [reason for reason, _ in results] == [None, "toxicity", "toxicity", None, None]
    assert [(body["lang"], len(body["texts"])) for body in requests] == [("jv", 5), ("id", 3)]


def test_a_classifier_that_is_down_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UserError) as err:
        classified(f"http://127.0.0.1:{port}/v1", "openai", TOXIC_ROWS)
    message = str(err.value)
    assert message.startswith(f"clean.screening.http: http://127.0.0.1:{port}/v1/moderations: ConnectError")
    assert "classifier: null" in message and "\n" not in message


def test_http_classifier_needs_a_url() -> None:
    with pytest.raises(ValueError, match="clean.screening.http.url is not set"):
        ScreeningParams(classifier="http")


# --- nothing changes without lists; the stage -----------------------------------------------------------


def sample(count: int) -> list[dict]:
    words = ["wong", "apik", "asu", "omah", "kali", "ഒരു", "babi", "alas", "sejuk", "Café"]
    return [record(" ".join(words[(i * 7 + j) % len(words)] for j in range(1 + i % 5)), f"arti {i}", line=i)
            for i in range(count)]


def test_without_lists_the_output_bytes_are_unchanged(tmp_path: Path) -> None:
    write_parquet(records_table(sample(600)), tmp_path / "in.parquet", sort_by=("id", "origin"))
    outputs = []
    for name, blocklists in [("none", None), ("readme", load_blocklists(lists(tmp_path, {"README.md": "x"}), SCRIPTS)),
                             ("unmatched", load_blocklists(lists(tmp_path / "u", {"jv.txt": "zzzz\n"}), SCRIPTS))]:
        clean_files(tmp_path / "in.parquet", tmp_path / f"{name}.parquet", tmp_path / f"{name}_rejects.parquet", PARAMS,
                    SCRIPTS, batch_rows=100, workers=2, blocklists=blocklists)
        outputs.append(((tmp_path / f"{name}.parquet").read_bytes(), (tmp_path / f"{name}_rejects.parquet").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]


def test_the_stage_screens_with_the_lists_and_counts_them(tmp_path: Path) -> None:
    for name in ("data/inventory", "expectations"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "data/inventory", tmp_path / "data/inventory")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    lists(tmp_path / "data", {"jv/kasar.txt": "asu\n"})
    write_parquet(records_table(sample(60)), tmp_path / "data/interim/ingested.parquet")
    done = subprocess.run([sys.executable, str(REPO / "stages/clean.py")], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "metrics/clean.json").read_text())
    rejects = pq.read_table(tmp_path / "data/interim/clean_rejects.parquet").to_pylist()
    screened = [reject for reject in rejects if reject["reason"] == "blocklist"]
    assert screened and all(reject["detail"] == "blocklist jv/kasar: 'asu' in text" for reject in screened)
    assert metrics["screening.jv/kasar.rejected.jv"] == metrics["dropped.blocklist.total"] == len(screened)
    assert metrics["screening.jv/kasar.terms"] == 1

    lists(tmp_path / "data", {"xx.txt": "asu\n"})
    failed = subprocess.run([sys.executable, str(REPO / "stages/clean.py")], cwd=tmp_path, capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: data/screening/xx.txt: 'xx' is not a language tag")
