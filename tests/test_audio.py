"""Speech audio in (langfoundry.media.audio): espeak-ng speech in Indonesian and Malayalam, numpy-built signals with
known loudness, clipping, silence and SNR, audio inside video containers, and every kind of bad file."""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from langfoundry.core.errors import UserError
from langfoundry.media import audio
from langfoundry.media.audio import (
    AudioReject,
    ConvertedAudio,
    QualityLimits,
    check_clip,
    convert_audio,
    convert_audio_or_raise,
    estimate_snr_db,
    synthesize_speech,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (sudo apt-get install espeak-ng)")

SPEECH = {
    "id": "Selamat pagi. Nama saya Budi, saya tinggal di sebuah desa dekat sungai. Hari ini kami pergi ke pasar.",
    "ml": "നമസ്കാരം. എന്റെ പേര് രാമൻ. ഞാൻ പുഴയുടെ അടുത്തുള്ള ഒരു ഗ്രാമത്തിൽ താമസിക്കുന്നു.",
}
RATE = 16_000


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (sudo apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("speech")
    return {lang: synthesize_speech(text, folder / f"{lang}.wav", voice=lang) for lang, text in SPEECH.items()}


def converted(source: Path, out: Path | None, **options) -> ConvertedAudio:
    result = convert_audio(source, out, **options)
    assert isinstance(result, ConvertedAudio), result
    return result


def rejected(source: Path, reason: str, **options) -> AudioReject:
    result = convert_audio(source, source.with_name("rejected.wav"), **options)
    assert isinstance(result, AudioReject), result
    assert result.reason == reason, result
    error = result.as_error()
    assert isinstance(error, UserError) and source.name in str(error) and "\n" not in str(error)
    assert not source.with_name("rejected.wav").exists()
    return result


def tone(seconds: float, rate: int = RATE, amplitude: float = 0.5, hz: float = 997.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_av(path: Path, samples: np.ndarray | None, rate: int, audio_codec: str = "aac", video: bool = True) -> Path:
    """A container with a small video stream and/or a mono audio stream, written by PyAV."""
    with av.open(str(path), "w") as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        sound = None if samples is None else out.add_stream(audio_codec, rate=rate, layout="mono")
        seconds = 2.0 if samples is None else len(samples) / rate
        for index in range(int(seconds * 10)) if picture else ():
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 9 % 255, np.uint8), format="rgb24")
            out.mux(picture.encode(frame))
        if sound is not None:
            for start in range(0, len(samples), 4096):
                frame = av.AudioFrame.from_ndarray(samples[None, start:start + 4096], format="flt", layout="mono")
                frame.sample_rate, frame.pts = rate, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
        if picture:
            out.mux(picture.encode(None))
    return path


# --- speech ---------------------------------------------------------------------------------------------------


@needs_espeak
@pytest.mark.parametrize("lang", ["id", "ml"])
def test_espeak_speech_becomes_16k_mono_pcm_at_target_loudness(speech, tmp_path, lang):
    source = speech[lang]
    result = converted(source, tmp_path / "clip.wav")
    info = soundfile.info(result.wav_path)
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    assert info.duration == pytest.approx(soundfile.info(source).duration, abs=0.01)
    assert result.measures.source_sample_rate == 22_050 and result.notes == ()
    remeasured = converted(Path(result.wav_path), None).measures
    assert remeasured.loudness_lufs == pytest.approx(-23.0, abs=0.3)
    assert remeasured.gain_db == pytest.approx(0.0, abs=0.3)
    # espeak pauses between words are digital silence: clean, some silence, nothing at full scale
    assert result.measures.snr_db > 40
    assert 0.05 < result.measures.silence_share < 0.5
    assert result.measures.clipping_share == 0.0
    assert check_clip(result.measures) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.wav"]  # the float scratch file is gone


@needs_espeak
def test_target_loudness_is_a_parameter(speech, tmp_path):
    result = converted(speech["id"], tmp_path / "quiet.wav", target_lufs=-30.0)
    assert converted(tmp_path / "quiet.wav", None).measures.loudness_lufs == pytest.approx(-30.0, abs=0.3)
    assert result.measures.gain_db == pytest.approx(-30.0 - result.measures.loudness_lufs, abs=1e-6)


@needs_espeak
@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "aac"), (".mkv", "libopus"), (".mkv", "flac")])
def test_speech_inside_a_video_container(speech, tmp_path, suffix, codec):
    samples, rate = soundfile.read(speech["ml"], dtype="float32")
    rate_for_codec = 48_000 if codec == "libopus" else rate  # Opus runs at 48 kHz only
    if rate_for_codec != rate:
        samples = np.interp(np.arange(0, len(samples), rate / rate_for_codec), np.arange(len(samples)), samples)
        samples = samples.astype(np.float32)
    video = write_av(tmp_path / f"film{suffix}", samples, rate_for_codec, codec)
    result = converted(video, tmp_path / "out.wav")
    assert result.measures.duration_seconds == pytest.approx(len(samples) / rate_for_codec, abs=0.1)
    assert result.measures.source_sample_rate == rate_for_codec
    assert check_clip(result.measures) == []


