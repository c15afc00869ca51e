"""Encodings a user actually has: legacy code pages read as they were written (with a note), valid UTF-8
left alone, an explicit `encoding:` obeyed, and binary files stopped with one line.

Every file here is real bytes: text encoded with the codec under test, a PNG header, a ZIP archive,
packed floats; and, where the system has them, files Vim ships in Latin-1, ISO 8859-2, cp1251 and
ISO 8859-9 beside their UTF-8 twins.
"""

from __future__ import annotations

import codecs
import io
import logging
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
import yaml
from ingest_run import Ingested, ingest_into

from langfoundry.cli.main import main as cli_main
from langfoundry.core.config import IngestParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.data.readers import BadRow, Row, read_file, source_files
from langfoundry.data.readers.encoding import choose_codec

REPO = Path(__file__).resolve().parents[1]
NOTE = "read as cp1252 (detected; set encoding: in sources.yaml to make it explicit)"

# A Javanese-Indonesian word list as a spreadsheet on Windows saves it: Western European text, the euro
# sign and Javanese taling/pepet vowels (è, é) in cp1252. Read as UTF-8 most of its lines would be rejects.
KAMUS = [("Café", "warung kopi"), ("naïve", "lugu"), ("regané €5", "harganya €5"), ("dèrèng", "belum"),
         ("sampéyan", "kamu"), ("wédang jahé", "minuman jahe"), ("kèndel", "berani"), ("énggal", "baru"),
         ("omah", "rumah"), ("mèlu", "ikut"), ("turu", "tidur"), ("mangan", "makan")]
KAMUS_CSV = "text,pivot_text\r\n" + "".join(f"{text},{pivot}\r\n" for text, pivot in KAMUS)


def write(path: str, content: bytes) -> str:
    Path(path).write_bytes(content)
    return path


def source(path: str, **extra) -> Source:
    return Source(**{"id": "src", "kind": "parallel", "lang": "jv", "pivot_lang": "id", "path": path, **extra})


def ingest(*sources: Source) -> Ingested:
    return ingest_into("data/interim", sources, IngestParams(), load_inventory())


def pairs(result: Ingested) -> list[tuple[str, str]]:
    records = sorted(result.records.to_pylist(), key=lambda record: int(record["origin"].rsplit(":", 1)[1]))
    return [(record["text"], record["pivot_text"]) for record in records]


def read(root: Path, **fields) -> list:
    """Every item the readers yield for a source (no inventory: any language tag)."""
    item = Source(**{"id": "sample", "kind": "monolingual", **fields})
    return [entry for file in source_files(item, root, allow_outside=True) for entry in read_file(file, item)]


def check(capsys, path: str, *options: str) -> tuple[int, str, str]:
    code = cli_main(["check", path, "--kind", "parallel", "--lang", "jv", "--pivot-lang", "id", *options])
    out, err = capsys.readouterr()
    return code, out, err


# --- legacy code pages ---------------------------------------------------------------------------


def test_a_cp1252_csv_is_read_as_written_with_a_note(repo, caplog):
    path = write("data/raw/kamus.csv", KAMUS_CSV.encode("cp1252"))
    with caplog.at_level(logging.INFO):
        result = ingest(source(path))
    assert pairs(result) == KAMUS and result.rejects.num_rows == 0
    assert [record.getMessage() for record in caplog.records if "detected" in record.getMessage()] == [
        f"{path}: {NOTE}"]


def test_langfoundry_check_reads_the_cp1252_csv_and_says_how(repo, capsys, caplog):
    path = write("data/raw/kamus.csv", KAMUS_CSV.encode("cp1252"))
    code, out, err = check(capsys, path)
    assert code == 0, out + err
    assert [line for line in out.splitlines() if line.startswith("encoding:")][0].endswith("cp1252")
    assert f"{path}: {NOTE}" in caplog.messages  # a warning: on stderr outside pytest


def test_a_latin1_line_aligned_pair_is_read_on_both_sides(repo, caplog):
    javanese = ["sugeng énjing", "kula badhé késah", "sampéyan saking pundi", "wédang jahé anget", "dèrèng dhahar"]
    indonesian = ["selamat pagi", "saya mau pergi ke kafé", "Anda dari mana", "minuman jahé hangat", "belum makan"]
    write("data/raw/pair.jv", "".join(line + "\n" for line in javanese).encode("latin-1"))
    write("data/raw/pair.id", "".join(line + "\n" for line in indonesian).encode("latin-1"))
    with caplog.at_level(logging.INFO):
        result = ingest(source("data/raw/pair.jv", pivot_path="data/raw/pair.id"))
    assert pairs(result) == list(zip(javanese, indonesian)) and result.rejects.num_rows == 0
    notes = sorted(record.getMessage() for record in caplog.records if "detected" in record.getMessage())
    assert notes == [f"data/raw/pair.id: {NOTE}", f"data/raw/pair.jv: {NOTE}"]


