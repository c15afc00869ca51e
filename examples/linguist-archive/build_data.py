"""The linguist's archive, built offline and the same every time: a dictionary spreadsheet, two scanned pages,
three recordings with her transcripts, and a story with its Indonesian translation that is not sentence-aligned.

Words come from the Banyumasan dictionary package the project installs (banyumasan-corpus 0.1.0, MIT): the
spreadsheet holds 400 of its entries, the scans 40 others, so OCR adds entries rather than copies. The pages are
rendered with Debian's Noto Sans and scanner noise, the recordings spoken by espeak-ng's Indonesian voice (the
nearest it has to Banyumasan). Whisper would need a download, so a tiny Whisper is built from its config
(media.asr.model points at it): its words are noise, and the recordings' transcripts in the speech manifests
are hers.

    python examples/linguist-archive/build_data.py DIR     # writes DIR/data/raw/linguist/ and DIR/models/tiny-whisper/
"""

from __future__ import annotations

import io
import random
import sys
import zipfile
from datetime import datetime
from pathlib import Path

RAW = Path("data/raw/linguist")
WHISPER = Path("models/tiny-whisper")  # git-ignored, like every model folder
SEED = 11
SPREADSHEET_ENTRIES, SCANNED_ENTRIES, LINES_PER_PAGE = 400, 40, 20

# Her recordings: short Banyumasan sentences she read aloud, and what she wrote down for each.
RECORDINGS = {
    "pasar": "Inyong arep maring pasar karo simbok.",
    "udan": "Mau bengi udan gedhe banget nganti kali banjir.",
    "sekolah": "Bocah-bocah wis padha mangkat sekolah esuk-esuk.",
}

# A story she collected, and its translation by another hand: two Banyumasan sentences became one Indonesian
# sentence, one Indonesian sentence was split in two, and the translator left one sentence out.
STORY_BANYUMASAN = """\
Ana bocah cilik jenenge Slamet. Slamet manggon neng desa cedhak gunung Slamet.
Saben esuk dheweke mangkat maring sawah karo bapake. Bapake nandur pari lan jagung.
Sawijining dina udan gedhe banget. Kali neng pinggir desa banjir. Slamet wedi banget, tapi bapake ora wedi.
Bapake ngomong yen banyu mesthi surut maning. Sorene langit wis padhang.
Slamet seneng banget. Dheweke mlayu maring sawah maning karo bapake.
"""
STORY_INDONESIAN = """\
Ada seorang anak kecil bernama Slamet. Slamet tinggal di desa dekat Gunung Slamet.
Setiap pagi dia berangkat ke sawah bersama ayahnya, yang menanam padi dan jagung.
Suatu hari hujan turun sangat deras. Sungai di pinggir desa banjir. Slamet sangat takut. Tetapi ayahnya tidak takut.
Ayahnya berkata bahwa air pasti surut lagi. Sorenya langit sudah cerah.
Dia berlari ke sawah lagi bersama ayahnya.
"""

FIXED_TIME = datetime(2026, 1, 5, 9, 0, 0)


def entries() -> list[tuple[str, str]]:
    from banyumasan_corpus import load_entries

    return [(entry.ngapak, entry.indonesia) for entry in load_entries()]


def chosen_entries() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The spreadsheet's entries and the scanned pages' entries: disjoint, drawn with SEED."""
    everything = entries()
    picked = random.Random(SEED).sample(range(len(everything)), SPREADSHEET_ENTRIES + SCANNED_ENTRIES)
    sheet = sorted(picked[:SPREADSHEET_ENTRIES])
    scanned = sorted(picked[SPREADSHEET_ENTRIES:])
    return [everything[index] for index in sheet], [everything[index] for index in scanned]


def same_bytes_zip(data: bytes) -> bytes:
    """An xlsx (a zip) rewritten with fixed entry times, so the same sheet gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in sorted(source.infolist(), key=lambda item: item.filename):
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 5, 9, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def write_spreadsheet(path: Path, rows: list[tuple[str, str]]) -> None:
    """Her working dictionary: a header, then one entry per row with a notes column; a second sheet of notes."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Kamus"
    sheet.append(["Kata (Banyumasan)", "Arti (Indonesia)", "Catatan"])
    for index, (headword, gloss) in enumerate(rows):
        sheet.append([headword, gloss, "dicek ulang" if index % 37 == 0 else None])
    notes = book.create_sheet("Catatan")
    notes.append(["Kamus Banyumasan-Indonesia, dikumpulkan di Purwokerto dan Cilacap."])
    book.properties.created = book.properties.modified = FIXED_TIME
    book.properties.creator = "linguist"
    buffer = io.BytesIO()
    book.save(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(same_bytes_zip(buffer.getvalue()))


def write_scans(folder: Path, rows: list[tuple[str, str]]) -> list[Path]:
    """Two pages of "headword: gloss" lines as 300-DPI greyscale PNGs with scanner noise."""
    from langfoundry.media.ocr_check import a4_page

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for page, start in enumerate(range(0, len(rows), LINES_PER_PAGE), start=1):
        lines = [f"{headword}: {gloss}" for headword, gloss in rows[start:start + LINES_PER_PAGE]]
        image = a4_page(lines, SEED + page)
        path = folder / f"kamus-halaman-{page}.png"
        image.save(path, format="PNG", dpi=(300, 300), optimize=True)
        written.append(path)
    return written


def write_recordings(folder: Path) -> list[Path]:
    """Each sentence spoken by espeak-ng, with her transcript beside it (pasar.wav and pasar.txt)."""
    from langfoundry.media.audio import synthesize_speech

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, sentence in RECORDINGS.items():
        written.append(synthesize_speech(sentence, folder / f"{name}.wav", voice="id", words_per_minute=140))
        (folder / f"{name}.txt").write_text(sentence + "\n", encoding="utf-8")
    return written


def write_story(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    story, translation = folder / "slamet.jv.txt", folder / "slamet.id.txt"
    story.write_text(STORY_BANYUMASAN, encoding="utf-8")
    translation.write_text(STORY_INDONESIAN, encoding="utf-8")
    return story, translation


def build(root: Path) -> dict[str, list[Path]]:
    """Every input under root (a walkthrough workspace); returns what was written, by media kind."""
    from langfoundry.media.asr import build_tiny_whisper

    root = Path(root)
    sheet_rows, scanned_rows = chosen_entries()
    raw = root / RAW
    write_spreadsheet(raw / "kamus.xlsx", sheet_rows)
    built = {
        "spreadsheet": [raw / "kamus.xlsx"],
        "scans": write_scans(raw / "scans", scanned_rows),
        "recordings": write_recordings(raw / "rekaman"),
        "documents": list(write_story(raw / "cerita")),
    }
    built["asr model"] = [build_tiny_whisper(root / WHISPER, seed=3, languages=("jw", "id"))]
    return built


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for kind, files in build(target).items():
        print(f"{kind}: {', '.join(str(path.relative_to(target)) for path in files)}")
