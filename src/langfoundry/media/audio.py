"""Speech audio in: any audio or video file decoded by PyAV, resampled to 16 kHz mono, loudness-normalised, written
as 16-bit PCM WAV, and measured (silence, clipping, SNR) so a clip can be kept or dropped with a reason.

A file that cannot give audio (empty, corrupt, no audio stream, not what its extension says, longer than allowed) is
an AudioReject with a reason and a one-line detail that says how to fix it, never a traceback; a caller that must
stop turns it into a UserError with `as_error()`, as media/pages.py does for page images.

Decoding streams: memory does not grow with the file's length beyond 4 bytes per 20 ms frame for the measures.
Loudness needs the whole file before the gain is known, so the resampled samples go to a float scratch file beside
the output and a second pass applies the gain.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import filetype
import numpy as np
import soundfile
from scipy.signal import sosfilt

from langfoundry.core.errors import UserError
from langfoundry.core.storage import atomic_output, ensure_parent
from langfoundry.media.pages import first_line

TARGET_RATE = 16_000  # what speech models (Whisper, NeMo, wav2vec 2.0) are trained on
DEFAULT_TARGET_LUFS = -23.0  # EBU R128 programme loudness
PEAK_CEILING_DBFS = -1.0  # the gain is lowered rather than letting a peak clip
DEFAULT_MAX_GAIN_DB = 30.0  # a near-silent file is not blown up into loud hiss
DEFAULT_MAX_FILE_SECONDS = 4 * 3600.0  # longer recordings are refused: split them first
DEFAULT_SILENCE_DBFS = -45.0  # a 20 ms frame quieter than this after normalisation counts as silence
CLIP_LEVEL = 0.999  # a source sample at or above this magnitude sits at full scale
FRAME_SECONDS = 0.02
_LOUDNESS_BLOCK_SECONDS = 0.1  # BS.1770 gating blocks are 4 of these (400 ms, 75 % overlap)

# Extensions -> the filetype kinds their bytes may sniff as: MP4-family and Matroska-family names are interchangeable.
_KINDS = {"wav": "wav", "flac": "flac", "mp3": "mp3", "aac": "aac", "ogg oga opus": "ogg", "amr": "amr", "aif aiff": "aiff",
          "avi": "avi", "flv": "flv", "wma wmv": "wmv", "mpg mpeg": "mpg", "mp4 m4a m4v mov 3gp": "mp4 m4a m4v mov 3gp",
          "mkv mka webm": "mkv webm"}
_EXPECTED_KINDS = {f".{ext}": frozenset(kinds.split()) for exts, kinds in _KINDS.items() for ext in exts.split()}


@dataclass(frozen=True)
class AudioReject:
    file: str
    reason: str  # not_found not_readable empty_file unsupported_format wrong_extension corrupt_audio no_audio_stream
    #              no_audio too_long low_sample_rate
    detail: str  # one line: what is wrong and how to fix it

    def as_error(self) -> UserError:
        return UserError(f"{self.file}: {self.detail}")


@dataclass(frozen=True)
class ClipMeasures:
    duration_seconds: float
    source_sample_rate: int
    source_channels: int
    loudness_lufs: float | None  # integrated (BS.1770) before normalisation; None: silent below the -70 LUFS gate
    gain_db: float  # applied to reach the target
    peak_dbfs: float  # after the gain
    silence_share: float  # of 20 ms frames under the silence threshold, after the gain
    clipping_share: float  # of source samples at full scale, before resampling
    snr_db: float | None  # speech over noise floor in the 16 kHz output (noise above 8 kHz is gone); None: < 10 frames


@dataclass(frozen=True)
class ConvertedAudio:
    source: str
    wav_path: str | None  # None when only measured
    measures: ClipMeasures
    notes: tuple[str, ...] = ()  # e.g. "low_sample_rate: ..."; kept, but a reader should know


@dataclass(frozen=True)
class QualityLimits:
    min_seconds: float = 0.5
    max_seconds: float = 30.0  # Whisper's window, and about the longest clip ASR/TTS training batches take well
    max_silence_share: float = 0.5
    max_clipping_share: float = 0.001
    min_snr_db: float = 15.0
    min_source_sample_rate: int = TARGET_RATE  # telephone audio (8 kHz) holds nothing above 4 kHz


@dataclass(frozen=True)
class FailedCheck:
    code: str  # too_short, too_long, mostly_silent, clipping, low_snr, low_sample_rate
    value: float
    limit: float
    detail: str


def convert_audio(source: str | Path, wav_out: str | Path | None, *, target_lufs: float = DEFAULT_TARGET_LUFS,
                  max_file_seconds: float = DEFAULT_MAX_FILE_SECONDS, low_sample_rate: str = "note",
                  silence_dbfs: float = DEFAULT_SILENCE_DBFS, max_gain_db: float = DEFAULT_MAX_GAIN_DB,
                  ) -> ConvertedAudio | AudioReject:
    """Decode source's first audio stream into a 16 kHz mono 16-bit WAV at wav_out (None: measure only).

    low_sample_rate: "note" upsamples a source under 16 kHz and says so in notes; "reject" refuses it."""
    if low_sample_rate not in ("note", "reject"):
        raise ValueError(f"low_sample_rate must be 'note' or 'reject', not {low_sample_rate!r}")
    path = Path(source)
    refused = _refuse_by_name_and_bytes(path, path.as_posix())
    if refused is not None:
        return refused
    # Not named like atomic_output's partial files (".name.*"): it clears those before the second pass reads this.
    scratch = None if wav_out is None else ensure_parent(wav_out).with_name(f".{Path(wav_out).name}-float.partial")
    try:
        return _convert(path, wav_out, scratch, target_lufs, max_file_seconds, low_sample_rate, silence_dbfs, max_gain_db)
    finally:
        if scratch is not None:
            scratch.unlink(missing_ok=True)


def _convert(path: Path, wav_out: str | Path | None, scratch: Path | None, target_lufs: float, max_file_seconds: float,
             low_sample_rate: str, silence_dbfs: float, max_gain_db: float) -> ConvertedAudio | AudioReject:
    shown = path.as_posix()
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        return AudioReject(shown, "corrupt_audio", f"FFmpeg cannot open it ({first_line(err)}); check that the file is "
                                                   "complete and is what its name says, or re-export it")
    with container:
        if not container.streams.audio:
            kinds = ", ".join(sorted({stream.type for stream in container.streams})) or "no streams"
            return AudioReject(shown, "no_audio_stream", f"it has no audio stream ({kinds}); export the recording "
                                                         "with its sound track")
        stream = container.streams.audio[0]
        declared = (float(stream.duration * stream.time_base) if stream.duration is not None and stream.time_base
                    else None if container.duration is None else container.duration / av.time_base)
        if declared is not None and declared > max_file_seconds:  # refused before decoding a single packet
            return _too_long(shown, f"it lasts {_span(declared)}", max_file_seconds)
        rate = stream.codec_context.sample_rate or 0
        notes: list[str] = []
        if 0 < rate < TARGET_RATE:
            detail = (f"recorded at {rate} Hz, under {TARGET_RATE} Hz: upsampling adds nothing above {rate // 2} Hz; "
                      "use the original recording if there is one")
            if low_sample_rate == "reject":
                return AudioReject(shown, "low_sample_rate", detail)
            notes.append(f"low_sample_rate: {detail}")
        try:
            meter = _measure_pass(container, stream, scratch, max_file_seconds)
        except _TooLong:
            return _too_long(shown, "its header gives no duration and decoding ran past the limit", max_file_seconds)
        except (av.error.FFmpegError, ValueError) as err:
            return AudioReject(shown, "corrupt_audio", f"decoding failed ({first_line(err)}); the file is damaged: "
                                                       "re-export or re-record it")
    if meter.samples == 0:
        return AudioReject(shown, "no_audio", "the audio stream holds no samples; check the export")
    measures = _finish_measures(meter, target_lufs, silence_dbfs, max_gain_db, rate or meter.source_rate)
    if scratch is not None:
        _write_with_gain(scratch, Path(wav_out), measures.gain_db)
    return ConvertedAudio(shown, None if wav_out is None else Path(wav_out).as_posix(), measures, tuple(notes))


def convert_audio_or_raise(source: str | Path, wav_out: str | Path | None, **options) -> ConvertedAudio:
    """convert_audio, or UserError (one line) on a reject: for callers that must stop."""
    result = convert_audio(source, wav_out, **options)
    if isinstance(result, AudioReject):
        raise result.as_error()
    return result


def check_clip(measures: ClipMeasures, limits: QualityLimits | None = None) -> list[FailedCheck]:
    """The checks a converted clip fails, each with its code, measured value and limit; [] when it passes."""
    m, lim = measures, limits or QualityLimits()
    snr = math.inf if m.snr_db is None else m.snr_db  # too short to estimate: left to the duration check
    candidates = [
        ("too_short", m.duration_seconds, lim.min_seconds, m.duration_seconds < lim.min_seconds,
         f"{m.duration_seconds:.2f} s is under {lim.min_seconds:g} s"),
        ("too_long", m.duration_seconds, lim.max_seconds, m.duration_seconds > lim.max_seconds,
         f"{m.duration_seconds:.2f} s is over {lim.max_seconds:g} s; segment it"),
        ("mostly_silent", m.silence_share, lim.max_silence_share, m.silence_share > lim.max_silence_share,
         f"{m.silence_share:.0%} of the clip is silence"),
        ("clipping", m.clipping_share, lim.max_clipping_share, m.clipping_share > lim.max_clipping_share,
         f"{m.clipping_share:.2%} of samples sit at full scale: recorded too loud"),
        ("low_snr", snr, lim.min_snr_db, snr < lim.min_snr_db, f"estimated SNR {snr:.1f} dB is under {lim.min_snr_db:g} dB"),
        ("low_sample_rate", m.source_sample_rate, lim.min_source_sample_rate,
         m.source_sample_rate < lim.min_source_sample_rate, f"recorded at {m.source_sample_rate} Hz"),
    ]
    return [FailedCheck(code, float(value), limit, detail) for code, value, limit, failed, detail in candidates if failed]


def synthesize_speech(text: str, wav_out: str | Path, voice: str = "id", words_per_minute: int = 150) -> Path:
    """Speech for text from espeak-ng (22.05 kHz mono WAV): test audio and the default data's stand-in recordings."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise UserError("espeak-ng is not installed; install it with: sudo apt-get install espeak-ng")
    wav_out = Path(wav_out)
    wav_out.parent.mkdir(parents=True, exist_ok=True)
    # Text on stdin, never argv: a line starting with "-" would be read as an option.
    done = subprocess.run([program, "-v", voice, "-s", str(words_per_minute), "-b", "1", "--stdin", "-w", str(wav_out)],
                          input=text.encode("utf-8"), capture_output=True, check=False)
    if done.returncode != 0 or not wav_out.is_file():
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise UserError(f"espeak-ng could not speak voice {voice!r}: {message.splitlines()[0]} "
                        "(espeak-ng --voices lists the installed ones)")
    return wav_out