def test_a_tie_between_code_pages_goes_to_the_languages_own(tmp_path):
    turkish = "Pijamalı hasta yağız şoföre çabucak güvendi.\nGünaydın, nasılsın? Çok iyiyim, teşekkürler.\n"
    (tmp_path / "tr.txt").write_bytes(turkish.encode("iso8859-9"))
    items = read(tmp_path, lang="tr", path="tr.txt")
    assert [item.fields["text"] for item in items if isinstance(item, Row)] == turkish.splitlines()


def test_an_unsure_guess_stops_with_one_line_naming_it(tmp_path):
    # Western text with a euro sign, said to be Czech: cp1250, cp1252 and cp1257 fit it equally well
    # and none is ISO 8859-2, Czech's own code page; reading on would mean picking one blindly.
    (tmp_path / "kamus.csv").write_bytes(KAMUS_CSV.encode("cp1252"))
    with pytest.raises(UserError) as caught:
        read(tmp_path, lang="cs", path="kamus.csv", kind="parallel", pivot_lang="id")
    assert str(caught.value) == ("kamus.csv: not UTF-8; looks like cp1250 (or cp1252, cp1257: the detector cannot "
                                 "tell); pass --encoding cp1250 (or set encoding to cp1250 in its sources.yaml entry)")
    rows = [item for item in read(tmp_path, lang="cs", path="kamus.csv", kind="parallel", pivot_lang="id",
                                  encoding="cp1252") if isinstance(item, Row)]
    assert [(row.fields["text"], row.fields["pivot_text"]) for row in rows] == KAMUS


# --- what stays as it is -------------------------------------------------------------------------


def test_valid_utf8_is_never_reread_as_a_code_page(repo, caplog):
    path = write("data/raw/kamus.csv", KAMUS_CSV.encode("utf-8"))
    with caplog.at_level(logging.INFO):
        result = ingest(source(path))
    assert pairs(result) == KAMUS and not [r for r in caplog.records if "detected" in r.getMessage()]
    assert choose_codec(Path(path), None) == "utf-8"


def test_a_utf8_file_with_one_cp1252_line_keeps_utf8_and_rejects_that_line(repo):
    # read as cp1252 every UTF-8 "é" would become "Ã©": the one foreign line is the reject instead
    content = KAMUS_CSV.encode("utf-8") + "lèmèk,alas\r\n".encode("cp1252")
    result = ingest(source(write("data/raw/mixed.csv", content)))
    assert pairs(result) == KAMUS
    assert result.rejects.select(["origin", "reason"]).to_pylist() == [
        {"origin": "data/raw/mixed.csv:14", "reason": "invalid_utf8"}]


def test_an_explicit_encoding_wins_even_when_it_is_wrong(repo, caplog):
    path = write("data/raw/kamus.csv", KAMUS_CSV.encode("cp1252"))
    with caplog.at_level(logging.INFO):
        result = ingest(source(path, encoding="utf-8"))
    plain = [(text, pivot) for text, pivot in KAMUS if (text + pivot).isascii()]
    assert pairs(result) == plain
    assert set(result.rejects.column("reason").to_pylist()) == {"invalid_utf8"}
    assert result.rejects.num_rows == len(KAMUS) - len(plain)
    assert not [record for record in caplog.records if "detected" in record.getMessage()]
    mojibake = ingest(source(write("data/raw/utf8.csv", KAMUS_CSV.encode("utf-8")), encoding="latin-1"))
    assert pairs(mojibake)[0] == ("CafÃ©", "warung kopi")  # asked for, so given


def test_utf32_with_a_byte_order_mark_is_text(tmp_path):
    (tmp_path / "u32.txt").write_bytes(codecs.BOM_UTF32_LE + "sugeng énjing\nmatur nuwun\n".encode("utf-32-le"))
    items = read(tmp_path, lang="jv", path="u32.txt")
    assert [item.fields["text"] for item in items if isinstance(item, Row)] == ["sugeng énjing", "matur nuwun"]


# --- binary files --------------------------------------------------------------------------------


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(6))) \
        + chunk(b"IEND", b"")


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pairs.tsv", "text\tpivot_text\nsega\tnasi\n" * 50)
    return buffer.getvalue()


