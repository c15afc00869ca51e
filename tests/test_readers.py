"""Readers: every format, every encoding, and the inputs that must give a reject or one clear error."""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langfoundry.core.config import Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers import BadRow, Header, Row, read_file, source_files, tabular

FIXTURES = Path(__file__).parent / "fixtures"


def read(root: Path, name: str | None = None, content: bytes | str | None = None, **fields) -> list:
    """Write `content` to root/name (when given) and read it as a source; every item the readers yield."""
    if content is not None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    fields.setdefault("kind", "monolingual")
    fields.setdefault("lang", "jv")
    if name is not None:
        fields.setdefault("path", name)
    source = Source(id="sample", **fields)
    items = []
    for file in source_files(source, root):
        items.extend(read_file(file, source))
    return items


def rows(items: list) -> list[Row]:
    return [item for item in items if isinstance(item, Row)]


def bad(items: list) -> list[BadRow]:
    return [item for item in items if isinstance(item, BadRow)]


def texts(items: list, column: str = "text") -> list:
    return [row.fields[column] for row in rows(items)]


def fixture(root: Path, *names: str) -> None:
    for name in names:
        shutil.copy(FIXTURES / name, root / name)


# --- encodings -----------------------------------------------------------------------------------


def test_utf8_bom_is_stripped_so_the_header_matches(tmp_path):
    items = read(tmp_path, "bom.csv", codecs.BOM_UTF8 + b"text,note\nsugeng,x\n")
    assert items[0] == Header("bom.csv", ("text", "note"))
    assert rows(items)[0].fields == {"text": "sugeng", "note": "x"}


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_detected(tmp_path, codec):
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    content = bom + "héadword\r\nkéré\r\nmlaku\r\n".encode(codec)
    assert texts(read(tmp_path, "words.txt", content)) == ["héadword", "kéré", "mlaku"]


def test_declared_encoding_is_honoured(tmp_path):
    content = "text\ncafé\nñandu\n".encode("cp1252")
    assert texts(read(tmp_path, "legacy.csv", content, encoding="cp1252")) == ["café", "ñandu"]


def test_utf16_without_bom_asks_for_an_encoding(tmp_path):
    with pytest.raises(UserError, match="encoding"):
        read(tmp_path, "nobom.txt", "mlaku\n".encode("utf-16-le"))
    assert texts(read(tmp_path, "nobom.txt", encoding="utf-16-le")) == ["mlaku"]


def test_unknown_declared_encoding_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown encoding 'klingon'"):
        read(tmp_path, "a.txt", "x\n", encoding="klingon")


def test_invalid_utf8_rejects_only_that_line(tmp_path):
    content = b"siji\nlo\xffro\xfe\ntelu\n"
    items = read(tmp_path, "bytes.txt", content)
    assert texts(items) == ["siji", "telu"]
    [reject] = bad(items)
    assert (reject.origin, reject.reason, reject.raw) == ("bytes.txt:2", "invalid_utf8", "lo\\xffro\\xfe")


def test_invalid_utf8_in_csv_keeps_the_neighbouring_rows(tmp_path):
    items = read(tmp_path, "bytes.csv", b"text\nsiji\nx\xc3(\ntelu\n")
    assert texts(items) == ["siji", "telu"]
    assert [(r.origin, r.reason) for r in bad(items)] == [("bytes.csv:3", "invalid_utf8")]
    assert [r.origin for r in rows(items)] == ["bytes.csv:2", "bytes.csv:4"]


def test_crlf_cr_and_lf_line_endings_mixed(tmp_path):
    items = read(tmp_path, "mixed.txt", b"siji\r\nloro\rtelu\npapat\r\n")
    assert texts(items) == ["siji", "loro", "telu", "papat"]
    assert [row.origin for row in rows(items)][-1] == "mixed.txt:4"


def test_crlf_csv_values_have_no_carriage_returns(tmp_path):
    items = read(tmp_path, "crlf.csv", b"text,pivot_text\r\nsega,nasi\r\n", kind="parallel", pivot_lang="id")
    assert rows(items)[0].fields == {"text": "sega", "pivot_text": "nasi"}


def test_unicode_line_separator_stays_inside_a_line(tmp_path):
    assert texts(read(tmp_path, "ls.txt", "siji\u2028loro\ntelu\n")) == ["siji\u2028loro", "telu"]