class _TooLong(Exception):
    pass


def _refuse_by_name_and_bytes(path: Path, shown: str) -> AudioReject | None:
    if not path.is_file():
        return AudioReject(shown, "not_found", "no such file; check the path in sources.yaml")
    if path.stat().st_size == 0:
        return AudioReject(shown, "empty_file", "the file is empty (0 bytes); copy or export it again")
    suffix = path.suffix.lower()
    if suffix not in _EXPECTED_KINDS:
        return AudioReject(shown, "unsupported_format", f"{suffix or 'no extension'} is not an audio or video format "
                                                        "this reads; convert it to WAV or FLAC")
    try:
        kind = filetype.guess(str(path))
    except OSError as err:
        return AudioReject(shown, "not_readable", f"it cannot be read ({first_line(err)}); check its permissions")
    # Unknown bytes go on to FFmpeg, which knows more formats than filetype; known other bytes are refused.
    if kind is None or kind.extension in _EXPECTED_KINDS[suffix]:
        return None
    fix = f"rename it to .{kind.extension}" if f".{kind.extension}" in _EXPECTED_KINDS else "convert it to WAV or FLAC"
    return AudioReject(shown, "wrong_extension", f"named {suffix} but its bytes are a {kind.mime} file; {fix}")


def _too_long(shown: str, what: str, limit: float) -> AudioReject:
    return AudioReject(shown, "too_long", f"{what}, over the {_span(limit)} allowed; split the recording "
                                          "(ffmpeg -f segment) or raise max_file_seconds")


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