BINARIES = {
    "photo.csv": (png_bytes, "it starts with the bytes of a PNG image"),
    "pairs.tsv": (zip_bytes, "it starts with the bytes of a ZIP archive"),
    "vectors.txt": (lambda: struct.pack("<64f", *range(64)), "it has NUL bytes"),  # float32s saved as .txt
}


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_a_binary_file_stops_ingest_with_one_line(repo, name):
    make, what = BINARIES[name]
    path = write(f"data/raw/{name}", make())
    with pytest.raises(UserError) as caught:
        ingest(source(path))
    assert str(caught.value) == f"{path}: not a text file ({what}); check the path"


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_a_binary_file_makes_langfoundry_check_exit_2_with_one_line(repo, capsys, name):
    make, what = BINARIES[name]
    path = write(f"data/raw/{name}", make())
    code, out, err = check(capsys, path)
    assert code == 2 and out == ""
    assert err == f"error: {path}: not a text file ({what}); check the path\n"


def test_a_binary_file_ends_the_ingest_stage_with_one_line(repo):
    path = write("data/raw/photo.csv", png_bytes())
    Path("sources.yaml").write_text(yaml.safe_dump({"sources": [source(path).model_dump(exclude_none=True)]}))
    Path("params.yaml").write_text("{}\n")
    shutil.copytree(REPO / "expectations", "expectations")
    done = subprocess.run([sys.executable, str(REPO / "stages" / "ingest.py")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr == f"error: {path}: not a text file (it starts with the bytes of a PNG image); check the path\n"


def test_text_with_a_nul_character_is_still_text(tmp_path):
    (tmp_path / "odd.txt").write_bytes(b"sugeng\nen\x00jing\n")
    items = read(tmp_path, lang="jv", path="odd.txt")
    assert [item.fields["text"] for item in items if isinstance(item, Row)] == ["sugeng", "en\x00jing"]


# --- files no one on this project wrote ----------------------------------------------------------

# Vim's tutor in legacy encodings, each beside a UTF-8 twin with the same text (vim-runtime ships them).
VIM_TUTORS = sorted(Path("/usr/share/vim").glob("vim*/tutor"))
LEGACY_TUTORS = [("tutor.fr", "fr", "cp1252"), ("tutor.de", "de", "cp1252"), ("tutor.nl", "nl", "cp1252"),
                 ("tutor.pl", "pl", "iso8859-2"), ("tutor.ru.cp1251", "ru", "cp1251"),
                 ("tutor.tr.iso9", "tr", "iso8859-9")]


@pytest.mark.skipif(not VIM_TUTORS, reason="vim-runtime is not installed: no legacy-encoded files to read")
@pytest.mark.parametrize("name, lang, codec", LEGACY_TUTORS)
def test_a_legacy_file_a_package_ships_reads_as_its_utf8_twin(tmp_path, caplog, name, lang, codec):
    folder = VIM_TUTORS[-1]
    twin = folder / (".".join(name.split(".")[:2]) + ".utf-8")
    with caplog.at_level(logging.INFO):
        items = read(tmp_path, lang=lang, path=str(folder / name), format="txt")
    assert not [item for item in items if isinstance(item, BadRow)]
    assert [item.fields["text"] for item in items if isinstance(item, Row)] == twin.read_text("utf-8").splitlines()
    assert any(f"read as {codec} (detected" in record.getMessage() for record in caplog.records)


def _scan_reference(data: bytes) -> tuple[int | None, int, int]:
    """What the UTF-8 scan must find, from one decode of the whole file: (offset of the first byte that is
    not UTF-8, characters over U+007F that decoded, undecodable sequences)."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    first = len(text[:text.index("\ufffd")].encode("utf-8")) if bad else None
    return first, sum(1 for char in text if char > "\x7f") - bad, bad


@pytest.mark.parametrize("seed", range(6))
def test_the_utf8_scan_counts_as_one_decode_of_the_whole_file_does(tmp_path, monkeypatch, seed):
    """Blocks cut inside characters, valid blocks between broken ones, a file that ends mid-character:
    the scan's fast path (whole valid blocks) and its careful one must add up to the same counts."""
    import random

    from langfoundry.data.readers import detect

    chooser = random.Random(seed)
    monkeypatch.setattr(detect, "SCAN_BYTES", chooser.choice([1, 2, 3, 7, 64]))
    pieces = ["omah ", "gedhé ", "മലയാളം ", "😀", "\n", "ꦗꦮ "]
    data = b"".join(chooser.choice(pieces).encode("utf-8") for _ in range(300))
    if seed % 2:  # a few bytes no UTF-8 holds, and a cut character at the end
        for _ in range(3):
            spot = chooser.randrange(len(data))
            data = data[:spot] + bytes([chooser.choice([0x80, 0xC3, 0xE9, 0xFF])]) + data[spot:]
        data += "മ".encode()[:2]
    (tmp_path / "f.txt").write_bytes(data)
    scan = detect._scan_utf8(tmp_path / "f.txt")
    assert (scan.first_invalid, scan.multibyte, scan.invalid) == _scan_reference(data)