# --- CSV and TSV ---------------------------------------------------------------------------------


def test_csv_quoted_fields_span_lines_and_keep_commas(tmp_path):
    fixture(tmp_path, "dictionary.csv")
    items = read(tmp_path, "dictionary.csv", kind="dictionary", pivot_lang="id")
    assert texts(items, "headword") == ["abab", "aben", "abluk", "kocap, kacarita"]
    assert rows(items)[0].fields["examples"] == "Abab e mambu.\nAmbegan nganggo abab."
    # the row after a two-line field starts on line 4
    assert [row.origin for row in rows(items)] == [f"dictionary.csv:{n}" for n in (2, 4, 5, 6)]


def test_csv_wrong_field_count_is_a_reject_and_blank_lines_are_not_rows(tmp_path):
    items = read(tmp_path, "short.csv", "text,note\n\nsiji,a\nloro\n\ntelu,c,extra\n")
    assert texts(items) == ["siji"]
    assert [(r.origin, r.reason) for r in bad(items)] == [("short.csv:4", "wrong_field_count"),
                                                          ("short.csv:6", "wrong_field_count")]


def test_repeated_header_names_are_kept_apart(tmp_path):
    items = read(tmp_path, "dup.csv", "text,note,note\nsiji,a,b\n")
    assert rows(items)[0].fields == {"text": "siji", "note": "a", "note.1": "b"}


def test_tsv_stray_quote_does_not_swallow_lines(tmp_path):
    items = read(tmp_path, "pairs.tsv", 'text\tpivot_text\n"Aja\tJangan\nwis\tsudah\n', kind="parallel", pivot_lang="id")
    assert texts(items) == ['"Aja', "wis"]


# --- JSON and JSON Lines -------------------------------------------------------------------------


def test_json_records_key_and_non_object_records(tmp_path):
    fixture(tmp_path, "instructions.json")
    items = read(tmp_path, "instructions.json", kind="instruction", records_key="items")
    assert [row.origin for row in rows(items)] == [f"instructions.json#{i}" for i in range(3)]
    assert [(r.origin, r.reason) for r in bad(items)] == [("instructions.json#3", "not_an_object")]
    assert items[0] == Header("instructions.json", ("instruction", "input", "output"))


def test_json_object_without_records_key_names_the_list_keys(tmp_path):
    fixture(tmp_path, "instructions.json")
    with pytest.raises(UserError, match="set records_key.*items"):
        read(tmp_path, "instructions.json")


def test_json_misspelt_records_key_gets_a_hint(tmp_path):
    fixture(tmp_path, "instructions.json")
    with pytest.raises(UserError, match="did you mean 'items'"):
        read(tmp_path, "instructions.json", records_key="itemz")


def test_invalid_json_names_line_and_column(tmp_path):
    with pytest.raises(UserError, match=r"bad\.json:3:\d+: not valid JSON"):
        read(tmp_path, "bad.json", '[\n{"text": "a"},\n{"text": }\n]')


def test_jsonl_broken_line_is_a_reject_with_its_line_number(tmp_path):
    fixture(tmp_path, "conversations.jsonl")
    items = read(tmp_path, "conversations.jsonl", kind="conversation")
    assert [(r.origin, r.reason) for r in bad(items)] == [("conversations.jsonl:6", "invalid_json")]
    assert "line 6" in bad(items)[0].detail
    assert len(rows(items)) == 5  # the blank line 5 is not a row
    assert items[-1] == Header("conversations.jsonl", ("messages",))  # known only once the stream is read


def test_jsonl_non_object_line_is_a_reject(tmp_path):
    items = read(tmp_path, "x.jsonl", '{"text": "a"}\n[1, 2]\n"b"\n')
    assert texts(items) == ["a"]
    assert [r.reason for r in bad(items)] == ["not_an_object", "not_an_object"]


# --- Parquet and Excel ---------------------------------------------------------------------------


def test_parquet_streams_in_batches_with_record_indexes(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "PARQUET_BATCH_ROWS", 3)
    words = [f"tembung {i}" for i in range(10)]
    pq.write_table(pa.table({"text": words, "n": list(range(10))}), tmp_path / "words.parquet", row_group_size=4)
    items = read(tmp_path, "words.parquet")
    assert texts(items) == words
    assert [row.origin for row in rows(items)] == [f"words.parquet#{i}" for i in range(10)]
    assert items[0] == Header("words.parquet", ("text", "n"))


