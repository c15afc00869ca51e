"""Bad input, item by item: each gives rejected rows with a reason or one clear line, never a lost row.

Items already pinned down elsewhere, and what this file adds to them:
- invalid UTF-8, BOM, UTF-16, CRLF: test_readers.py for text and CSV; here every other format.
- broken JSON Lines line, missing and misspelt columns: test_readers.py / test_ingest.py; here the
  counts through ingest, duplicated and extra columns, and a misspelt header in a workbook.
- empty file, header only: test_ingest.py for six formats; here the others.
- outside paths and symlinks: test_readers.py / test_ingest.py; here pivot files, symlinked folders
  and dangling links.
Every reader is also fuzzed at the end (arbitrary bytes are fuzzed in test_ingest.py; here structured
input: cells, JSON values, workbooks, Parquet columns, TMX units, PO entries and aligned pairs).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_run import Ingested, ingest_into

from langfoundry.cli.main import main as cli_main
from langfoundry.core.config import IngestParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory

REPO = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def source(path: str, kind: str = "parallel", **extra) -> Source:
    fields = {"id": "src", "kind": kind, "lang": "jv", "path": path}
    if kind in ("parallel", "dictionary"):
        fields["pivot_lang"] = "id"
    return Source(**{**fields, **extra})


def ingest(*sources: Source, allow_outside: bool = False) -> Ingested:
    """Ingest as the stage does, its outputs in data/interim, read back."""
    return ingest_into("data/interim", sources, IngestParams(allow_outside_repo=allow_outside), load_inventory())


def write(path: str, content: bytes | str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def conserved(result: Ingested) -> dict:
    """Rows read = rows kept + rows rejected, in the metrics and in the tables."""
    counts = result.metrics["sources"]["src"]
    assert counts["rows_read"] == counts["kept"] + counts["rejected"]
    assert (result.records.num_rows, result.rejects.num_rows) == (counts["kept"], counts["rejected"])
    assert sum(counts["rejected_by_reason"].values()) == counts["rejected"]
    return counts


def rejects(result: Ingested) -> list[tuple[str, str]]:
    return sorted(zip(result.rejects.column("origin").to_pylist(), result.rejects.column("reason").to_pylist()))


def texts(result: Ingested, column: str = "text") -> dict[str, str]:
    return dict(zip(result.records.column("origin").to_pylist(), result.records.column(column).to_pylist()))


# One pair (sega -> nasi, then banyu -> air) in every format that carries text, as a builder of its bytes.
PAIR_FILES = {
    "csv": lambda nl: f"text,pivot_text{nl}sega,nasi{nl}banyu,air{nl}",
    "tsv": lambda nl: f"text\tpivot_text{nl}sega\tnasi{nl}banyu\tair{nl}",
    "jsonl": lambda nl: f'{{"text": "sega", "pivot_text": "nasi"}}{nl}{{"text": "banyu", "pivot_text": "air"}}{nl}',
    "json": lambda nl: f'[{nl}{{"text": "sega", "pivot_text": "nasi"}},{nl}{{"text": "banyu", "pivot_text": "air"}}{nl}]',
    "tmx": lambda nl: (f'<tmx version="1.4"><body>{nl}<tu><tuv xml:lang="jv"><seg>sega</seg></tuv>'
                       f'<tuv xml:lang="id"><seg>nasi</seg></tuv></tu>{nl}<tu><tuv xml:lang="jv"><seg>banyu</seg></tuv>'
                       f'<tuv xml:lang="id"><seg>air</seg></tuv></tu>{nl}</body></tmx>{nl}'),
    "po": lambda nl: f'msgid "nasi"{nl}msgstr "sega"{nl}{nl}msgid "air"{nl}msgstr "banyu"{nl}',
}
FIRST_ORIGIN = {"csv": ":2", "tsv": ":2", "jsonl": ":1", "json": "#0", "tmx": ":2", "po": ":1"}


# --- encodings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "tsv", "csv"])
def test_invalid_utf8_bytes_reject_their_line_only(repo, fmt):
    content = PAIR_FILES[fmt]("\n").encode().replace(b"banyu", b"ban\xffyu")
    path = write(f"data/raw/pairs.{fmt}", content)
    result = ingest(source(path))
    counts = conserved(result)
    line = 3 if fmt != "jsonl" else 2
    assert rejects(result) == [(f"{path}:{line}", "invalid_utf8")]
    assert result.rejects.column("raw").to_pylist()[0].count("\\xff") == 1 and counts["kept"] == 1


@pytest.mark.parametrize("fmt, place", [("json", ":3"), ("po", ":5"), ("tmx", ":3:")])
def test_invalid_utf8_bytes_in_a_whole_document_format_name_the_line(repo, fmt, place):
    path = write(f"data/raw/pairs.{fmt}", PAIR_FILES[fmt]("\n").encode().replace(b"banyu", b"ban\xffyu"))
    with pytest.raises(UserError) as caught:
        ingest(source(path))
    message = str(caught.value)
    assert message.startswith(f"{path}{place}") and "\n" not in message


@pytest.mark.parametrize("fmt", sorted(PAIR_FILES))
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_value(repo, fmt):
    path = write(f"data/raw/bom.{fmt}", codecs.BOM_UTF8 + PAIR_FILES[fmt]("\n").encode())
    result = ingest(source(path))
    assert conserved(result)["kept"] == 2
    assert texts(result)[path + FIRST_ORIGIN[fmt]] == "sega"
    assert texts(result, "pivot_text")[path + FIRST_ORIGIN[fmt]] == "nasi"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("fmt", sorted(PAIR_FILES))
def test_utf16_files_with_a_byte_order_mark_are_read(repo, fmt, codec):
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    path = write(f"data/raw/u16.{fmt}", bom + PAIR_FILES[fmt]("\r\n").encode(codec))
    result = ingest(source(path))
    assert conserved(result)["kept"] == 2
    assert texts(result)[path + FIRST_ORIGIN[fmt]] == "sega"


def test_utf16_without_a_byte_order_mark_asks_for_an_encoding(repo):
    path = write("data/raw/nobom.csv", PAIR_FILES["csv"]("\n").encode("utf-16-le"))
    with pytest.raises(UserError, match=r"nobom\.csv: NUL bytes .* set `encoding:`"):
        ingest(source(path))
    assert conserved(ingest(source(path, encoding="utf-16-le")))["kept"] == 2


@pytest.mark.parametrize("fmt", sorted(PAIR_FILES))
def test_crlf_and_mixed_line_endings_read_alike(repo, fmt):
    lf = PAIR_FILES[fmt]("\n")
    # a lone CR never comes right before an LF here: together they would be one CRLF
    mixed = "".join(line + ending for line, ending in zip(lf.split("\n"), ["\r\n", "\n", "\r"] * 3))
    path = write(f"data/raw/mixed.{fmt}", mixed.rstrip("\r\n") + "\r\n")
    lf_result, _ = ingest(source(write(f"data/raw/lf.{fmt}", lf))), None
    result = ingest(source(path))
    assert conserved(result)["kept"] == 2
    # the same values at the same line numbers as the LF file, and no stray carriage return
    assert sorted(texts(result).values()) == sorted(texts(lf_result).values()) == ["banyu", "sega"]
    assert [origin.split("/")[-1].split(".", 1)[1] for origin in sorted(texts(result))] == \
           [origin.split("/")[-1].split(".", 1)[1] for origin in sorted(texts(lf_result))]
    assert not any("\r" in value for value in texts(result, "pivot_text").values())


# --- structure -------------------------------------------------------------------------------------


def test_a_broken_line_in_the_middle_of_json_lines_is_one_reject(repo):
    path = write("data/raw/pairs.jsonl", '{"text": "sega", "pivot_text": "nasi"}\n{"text": "iwak", "pivot_text": \n'
                                         '{"text": "banyu", "pivot_text": "air"}\n')
    result = ingest(source(path))
    assert conserved(result) == {**conserved(result), "rows_read": 3, "kept": 2, "rejected": 1}
    [row] = result.rejects.to_pylist()
    assert (row["origin"], row["reason"]) == (f"{path}:2", "invalid_json")
    assert row["detail"].startswith("line 2, column 32: Expecting value") and row["raw"].startswith('{"text": "iwak"')


def test_missing_columns_in_some_rows_are_rejects_and_in_every_row_one_error(repo):
    path = write("data/raw/kamus.csv", "headword,gloss\nmangan,makan\nturu\n")
    result = ingest(source(path, kind="dictionary"))
    assert rejects(result) == [(f"{path}:3", "wrong_field_count")] and conserved(result)["kept"] == 1
    write(path, "headword,arti\nmangan,makan\n")
    with pytest.raises(UserError, match=r"kamus\.csv has no column 'gloss' for gloss.*columns are: headword, arti"):
        ingest(source(path, kind="dictionary"))


def test_extra_columns_are_ignored_and_said_so(repo, caplog):
    path = write("data/raw/kamus.csv", "headword,gloss,catetan,sumber\nmangan,makan,x,buku\n")
    with caplog.at_level(logging.INFO):
        result = ingest(source(path, kind="dictionary"))
    assert conserved(result)["kept"] == 1 and json.loads(result.records.column("meta")[0].as_py()) == {}
    assert "column(s) no record field reads, ignored: catetan, sumber" in caplog.text


def test_a_duplicated_csv_header_name_that_is_read_is_an_error(repo, caplog):
    path = write("data/raw/kamus.csv", "headword,gloss,gloss\nmangan,makan,dhahar\n")
    with pytest.raises(UserError) as caught:
        ingest(source(path, kind="dictionary"))
    assert str(caught.value) == (
        f"sources.yaml: source 'src': {path} has more than one column named 'gloss' (read as gloss, gloss.1); "
        f"rename them in the file, or map gloss to the one meant (columns: {{gloss: gloss.1}} in sources.yaml)")
    result = ingest(source(path, kind="dictionary", columns={"gloss": "gloss.1"}))
    assert list(texts(result, "pivot_text").values()) == ["dhahar"]
    # a repeated column nothing reads is kept apart and said to be ignored
    write(path, "headword,gloss,note,note\nmangan,makan,a,b\n")
    with caplog.at_level(logging.INFO):
        assert conserved(ingest(source(path, kind="dictionary")))["kept"] == 1
    assert "ignored: note, note.1" in caplog.text


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_key_twice_in_one_json_object_is_a_reject(repo, fmt):
    lines = ['{"text": "sega", "pivot_text": "nasi"}', '{"text": "iwak", "text": "ulam", "pivot_text": "ikan"}',
             '{"text": "jam 10:30", "pivot_text": "pukul 10:30"}',  # colons in values, no key twice
             '{"text": "jam 10:30", "pivot_text": "a", "pivot_text": "b"}',  # both
             '{"text": "x", "pivot_text": "y", "meta": {"n": 1, "n": 2}}']  # twice in a nested object
    content = "\n".join(lines) + "\n" if fmt == "jsonl" else "[" + ",\n".join(lines) + "]"
    path = write(f"data/raw/dup.{fmt}", content)
    result = ingest(source(path))
    origins = [f"{path}:{n}" if fmt == "jsonl" else f"{path}#{n - 1}" for n in (2, 4, 5)]
    assert sorted(rejects(result)) == sorted((origin, "duplicate_key") for origin in origins)
    assert conserved(result)["kept"] == 2
    assert "key 'text' appears more than once" in result.rejects.column("detail").to_pylist()[0]


def _pairs_seen(text: str) -> bool:
    """Whether some object in the JSON text repeats a key, seen pair by pair (the slow, plain way)."""
    repeated = []
    json.loads(text, object_pairs_hook=lambda pairs: repeated.append(len({k for k, _ in pairs}) < len(pairs)) or dict(pairs))
    return any(repeated)


JSON_KEYS = st.sampled_from(["a", "b", "a:b", ":", "text"])
JSON_TREES = st.recursive(st.none() | st.integers() | st.sampled_from(["", ":", "10:30", "x"]),
                          lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(JSON_KEYS, inner), max_size=3),
                          max_leaves=8)


def _as_json(tree) -> str:
    """A tree of lists and (key, value) pair lists as JSON text; pair lists become objects, keys may repeat."""
    if isinstance(tree, list) and tree and all(isinstance(item, tuple) for item in tree):
        return "{" + ", ".join(f"{json.dumps(key)}: {_as_json(value)}" for key, value in tree) + "}"
    if isinstance(tree, list):
        return "[" + ", ".join(_as_json(item) for item in tree) + "]"
    return json.dumps(tree)


@given(tree=JSON_TREES)
def test_parse_json_sees_every_repeated_key_however_many_colons(tree):
    from langfoundry.data.readers.jsonl import parse_json, repeated_keys

    text = _as_json(tree)
    value, repeated = parse_json(text)
    assert value == json.loads(text)
    assert (repeated and bool(repeated_keys(value))) == _pairs_seen(text)


def test_a_repeated_parquet_column_name_keeps_both_columns(repo):
    table = pa.Table.from_arrays([pa.array(["sega"]), pa.array(["nasi"]), pa.array(["sekul"])],
                                 names=["text", "pivot_text", "pivot_text"])
    pq.write_table(table, "data/raw/dup.parquet")
    with pytest.raises(UserError, match="more than one column named 'pivot_text'"):
        ingest(source("data/raw/dup.parquet"))
    result = ingest(source("data/raw/dup.parquet", columns={"pivot_text": "pivot_text.1"}))
    assert list(texts(result, "pivot_text").values()) == ["sekul"]


def test_a_misspelt_workbook_header_gets_a_hint(repo):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Kata"
    workbook.active.append(["headword", "glos"])
    workbook.active.append(["mangan", "makan"])
    workbook.save("data/raw/kamus.xlsx")
    with pytest.raises(UserError, match=r"kamus\.xlsx:Kata has no column 'gloss' for gloss; did you mean 'glos'\?"):
        ingest(source("data/raw/kamus.xlsx", kind="dictionary"))


@pytest.mark.parametrize("name", ["kamus.txt", "kamus.tsv", "kamus.jsonl"])
def test_an_empty_file_adds_no_rows_and_warns(repo, caplog, name):
    path = write(f"data/raw/{name}", b"")
    with caplog.at_level(logging.WARNING):
        result = ingest(source(path, kind="monolingual"))
    assert result.metrics["sources"]["src"]["empty_files"] == 1 and result.metrics["rows_read"] == 0
    assert f"{path} (source src) is empty" in caplog.text


def test_two_empty_aligned_files_are_one_empty_file(repo, caplog):
    write("data/raw/a.jv", b""), write("data/raw/a.id", b"")
    with caplog.at_level(logging.WARNING):
        result = ingest(source("data/raw/a.jv", pivot_path="data/raw/a.id"))
    assert result.metrics["sources"]["src"]["empty_files"] == 1 and "a.jv (source src) is empty" in caplog.text


def test_a_header_only_file_adds_no_rows_and_warns(repo, caplog):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["text", "pivot_text"])
    workbook.save("data/raw/header.xlsx")
    paths = [write("data/raw/header.tsv", "text\tpivot_text\n"), write("data/raw/header.json", "[]"),
             "data/raw/header.xlsx"]
    with caplog.at_level(logging.WARNING):
        for path in paths:
            assert ingest(source(path)).metrics["rows_read"] == 0
    for path in paths:
        assert f"{path} (source src) has no rows" in caplog.text


# --- size ------------------------------------------------------------------------------------------

def write_fifty_mebibyte_lines(root: Path = Path(".")) -> dict[str, str]:
    """A text, CSV and JSONL file below root, each with one 50 MiB line between two short ones (paths relative
    to root; benchmarks/bench_memory.py reuses it)."""
    mebibyte = "ab" * (1 << 19)
    paths = {"txt": "data/raw/big.txt", "csv": "data/raw/big.csv", "jsonl": "data/raw/big.jsonl"}
    for fmt, path in paths.items():
        with open(root / path, "w", encoding="utf-8") as handle:
            handle.write({"txt": "siji\n", "csv": "text\nsiji\n", "jsonl": '{"text": "siji"}\n'}[fmt])
            handle.write('{"text": "' if fmt == "jsonl" else "")
            for _ in range(50):
                handle.write(mebibyte)
            handle.write('"}\n' if fmt == "jsonl" else "\n")
            handle.write('{"text": "telu"}\n' if fmt == "jsonl" else "telu\n")
    return paths


def test_one_50_mb_line_is_a_reject_read_in_pieces(repo):
    # its memory (a few MiB over three small files, not 50 MiB a line) is measured by benchmarks/bench_memory.py
    paths = write_fifty_mebibyte_lines()
    result = ingest(*[Source(id=f"s{fmt}", kind="monolingual", lang="jv", path=path) for fmt, path in paths.items()])
    line = {"txt": 2, "csv": 3, "jsonl": 2}
    assert sorted([row["origin"], row["reason"]] for row in result.rejects.to_pylist()) == \
        sorted([f"{path}:{line[fmt]}", "line_too_long"] for fmt, path in paths.items())
    assert result.records.num_rows == 6  # the lines around each long one


@pytest.mark.parametrize("fmt", ["json", "tmx", "po"])
def test_an_over_long_value_in_a_whole_document_format_is_a_reject(repo, fmt):
    long_word = "ab" * 600_000
    path = write(f"data/raw/long.{fmt}", PAIR_FILES[fmt]("\n").replace("banyu", long_word))
    result = ingest(source(path))
    assert conserved(result)["kept"] == 1
    [row] = result.rejects.to_pylist()
    assert row["reason"] == "value_too_long" and "has 1,200,000 characters" in row["detail"]
    assert len(row["raw"]) == 1_000 and long_word[:900] in row["raw"]


def test_an_unclosed_quote_in_csv_is_one_reject_and_the_rest_is_read(repo):
    rows = ["text,pivot_text", "sega,nasi", '"iwak,ikan'] + [f"tembung{n},kata{n}" for n in range(20_000)]
    path = write("data/raw/quote.csv", "\n".join(rows) + "\n")
    result = ingest(source(path))
    counts = conserved(result)
    [row] = result.rejects.to_pylist()
    assert (row["origin"], row["reason"]) == (f"{path}:3", "field_too_long")
    last = int(row["detail"].split()[1].split("-")[1])
    assert row["detail"].startswith("lines 3-") and "never closed" in row["detail"]
    # every line after the swallowed ones is a row again
    assert counts["kept"] == 1 + (len(rows) - last) and f"{path}:{last + 1}" in texts(result)


def test_a_directory_of_3000_small_files(repo):
    folder = Path("data/raw/many")
    folder.mkdir()
    for n in range(3000):
        (folder / f"{n:04d}.tsv").write_text(f"text\tpivot_text\nsega {n}\tnasi {n}\nbanyu {n}\tair {n}\n")
    result = ingest(source("data/raw/many"))  # its time: benchmarks/bench_memory.py
    counts = conserved(result)
    assert (counts["files"], counts["kept"]) == (3000, 6000)
    assert texts(result)["data/raw/many/2999.tsv:3"] == "banyu 2999"


# --- files that belong together ---------------------------------------------------------------------


def test_aligned_files_whose_line_counts_differ_stop_with_both_names(repo, capsys):
    write("data/raw/a.jv", "siji\nloro\ntelu\n"), write("data/raw/a.id", "satu\ndua\n")
    code = cli_main(["check", "data/raw/a.jv", "--pivot-file", "data/raw/a.id", "--kind", "parallel", "--lang", "jv",
                     "--pivot-lang", "id"])
    assert code == 2 and capsys.readouterr().err == (
        "error: data/raw/a.jv has 3 lines but data/raw/a.id has 2; line-aligned parallel files need the same number "
        "of lines (check for a missing or extra line)\n")


def test_a_tmx_unit_missing_one_language_is_a_reject(repo):
    path = write("data/raw/tm.tmx", '<tmx version="1.4"><body>\n'
                 '<tu><tuv xml:lang="jv"><seg>sega</seg></tuv><tuv xml:lang="id"><seg>nasi</seg></tuv></tu>\n'
                 '<tu><tuv xml:lang="jv"><seg>iwak</seg></tuv><tuv xml:lang="en"><seg>fish</seg></tuv></tu>\n'
                 '<tu></tu>\n</body></tmx>\n')
    result = ingest(source(path))
    assert conserved(result)["kept"] == 1
    assert rejects(result) == [(f"{path}:3", "missing_language"), (f"{path}:4", "missing_language")]
    assert result.rejects.column("detail").to_pylist() == ["no <tuv> for id (languages here: jv, en)",
                                                           "no <tuv> for jv, id (languages here: none)"]


def test_po_plural_forms_and_fuzzy_entries(repo):
    path = write("data/raw/app.po", "\n".join([
        'msgid "one file"', 'msgid_plural "%d files"', 'msgstr[0] "siji berkas"', 'msgstr[1] "%d berkas"',
        'msgstr[2] "akeh berkas"', "",
        "#, fuzzy", 'msgid "one song"', 'msgid_plural "%d songs"', 'msgstr[0] "siji lagu"', 'msgstr[1] "%d lagu"', "",
        'msgid "one day"', 'msgid_plural "%d days"', 'msgstr[0] "sedina"', 'msgstr[1] ""', ""]))
    result = ingest(source(path))
    assert conserved(result) == {**conserved(result), "rows_read": 7, "kept": 4, "rejected": 3}
    assert texts(result) == {f"{path}:1:msgstr[0]": "siji berkas", f"{path}:1:msgstr[1]": "%d berkas",
                             f"{path}:1:msgstr[2]": "akeh berkas", f"{path}:13:msgstr[0]": "sedina"}
    assert texts(result, "pivot_text")[f"{path}:1:msgstr[2]"] == "%d files"
    assert rejects(result) == [(f"{path}:13:msgstr[1]", "untranslated"), (f"{path}:7:msgstr[0]", "fuzzy"),
                               (f"{path}:7:msgstr[1]", "fuzzy")]


def test_xlsx_with_several_sheets_and_merged_cells(repo):
    from openpyxl import Workbook

    workbook = Workbook()
    words = workbook.active
    words.title = "Kata"
    for row in (["headword", "gloss", "pos"], ["mangan", "makan", "v"], ["nginum", "minum", None],
                ["turu", "tidur", None], ["sega", "nasi", "n"]):
        words.append(row)
    words.merge_cells("C2:C4")  # one part of speech for three verbs
    more = workbook.create_sheet("Tambahan")
    more.append(["headword", "gloss", None])
    more.merge_cells("B1:C1")  # a header over two columns
    more.append(["banyu", "air", "tirta"])
    workbook.save("data/raw/kamus.xlsx")
    result = ingest(source("data/raw/kamus.xlsx", kind="dictionary", sheet="Kata"))
    assert conserved(result)["kept"] == 4
    pos = {origin: json.loads(meta).get("pos") for origin, meta in
           zip(result.records.column("origin").to_pylist(), result.records.column("meta").to_pylist())}
    assert pos == {"data/raw/kamus.xlsx:Kata!2": "v", "data/raw/kamus.xlsx:Kata!3": "v",
                   "data/raw/kamus.xlsx:Kata!4": "v", "data/raw/kamus.xlsx:Kata!5": "n"}
    # the merged header names both of its columns, so "gloss" is ambiguous until mapped
    with pytest.raises(UserError,
                       match=r"kamus\.xlsx:Tambahan has more than one column named 'gloss' \(read as gloss, gloss\.1\)"):
        ingest(source("data/raw/kamus.xlsx", kind="dictionary"))
    result = ingest(source("data/raw/kamus.xlsx", kind="dictionary", columns={"gloss": "gloss.1"}, sheet="Tambahan"))
    assert texts(result, "pivot_text") == {"data/raw/kamus.xlsx:Tambahan!2": "tirta"}


# --- paths ------------------------------------------------------------------------------------------


def test_paths_and_links_out_of_the_repository(repo, tmp_path_factory, caplog):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "a.id").write_text("satu\n")
    (outside / "folder").mkdir()
    (outside / "folder" / "b.txt").write_text("loro\n")
    write("data/raw/a.jv", "siji\n")
    with pytest.raises(UserError, match=r"outside the repository.*allow_outside_repo"):
        ingest(source("data/raw/a.jv", pivot_path=str(outside / "a.id")))
    assert conserved(ingest(source("data/raw/a.jv", pivot_path=str(outside / "a.id")), allow_outside=True))["kept"] == 1
    # a symlinked folder inside a source folder is not entered, and that is said
    write("data/raw/corpus/c.txt", "telu\n")
    Path("data/raw/corpus/linked").symlink_to(outside / "folder")
    with caplog.at_level(logging.WARNING):
        result = ingest(source("data/raw/corpus", kind="monolingual"))
    assert list(texts(result).values()) == ["telu"]
    assert "did not enter 1 symlinked folder(s): data/raw/corpus/linked" in caplog.text
    # a link to nothing is one line naming it
    Path("data/raw/corpus/gone.txt").symlink_to(Path("data/raw/corpus/nothing.txt").absolute())
    with pytest.raises(UserError, match=r"cannot read data/raw/corpus/gone\.txt \(No such file or directory\)"):
        ingest(source("data/raw/corpus", kind="monolingual"))


# --- fuzzing: structured input for every reader ------------------------------------------------------

CELL_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@FUZZ
@given(rows=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), min_size=1, max_size=8))
def test_fuzz_csv_cells_round_trip(repo, rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("text", "pivot_text"), *rows])
    path = write("data/raw/fuzz.csv", buffer.getvalue())
    result = ingest(source(path))
    counts = conserved(result)
    assert counts["rows_read"] == len(rows)
    # values come back as written, with any line break inside a quoted field read as "\n"
    unbroken = lambda value: value.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    kept = [(unbroken(a), unbroken(b)) for a, b in rows if a.strip() and b.strip()]
    assert counts["kept"] == len(kept)
    assert sorted(zip(result.records.column("text").to_pylist(), result.records.column("pivot_text").to_pylist())) \
        == sorted(kept)


@FUZZ
@given(rows=st.lists(st.tuples(CELL_TEXT.filter(lambda t: "\t" not in t), CELL_TEXT.filter(lambda t: "\t" not in t)),
                     min_size=1, max_size=8))
def test_fuzz_tsv_cells(repo, rows):
    path = write("data/raw/fuzz.tsv", "text\tpivot_text\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    counts = conserved(ingest(source(path)))
    assert counts["rows_read"] == len(rows)
    assert counts["kept"] == sum(1 for a, b in rows if a.strip() and b.strip())


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)


@FUZZ
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=8), whole=st.booleans())
def test_fuzz_json_and_json_lines_values(repo, values, whole):
    if whole:  # one JSON list of the values
        path = write("data/raw/fuzz.json", json.dumps(values, indent=1))
    else:
        path = write("data/raw/fuzz.jsonl", "".join(json.dumps(value) + "\n" for value in values))
    try:
        result = ingest(source(path, kind="monolingual"))
    except UserError as err:  # no object has a "text" key at all
        assert not any(isinstance(v, dict) and "text" in v for v in values) and "has no column 'text'" in str(err)
        return
    counts = conserved(result)
    assert counts["rows_read"] == len(values)
    assert counts["rejected_by_reason"].get("not_an_object", 0) == sum(1 for v in values if not isinstance(v, dict))


@FUZZ
@given(cells=st.lists(st.lists(st.none() | CELL_TEXT | st.integers(-5, 5), min_size=3, max_size=3), min_size=1, max_size=6),
       merges=st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(0, 2), st.integers(0, 1)), max_size=2))
def test_fuzz_xlsx_cells_and_merges(repo, cells, merges):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["text", "pivot_text", "note"])
    for row in cells:
        sheet.append(row)
    taken: set[tuple[int, int]] = set()
    for row, column, down, right in merges:
        area = {(r, c) for r in range(row, row + down + 1) for c in range(column, min(column + right, 3) + 1)}
        if len(area) > 1 and not area & taken:
            taken |= area
            sheet.merge_cells(start_row=row, start_column=column, end_row=row + down, end_column=min(column + right, 3))
    workbook.save("data/raw/fuzz.xlsx")
    try:
        result = ingest(source("data/raw/fuzz.xlsx"))
    except UserError as err:  # a merged header can repeat a name that is read
        assert "more than one column" in str(err) and "\n" not in str(err)
        return
    conserved(result)


@FUZZ
@given(names=st.lists(st.sampled_from(["text", "pivot_text", "x", "text.1"]), min_size=2, max_size=4),
       values=st.lists(st.none() | st.text(max_size=6) | st.integers(), min_size=1, max_size=4))
def test_fuzz_parquet_columns(repo, names, values):
    table = pa.Table.from_arrays([pa.array([repr(value) if value is not None else None for value in values])
                                  for _ in names], names=names)
    pq.write_table(table, "data/raw/fuzz.parquet")
    try:
        result = ingest(source("data/raw/fuzz.parquet"))
    except UserError as err:
        assert "\n" not in str(err) and ("more than one column" in str(err) or "has no column" in str(err))
        return
    assert conserved(result)["rows_read"] == len(values)


@FUZZ
@given(units=st.lists(st.lists(st.sampled_from(["jv", "id", "en", "id-ID", "JV"]), max_size=3), min_size=1, max_size=6))
def test_fuzz_tmx_units(repo, units):
    body = "".join("<tu>" + "".join(f'<tuv xml:lang="{tag}"><seg>t{n}</seg></tuv>' for tag in unit) + "</tu>\n"
                   for n, unit in enumerate(units))
    path = write("data/raw/fuzz.tmx", f'<tmx version="1.4"><body>\n{body}</body></tmx>')
    counts = conserved(ingest(source(path)))
    has = lambda unit, primary: any(tag.lower().split("-")[0] == primary for tag in unit)  # noqa: E731
    assert counts["rows_read"] == len(units)
    assert counts["kept"] == sum(1 for unit in units if has(unit, "jv") and has(unit, "id"))


@FUZZ
@given(entries=st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(["", "teks"]), min_size=1, max_size=3)),
                        min_size=1, max_size=6))
def test_fuzz_po_entries(repo, entries):
    import polib

    catalogue = polib.POFile()
    for n, (fuzzy, forms) in enumerate(entries):
        if len(forms) == 1:
            entry = polib.POEntry(msgid=f"id {n}", msgstr=forms[0])
        else:
            entry = polib.POEntry(msgid=f"id {n}", msgid_plural=f"ids {n}", msgstr_plural=dict(enumerate(forms)))
        if fuzzy:
            entry.flags.append("fuzzy")
        catalogue.append(entry)
    catalogue.save("data/raw/fuzz.po")
    counts = conserved(ingest(source("data/raw/fuzz.po")))
    assert counts["rows_read"] == sum(len(forms) for _, forms in entries)
    assert counts["kept"] == sum(forms.count("teks") for fuzzy, forms in entries if not fuzzy)


@FUZZ
@given(target=st.binary(max_size=80), pivot=st.binary(max_size=80))
def test_fuzz_aligned_pairs(repo, target, pivot):
    write("data/raw/fuzz.jv", target), write("data/raw/fuzz.id", pivot)
    try:
        result = ingest(source("data/raw/fuzz.jv", pivot_path="data/raw/fuzz.id"))
    except UserError as err:
        assert "\n" not in str(err)
        return
    conserved(result)