def test_stereo_48k_is_downmixed_and_resampled(tmp_path):
    stereo = np.stack([tone(2.0, 48_000), tone(2.0, 48_000, hz=440.0)], axis=1)
    soundfile.write(tmp_path / "stereo.flac", stereo, 48_000)
    result = converted(tmp_path / "stereo.flac", tmp_path / "mono.wav")
    samples, rate = soundfile.read(result.wav_path)
    assert rate == 16_000 and samples.ndim == 1 and len(samples) == pytest.approx(32_000, abs=16)
    assert result.measures.source_channels == 2


# --- loudness, clipping, silence, SNR -------------------------------------------------------------------------


def test_loudness_of_a_sine_matches_bs1770(tmp_path):
    # BS.1770: a 997 Hz sine at 0 dBFS peak in one channel reads -3.01 LUFS; half the amplitude is 6.02 dB lower
    soundfile.write(tmp_path / "sine.wav", tone(3.0, 48_000, amplitude=0.5), 48_000, subtype="FLOAT")
    assert converted(tmp_path / "sine.wav", None).measures.loudness_lufs == pytest.approx(-9.03, abs=0.15)


def test_gain_stops_short_of_clipping_a_peak(tmp_path):
    quiet = tone(3.0, amplitude=0.01)
    quiet[RATE::RATE // 2] = 0.9  # clicks: high peaks, little loudness
    soundfile.write(tmp_path / "clicks.wav", quiet, RATE)
    result = converted(tmp_path / "clicks.wav", tmp_path / "out.wav")
    samples, _ = soundfile.read(result.wav_path)
    assert np.max(np.abs(samples)) <= 10 ** (audio.PEAK_CEILING_DBFS / 20) + 2 / 32768
    assert result.measures.gain_db == pytest.approx(audio.PEAK_CEILING_DBFS - 20 * np.log10(0.9), abs=0.05)
    assert result.measures.loudness_lufs + result.measures.gain_db < -23.0  # short of the target: the peak won


def test_clipped_tone_fails_the_clipping_check(tmp_path):
    soundfile.write(tmp_path / "clipped.wav", np.clip(tone(2.0, amplitude=2.0), -1, 1), RATE)
    soundfile.write(tmp_path / "clean.wav", tone(2.0, amplitude=0.5), RATE)
    clipped = converted(tmp_path / "clipped.wav", None).measures
    assert clipped.clipping_share > 0.5  # a sine at twice full scale spends 2/3 of its time clipped
    assert [check.code for check in check_clip(clipped) if check.code == "clipping"] == ["clipping"]
    assert converted(tmp_path / "clean.wav", None).measures.clipping_share == 0.0


def test_silence_is_mostly_silent_and_left_alone(tmp_path):
    soundfile.write(tmp_path / "silence.wav", np.zeros(3 * RATE, np.float32), RATE)
    result = converted(tmp_path / "silence.wav", tmp_path / "out.wav")
    assert result.measures.loudness_lufs is None and result.measures.gain_db == 0.0
    assert result.measures.silence_share == 1.0
    failed = {check.code: check for check in check_clip(result.measures)}
    assert "mostly_silent" in failed and failed["mostly_silent"].value == 1.0
    assert not np.any(soundfile.read(result.wav_path)[0])


def bursts_in_noise(snr_db: float, seed: int = 5) -> np.ndarray:
    """One second of tone, one of pause, over white noise whose power is snr_db under the tone's."""
    signal = np.concatenate([tone(1.0, amplitude=0.3), np.zeros(RATE, np.float32)] * 4)
    noise_power = 0.3 ** 2 / 2 / 10 ** (snr_db / 10)
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(noise_power), signal.size)
    return (signal + noise).astype(np.float32)


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 35.0])
def test_snr_estimate_is_within_a_few_db(tmp_path, snr_db):
    soundfile.write(tmp_path / "noisy.wav", bursts_in_noise(snr_db), RATE, subtype="FLOAT")
    assert converted(tmp_path / "noisy.wav", None).measures.snr_db == pytest.approx(snr_db, abs=2.0)


