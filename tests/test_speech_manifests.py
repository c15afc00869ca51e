"""Speech manifests (langfoundry.media.speech_manifests): NeMo-style JSON lines, hash splits that never cut a
recording (or a speaker) in two, and the TTS clip selection with its reasons."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

from langfoundry.core.errors import UserError
from langfoundry.media.audio import convert_audio_or_raise, synthesize_speech
from langfoundry.media.speech_manifests import (
    SpeechClip,
    TtsBounds,
    group_keys,
    select_tts_clips,
    split_of,
    write_speech_manifests,
)


def clips_of(recordings: int, per_recording: int = 4, speakers: int | None = None) -> list[SpeechClip]:
    return [SpeechClip(f"audio/rec{r:04d}-{c}.wav", f"kalimat {r} {c}", 2.5, f"rec{r:04d}", "id",
                       None if speakers is None else f"spk{r % speakers}", 1, 30.0)
            for r in range(recordings) for c in range(per_recording)]


def read_manifests(folder: Path) -> dict[str, list[dict]]:
    return {name: [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
            for name in ("train", "val", "test")}


def test_manifest_lines_are_nemo_style(tmp_path):
    clips = [SpeechClip("a.wav", "selamat pagi", 1.25, "r1", lang="id", speaker="budi"),
             SpeechClip("b.wav", "നമസ്കാരം", 2.0, "r2")]
    counts = write_speech_manifests(clips, tmp_path, {"train": 1.0})
    assert counts == {"train": 2, "val": 0, "test": 0}
    rows = read_manifests(tmp_path)
    assert rows["train"] == [{"audio_filepath": "a.wav", "duration": 1.25, "lang": "id", "speaker": "budi",
                              "text": "selamat pagi"},
                             {"audio_filepath": "b.wav", "duration": 2.0, "text": "നമസ്കാരം"}]  # unknowns left out
    assert rows["val"] == rows["test"] == []
    assert "നമസ്കാരം" in (tmp_path / "train.jsonl").read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_a_recording_never_lands_in_two_splits_and_fractions_hold(tmp_path):
    clips = clips_of(1500)
    counts = write_speech_manifests(clips, tmp_path, {"train": 0.8, "val": 0.1, "test": 0.1})
    assert sum(counts.values()) == len(clips)
    where = defaultdict(set)
    for name, rows in read_manifests(tmp_path).items():
        for row in rows:
            where[row["audio_filepath"].split("-")[0]].add(name)
    assert len(where) == 1500 and all(len(splits) == 1 for splits in where.values())
    recordings = {name: sum(1 for splits in where.values() if name in splits) / 1500 for name in ("train", "val", "test")}
    assert recordings["train"] == pytest.approx(0.8, abs=0.035)
    assert recordings["val"] == pytest.approx(0.1, abs=0.025) and recordings["test"] == pytest.approx(0.1, abs=0.025)


def test_splits_are_deterministic_and_independent_of_order_and_company(tmp_path):
    clips = clips_of(200)
    write_speech_manifests(clips, tmp_path / "a")
    write_speech_manifests(list(reversed(clips)), tmp_path / "b")
    for name in ("train", "val", "test"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
    # adding recordings never moves the ones already placed
    before = {clip.recording: split_of(f"recording:{clip.recording}") for clip in clips}
    keys = group_keys(clips_of(400))
    assert all(split_of(keys[recording]) == split for recording, split in before.items())


def test_grouping_by_speaker_keeps_speakers_and_shared_recordings_together(tmp_path):
    clips = clips_of(300, per_recording=2, speakers=40)
    # a conversation: two speakers in one recording ties them (and all their recordings) into one group
    clips += [SpeechClip("audio/talk-a.wav", "halo", 2.0, "talk", "id", "spk1", 1, 30.0),
              SpeechClip("audio/talk-b.wav", "halo juga", 2.0, "talk", "id", "spk2", 1, 30.0)]
    write_speech_manifests(clips, tmp_path, group_by="speaker")
    by_path = {clip.audio_filepath: clip for clip in clips}
    speaker_splits, recording_splits = defaultdict(set), defaultdict(set)
    for name, rows in read_manifests(tmp_path).items():
        for row in rows:
            speaker_splits[row["speaker"]].add(name)
            recording_splits[by_path[row["audio_filepath"]].recording].add(name)
    assert all(len(splits) == 1 for splits in speaker_splits.values())
    assert all(len(splits) == 1 for splits in recording_splits.values())
    assert speaker_splits["spk1"] == speaker_splits["spk2"] == recording_splits["talk"]
    keys = group_keys(clips, "speaker")
    assert keys["talk"] == keys["rec0001"] == keys["rec0002"] != keys["rec0003"]
    assert len({split for splits in speaker_splits.values() for split in splits}) >= 2  # not all in one split


@pytest.mark.parametrize("fractions", [{"train": 0.8, "val": 0.1}, {"train": 0.9, "dev": 0.1},
                                       {"train": 1.2, "val": -0.2}, {"train": float("nan"), "val": 1.0}])
def test_bad_fractions_are_user_errors(tmp_path, fractions):
    with pytest.raises(UserError, match="split fractions"):
        write_speech_manifests(clips_of(2), tmp_path, fractions)


def test_unknown_grouping_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="group_by"):
        write_speech_manifests(clips_of(2), tmp_path, group_by="language")


def test_tts_selection_keeps_only_clean_single_speaker_clips_within_bounds():
    good = SpeechClip("good.wav", "selamat pagi", 3.0, "r", "id", "budi", 1, 40.0)
    cases = {
        "no speaker": (SpeechClip("a.wav", "x", 3.0, "r", "id", None, 1, 40.0), {"speaker_unknown"}),
        "two speakers": (SpeechClip("b.wav", "x", 3.0, "r", "id", "budi", 2, 40.0), {"not_single_speaker"}),
        "count unknown": (SpeechClip("c.wav", "x", 3.0, "r", "id", "budi", None, 40.0), {"speaker_count_unknown"}),
        "clipped": (SpeechClip("d.wav", "x", 3.0, "r", "id", "budi", 1, 40.0, ("mostly_silent", "clipping")),
                    {"failed_checks:clipping,mostly_silent"}),
        "noisy": (SpeechClip("e.wav", "x", 3.0, "r", "id", "budi", 1, 24.9), {"low_snr"}),
        "snr unknown": (SpeechClip("f.wav", "x", 3.0, "r", "id", "budi", 1, None), {"snr_unknown"}),
        "short": (SpeechClip("g.wav", "x", 0.6, "r", "id", "budi", 1, 40.0), {"too_short"}),
        "long": (SpeechClip("h.wav", "x", 16.0, "r", "id", "budi", 1, 40.0), {"too_long"}),
        "no text": (SpeechClip("i.wav", "  ", 3.0, "r", "id", "budi", 1, 40.0), {"no_text"}),
    }
    selected, rejected = select_tts_clips([good, *(clip for clip, _ in cases.values())])
    assert selected == [good]
    reasons = {reject.clip.audio_filepath: set(reject.reasons) for reject in rejected}
    assert reasons == {clip.audio_filepath: expected for clip, expected in cases.values()}
    # the bounds are parameters
    assert select_tts_clips([cases["long"][0]], TtsBounds(max_seconds=20.0))[0] == [cases["long"][0]]
    assert select_tts_clips([cases["noisy"][0]], TtsBounds(min_snr_db=20.0))[0] == [cases["noisy"][0]]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (sudo apt-get install espeak-ng)")
def test_converted_speech_into_a_manifest_and_the_tts_selection(tmp_path):
    raw = synthesize_speech("Selamat pagi, apa kabar hari ini?", tmp_path / "raw.wav", voice="id")
    clean = convert_audio_or_raise(raw, tmp_path / "clips" / "clean.wav")
    samples, rate = soundfile.read(raw, dtype="float32")
    noisy_raw = tmp_path / "noisy-raw.wav"
    soundfile.write(noisy_raw, samples + np.random.default_rng(4).normal(0, 0.05, samples.size), rate, subtype="FLOAT")
    noisy = convert_audio_or_raise(noisy_raw, tmp_path / "clips" / "noisy.wav")
    clips = [SpeechClip.from_converted(clean, "selamat pagi apa kabar hari ini", "rec1", "id", "espeak", 1),
             SpeechClip.from_converted(noisy, "selamat pagi apa kabar hari ini", "rec2", "id", "espeak", 1)]
    assert clips[0].failed_checks == () and clips[0].duration == pytest.approx(soundfile.info(raw).duration, abs=0.01)
    assert "low_snr" in clips[1].failed_checks
    selected, rejected = select_tts_clips(clips)
    assert selected == [clips[0]] and "low_snr" in rejected[0].reasons
    write_speech_manifests(selected, tmp_path / "tts", {"train": 1.0})
    [row] = read_manifests(tmp_path / "tts")["train"]
    assert soundfile.info(row["audio_filepath"]).samplerate == 16_000 and row["speaker"] == "espeak"
