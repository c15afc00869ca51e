"""The ocr and align stages: scans and document pairs in sources.yaml become records ingest reads, with origins
naming page and line or sentences, review queues and rejects with reasons, and measured metrics."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import shutil
from pathlib import Path

import pytest
import yaml
from ingest_run import ingest_into
from PIL import Image
from test_video import text_slide

from langfoundry.core.config import Sources, load_params, load_sources
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.core.strict_yaml import validate_model
from langfoundry.data.acquire import acquire_sources
from langfoundry.media.alignment_eval import perturbed_document, sentence_pairs, usable_entries
from langfoundry.media.ocr import OcrLine
from langfoundry.media.ocr_check import character_error_rate, render_dictionary_pdf
from langfoundry.media.scans import ocr_source

REPO = Path(__file__).resolve().parents[1]
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="the tesseract binary is absent (make system-deps installs it)")


def stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def project(root: Path, sources: list[dict]) -> tuple:
    (root / "data" / "inventory").mkdir(parents=True, exist_ok=True)
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", root / "data" / "inventory")
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, allow_unicode=True), encoding="utf-8")
    params = load_params(REPO / "params.yaml")
    return params, params.paths.under(root)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


SCANS = {"id": "kamus-scan", "kind": "dictionary", "lang": "jv-x-banyumas", "pivot_lang": "id", "media": "scans",
         "separator": ":", "path": "data/raw/scans"}


@needs_tesseract
def test_scans_become_records_with_page_and_line_origins_and_ingest_reads_them(tmp_path, monkeypatch):
    params, paths = project(tmp_path, [SCANS])
    scans = tmp_path / "data" / "raw" / "scans"
    scans.mkdir()
    pages = render_dictionary_pdf(scans / "kamus.pdf", 12, 6, seed=3)
    (scans / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF")
    (scans / "notes.txt").write_text("not a scan", encoding="utf-8")  # skipped: not an image or a PDF
    metrics = stage("ocr")(params, paths)

    records = read_lines(paths.media / "ocr" / "kamus-scan.jsonl")
    expected = [line.split(": ", 1) for page in pages for line in page]
    assert len(records) == len(expected) == 12
    read = "\n".join(f"{record['headword']}: {record['gloss']}" for record in records)
    assert character_error_rate("\n".join(": ".join(pair) for pair in expected), read) <= 0.02  # 'magè' may lose its grave
    assert records[7]["origin"] == "data/raw/scans/kamus.pdf#page=2&line=2"
    counts = metrics["sources"]["kamus-scan"]
    assert (counts["files"], counts["pages"], counts["kept"], counts["review"]) == (2, 2, 12, 0)
    assert counts["rejected"] == {"corrupt_pdf": 1}
    assert json.loads((paths.media / "ocr" / "sources.json").read_text()) == {"kamus-scan": 12}
    review = read_lines(paths.reports / "ocr_review" / "queue.jsonl")
    assert [(item["origin"], item["reason"]) for item in review] == [("data/raw/scans/broken.pdf", "corrupt_pdf")]
    saved = json.loads(paths.metric("ocr").read_text())
    assert saved["check.tesseract.id.cer"] <= 0.02 and saved["check.tesseract.en.chars"] > 0
    assert "check.tesseract.id.image_seconds" not in saved  # a timing: in metrics/timings/ocr.json
    assert json.loads((paths.metrics / "timings" / "ocr.json").read_text())["check.tesseract.id.image_seconds"] > 0

    monkeypatch.chdir(tmp_path)
    ingested = ingest_into(tmp_path / "data" / "interim", load_sources(paths.sources).sources, params.ingest,
                           load_inventory(paths.inventory))
    rows = {row["origin"]: row for row in ingested.records.to_pylist()}
    row = rows["data/raw/scans/kamus.pdf#page=1&line=1"]
    assert (row["text"], row["pivot_text"], row["kind"]) == (records[0]["headword"], records[0]["gloss"], "dictionary")
    assert json.loads(row["meta"])["engine"] == "tesseract"


class ScriptedEngine:
    """An OCR engine that gives the same lines for every page: the stage's own logic, apart from any engine."""
    name = "scripted"

    def __init__(self, lines: list[OcrLine]):
        self.lines = lines

    def recognise(self, image, lang):
        return self.lines


