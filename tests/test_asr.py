"""Speech to text (langfoundry.media.asr) with a tiny random Whisper built offline: the transcripts are noise, so
these check the structure (segments, times inside the clip, confidences), the confidence split and determinism."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from langfoundry.core.errors import UserError
from langfoundry.media.asr import Segment, build_tiny_whisper, load_recognizer, split_by_confidence, transcribe
from langfoundry.media.audio import convert_audio_or_raise, synthesize_speech

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (sudo apt-get install espeak-ng)")

SEED = 7
TOKENS = 16  # per 30 s window: enough for several segments, few enough to stay fast


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("asr")


@pytest.fixture(scope="module")
def tiny(workdir) -> Path:
    return build_tiny_whisper(workdir / "tiny", seed=SEED)


@pytest.fixture(scope="module")
def clips(workdir) -> dict[str, Path]:
    """16 kHz clips as media.audio writes them: Indonesian, Malayalam."""
    texts = {"id": "Selamat pagi, apa kabar? Saya tinggal di desa dekat sungai.",
             "ml": "നമസ്കാരം, സുഖമാണോ? ഞാൻ പുഴയുടെ അടുത്താണ് താമസം."}
    out = {}
    for lang, text in texts.items():
        raw = synthesize_speech(text, workdir / f"{lang}-raw.wav", voice=lang)
        out[lang] = Path(convert_audio_or_raise(raw, workdir / f"{lang}.wav").wav_path)
    return out


def assert_well_formed(segments: list[Segment], duration: float) -> None:
    assert segments, "the tiny model always emits at least one segment per window"
    for segment in segments:
        assert 0.0 <= segment.start <= segment.end <= duration + 1e-6
        assert math.isfinite(segment.avg_logprob) and segment.avg_logprob <= 0.0
        assert segment.tokens >= 1 and isinstance(segment.text, str)
    starts = [segment.start for segment in segments]
    assert starts == sorted(starts)


@pytest.mark.parametrize("lang", ["id", "ml"])
def test_segments_have_times_inside_the_clip_and_finite_confidence(tiny, clips, lang):
    recognizer = load_recognizer(tiny)
    segments = transcribe(recognizer, clips[lang], language=lang, max_new_tokens=TOKENS)
    assert_well_formed(segments, soundfile.info(clips[lang]).duration)
    assert len(segments) >= 2
    assert len({round(segment.avg_logprob, 6) for segment in segments}) >= 2  # confidences differ between segments
    assert set(segments[0].as_dict()) == {"start", "end", "text", "avg_logprob", "tokens"}


def test_language_detection_when_none_is_given(tiny, clips):
    segments = transcribe(load_recognizer(tiny), clips["id"], language=None, max_new_tokens=TOKENS)
    assert_well_formed(segments, soundfile.info(clips["id"]).duration)


def test_same_seed_same_model_and_transcript(tiny, clips, workdir):
    import torch

    again = build_tiny_whisper(workdir / "tiny-again", seed=SEED)
    other = build_tiny_whisper(workdir / "tiny-other", seed=SEED + 1)
    first, second, third = (load_recognizer(folder) for folder in (tiny, again, other))
    weights, same_seed = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(weights[name], same_seed[name]) for name in weights)
    assert not torch.equal(weights["proj_out.weight"], third.model.state_dict()["proj_out.weight"])
    runs = [transcribe(recognizer, clips["id"], language="id", max_new_tokens=TOKENS) for recognizer in (first, second)]
    assert runs[0] == runs[1]  # built apart, loaded apart: the same segments, times and confidences
    assert transcribe(third, clips["id"], language="id", max_new_tokens=TOKENS) != runs[0]


def test_long_recording_is_read_window_by_window(tiny, clips, workdir):
    speech, rate = soundfile.read(clips["ml"], dtype="float32")
    long = np.concatenate([speech, np.zeros(int(31 * rate), np.float32), speech, np.zeros(int(27 * rate), np.float32)])
    soundfile.write(workdir / "long.wav", long, rate, subtype="PCM_16")
    duration = len(long) / rate
    segments = transcribe(load_recognizer(tiny), workdir / "long.wav", language="ml", max_new_tokens=16)
    assert_well_formed(segments, duration)
    windows = {int(segment.start // 30) for segment in segments}
    assert windows == {0, 1, 2}  # 30 s windows: 0-30, 30-60, 60-end, each transcribed with its own offset
    assert all(segment.end <= (int(segment.start // 30) + 1) * 30 + 1e-6 for segment in segments)


def test_split_by_confidence():
    segments = [Segment(0.0, 1.0, "a", -0.2, 3), Segment(1.0, 2.0, "b", -1.5, 4), Segment(2.0, 3.0, "c", -0.7, 2),
                Segment(3.0, 4.0, "d", -0.7, 2)]
    kept, review = split_by_confidence(segments, min_avg_logprob=-0.7)
    assert [segment.text for segment in kept] == ["a", "c", "d"]  # at the bound is kept
    assert [segment.text for segment in review] == ["b"]
    assert split_by_confidence(segments, -math.inf) == (segments, [])
    assert split_by_confidence(segments, 0.0) == ([], segments)


def test_split_of_real_segments_by_their_median(tiny, clips):
    segments = transcribe(load_recognizer(tiny), clips["ml"], language="ml", max_new_tokens=TOKENS)
    bound = float(np.median([segment.avg_logprob for segment in segments]))
    kept, review = split_by_confidence(segments, bound)
    assert kept and len(kept) + len(review) == len(segments)
    assert all(segment.avg_logprob >= bound for segment in kept) and all(s.avg_logprob < bound for s in review)


def test_folder_works_with_the_transformers_pipeline(tiny, clips):
    from transformers import pipeline

    recognizer = pipeline("automatic-speech-recognition", model=str(tiny), device="cpu")
    samples, rate = soundfile.read(clips["id"], dtype="float32")
    result = recognizer({"raw": samples, "sampling_rate": rate}, return_timestamps=True,
                        generate_kwargs={"language": "id", "max_new_tokens": 16})
    assert isinstance(result["text"], str) and isinstance(result["chunks"], list)


def test_model_references_that_are_refused(tmp_path):
    with pytest.raises(UserError, match="commit hash"):
        load_recognizer("openai/whisper-tiny")
    with pytest.raises(UserError, match="commit hash"):
        load_recognizer("openai/whisper-tiny", revision="main")  # a branch moves
    from transformers import BertConfig

    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
               intermediate_size=8).save_pretrained(tmp_path / "bert")
    with pytest.raises(UserError, match="bert model; only Whisper"):
        load_recognizer(tmp_path / "bert")


def test_audio_must_be_a_16k_mono_wav(tiny, tmp_path):
    recognizer = load_recognizer(tiny)
    soundfile.write(tmp_path / "cd.wav", np.zeros((44_100, 2), np.float32), 44_100)
    with pytest.raises(UserError, match="convert it to 16 kHz mono"):
        transcribe(recognizer, tmp_path / "cd.wav")
    (tmp_path / "text.wav").write_text("not audio", encoding="utf-8")
    with pytest.raises(UserError, match="cannot be read as a WAV"):
        transcribe(recognizer, tmp_path / "text.wav")


def test_importing_the_media_modules_loads_neither_torch_nor_transformers():
    code = ("import sys, langfoundry.media.asr, langfoundry.media.audio, langfoundry.media.speech_manifests; "
            "print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