def test_not_a_parquet_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="Parquet"):
        read(tmp_path, "fake.parquet", b"not parquet at all")


def _workbook(path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    first = workbook.active
    first.title = "Kata"
    first.append(["headword", "gloss"])
    first.append(["abab", "tiupan napas"])
    first.append([None, None])
    first.append(["nomer", 3])
    second = workbook.create_sheet("Tambahan")
    second.append([])
    second.append(["headword", "gloss"])
    second.append(["aben", "setiap"])
    workbook.save(path)


def test_xlsx_reads_every_sheet_with_sheet_and_row_in_origin(tmp_path):
    _workbook(tmp_path / "kamus.xlsx")
    items = read(tmp_path, "kamus.xlsx", kind="dictionary", pivot_lang="id")
    assert [(row.origin, row.fields["headword"], row.fields["gloss"]) for row in rows(items)] == [
        ("kamus.xlsx:Kata!2", "abab", "tiupan napas"),
        ("kamus.xlsx:Kata!4", "nomer", 3),
        ("kamus.xlsx:Tambahan!3", "aben", "setiap"),
    ]
    assert [item.file for item in items if isinstance(item, Header)] == ["kamus.xlsx:Kata", "kamus.xlsx:Tambahan"]


def test_xlsx_sheet_selection_and_unknown_sheet(tmp_path):
    _workbook(tmp_path / "kamus.xlsx")
    assert texts(read(tmp_path, "kamus.xlsx", sheet="Tambahan"), "headword") == ["aben"]
    with pytest.raises(UserError, match="did you mean 'Tambahan'"):
        read(tmp_path, "kamus.xlsx", sheet="Tambahn")


def test_not_a_workbook_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="Excel"):
        read(tmp_path, "fake.xlsx", b"PK but not really")


# --- plain text ----------------------------------------------------------------------------------


def test_aligned_text_pairs_line_by_line(tmp_path):
    fixture(tmp_path, "moses.jv", "moses.id")
    items = read(tmp_path, "moses.jv", pivot_path="moses.id", kind="parallel", pivot_lang="id")
    assert texts(items) == ["Aku mangan sega.", "Dheweke lunga menyang pasar.", "", "Sesuk udan."]
    assert texts(items, "pivot_text")[3] == "Besok hujan."
    assert rows(items)[2].origin == "moses.jv:3"


def test_aligned_text_with_different_line_counts_names_both_files(tmp_path):
    (tmp_path / "a.jv").write_text("siji\nloro\ntelu\n")
    (tmp_path / "a.id").write_text("satu\ndua\n")
    with pytest.raises(UserError, match=r"a\.jv has 3 lines but a\.id has 2"):
        read(tmp_path, "a.jv", pivot_path="a.id", kind="parallel", pivot_lang="id")
    with pytest.raises(UserError, match=r"a\.id has 2 lines but a\.jv has 3"):
        read(tmp_path, "a.id", pivot_path="a.jv", kind="parallel", pivot_lang="id")


def test_aligned_text_invalid_bytes_on_the_pivot_side(tmp_path):
    (tmp_path / "b.jv").write_bytes(b"siji\nloro\n")
    (tmp_path / "b.id").write_bytes(b"satu\nd\xffa\n")
    items = read(tmp_path, "b.jv", pivot_path="b.id", kind="parallel", pivot_lang="id")
    [reject] = bad(items)
    assert (reject.origin, reject.reason) == ("b.jv:2", "invalid_utf8")
    assert "b.id" in reject.detail and json.loads(reject.raw) == {"text": "loro", "pivot_text": "d\\xffa"}


# --- TMX and PO ----------------------------------------------------------------------------------


def test_tmx_matches_languages_loosely_and_rejects_a_unit_without_the_pivot(tmp_path):
    fixture(tmp_path, "sample.tmx")
    items = read(tmp_path, "sample.tmx", kind="parallel", pivot_lang="id")
    pairs = [(row.fields["text"], row.fields["pivot_text"]) for row in rows(items)]
    assert pairs == [("Aku arep mangan.", "Saya mau makan."),
                     ("Sugeng enjing.", "Selamat pagi."),  # JV and id-ID
                     ("Iki penting banget.", "Ini sangat penting."),  # inline codes dropped, <hi> kept
                     ("Matur nuwun.", "Terima kasih.")]  # TMX 1.1 `lang` attribute
    [reject] = bad(items)
    assert (reject.origin, reject.reason) == ("sample.tmx:18", "missing_language")
    assert json.loads(reject.raw) == {"jv": "Ora ana terjemahane.", "en": "There is no translation."}