def test_unsure_lines_and_lines_without_a_separator_go_to_review_with_a_crop(tmp_path):
    params, paths = project(tmp_path, [SCANS])
    (tmp_path / "data" / "raw" / "scans").mkdir()
    Image.new("L", (400, 200), 255).save(tmp_path / "data" / "raw" / "scans" / "page.png", dpi=(300, 300))
    engine = ScriptedEngine([OcrLine("sego: nasi", 0.95, (10, 10, 200, 40)),
                             OcrLine("wedang: minuman", 0.40, (10, 50, 220, 80)),  # under min_confidence
                             OcrLine("halaman 3", 0.97, (10, 90, 120, 120)),  # sure, but nothing to split at
                             OcrLine(": kosong", 0.99, (0, 0, 0, 0))])  # an empty side, and no box to crop
    source = load_sources(paths.sources).sources[0]
    records, review = (tmp_path / "records.jsonl").open("w"), (tmp_path / "review.jsonl").open("w")
    with records, review:
        counts = ocr_source(source, engine, 0.6, 300, tmp_path, records, review, tmp_path / "crops")
    assert [(r["headword"], r["gloss"]) for r in read_lines(tmp_path / "records.jsonl")] == [("sego", "nasi")]
    queued = read_lines(tmp_path / "review.jsonl")
    assert [(item["text"], item["reason"]) for item in queued] == [
        ("wedang: minuman", "low_confidence"), ("halaman 3", "no_separator"), (": kosong", "no_separator")]
    assert Image.open(queued[0]["crop"]).size == (226, 46)  # the box and 8 pixels around it
    assert queued[2]["crop"] is None
    assert (counts.kept, counts.review, counts.no_separator, counts.lines) == (1, 3, 2, 4)


def test_without_media_sources_the_stages_say_so_and_write_empty_outputs(tmp_path, capsys):
    params, paths = project(tmp_path, [{"id": "kamus", "kind": "dictionary", "lang": "jv-x-banyumas",
                                        "pivot_lang": "id", "path": "data/raw/kamus.csv"}])
    assert stage("ocr")(params, paths) == {"sources": {}}
    assert (paths.reports / "ocr_review" / "queue.jsonl").read_text() == ""
    assert [path.name for path in (paths.media / "ocr").iterdir()] == ["sources.json"]
    assert json.loads((paths.media / "ocr" / "sources.json").read_text()) == {}
    assert "no source has media: scans" in capsys.readouterr().out


def test_a_scans_folder_without_images_and_a_missing_ocr_output_are_one_line_errors(tmp_path, monkeypatch):
    params, paths = project(tmp_path, [SCANS])
    (tmp_path / "data" / "raw" / "scans").mkdir()
    (tmp_path / "data" / "raw" / "scans" / "readme.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match=r"source 'kamus-scan': no image or PDF files .* in data/raw/scans$"):
        stage("ocr")(params, paths)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"data/interim/media/ocr/kamus-scan.jsonl does not exist; run `dvc repro ocr`"):
        ingest_into(tmp_path / "data" / "interim", load_sources(paths.sources).sources, params.ingest,
                    load_inventory(paths.inventory))


@pytest.mark.parametrize(("extra", "message"), [
    ({"media": "documents", "path": "a.txt"}, "media: documents needs path .* and pivot_path"),
    ({"separator": ":", "path": "a.csv"}, "separator splits OCR lines: it needs media: scans or video"),
    ({"media": "scans", "separator": "", "path": "scans"}, "separator must not be empty"),
    ({"media": "scan", "path": "scans"}, "media"),  # scans, video, audio or documents
])
def test_media_declarations_that_cannot_work_are_refused(extra, message):
    source = {"id": "s", "kind": "parallel", "lang": "jv-x-banyumas", "pivot_lang": "id", **extra}
    with pytest.raises(UserError, match=message):
        validate_model(Sources, {"sources": [source]}, "sources.yaml")