@needs_espeak
def test_noisy_speech_fails_the_snr_check(speech, tmp_path):
    samples, rate = soundfile.read(speech["id"], dtype="float32")
    power = np.mean(samples[np.abs(samples) > 0.01] ** 2)
    estimates = {}
    for snr_db in (5.0, 30.0):
        noise = np.random.default_rng(1).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), samples.size)
        soundfile.write(tmp_path / f"{snr_db}.wav", samples + noise, rate, subtype="FLOAT")
        measures = converted(tmp_path / f"{snr_db}.wav", None).measures
        estimates[snr_db] = measures.snr_db
        assert ("low_snr" in [check.code for check in check_clip(measures)]) == (snr_db < 15)
    assert estimates[30.0] - estimates[5.0] > 15


def test_snr_of_noise_alone_is_zero_and_of_a_few_frames_unknown():
    levels = 10 * np.log10(np.random.default_rng(2).chisquare(320, 200) / 320 * 1e-3)
    assert estimate_snr_db(levels) == 0.0
    assert estimate_snr_db(levels[:5]) is None


def test_duration_bounds(tmp_path):
    soundfile.write(tmp_path / "short.wav", tone(0.3), RATE)
    soundfile.write(tmp_path / "long.wav", tone(4.0), RATE)
    limits = QualityLimits(min_seconds=0.5, max_seconds=3.0)
    short = check_clip(converted(tmp_path / "short.wav", None).measures, limits)
    assert [(check.code, round(check.value, 2), check.limit) for check in short if "too" in check.code] == [
        ("too_short", 0.3, 0.5)]
    long = check_clip(converted(tmp_path / "long.wav", None).measures, limits)
    assert [check.code for check in long if "too" in check.code] == ["too_long"]


# --- bad input ------------------------------------------------------------------------------------------------


def test_missing_and_zero_length_files(tmp_path):
    assert rejected(tmp_path / "absent.wav", "not_found")
    (tmp_path / "empty.wav").write_bytes(b"")
    assert "0 bytes" in rejected(tmp_path / "empty.wav", "empty_file").detail


def test_wav_with_no_samples(tmp_path):
    soundfile.write(tmp_path / "header-only.wav", np.zeros(0, np.float32), RATE)
    rejected(tmp_path / "header-only.wav", "no_audio")


def test_video_without_an_audio_stream(tmp_path):
    reject = rejected(write_av(tmp_path / "silent-film.mp4", None, RATE), "no_audio_stream")
    assert "video" in reject.detail


def test_corrupt_files(tmp_path):
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(3).bytes(5000))
    rejected(tmp_path / "noise.wav", "corrupt_audio")
    # a RIFF/WAVE header whose format chunk is garbage
    (tmp_path / "bad-fmt.wav").write_bytes(b"RIFF" + struct.pack("<I", 1036) + b"WAVEfmt " + struct.pack("<I", 16)
                                           + b"\xff" * 16 + b"data" + struct.pack("<I", 1000) + b"\x00" * 1000)
    rejected(tmp_path / "bad-fmt.wav", "corrupt_audio")
    # an MP4 cut in half before its index (the moov atom PyAV writes at the end)
    whole = write_av(tmp_path / "whole.mp4", tone(3.0), RATE).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    rejected(tmp_path / "cut.mp4", "corrupt_audio")