def test_tmx_prefers_an_exact_tag_over_a_primary_subtag_match(tmp_path):
    content = ('<tmx version="1.4"><body><tu><tuv xml:lang="jv"><seg>umum</seg></tuv>'
               '<tuv xml:lang="jv-x-banyumas"><seg>ngapak</seg></tuv></tu></body></tmx>')
    assert texts(read(tmp_path, "d.tmx", content, lang="jv-x-banyumas", pivot_lang="jv", kind="parallel"),
                 "pivot_text") == ["umum"]
    assert texts(read(tmp_path, "d.tmx", lang="jv-x-banyumas", pivot_lang="jv", kind="parallel")) == ["ngapak"]


def test_malformed_tmx_is_a_user_error_with_a_line(tmp_path):
    with pytest.raises(UserError, match=r"broken\.tmx:2:\d+: not well-formed"):
        read(tmp_path, "broken.tmx", "<tmx><body>\n<tu><tuv xml:lang='jv'><seg>a</tuv></tu></body></tmx>")


def test_po_plurals_fuzzy_untranslated_and_obsolete(tmp_path):
    fixture(tmp_path, "sample.po")
    items = read(tmp_path, "sample.po", kind="parallel", pivot_lang="en")
    got = {row.origin: (row.fields["msgid"], row.fields["msgstr"]) for row in rows(items)}
    assert got == {
        "sample.po:11": ("Open", "Bukak"),
        "sample.po:22": ("File", "Berkas"),
        "sample.po:26:msgstr[0]": ("one file", "siji berkas"),
        "sample.po:26:msgstr[1]": ("%d files", "%d berkas"),
        "sample.po:31": ("Multiline", "Akeh baris"),
    }
    assert [row.meta for row in rows(items) if row.origin == "sample.po:22"] == [{"context": "menu"}]
    assert [(r.origin, r.reason) for r in bad(items)] == [
        ("sample.po:15", "fuzzy"), ("sample.po:19", "untranslated"), ("sample.po:36", "obsolete")]


def test_broken_po_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"broken\.po: not a valid PO file"):
        read(tmp_path, "broken.po", 'msgid "a"\nmsgstr "b"\nnonsense here\n')


# --- files, folders, path safety -----------------------------------------------------------------


def test_directory_is_read_in_sorted_order_skipping_provenance_and_hidden_files(tmp_path):
    (tmp_path / "corpus" / "b").mkdir(parents=True)
    (tmp_path / "corpus" / "b" / "2.txt").write_text("loro\n")
    (tmp_path / "corpus" / "a.txt").write_text("siji\n")
    (tmp_path / "corpus" / "c.txt").write_text("telu\n")
    (tmp_path / "corpus" / ".hidden.txt").write_text("ora\n")
    (tmp_path / "corpus" / "ACQUIRED.json").write_text("{}")
    (tmp_path / "corpus" / "notes.md").write_text("not data")
    assert texts(read(tmp_path, "corpus")) == ["siji", "loro", "telu"]


def test_a_directory_without_matching_files_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .* in empty"):
        read(tmp_path, "empty")


def test_unknown_extension_asks_for_a_format(tmp_path):
    with pytest.raises(UserError, match="add format"):
        read(tmp_path, "corpus.xyz", "siji\n")
    assert texts(read(tmp_path, "corpus.xyz", format="txt")) == ["siji"]


def test_symlink_out_of_the_repository_is_refused(tmp_path):
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir(), outside.mkdir()
    (outside / "secret.txt").write_text("private\n")
    (repo / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(UserError, match="outside the repository"):
        read(repo, "link.txt")
    (repo / "folder").mkdir()
    (repo / "folder" / "inner.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(UserError, match="outside the repository"):
        read(repo, "folder")
    with pytest.raises(UserError, match="outside the repository"):
        read(repo, "../outside/secret.txt")


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read(tmp_path, "data/raw/nothing.csv")