def test_a_render_spec_gives_the_same_pdf_bytes_every_time(tmp_path):
    sources = [{"id": "scan", "kind": "dictionary", "lang": "jv-x-banyumas", "pivot_lang": "id", "media": "scans",
                "separator": ":", "acquire": {"render": {"entries": 8, "lines_per_page": 4, "seed": 1}}}]
    digests = []
    for attempt in ("first", "second"):
        root = tmp_path / attempt
        project(root, sources)
        acquire_sources(load_sources(root / "sources.yaml").sources, root)
        digests.append(hashlib.sha256((root / "data/raw/acquired/scan/pages.pdf").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def dictionary_entries() -> list[tuple[str, str]]:
    from banyumasan_corpus import load_entries

    return [(entry.ngapak, entry.indonesia) for entry in load_entries()]


def test_a_document_pair_becomes_scored_sentence_pairs_and_rejected_links(tmp_path, monkeypatch):
    entries = dictionary_entries()
    pairs = sentence_pairs(usable_entries(entries), 40, random.Random(5))
    document = perturbed_document(pairs, random.Random(6), {"drop_target": 0.1, "merge_target": 0.1})
    raw = tmp_path / "data" / "raw"
    sources = [{"id": "cerita", "kind": "parallel", "lang": "jv-x-banyumas", "pivot_lang": "id", "media": "documents",
                "path": "data/raw/cerita.txt", "pivot_path": "data/raw/cerita.id.txt"},
               {"id": "kamus", "kind": "dictionary", "lang": "jv-x-banyumas", "pivot_lang": "id",
                "path": "data/raw/kamus.jsonl"}]
    params, paths = project(tmp_path, sources)
    (raw / "cerita.txt").write_text(document.source_text, encoding="utf-8")
    (raw / "cerita.id.txt").write_text(document.target_text, encoding="utf-8")
    (raw / "kamus.jsonl").write_text("".join(json.dumps({"headword": h, "gloss": g}) + "\n" for h, g in entries),
                                     encoding="utf-8")
    metrics = stage("align")(params, paths)

    dropped = sum(1 for source, target in document.links if not target)
    counts = metrics["sources"]["cerita"]
    # of 40 sentences, 3 translations dropped and 3 merged: the aligner may take one drop for a merge
    assert dropped == 3 and 2 <= counts["rejected"]["unaligned"] <= dropped
    assert counts["links"].get("2-1", 0) >= 3
    assert counts["accepted"] + sum(counts["rejected"].values()) == sum(counts["links"].values())
    assert counts["source_sentences"] == 40
    records = read_lines(paths.media / "align" / "cerita.jsonl")
    assert all(0.3 <= record["score"] <= 1 and record["text"] and record["pivot_text"] for record in records)
    assert records[0]["origin"].startswith("data/raw/cerita.txt#sentences=1&pivot=1")
    rejects = read_lines(paths.reports / "align" / "rejects.jsonl")
    summary = (paths.reports / "align" / "summary.md").read_text()
    assert f"| cerita | 40 | {counts['target_sentences']} |" in summary and f"unaligned: {len(rejects)}" in summary
    assert {item["reason"] for item in rejects} == {"unaligned"} and all(item["pivot_text"] == "" for item in rejects)
    assert 0.95 <= metrics["check"]["f1"] <= 1.0 and metrics["check"]["gold_links"] > 100

    monkeypatch.chdir(tmp_path)
    ingested = ingest_into(tmp_path / "data" / "interim", load_sources(paths.sources).sources, params.ingest,
                           load_inventory(paths.inventory))
    by_origin = {row["origin"]: row for row in ingested.records.to_pylist()}
    assert by_origin[records[0]["origin"]]["pivot_text"] == records[0]["pivot_text"]
    assert json.loads(by_origin[records[0]["origin"]]["meta"])["link"] == records[0]["link"]


# --- video ---------------------------------------------------------------------------------------------------

SLIDES = [["Pelajaran satu", "Selamat pagi"], ["Pelajaran dua", "Terima kasih banyak"], ["Pelajaran tiga", "Sampai jumpa lagi"]]
LESSON_SRT = ("1\n00:00:01,000 --> 00:00:04,000\nSelamat pagi, anak-anak.\n\n"
              "2\n00:00:12,500 --> 00:00:15,000\n<i>Terima kasih</i>\n")


@needs_tesseract
def test_a_video_gives_one_reading_per_slide_its_subtitles_and_one_split_group(tmp_path, monkeypatch):
    from langfoundry.data.split import group_key
    from langfoundry.media.video import write_video

    source = {"id": "pelajaran", "kind": "ocr", "lang": "id", "media": "video", "path": "data/raw/video"}
    params, paths = project(tmp_path, [source])
    folder = tmp_path / "data" / "raw" / "video"
    folder.mkdir()
    frames = [image for lines in SLIDES for image in [text_slide(lines)] * 20]  # each slide held 10 s at 2 frames/s
    write_video(frames, folder / "lesson.mp4", fps=2)
    (folder / "lesson.srt").write_text(LESSON_SRT, encoding="utf-8")
    (folder / "sound.mp4").write_bytes((tmp_path / "data" / "raw" / "video" / "lesson.mp4").read_bytes()[:2000])
    metrics = stage("ocr")(params, paths)

    counts = metrics["sources"]["pelajaran"]
    assert (counts["videos"], counts["sampled_frames"], counts["kept_frames"], counts["dropped_duplicate_frames"]) \
        == (2, 6, 3, 3)  # 30 s at 0.2 frames/s; the cut-off copy gives none
    assert counts["rejected"] == {"corrupt_video": 1} and counts["subtitle_cues"] == 2
    records = read_lines(paths.media / "ocr" / "pelajaran.jsonl")
    read = [record for record in records if record["engine"] == "tesseract"]
    assert [record["text"] for record in read] == [line for lines in SLIDES for line in lines]
    assert read[2]["origin"] == "data/raw/video/lesson.mp4#t=00:00:10.000&line=1"
    cues = [record for record in records if record["engine"] == "subtitles"]
    assert [(cue["text"], cue["origin"]) for cue in cues] == [
        ("Selamat pagi, anak-anak.", "data/raw/video/lesson.mp4#t=00:00:01.000-00:00:04.000"),
        ("Terima kasih", "data/raw/video/lesson.mp4#t=00:00:12.500-00:00:15.000")]
    review = read_lines(paths.reports / "ocr_review" / "queue.jsonl")
    assert [(item["origin"], item["reason"]) for item in review] == [("data/raw/video/sound.mp4", "corrupt_video")]

    monkeypatch.chdir(tmp_path)
    ingested = ingest_into(tmp_path / "data" / "interim", load_sources(paths.sources).sources, params.ingest,
                           load_inventory(paths.inventory))
    rows = ingested.records.to_pylist()
    assert len(rows) == len(records) == 8
    assert {group_key(row["kind"], row["source"], row["text"], row["meta"]) for row in rows} \
        == {"doc:pelajaran:video:lesson.mp4"}  # frames and cues of one video: one split group


def test_acquire_fetches_listed_videos_with_yt_dlp_and_a_dead_link_is_one_line(tmp_path):
    from langfoundry.media.video import write_video

    lessons = tmp_path / "elsewhere"
    lessons.mkdir()
    write_video([text_slide(lines) for lines in SLIDES for _ in range(4)], lessons / "lesson-1.mp4", fps=2)
    source = {"id": "kelas", "kind": "ocr", "lang": "id", "media": "video",
              "acquire": {"videos": {"urls": [(lessons / "lesson-1.mp4").as_uri()]}}}
    project(tmp_path, [source])
    acquire_sources(load_sources(tmp_path / "sources.yaml").sources, tmp_path)
    fetched = tmp_path / "data" / "raw" / "acquired" / "kelas" / "lesson-1.mp4"
    assert fetched.read_bytes() == (lessons / "lesson-1.mp4").read_bytes()
    provenance = json.loads((fetched.parent / "ACQUIRED.json").read_text())
    assert provenance["files"]["lesson-1.mp4"]["sha256"] == hashlib.sha256(fetched.read_bytes()).hexdigest()

    source["acquire"]["videos"]["urls"] = [(lessons / "missing.mp4").as_uri()]
    project(tmp_path, [source])
    with pytest.raises(UserError, match=r"source 'kelas'.*: cannot fetch file://.*missing\.mp4 \(.*\); check the URL") as error:
        acquire_sources(load_sources(tmp_path / "sources.yaml").sources, tmp_path)
    assert "\n" not in str(error.value)


def test_the_data_and_media_stages_load_no_model_library():
    """The asr stage imports torch only when a recording needs the model; the others never do."""
    import subprocess
    import sys

    stages = ["acquire", "ocr", "asr", "align", "ingest", "clean", "dedup", "split", "format"]
    code = ("import importlib.util, sys\n"
            f"for name in {stages!r}:\n"
            "    spec = importlib.util.spec_from_file_location('stage_' + name, f'stages/{name}.py')\n"
            "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
            "assert not heavy, heavy")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0, completed.stderr[-2000:]
