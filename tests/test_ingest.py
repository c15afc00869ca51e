"""Ingest: kind mappings, rejects, the errors that stop a run, determinism and row conservation."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_run import Ingested, ingest_into

from langfoundry.core.config import load_params, load_sources
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.data.acquire import acquire_sources

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def make_repo(root: Path, monkeypatch, sources: list[dict], params: dict | None = None, files=()) -> Path:
    """A throw-away repository: inventory, sources.yaml, params.yaml and fixture files under data/raw/."""
    (root / "data" / "inventory").mkdir(parents=True, exist_ok=True)
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", root / "data" / "inventory" / "languages.csv")
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, allow_unicode=True), encoding="utf-8")
    (root / "params.yaml").write_text(yaml.safe_dump(params or {}), encoding="utf-8")
    shutil.copytree(REPO / "expectations", root / "expectations", dirs_exist_ok=True)  # the stage's quality gate
    for name in files:
        shutil.copy(FIXTURES / name, root / "data" / "raw" / name)
    monkeypatch.chdir(root)
    return root


def ingest() -> Ingested:
    """Ingest the repository in the working folder as the stage does, its outputs in data/interim."""
    return ingest_into("data/interim", load_sources().sources, load_params().ingest, load_inventory())


def by_origin(table: pa.Table) -> dict[str, dict]:
    return {row["origin"]: row for row in table.to_pylist()}


def dictionary_source(**extra) -> dict:
    return {"id": "kamus", "kind": "dictionary", "lang": "jv-x-banyumas", "pivot_lang": "id",
            "path": "data/raw/dictionary.csv", **extra}


# --- kinds ---------------------------------------------------------------------------------------


def test_dictionary_maps_headword_gloss_pos_and_examples(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source()], files=["dictionary.csv"])
    result = ingest()
    records = by_origin(result.records)
    abab = records["data/raw/dictionary.csv:2"]
    assert (abab["text"], abab["pivot_text"], abab["lang"], abab["pivot_lang"], abab["kind"]) == (
        "abab", "tiupan napas", "jv-x-banyumas", "id", "dictionary")
    assert json.loads(abab["meta"]) == {"pos": "n", "examples": ["Abab e mambu.", "Ambegan nganggo abab."]}
    assert json.loads(records["data/raw/dictionary.csv:4"]["meta"]) == {"pos": "adv"}
    assert records["data/raw/dictionary.csv:6"]["text"] == "kocap, kacarita"
    [reject] = result.rejects.to_pylist()
    assert (reject["origin"], reject["reason"], reject["stage"], reject["source"]) == (
        "data/raw/dictionary.csv:5", "missing_field", "ingest", "kamus")
    assert "'gloss'" in reject["detail"] and json.loads(reject["raw"])["headword"] == "abluk"


def test_columns_map_fields_to_other_column_names(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(columns={"headword": "kata", "gloss": "arti"})])
    Path("data/raw/dictionary.csv").write_text("kata,arti\nmangan,makan\n", encoding="utf-8")
    [record] = ingest().records.to_pylist()
    assert (record["text"], record["pivot_text"]) == ("mangan", "makan")


def test_misspelt_column_names_source_file_column_and_what_the_file_has(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(columns={"gloss": "glos"})], files=["dictionary.csv"])
    with pytest.raises(UserError) as caught:
        ingest()
    message = str(caught.value)
    for part in ("'kamus'", "data/raw/dictionary.csv", "'glos'", "did you mean 'gloss'", "headword, gloss, pos, examples"):
        assert part in message


def test_default_column_missing_from_the_file_suggests_a_mapping(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source()])
    Path("data/raw/dictionary.csv").write_text("word,gloss\nmangan,makan\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no column 'headword' for headword.*set columns.headword in sources.yaml"):
        ingest()


def test_unknown_field_in_columns_is_a_user_error(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(columns={"headwrod": "kata"})], files=["dictionary.csv"])
    with pytest.raises(UserError, match="columns.headwrod is not a field of kind dictionary; did you mean 'headword'"):
        ingest()


def test_pair_kinds_need_a_pivot_language(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(pivot_lang=None)], files=["dictionary.csv"])
    with pytest.raises(UserError, match="needs pivot_lang"):
        ingest()


def test_language_tags_must_be_in_the_inventory(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(pivot_lang="xx-unknown")], files=["dictionary.csv"])
    with pytest.raises(UserError, match="'xx-unknown' not in data/inventory/languages.csv"):
        ingest()


def test_conversation_messages_are_validated(tmp_path, monkeypatch):
    source = {"id": "chat", "kind": "conversation", "lang": "jv", "path": "data/raw/conversations.jsonl"}
    make_repo(tmp_path, monkeypatch, [source], files=["conversations.jsonl"])
    result = ingest()
    records = by_origin(result.records)
    assert sorted(records) == ["data/raw/conversations.jsonl:1", "data/raw/conversations.jsonl:2"]
    second = records["data/raw/conversations.jsonl:2"]
    assert second["text"] == "Jawab nganggo basa Banyumasan.\nArep maring ngendi?\nMaring pasar."
    assert [turn["role"] for turn in json.loads(second["meta"])["messages"]] == ["system", "user", "assistant"]
    rejects = {row["origin"].rsplit(":", 1)[1]: (row["reason"], row["detail"]) for row in result.rejects.to_pylist()}
    assert rejects["3"][0] == "invalid_messages" and "'bot'" in rejects["3"][1]
    assert rejects["4"] == ("invalid_messages", "turn 1 (assistant) has no text content")
    assert rejects["6"][0] == "invalid_json"
    assert rejects["7"] == ("invalid_messages", "no assistant turn")


def test_conversation_from_parquet_lists_of_structs(tmp_path, monkeypatch):
    source = {"id": "chat", "kind": "conversation", "lang": "jv", "path": "data/raw/chat.parquet"}
    make_repo(tmp_path, monkeypatch, [source])
    turns = [{"role": "user", "content": "Halo"}, {"role": "assistant", "content": "Halo uga"}]
    pq.write_table(pa.table({"messages": [turns]}), "data/raw/chat.parquet")
    [record] = ingest().records.to_pylist()
    assert record["text"] == "Halo\nHalo uga" and json.loads(record["meta"]) == {"messages": turns}


def test_instruction_fields_go_to_meta_and_text_joins_the_parts(tmp_path, monkeypatch):
    source = {"id": "tugas", "kind": "instruction", "lang": "jv", "path": "data/raw/instructions.json",
              "records_key": "items"}
    make_repo(tmp_path, monkeypatch, [source], files=["instructions.json"])
    result = ingest()
    records = by_origin(result.records)
    first = records["data/raw/instructions.json#0"]
    assert first["text"] == "Terjemahkan ke bahasa Indonesia.\nAku arep turu.\nSaya mau tidur."
    assert json.loads(first["meta"]) == {"instruction": "Terjemahkan ke bahasa Indonesia.",
                                         "input": "Aku arep turu.", "output": "Saya mau tidur."}
    assert records["data/raw/instructions.json#1"]["text"] == "Sebutna telung jeneng woh.\nPelem, gedhang, salak."
    reasons = {row["origin"]: row["reason"] for row in result.rejects.to_pylist()}
    assert reasons == {"data/raw/instructions.json#2": "missing_field", "data/raw/instructions.json#3": "not_an_object"}


def test_transcription_keeps_media_and_an_optional_translation(tmp_path, monkeypatch):
    source = {"id": "rekaman", "kind": "transcription", "lang": "jv", "pivot_lang": "id", "path": "data/raw/t.csv"}
    make_repo(tmp_path, monkeypatch, [source])
    Path("data/raw/t.csv").write_text("text,pivot_text,media\nMangan yuh.,Ayo makan.,audio/1.wav\nTuru.,,audio/2.wav\n")
    records = by_origin(ingest().records)
    first, second = records["data/raw/t.csv:2"], records["data/raw/t.csv:3"]
    assert (first["pivot_text"], first["pivot_lang"], json.loads(first["meta"])) == (
        "Ayo makan.", "id", {"media": "audio/1.wav"})
    assert (second["pivot_text"], second["pivot_lang"]) == (None, None)


def test_cell_values_and_examples_as_text():
    import datetime

    from langfoundry.data.mapping import Rejected, as_text, parse_examples

    assert [as_text(v, "c") for v in (None, "a", True, 7, 2.0, 2.5, float("nan"), datetime.date(2024, 5, 1))] == [
        None, "a", "true", "7", "2", "2.5", None, "2024-05-01"]
    with pytest.raises(Rejected):
        as_text({"nested": 1}, "c")
    assert parse_examples('["siji", "", 2]', "ex") == ["siji", "2"]
    assert parse_examples(["siji", None], "ex") == ["siji"]
    assert parse_examples("siji\n\n loro ", "ex") == ["siji", "loro"]
    assert parse_examples(3, "ex") == ["3"]


def test_po_defaults_and_swapped_columns(tmp_path, monkeypatch):
    source = {"id": "app", "kind": "parallel", "lang": "jv", "pivot_lang": "en", "path": "data/raw/sample.po"}
    make_repo(tmp_path, monkeypatch, [source], files=["sample.po"])
    record = by_origin(ingest().records)["data/raw/sample.po:22"]
    assert (record["text"], record["pivot_text"], json.loads(record["meta"])) == ("Berkas", "File", {"context": "menu"})
    make_repo(tmp_path, monkeypatch, [dict(source, columns={"text": "msgid", "pivot_text": "msgstr"})])
    record = by_origin(ingest().records)["data/raw/sample.po:22"]
    assert (record["text"], record["pivot_text"]) == ("File", "Berkas")


def test_tmx_as_a_dictionary(tmp_path, monkeypatch):
    source = {"id": "tm", "kind": "dictionary", "lang": "jv", "pivot_lang": "id", "path": "data/raw/sample.tmx"}
    make_repo(tmp_path, monkeypatch, [source], files=["sample.tmx"])
    result = ingest()
    assert result.records.num_rows == 4 and result.rejects.column("reason").to_pylist() == ["missing_language"]
    assert "Matur nuwun." in result.records.column("text").to_pylist()


def test_blank_line_in_monolingual_text_is_a_reject(tmp_path, monkeypatch):
    source = {"id": "teks", "kind": "monolingual", "lang": "jv", "path": "data/raw/teks.txt"}
    make_repo(tmp_path, monkeypatch, [source])
    Path("data/raw/teks.txt").write_text("Aku mangan.\n   \nDheweke turu.\n", encoding="utf-8")
    result = ingest()
    assert result.records.column("text").to_pylist() != [] and result.records.num_rows == 2
    assert result.rejects.to_pylist()[0]["origin"] == "data/raw/teks.txt:2"


def test_mapped_column_names_appear_in_missing_field_details(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(columns={"headword": "kata", "gloss": "arti"})])
    Path("data/raw/dictionary.csv").write_text("kata,arti\nmangan,\n", encoding="utf-8")
    assert ingest().rejects.column("detail").to_pylist() == ["column 'arti' (gloss) is empty"]


def test_numbers_in_cells_become_text_and_lists_are_rejected(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(path="data/raw/kamus.jsonl")])
    Path("data/raw/kamus.jsonl").write_text('{"headword": "siji", "gloss": 1}\n{"headword": "loro", "gloss": 2.0}\n'
                                            '{"headword": ["telu"], "gloss": "tiga"}\n', encoding="utf-8")
    result = ingest()
    assert sorted(result.records.column("pivot_text").to_pylist()) == ["1", "2"]
    assert result.rejects.column("reason").to_pylist() == ["not_text"]


def test_json_lines_missing_a_column_in_some_rows_or_in_all(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(path="data/raw/kamus.jsonl")])
    Path("data/raw/kamus.jsonl").write_text('{"headword": "siji", "gloss": "satu"}\n{"headword": "loro"}\n')
    result = ingest()
    assert result.records.num_rows == 1
    assert result.rejects.to_pylist()[0]["detail"] == "no column 'gloss' in this row"
    Path("data/raw/kamus.jsonl").write_text('{"headword": "siji", "arti": "satu"}\n')
    with pytest.raises(UserError, match="no column 'gloss'.*columns are: headword, arti"):
        ingest()


def test_lone_surrogate_escapes_are_rejected_and_outputs_still_write(tmp_path, monkeypatch):
    source = {"id": "teks", "kind": "monolingual", "lang": "jv", "path": "data/raw/teks.jsonl"}
    make_repo(tmp_path, monkeypatch, [source])
    Path("data/raw/teks.jsonl").write_text('{"text": "ok"}\n{"text": "bad \\ud800 half"}\n', encoding="utf-8")
    rejects = ingest().rejects.to_pylist()  # read back from the file written
    assert [r["reason"] for r in rejects] == ["invalid_unicode"] and "\\ud800" in rejects[0]["raw"]


# --- whole runs: conservation, determinism, warnings, path safety --------------------------------

MIXED = [
    dictionary_source(),
    {"id": "chat", "kind": "conversation", "lang": "jv", "path": "data/raw/conversations.jsonl"},
    {"id": "app", "kind": "parallel", "lang": "jv", "pivot_lang": "en", "path": "data/raw/sample.po"},
    {"id": "tm", "kind": "parallel", "lang": "jv", "pivot_lang": "id", "path": "data/raw/sample.tmx"},
    {"id": "moses", "kind": "parallel", "lang": "jv", "pivot_lang": "id", "path": "data/raw/moses.jv",
     "pivot_path": "data/raw/moses.id"},
]
MIXED_FILES = ["dictionary.csv", "conversations.jsonl", "sample.po", "sample.tmx", "moses.jv", "moses.id"]


def test_every_row_read_is_kept_or_rejected(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, MIXED, files=MIXED_FILES)
    result = ingest()
    metrics = result.metrics_file()
    assert [metrics[key] for key in ("rows_read", "kept", "rejected")] == [
        result.metrics[key] for key in ("rows_read", "kept", "rejected")]
    kept = result.records.column("source").to_pylist()
    rejected = result.rejects.column("source").to_pylist()
    for source in MIXED:
        prefix = f"sources.{source['id']}."
        assert metrics[prefix + "rows_read"] == metrics[prefix + "kept"] + metrics[prefix + "rejected"] > 0
        assert metrics[prefix + "kept"] == kept.count(source["id"])
        assert metrics[prefix + "rejected"] == rejected.count(source["id"])
        by_reason = sum(v for k, v in metrics.items() if k.startswith(prefix + "rejected_by_reason."))
        assert by_reason == metrics[prefix + "rejected"]
    # the fixtures hold 4 + 6 + 8 + 5 + 4 input rows
    assert metrics["rows_read"] == 27 == len(kept) + len(rejected)
    assert metrics["sources.app.rejected_by_reason.fuzzy"] == 1


def test_outputs_are_byte_identical_across_runs_and_source_order(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, MIXED, files=MIXED_FILES)
    first = [path.read_bytes() for path in ingest().paths]
    assert [path.read_bytes() for path in ingest().paths] == first
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": MIXED[::-1]}), encoding="utf-8")
    assert [path.read_bytes() for path in ingest().paths[:2]] == first[:2]


def test_identical_rows_share_an_id_and_keep_their_own_origin(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source()])
    Path("data/raw/dictionary.csv").write_text("headword,gloss\nmangan,makan\nmangan,makan\nturu,tidur\n")
    records = ingest().records
    ids = dict(zip(records.column("origin").to_pylist(), records.column("id").to_pylist()))
    assert ids["data/raw/dictionary.csv:2"] == ids["data/raw/dictionary.csv:3"] != ids["data/raw/dictionary.csv:4"]


@pytest.mark.parametrize("name", ["kamus.csv", "kamus.json", "kamus.tmx", "kamus.po", "kamus.xlsx", "kamus.parquet"])
def test_an_empty_file_gives_zero_rows_and_a_warning(tmp_path, monkeypatch, caplog, name):
    make_repo(tmp_path, monkeypatch, [dictionary_source(path=f"data/raw/{name}")])
    Path(f"data/raw/{name}").write_bytes(b"\xef\xbb\xbf")
    with caplog.at_level(logging.WARNING):
        result = ingest()
    assert result.records.num_rows == 0 and result.metrics["sources"]["kamus"]["empty_files"] == 1
    assert f"data/raw/{name} (source kamus) is empty" in caplog.text


def test_a_header_without_rows_warns(tmp_path, monkeypatch, caplog):
    make_repo(tmp_path, monkeypatch, [dictionary_source()])
    Path("data/raw/dictionary.csv").write_text("headword,gloss\n")
    with caplog.at_level(logging.WARNING):
        result = ingest()
    assert result.metrics["rows_read"] == 0 and result.metrics["sources"]["kamus"]["empty_files"] == 0
    assert "data/raw/dictionary.csv (source kamus) has no rows" in caplog.text


def test_outside_paths_need_allow_outside_repo(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(FIXTURES / "dictionary.csv", outside / "dictionary.csv")
    repo = make_repo(tmp_path / "repo", monkeypatch, [dictionary_source()])
    (repo / "data/raw/dictionary.csv").symlink_to(outside / "dictionary.csv")
    with pytest.raises(UserError, match="outside the repository.*allow_outside_repo"):
        ingest()
    (repo / "params.yaml").write_text("ingest:\n  allow_outside_repo: true\n")
    assert ingest().records.num_rows == 3


def test_the_default_banyumasan_source_end_to_end(tmp_path, monkeypatch):
    declared = yaml.safe_load((REPO / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    # the scans source waits for the ocr stage (tests/test_media_stages.py); the rest is read as it is
    make_repo(tmp_path, monkeypatch, [source for source in declared if "media" not in source])
    acquire_sources(load_sources().sources)
    result = ingest()
    shipped = json.loads((resources.files("banyumasan_corpus") / "data" / "corpus.json").read_text(encoding="utf-8"))
    complete = sum(1 for entry in shipped["entries"] if (entry.get("ngapak") or "").strip()
                   and (entry.get("indonesia") or "").strip())
    counts = result.metrics["sources"]["banyumasan-dictionary"]
    assert counts["rows_read"] == len(shipped["entries"]) == 2000
    assert (counts["kept"], counts["rejected"]) == (complete, 2000 - complete)
    record = by_origin(result.records)["data/raw/acquired/banyumasan-dictionary/corpus.json#0"]
    assert (record["text"], record["pivot_text"]) == (shipped["entries"][0]["ngapak"], shipped["entries"][0]["indonesia"])


def test_the_stage_prints_one_line_on_bad_input(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [dictionary_source(columns={"gloss": "glos"})], files=["dictionary.csv"])
    done = subprocess.run([sys.executable, str(REPO / "stages" / "ingest.py")], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: ")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [dictionary_source()]}), encoding="utf-8")
    done = subprocess.run([sys.executable, str(REPO / "stages" / "ingest.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(load_params().paths.metric("ingest").read_text())["kept"] == 3


# --- fuzzing: arbitrary bytes never crash a reader -----------------------------------------------

PREFIXES = [b"", b"text\n", b"text,extra\n", b"text\tpivot_text\n", b'{"text": "a"}\n', b"\xef\xbb\xbf",
            b'msgid "a"\nmsgstr "b"\n\n', b"<tmx><body><tu><tuv xml:lang='jv'><seg>"]


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(PREFIXES),
       body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass"))),
       fmt=st.sampled_from(["csv", "tsv", "jsonl", "json", "txt", "tmx", "po", "parquet", "xlsx"]))
def test_arbitrary_input_gives_rows_rejects_or_one_user_error(tmp_path, monkeypatch, prefix, body, fmt):
    source = {"id": "fuzz", "kind": "monolingual", "lang": "jv", "path": f"data/raw/fuzz.{fmt}"}
    if fmt == "tsv":
        source.update(kind="parallel", pivot_lang="id")
    make_repo(tmp_path, monkeypatch, [source])
    Path(source["path"]).write_bytes(prefix + body)
    try:
        result = ingest()
    except UserError as err:
        assert "\n" not in str(err)
        return
    counts = result.metrics["sources"]["fuzz"]
    assert counts["rows_read"] == counts["kept"] + counts["rejected"]
    assert (result.records.num_rows, result.rejects.num_rows) == (counts["kept"], counts["rejected"])
