"""examples/call-centre: public speech and text data sets routed to their engines (ASR and TTS manifests at 16 kHz
mono, a classification set per labelled task, translation examples), format rerun alone, and the text model through
the registry: shadow traffic beside prod, promotion, rollback."""

from __future__ import annotations

import importlib.util
import io
import json
import sqlite3
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "call-centre"
SPLITS = ("train", "val", "test")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"call_centre_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("call-centre") / "work"
    summary = load("run").main(["--work", str(work)])
    return work, summary


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_speech_reaches_the_asr_manifests_as_16_khz_mono_and_clean_clips_the_tts_manifest(walkthrough):
    work, summary = walkthrough
    data = load("build_data")
    sentences = data.SPEECH_SENTENCES
    clean = {sentence for index, sentence in enumerate(sentences) if index not in data.NOISY}
    # what came in: Common Voice's 48 kHz MP3s
    acquired = pq.read_table(work / "data/raw/acquired/cv-id/data.parquet").to_pylist()
    assert len(acquired) == len(sentences)
    assert {soundfile.info(io.BytesIO(row["audio"]["bytes"])).samplerate for row in acquired} == {48_000}
    # what went out: every clip in the ASR manifests with the data set's own sentence, each WAV 16 kHz mono
    asr = {split: lines(work / "data/speech/asr" / f"{split}.jsonl") for split in SPLITS}
    assert sorted(row["text"] for rows in asr.values() for row in rows) == sorted(sentences)
    assert sum(1 for rows in asr.values() if rows) >= 2, "clips are split by recording, not all in one split"
    for engine in ("asr", "tts"):
        for split in SPLITS:
            for row in lines(work / "data/speech" / engine / f"{split}.jsonl"):
                info = soundfile.info(work / "data/speech" / engine / row["audio_filepath"])
                assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16"), row
                assert abs(info.duration - row["duration"]) < 0.05
    tts = [row for split in SPLITS for row in lines(work / "data/speech/tts" / f"{split}.jsonl")]
    assert sorted(row["text"] for row in tts) == sorted(clean), "only the clips without line hiss make a voice"
    assert {row["speaker"] for row in tts} == {"cv-id-voice-1"}
    assert sorted(summary["speech"]["asr_not_tts"]) == sorted(set(sentences) - clean)
    counts = summary["asr"]
    assert (counts["sources.cv-id.converted"], counts["sources.cv-id.human_transcripts"]) == (12, 12)


def test_each_labelled_task_has_its_own_stratified_classification_set(walkthrough):
    work, summary = walkthrough
    data = load("build_data")
    expected = {"intent": set(data.INTENT_FRAMES), "sentiment": set(data.COMMENT_FRAMES),
                "dialect": {"banyumasan", "indonesian"}}
    root = work / "data/processed/classification"
    assert {path.name for path in root.iterdir() if path.is_dir()} == set(expected)
    fmt = summary["format"]
    minimum = 20
    for task, labels in expected.items():
        files = {split: lines(root / task / f"{split}.jsonl") for split in SPLITS}
        counted = json.loads((root / task / "labels.json").read_text(encoding="utf-8"))["labels"]
        assert set(counted) == labels, task  # ClassLabel numbers became their names
        total = sum(len(rows) for rows in files.values())
        for label in labels:
            per_split = {split: sum(row["label"] == label for row in files[split]) for split in SPLITS}
            assert per_split == counted[label], (task, label)
            assert per_split["train"] >= minimum and per_split["test"] > 0 and per_split["val"] > 0, (task, label)
            label_total = sum(per_split.values())
            assert 0.7 <= per_split["train"] / label_total <= 0.9, (task, label, per_split)
            # stratified: a label's share of train is its share of the whole set
            assert abs(per_split["train"] / len(files["train"]) - label_total / total) < 0.03, (task, label)
        for split in SPLITS:
            assert fmt[f"classification.{task}.{split}"] == len(files[split])
            assert all(row["label"] in labels and row["text"] for row in files[split])
        ids = [row["id"] for rows in files.values() for row in rows]
        assert len(ids) == len(set(ids)), f"{task}: a row in two splits"
    assert {row["lang"] for split in SPLITS for row in lines(root / "dialect" / f"{split}.jsonl")} == {"jv-x-banyumas", "id"}
    gate = summary["classification_gate"]
    assert (gate["expectations.failed"], gate["expectations.passed"]) == (0, gate["expectations.evaluated"])
    assert gate["rows"] == sum(len(labels) for labels in expected.values())
    # labelled rows are routed to the classification sets only: no chat example of the text model holds one
    utterances = {row["text"] for split in SPLITS for row in lines(root / "intent" / f"{split}.jsonl")}
    chats = [message["content"] for split in SPLITS for example in lines(work / "data/processed" / f"{split}.jsonl")
             for message in example["messages"]]
    assert not any(utterance in chat for utterance in utterances for chat in chats)