def test_files_that_are_not_what_their_extension_says(tmp_path):
    soundfile.write(tmp_path / "real.wav", tone(1.0), RATE)
    (tmp_path / "named.mp3").write_bytes((tmp_path / "real.wav").read_bytes())
    assert "rename it to .wav" in rejected(tmp_path / "named.mp3", "wrong_extension").detail
    soundfile.write(tmp_path / "real.flac", tone(1.0), RATE)
    (tmp_path / "named.ogg").write_bytes((tmp_path / "real.flac").read_bytes())
    assert "rename it to .flac" in rejected(tmp_path / "named.ogg", "wrong_extension").detail
    (tmp_path / "photo.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert "image/png" in rejected(tmp_path / "photo.wav", "wrong_extension").detail
    (tmp_path / "notes.txt").write_text("not audio", encoding="utf-8")
    rejected(tmp_path / "notes.txt", "unsupported_format")
    # an MP4 named .m4a is the same container family: accepted
    write_av(tmp_path / "speech.m4a", tone(1.0), RATE, video=False)
    converted(tmp_path / "speech.m4a", None)


def test_8khz_is_upsampled_with_a_note_or_refused(tmp_path):
    soundfile.write(tmp_path / "phone.wav", tone(2.0, 8_000, hz=440.0), 8_000)
    result = converted(tmp_path / "phone.wav", tmp_path / "out.wav")
    assert soundfile.info(result.wav_path).samplerate == 16_000
    assert soundfile.info(result.wav_path).duration == pytest.approx(2.0, abs=0.01)
    assert len(result.notes) == 1 and result.notes[0].startswith("low_sample_rate: recorded at 8000 Hz")
    failed = [check for check in check_clip(result.measures) if check.code == "low_sample_rate"]
    assert [(check.value, check.limit) for check in failed] == [(8000, 16000)]
    relaxed = check_clip(result.measures, QualityLimits(min_source_sample_rate=8000))
    assert "low_sample_rate" not in [check.code for check in relaxed]
    rejected(tmp_path / "phone.wav", "low_sample_rate", low_sample_rate="reject")


def flac_declaring(path: Path, total_samples: int, seconds: float = 5.0) -> Path:
    """A FLAC file of `seconds` of tone whose STREAMINFO header declares total_samples (0: unknown)."""
    soundfile.write(path, tone(seconds), RATE)
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC"
    fields = int.from_bytes(data[18:26], "big")  # rate (20 bits), channels (3), bits (5), total samples (36)
    data[18:26] = (fields & ~((1 << 36) - 1) | total_samples).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path


def test_eight_hour_file_is_refused_without_decoding_it(tmp_path):
    # 5 s of FLAC whose header declares 8 h: 80 kB on disk instead of 920 MB
    eight_hours = flac_declaring(tmp_path / "eight-hours.flac", 8 * 3600 * RATE)
    started = time.perf_counter()
    reject = rejected(eight_hours, "too_long")
    assert time.perf_counter() - started < 1.0
    assert reject.detail.startswith("it lasts 8.0 h, over the 4.0 h allowed")
    assert isinstance(convert_audio(eight_hours, None, max_file_seconds=9 * 3600), ConvertedAudio)  # bound, not size


def test_file_without_a_declared_duration_is_stopped_while_decoding(tmp_path):
    unknown = flac_declaring(tmp_path / "unknown.flac", 0)
    assert "decoding ran past the limit, over the 2.0 s allowed" in rejected(unknown, "too_long", max_file_seconds=2.0).detail
    assert sorted(path.name for path in tmp_path.iterdir()) == ["unknown.flac"]  # no scratch file left behind
    assert converted(unknown, None).measures.duration_seconds == pytest.approx(5.0, abs=0.01)


def test_or_raise_gives_a_one_line_user_error(tmp_path):
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.flac: the file is empty"):
        convert_audio_or_raise(tmp_path / "empty.flac", tmp_path / "out.wav")


# --- espeak-ng ------------------------------------------------------------------------------------------------


def test_missing_espeak_is_a_one_line_error_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with pytest.raises(UserError) as caught:
        synthesize_speech("halo", tmp_path / "x.wav")
    assert "apt-get install espeak-ng" in str(caught.value) and "\n" not in str(caught.value)


@needs_espeak
def test_unknown_espeak_voice_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="voice 'xx-nonexistent'"):
        synthesize_speech("halo", tmp_path / "x.wav", voice="xx-nonexistent")


@needs_espeak
def test_text_starting_with_a_dash_is_spoken_not_parsed(tmp_path):
    out = synthesize_speech("-v selamat pagi", tmp_path / "dash.wav")
    assert soundfile.info(out).duration > 0.5