class _Meter:
    """Running measures over the resampled 16 kHz signal, one chunk at a time."""

    def __init__(self) -> None:
        self.k_state = np.zeros((2, 2))  # the K-weighting filter's state, carried from chunk to chunk
        self.k_carry = self.frame_carry = np.zeros(0, np.float32)
        self.block_powers: list[np.ndarray] = []
        self.frame_powers: list[np.ndarray] = []
        self.k_energy = self.peak = 0.0
        self.samples = self.source_samples = self.source_clipped = self.source_rate = self.source_channels = 0

    def add(self, chunk: np.ndarray) -> None:
        weighted, self.k_state = sosfilt(_K_WEIGHTING, chunk, zi=self.k_state)
        self.k_energy += float(np.dot(weighted, weighted))
        powers, self.k_carry = _chunk_powers(self.k_carry, weighted, round(TARGET_RATE * _LOUDNESS_BLOCK_SECONDS))
        self.block_powers.append(powers)
        powers, self.frame_carry = _chunk_powers(self.frame_carry, chunk, round(TARGET_RATE * FRAME_SECONDS))
        self.frame_powers.append(powers)
        self.peak = max(self.peak, float(np.max(np.abs(chunk), initial=0.0)))
        self.samples += chunk.size


def _chunk_powers(carry: np.ndarray, chunk: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean squares of the whole `size`-sample blocks in carry + chunk, and what is left over."""
    joined = np.concatenate([carry, chunk.astype(np.float32, copy=False)])
    whole = joined.size // size * size
    blocks = joined[:whole].reshape(-1, size).astype(np.float64)
    return np.mean(blocks * blocks, axis=1).astype(np.float32), joined[whole:]


def _k_weighting_sos(rate: int) -> np.ndarray:
    """BS.1770 K-weighting (high shelf + high pass) for any rate, from its analogue parameters as libebur128 does."""
    shelf_hz, shelf_gain_db, shelf_q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = np.tan(np.pi * shelf_hz / rate)
    vh = 10 ** (shelf_gain_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / shelf_q + k * k
    shelf = [(vh + vb * k / shelf_q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / shelf_q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / shelf_q + k * k) / a0]
    pass_hz, pass_q = 38.13547087602444, 0.5003270373238773
    k = np.tan(np.pi * pass_hz / rate)
    a0 = 1 + k / pass_q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / pass_q + k * k) / a0]
    return np.array([shelf, high_pass])


_K_WEIGHTING = _k_weighting_sos(TARGET_RATE)


def _measure_pass(container: av.container.InputContainer, stream: av.audio.stream.AudioStream, scratch: Path | None,
                  max_file_seconds: float) -> _Meter:
    meter = _Meter()
    writer = None if scratch is None else soundfile.SoundFile(scratch, "w", TARGET_RATE, 1, "FLOAT", format="RF64")
    try:
        for chunk in _decoded_chunks(container, stream, meter):
            meter.add(chunk)
            if writer is not None:
                writer.write(chunk)
            if meter.samples > max_file_seconds * TARGET_RATE:  # the container's duration was missing or wrong
                raise _TooLong
    finally:
        if writer is not None:
            writer.close()
    return meter


def _decoded_chunks(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                    meter: _Meter) -> Iterator[np.ndarray]:
    resampler, layout = None, None
    for frame in container.decode(stream):
        source = frame.to_ndarray()
        meter.source_samples += source.size
        meter.source_clipped += int(np.count_nonzero(np.abs(_as_unit_float(source, frame.format.name)) >= CLIP_LEVEL))
        meter.source_rate = meter.source_rate or frame.sample_rate
        meter.source_channels = meter.source_channels or len(frame.layout.channels)
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if shape != layout:  # a stream may change rate or channels midway: a resampler takes one input shape
            if resampler is not None:
                yield from (out.to_ndarray().reshape(-1) for out in resampler.resample(None))
            resampler, layout = av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE), shape
        frame.pts = None  # timestamps with gaps or jumps would make the resampler pad or drop samples
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1)
    if resampler is not None:
        yield from (out.to_ndarray().reshape(-1) for out in resampler.resample(None))


def _as_unit_float(samples: np.ndarray, sample_format: str) -> np.ndarray:
    """Decoded samples on the -1..1 scale whatever their sample format."""
    base = sample_format.rstrip("p")
    if base == "u8":
        return (samples.astype(np.float32) - 128) / 128
    if base in ("s16", "s32", "s64"):
        return samples.astype(np.float32) / float(2 ** (int(base[1:]) - 1))
    return samples


def _finish_measures(meter: _Meter, target_lufs: float, silence_dbfs: float, max_gain_db: float,
                     source_rate: int) -> ClipMeasures:
    if meter.frame_carry.size and not sum(part.size for part in meter.frame_powers):  # under one frame: still one
        meter.frame_powers.append(np.array([np.mean(meter.frame_carry.astype(np.float64) ** 2)], np.float32))
    loudness = _integrated_loudness(np.concatenate(meter.block_powers), meter.k_energy / meter.samples)
    gain_db = 0.0 if loudness is None else min(target_lufs - loudness, max_gain_db)
    if meter.peak > 0:  # lower the gain rather than clip a peak
        gain_db = min(gain_db, PEAK_CEILING_DBFS - 20 * np.log10(meter.peak))
    frame_db = 10 * np.log10(np.concatenate(meter.frame_powers).astype(np.float64) + 1e-12)
    peak_dbfs = float(20 * np.log10(meter.peak) + gain_db) if meter.peak > 0 else float("-inf")
    return ClipMeasures(meter.samples / TARGET_RATE, source_rate, meter.source_channels, loudness, float(gain_db),
                        peak_dbfs, silence_share=float(np.mean(frame_db + gain_db < silence_dbfs)),
                        clipping_share=meter.source_clipped / max(meter.source_samples, 1), snr_db=estimate_snr_db(frame_db))


def _integrated_loudness(block_powers: np.ndarray, whole_power: float) -> float | None:
    """BS.1770-4 gated loudness of a mono signal from its 100 ms K-weighted mean squares; None if under -70 LUFS."""
    if block_powers.size >= 4:
        gating = np.convolve(block_powers.astype(np.float64), np.full(4, 0.25), mode="valid")
    else:  # under 400 ms: no full gating block, so the whole clip is one
        gating = np.array([whole_power])
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(gating)
    above_absolute = gating[levels > -70.0]
    if above_absolute.size == 0:
        return None
    relative_gate = -0.691 + 10 * np.log10(np.mean(above_absolute)) - 10.0
    kept = gating[(levels > -70.0) & (levels > relative_gate)]
    return float(-0.691 + 10 * np.log10(np.mean(kept)))


def estimate_snr_db(frame_db: np.ndarray) -> float | None:
    """Speech-to-noise ratio from 20 ms frame levels (dB): frames split at the midpoint between the quiet (10th
    percentile) and loud (95th) levels; noise = mean power of the quiet side, speech = the loud side's power minus
    that noise. Needs pauses: with under 6 dB between quiet and loud frames (noise alone, or a sound without
    pauses) there is no noise floor to tell apart, and the estimate is 0 dB. None under 10 frames."""
    if frame_db.size < 10:
        return None
    quiet, loud = np.percentile(frame_db, [10, 95])
    if loud - quiet < 6.0:
        return 0.0
    power = 10 ** (frame_db / 10)
    split = (quiet + loud) / 2
    noise = max(float(np.mean(power[frame_db <= split])), 1e-10)  # -100 dBFS: under 16-bit quantisation noise
    speech = max(float(np.mean(power[frame_db > split])) - noise, 1e-12)
    return float(np.clip(10 * np.log10(speech / noise), -20.0, 100.0))


def _write_with_gain(scratch: Path, wav_out: Path, gain_db: float) -> None:
    factor = np.float32(10 ** (gain_db / 20))
    with atomic_output(wav_out) as partial, soundfile.SoundFile(scratch) as floats, \
            soundfile.SoundFile(partial, "w", TARGET_RATE, 1, "PCM_16", format="WAV") as pcm:
        for block in floats.blocks(blocksize=1 << 18, dtype="float32"):
            pcm.write(np.clip(block * factor, -1.0, 1.0))