def test_parallel_text_becomes_translation_examples(walkthrough):
    _, summary = walkthrough
    first, after = summary["translation"]["by_task"], summary["translation_after"]["by_task"]
    assert first["translate_to_pivot"] > 300 and first["translate_from_pivot"] == first["translate_to_pivot"]
    example = summary["translation"]["example"]
    assert example["source"] == "ngapak-pairs"
    assert example["messages"][0]["content"].startswith("Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia")
    assert after.get("translate_from_pivot", 0) == 0 and after["translate_to_pivot"] == first["translate_to_pivot"]


def test_dvc_repro_format_reruns_format_alone(walkthrough):
    _, summary = walkthrough
    assert "format" in summary["first_run"] and "train" in summary["first_run"]
    assert "format" in summary["dry"] and "split" not in summary["dry"]
    alone = summary["format_alone"]
    assert alone["ran"] == ["format"]
    assert {"acquire", "asr", "ingest", "clean", "dedup", "split"} <= set(alone["skipped"])
    assert alone["classification_unchanged"]
    assert {"base", "train", "export"} <= set(summary["second_run"])
    assert not {"acquire", "asr", "ingest", "split", "format"} & set(summary["second_run"])


def test_shadow_promote_and_rollback_through_the_registry(walkthrough):
    work, summary = walkthrough
    v1, v2 = summary["v1"], summary["v2"]
    assert (v1, v2) == ("v0.0.1", "v0.0.2")
    assert summary["promote_refused"], "the tiny model fails its release gate: a plain promotion is refused"
    shadow = summary["shadow"]
    assert shadow["models"] == {"champion": v1, "challenger": v2}
    assert set(shadow["answered"].values()) == {v1}, "in shadow mode every caller is answered by prod"
    callers = len(load("run").CALLERS)
    with sqlite3.connect(work / "data/serve/langfoundry.db") as db:
        logged = dict(((version, role, bool(flag)), count) for version, role, flag, count in db.execute(
            "SELECT model_version, role, shadow, COUNT(*) FROM responses GROUP BY model_version, role, shadow"))
        same_requests = db.execute("SELECT COUNT(DISTINCT request_id) FROM responses").fetchone()[0]
    assert logged == {(v1, "champion", False): callers, (v2, "challenger", True): callers}
    assert same_requests == callers, "each shadow copy is logged under its request's id"
    assert summary["prod_after_promote"] == v2
    assert summary["prod_after_rollback"] == v1
    history = summary["prod_history"]  # the tags record each move and, for a forced one, why
    assert [line.split("  ", 1)[1].split(":")[0] for line in history] == [
        f"promote {v1} to prod", f"{v1} leaves prod", f"promote {v2} to prod", f"{v2} leaves prod", "rollback"]
    assert "forced: release gate failed: relative_gain" in history[0]
    assert history[-1].endswith(f"prod back to {v1} from {v2}")
    from langfoundry.release.registry import resolve

    assert resolve("prod", root=work).version == v1 and resolve("staging", root=work).version == v2
