"""The vocabulary index (data.lookup), its stage and `langfoundry lookup`."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langfoundry.cli.main import main as cli
from langfoundry.core.config import PathsParams, load_params
from langfoundry.core.errors import UserError
from langfoundry.core.records import make_record, records_table
from langfoundry.data.lookup import MAX_PHRASE_WORDS, DictionaryIndex, collect_entries, write_index

REPO = Path(__file__).resolve().parents[1]
JV = "jv-x-banyumas"


def rows() -> list[tuple[dict, str]]:
    def dictionary(word, gloss, line, meta=None):
        return make_record(source="dict", kind="dictionary", lang=JV, text=word, pivot_lang="id", pivot_text=gloss,
                           meta=meta, origin=f"dict.json#{line}")

    def parallel(text, pivot, line):
        return make_record(source="par", kind="parallel", lang=JV, text=text, pivot_lang="id", pivot_text=pivot,
                           origin=f"par.txt:{line}")

    return [
        (dictionary("abot", "berat", 1, {"pos": "adjektiva", "example": "Watune abot."}), "train"),
        (dictionary("Abot", "berat", 2), "train"),  # same entry, other spelling: merged, counted twice
        (dictionary("abot", "sulit", 3), "train"),
        (dictionary("abrit", "merah", 4), "train"),
        (dictionary("mangan", "makan", 5), "train"),
        (dictionary("ceblos", "jatuh masuk", 6), "train"),
        (dictionary("wedang", "minuman panas yang dibuat dari jahe dan gula", 7), "train"),  # long gloss: no reverse entry
        (parallel("Sugeng enjing", "Selamat pagi", 1), "train"),
        (parallel("Inyong arep mangan sega karo iwak ing omah.", "Saya mau makan nasi dengan ikan di rumah.", 2), "train"),
        (dictionary("lawang", "pintu", 8), "val"),  # never in the index: val and test stay unseen
        (dictionary("jeblos", "jatuh ke lubang", 9), "test"),
        (parallel("Matur nuwun", "Terima kasih", 3), "test"),
        (make_record(source="chat", kind="conversation", lang=JV, text="Kepriwe?", origin="chat.jsonl:1",
                     meta={"messages": [{"role": "user", "content": "Kepriwe?"}, {"role": "assistant", "content": "Apik."}]}),
         "train"),
    ]


def write_split(path: Path, order=None) -> Path:
    listed = rows() if order is None else [rows()[i] for i in order]
    table = records_table([record for record, _ in listed])
    table = table.append_column("group", pa.array([record["text"] for record, _ in listed], pa.string()))
    table = table.append_column("split", pa.array([split for _, split in listed], pa.string()))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def index_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lookup")
    path = root / "dictionary.sqlite"
    write_index(collect_entries(write_split(root / "split.parquet")), path)
    return path


def all_entries(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT lang, gloss_lang, headword, gloss, pos, kinds, count FROM entries").fetchall()


def test_index_holds_train_pairs_both_ways_and_nothing_from_val_or_test(index_path):
    entries = all_entries(index_path)
    words = {headword for _, _, headword, _, _, _, _ in entries} | {gloss for _, _, _, gloss, _, _, _ in entries}
    for unseen in ("lawang", "pintu", "jeblos", "jatuh ke lubang", "Matur nuwun", "Terima kasih", "Kepriwe?", "Apik."):
        assert unseen not in words
    assert (JV, "id", "abot", "berat", "adjektiva", "dictionary", 2) in entries
    assert ("id", JV, "berat", "abot", None, "dictionary", 2) in entries  # reverse: the pos belongs to the headword side
    assert (JV, "id", "Sugeng enjing", "Selamat pagi", None, "parallel", 1) in entries
    assert ("id", JV, "Selamat pagi", "Sugeng enjing", None, "parallel", 1) in entries
    assert ("id", JV, "jatuh masuk", "ceblos", None, "dictionary", 1) in entries
    assert not any(len(headword.split()) > MAX_PHRASE_WORDS for _, _, headword, _, _, kinds, _ in entries
                   if kinds == "parallel")  # the long sentence pair gives no entry
    assert not any(lang == "id" and gloss == "wedang" for lang, _, _, gloss, _, _, _ in entries)  # long definition
    assert (JV, "id", "wedang", "minuman panas yang dibuat dari jahe dan gula", None, "dictionary", 1) in entries


def test_same_rows_in_any_order_give_the_same_bytes(index_path, tmp_path):
    shuffled = write_split(tmp_path / "split.parquet", order=[12, 3, 0, 7, 11, 1, 9, 5, 2, 10, 4, 8, 6])
    again = tmp_path / "again.sqlite"
    write_index(collect_entries(shuffled), again)
    assert again.read_bytes() == index_path.read_bytes()
    write_index(collect_entries(shuffled), again)  # and rewriting over an existing file
    assert again.read_bytes() == index_path.read_bytes()


def test_lookup_ranks_exact_then_prefix_then_text(index_path):
    with DictionaryIndex(index_path) as index:
        found = index.lookup("ABOT")
        assert [(e.headword, e.gloss, e.match) for e in found] == [("abot", "berat", "exact"), ("abot", "sulit", "exact")]
        assert found[0].origins == ("dict.json#1", "dict.json#2") and found[0].example == "Watune abot."
        assert [(e.headword, e.match) for e in index.lookup("ab")] == [("abot", "prefix"), ("abot", "prefix"),
                                                                       ("abrit", "prefix")]
        assert [(e.headword, e.match) for e in index.lookup("jatuh")] == [("jatuh masuk", "prefix")]
        assert [(e.headword, e.match) for e in index.lookup("masuk")] == [("jatuh masuk", "text")]
        assert [e.lang for e in index.lookup("mangan", lang="id")] == []
        assert index.lookup("lawang") == [] and index.lookup("...") == []


def test_entries_for_a_text_take_one_sense_per_word_first(index_path):
    with DictionaryIndex(index_path) as index:
        found = index.for_text("Abot, mangane abrit!", JV, "id", limit=3)
        assert [(e.headword, e.gloss, e.match) for e in found] == [
            ("abot", "berat", "exact"), ("mangan", "makan", "stem"), ("abrit", "merah", "exact")]
        assert len(index.for_text("Abot, mangane abrit!", JV, "id", limit=10)) == 4  # then abot's second sense
        assert [e.match for e in index.for_text("jatuh masuk", "id", JV, limit=5)][:1] == ["phrase"]
        assert index.for_text("abot", JV, "en", limit=5) == []  # no entries towards another language


def test_stage_writes_the_index_and_its_metrics(tmp_path):
    spec = importlib.util.spec_from_file_location("stage_dictionary", REPO / "stages" / "dictionary.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    params = load_params(REPO / "params.yaml")
    paths = params.paths.under(tmp_path)
    write_split(paths.split)
    metrics = stage.main(params, paths)
    assert paths.dictionary.is_file()
    saved = json.loads(paths.metric("dictionary").read_text())
    assert saved == metrics and metrics["entries"] == metrics[f"direction.{JV}>id"] + metrics[f"direction.id>{JV}"]
    assert metrics["kind.parallel"] == 2


def test_missing_split_and_missing_index_say_which_stage_to_run(tmp_path):
    with pytest.raises(UserError, match="dvc repro split"):
        collect_entries(tmp_path / "split.parquet")
    with pytest.raises(UserError, match="dvc repro dictionary"):
        DictionaryIndex(tmp_path / "dictionary.sqlite")
    (tmp_path / "bad.sqlite").write_text("not a database")
    with pytest.raises(UserError, match="dvc repro dictionary"):
        DictionaryIndex(tmp_path / "bad.sqlite")


def test_cli_exit_codes_and_output(index_path, tmp_path, capsys):
    assert cli(["lookup", "abot", "--index", str(index_path)]) == 0
    out = capsys.readouterr().out
    assert "abot (adjektiva) → berat" in out and "dict.json#1" in out and f"{JV}>id" in out
    assert cli(["lookup", "berat", "--index", str(index_path), "--json", "--limit", "1"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["headword"], e["gloss"], e["lang"]) for e in listed] == [("berat", "abot", "id")]
    assert cli(["lookup", "Sugeng", "--lang", "id", "--index", str(index_path)]) == 1
    assert capsys.readouterr().out.strip() == "no entry for Sugeng"
    assert cli(["lookup", "abot", "--index", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dvc repro dictionary" in err


def test_default_index_path_comes_from_params():
    assert load_params(REPO / "params.yaml").paths.dictionary == PathsParams().dictionary
