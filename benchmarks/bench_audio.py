"""Speech path speed on CPU: decode + resample + loudness-normalise + measure + check, and tiny-Whisper ASR, in
seconds per minute of audio, on espeak-ng speech (Indonesian and Malayalam) of about two minutes.

    python benchmarks/bench_audio.py [--minutes 2] [--max-new-tokens 64] [--seed 13]

The tiny Whisper (d_model 64, 2 layers) is random: its figure is the cost of the windowing, feature extraction and
generate loop with a model that small, a floor for real checkpoints, not their speed.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import soundfile

from langfoundry.media.audio import check_clip, convert_audio_or_raise, synthesize_speech

SENTENCES = {
    "id": "Selamat pagi. Nama saya Budi dan saya tinggal di sebuah desa dekat sungai. Setiap hari saya pergi ke sawah "
          "bersama ayah. Ibu memasak nasi dan sayur di dapur. Anak anak bermain di halaman sekolah sampai sore.",
    "ml": "നമസ്കാരം. എന്റെ പേര് രാമൻ. ഞാൻ പുഴയുടെ അടുത്തുള്ള ഒരു ഗ്രാമത്തിൽ താമസിക്കുന്നു. "
          "എല്ലാ ദിവസവും ഞാൻ അച്ഛനോടൊപ്പം വയലിൽ പോകുന്നു. കുട്ടികൾ സ്കൂളിൽ കളിക്കുന്നു.",
}


def speech_of(minutes: float, folder: Path) -> Path:
    """About `minutes` of espeak-ng speech, Indonesian and Malayalam in turn, as one 22.05 kHz WAV."""
    parts, rate, total = [], 22_050, 0.0
    while total < minutes * 60:
        for lang, text in SENTENCES.items():
            samples, rate = soundfile.read(synthesize_speech(text, folder / f"{lang}.wav", voice=lang), dtype="float32")
            parts.append(samples)
            total += len(samples) / rate
    path = folder / "speech.wav"
    soundfile.write(path, np.concatenate(parts), rate)
    return path


def as_mp4(wav: Path) -> Path:
    """The same speech as AAC in an MP4 container, as a phone or camera would give it."""
    samples, rate = soundfile.read(wav, dtype="float32")
    path = wav.with_suffix(".mp4")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, len(samples), 4096):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 4096], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--max-new-tokens", type=int, default=64, help="per 30 s window")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        wav = speech_of(args.minutes, folder)
        minutes = soundfile.info(wav).duration / 60
        print(f"{minutes:.2f} min of espeak-ng speech synthesised in {time.perf_counter() - started:.1f} s")
        rows = []
        for label, source in (("WAV 22.05 kHz", wav), ("AAC in MP4", as_mp4(wav))):
            started = time.perf_counter()
            converted = convert_audio_or_raise(source, folder / f"out-{source.suffix[1:]}.wav")
            failed = check_clip(converted.measures)
            seconds = time.perf_counter() - started
            rows.append((f"decode+resample+normalise+checks, {label}", seconds, minutes,
                         f"{converted.measures.loudness_lufs:.1f} LUFS, SNR {converted.measures.snr_db:.0f} dB, "
                         f"failed: {[check.code for check in failed]}"))
        audio_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        from langfoundry.media.asr import build_tiny_whisper, load_recognizer, transcribe

        recognizer = load_recognizer(build_tiny_whisper(folder / "tiny-whisper", seed=args.seed))
        transcribe(recognizer, folder / "out-wav.wav", language="id", max_new_tokens=4)  # warm-up: lazy imports
        started = time.perf_counter()
        segments = transcribe(recognizer, folder / "out-wav.wav", language="id", max_new_tokens=args.max_new_tokens)
        rows.append((f"tiny-Whisper ASR, {args.max_new_tokens} tokens per 30 s window", time.perf_counter() - started,
                     minutes, f"{len(segments)} segments"))
    print(f"peak memory after the audio steps: {audio_rss:.0f} MiB (the process, before torch was imported)")
    print("| step | seconds | s per min of audio | notes |")
    print("|---|---|---|---|")
    for step, seconds, length, notes in rows:
        print(f"| {step} | {seconds:.2f} | {seconds / length:.3f} | {notes} |")


if __name__ == "__main__":
    main()
