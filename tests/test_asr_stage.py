"""The asr stage on recordings made with espeak-ng and a tiny Whisper built from its config: WAVs, timed segments
ingest reads, the review queue with refused files, and ASR/TTS manifests whose audio paths resolve."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import soundfile
import yaml
from ingest_run import ingest_into

from langfoundry.core.config import load_params, load_sources
from langfoundry.core.inventory import load_inventory
from langfoundry.data.split import group_key
from langfoundry.media.asr import build_tiny_whisper
from langfoundry.media.audio import synthesize_speech

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is absent (make system-deps installs it)")
SENTENCES = {"pasar": "Pagi itu pasar sudah ramai sejak subuh.",
             "sayur": "Ibu Sri membawa dua keranjang sayur dari kebunnya.",
             "pulang": "Menjelang siang, keranjangnya sudah kosong."}


def stage_main():
    spec = importlib.util.spec_from_file_location("stage_asr", REPO / "stages" / "asr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def transcribed(tmp_path_factory):
    root = tmp_path_factory.mktemp("asr-project")
    (root / "data" / "inventory").mkdir(parents=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", root / "data" / "inventory")
    folder = root / "data" / "raw" / "rekaman"
    folder.mkdir(parents=True)
    for name, sentence in SENTENCES.items():
        synthesize_speech(sentence, folder / f"{name}.wav", voice="id")
    (folder / "pasar.txt").write_text(SENTENCES["pasar"] + "\n", encoding="utf-8")  # a person's transcript
    (folder / "kosong.wav").write_bytes(b"")
    (folder / "gambar.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    source = {"id": "rekaman", "kind": "transcription", "lang": "id", "media": "audio", "path": "data/raw/rekaman",
              "speaker": "espeak-id"}
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    params = load_params(REPO / "params.yaml")
    tiny = build_tiny_whisper(root / "tiny-whisper", seed=3)
    media = params.media.model_copy(update={"asr": params.media.asr.model_copy(
        update={"model": str(tiny), "revision": None, "min_avg_logprob": -1000.0})})
    params = params.model_copy(update={"media": media})
    paths = params.paths.under(root)
    metrics = stage_main()(params, paths)
    return root, params, paths, metrics


def test_recordings_become_wavs_and_timed_segments_and_bad_files_are_refused(transcribed):
    root, _, paths, metrics = transcribed
    counts = metrics["sources"]["rekaman"]
    assert (counts["files"], counts["converted"], counts["human_transcripts"]) == (5, 3, 1)
    assert counts["rejected"] == {"empty_file": 1, "wrong_extension": 1}
    review = read_lines(paths.reports / "asr_review" / "queue.jsonl")
    assert {(item["origin"], item["reason"]) for item in review} == {
        ("data/raw/rekaman/kosong.wav", "empty_file"), ("data/raw/rekaman/gambar.wav", "wrong_extension")}
    for name in SENTENCES:
        info = soundfile.info(str(paths.speech / "audio" / "rekaman" / f"data__raw__rekaman__{name}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    records = read_lines(paths.media / "asr" / "rekaman.jsonl")
    assert len(records) == counts["kept"] == counts["segments"] > 0  # every segment kept at this bound
    for record in records:
        recording, span = record["origin"].split("#t=")
        assert record["document"] == f"rekaman:{recording}" and record["engine"] == "asr" and record["confidence"] <= 0
        assert span.count(":") == 4 and "-" in span


def test_manifests_split_by_recording_and_point_at_the_wavs(transcribed):
    _, _, paths, metrics = transcribed
    rows = {split: read_lines(paths.speech / "asr" / f"{split}.jsonl") for split in ("train", "val", "test")}
    every = [row for split_rows in rows.values() for row in split_rows]
    assert sum(metrics["manifests"]["asr"].values()) == len(every) == 3 - metrics["manifests"]["left_out"]
    for row in every:
        assert (paths.speech / "asr" / row["audio_filepath"]).resolve().is_file()
        assert row["lang"] == "id" and 0.5 <= row["duration"] <= 30 and row["text"]
    by_file = {Path(row["audio_filepath"]).name: row for row in every}
    # espeak's clean speech passes every check; the person's transcript wins over what the model heard
    assert by_file["data__raw__rekaman__pasar.wav"]["text"] == SENTENCES["pasar"]
    assert by_file["data__raw__rekaman__sayur.wav"]["text"] != SENTENCES["sayur"]  # the tiny model's noise
    tts = [row for split in ("train", "val", "test") for row in read_lines(paths.speech / "tts" / f"{split}.jsonl")]
    assert sum(metrics["manifests"]["tts"].values()) == len(tts)
    assert all(row["speaker"] == "espeak-id" and 1 <= row["duration"] <= 15 for row in tts)


def test_ingest_reads_the_segments_and_one_recording_is_one_split_group(transcribed, monkeypatch):
    root, params, paths, _ = transcribed
    monkeypatch.chdir(root)
    ingested = ingest_into(root / "data" / "interim", load_sources(paths.sources).sources, params.ingest,
                           load_inventory(paths.inventory))
    rows = ingested.records.to_pylist()
    records = read_lines(paths.media / "asr" / "rekaman.jsonl")
    assert sorted(row["origin"] for row in rows) == sorted(record["origin"] for record in records
                                                          if record["text"].strip())
    groups: dict[str, set] = {}
    for row in rows:
        groups.setdefault(row["origin"].split("#")[0], set()).add(group_key(row["kind"], row["source"], row["text"], row["meta"]))
    assert all(len(keys) == 1 for keys in groups.values())


def test_without_audio_sources_no_model_is_loaded(tmp_path, capsys):
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"id": "kamus", "kind": "dictionary", "lang": "id", "pivot_lang": "en", "path": "data/raw/kamus.csv"}]}))
    params = load_params(REPO / "params.yaml")  # the default model, which is not on this machine
    metrics = stage_main()(params, params.paths.under(tmp_path))
    assert metrics["sources"] == {} and metrics["manifests"]["asr"] == {"train": 0, "val": 0, "test": 0}
    assert "no source has media: audio" in capsys.readouterr().out
    assert (tmp_path / "data" / "speech" / "asr" / "train.jsonl").read_text() == ""


def test_a_hugging_face_audio_data_set_goes_through_the_same_path(tmp_path):
    import datasets

    from langfoundry.data.acquire import acquire_sources

    for name, sentence in SENTENCES.items():
        synthesize_speech(sentence, tmp_path / f"{name}.wav", voice="id")
    names = list(SENTENCES)
    saved = datasets.Dataset.from_dict({"audio": [str(tmp_path / f"{name}.wav") for name in names],
                                        "sentence": [SENTENCES[name] for name in names]})
    saved.cast_column("audio", datasets.Audio(sampling_rate=16000)).save_to_disk(str(tmp_path / "project" / "cv"))
    root = tmp_path / "project"
    source = {"id": "cv-id", "kind": "transcription", "lang": "id", "media": "audio",
              "columns": {"media": "audio", "text": "sentence"}, "acquire": {"huggingface": {"dataset": "cv"}}}
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    acquire_sources(load_sources(root / "sources.yaml").sources, root)
    params = load_params(REPO / "params.yaml")
    tiny = build_tiny_whisper(tmp_path / "tiny-whisper", seed=3)
    media = params.media.model_copy(update={"asr": params.media.asr.model_copy(
        update={"model": str(tiny), "revision": None, "min_avg_logprob": -1000.0})})
    paths = params.paths.under(root)
    metrics = stage_main()(params.model_copy(update={"media": media}), paths)

    counts = metrics["sources"]["cv-id"]
    assert (counts["files"], counts["converted"], counts["human_transcripts"]) == (3, 3, 3)
    rows = [row for split in ("train", "val", "test") for row in read_lines(paths.speech / "asr" / f"{split}.jsonl")]
    assert sorted(row["text"] for row in rows) == sorted(SENTENCES.values())  # the data set's own transcripts
    records = read_lines(paths.media / "asr" / "cv-id.jsonl")
    assert {record["origin"].split("&t=")[0] for record in records} <= {
        f"data/raw/acquired/cv-id/data.parquet#{index}" for index in range(3)}
    assert not (paths.speech / "audio" / ".scratch" / "row.wav").exists()
