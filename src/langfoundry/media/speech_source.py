"""An audio source (media: audio) through the speech path: each recording decoded to a 16 kHz mono WAV, checked,
transcribed; text records for ingest, clips for the speech manifests, the unsure and the rejected for people.

A recording's transcript is a text file beside it with the same name (interview.wav and interview.txt) when
there is one, and otherwise what the ASR model heard. The text records take the model's segments (each one
with its time span and confidence), so a recording's text trains the language model either way; the
manifests pair each clip with the human transcript where one exists. A Hugging Face audio data set (acquire
saves it as data.parquet, its Audio column as {bytes, path}) goes the same way, row by row: columns.media names
the audio column ("audio" by default) and columns.text the transcript column.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from langfoundry.core.config import AudioParams, Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers.encoding import read_text
from langfoundry.media.audio import AudioReject, QualityLimits, convert_audio
from langfoundry.media.inputs import media_files, shown_path
from langfoundry.media.speech_manifests import SpeechClip
from langfoundry.media.video import format_timestamp

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".amr", ".aif", ".aiff",
                            ".mp4", ".mkv", ".webm", ".mov"})
DATASET_SUFFIX = ".parquet"  # a Hugging Face audio data set as acquire saves it: an Audio column of {bytes, path}
DATASET_BATCH_ROWS = 32  # rows of a data set read at a time: each holds a whole recording's bytes


@dataclass(frozen=True)
class Recording:
    origin: str  # "data/raw/rekaman/pasar.wav", or "data/raw/acquired/cv/data.parquet#12" for a data set's row
    file: Path | None  # what to decode; None: the row holds no audio
    transcript: str | None  # what a person wrote, where there is one
    wav_name: str  # the WAV's file name under data/speech/audio/<source>/


@dataclass
class SpeechCounts:
    files: int = 0
    converted: int = 0
    audio_seconds: float = 0.0
    segments: int = 0
    kept: int = 0  # segments that became records
    review: int = 0  # segments under the confidence bound
    human_transcripts: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> files
    failed_checks: Counter = field(default_factory=Counter)  # check -> clips (kept out of the manifests)
    notes: Counter = field(default_factory=Counter)  # e.g. low_sample_rate: upsampled, kept

    def as_metrics(self) -> dict[str, Any]:
        return {"files": self.files, "converted": self.converted, "audio_minutes": round(self.audio_seconds / 60, 3),
                "segments": self.segments, "kept": self.kept, "review": self.review,
                "human_transcripts": self.human_transcripts, "rejected": dict(sorted(self.rejected.items())),
                "failed_checks": dict(sorted(self.failed_checks.items())), "notes": dict(sorted(self.notes.items()))}


def limits_of(settings: AudioParams) -> QualityLimits:
    return QualityLimits(min_seconds=settings.min_seconds, max_seconds=settings.max_seconds,
                         max_silence_share=settings.max_silence_share, max_clipping_share=settings.max_clipping_share,
                         min_snr_db=settings.min_snr_db)


def audio_files(source: Source, root: Path) -> list[Path]:
    return media_files(source, root, AUDIO_SUFFIXES | {DATASET_SUFFIX}, "audio files or .parquet data sets")


def recordings(source: Source, root: Path, scratch: Path) -> Iterator[Recording]:
    """Every recording of a source: its audio files, and the rows of its data sets (each row's audio written to
    scratch while it is processed, then removed)."""
    for path in audio_files(source, root):
        shown = shown_path(path, root)
        name = shown.removesuffix(path.suffix).replace("/", "__")
        if path.suffix.lower() != DATASET_SUFFIX:
            yield Recording(shown, path, human_transcript(path), f"{name}.wav")
            continue
        yield from _dataset_rows(source, path, shown, name, scratch)


def _dataset_rows(source: Source, path: Path, shown: str, name: str, scratch: Path) -> Iterator[Recording]:
    import pyarrow.parquet as pq

    audio_column, text_column = source.columns.get("media", "audio"), source.columns.get("text")
    table = pq.ParquetFile(path)
    present = table.schema_arrow.names
    for wanted, field_name, holds in ((audio_column, "media", "audio"), (text_column, "text", "transcript")):
        if wanted is not None and wanted not in present:
            raise UserError(f"{shown}: no column {wanted!r} (its columns: {', '.join(present)}); set columns.{field_name} "
                            f"of source {source.id!r} in sources.yaml to the {holds} column")
    scratch.mkdir(parents=True, exist_ok=True)
    index = 0
    for batch in table.iter_batches(batch_size=DATASET_BATCH_ROWS, columns=[c for c in (audio_column, text_column) if c]):
        for row in batch.to_pylist():
            cell, text = row[audio_column], row.get(text_column) if text_column else None
            audio = cell.get("bytes") if isinstance(cell, dict) else None
            transcript = " ".join(text.split()) if isinstance(text, str) and text.strip() else None
            if not audio:
                yield Recording(f"{shown}#{index}", None, transcript, f"{name}__{index}.wav")
            else:
                suffix = Path(cell.get("path") or "audio.wav").suffix or ".wav"
                file = scratch / f"row{suffix}"
                file.write_bytes(audio)
                yield Recording(f"{shown}#{index}", file, transcript, f"{name}__{index}.wav")
                file.unlink(missing_ok=True)
            index += 1


def human_transcript(recording: Path) -> str | None:
    """interview.txt beside interview.wav: the whole transcript, one line or several, as people wrote it."""
    sidecar = recording.with_suffix(".txt")
    if not sidecar.is_file():
        return None
    text = " ".join(read_text(sidecar, "utf-8", sidecar.name).split())
    return text or None


def speech_source(source: Source, transcriber, settings: AudioParams, min_avg_logprob: float, root: Path,
                  wav_folder: Path, records: IO[str], review: IO[str]) -> tuple[SpeechCounts, list[SpeechClip]]:
    """Every recording of a source: records and review lines (JSON Lines) written, the clips for the manifests
    returned. transcriber(wav_path) -> segments (langfoundry.media.asr.Segment), loaded only if a file converts."""
    counts = SpeechCounts()
    clips: list[SpeechClip] = []
    limits = limits_of(settings)
    for item in recordings(source, root, wav_folder / ".scratch"):
        counts.files += 1
        shown = item.origin
        wav = wav_folder / source.id / item.wav_name
        wav.parent.mkdir(parents=True, exist_ok=True)
        converted = AudioReject(shown, "no_audio", "the row holds no audio bytes; check the data set's audio column") \
            if item.file is None else convert_audio(item.file, wav, target_lufs=settings.target_lufs,
                                                    max_file_seconds=settings.max_file_seconds,
                                                    low_sample_rate=settings.low_sample_rate)
        if isinstance(converted, AudioReject):
            counts.rejected[converted.reason] += 1
            review.write(json.dumps({"source": source.id, "origin": shown, "reason": converted.reason,
                                     "detail": converted.detail}, ensure_ascii=False) + "\n")
            continue
        counts.converted += 1
        counts.audio_seconds += converted.measures.duration_seconds
        for note in converted.notes:
            counts.notes[note.split(":", 1)[0]] += 1
        segments = transcriber(wav)
        recording = f"{source.id}:{shown}"
        heard = []
        for segment in segments:
            counts.segments += 1
            span = f"t={format_timestamp(segment.start)}-{format_timestamp(segment.end)}"
            origin = f"{shown}&{span}" if "#" in shown else f"{shown}#{span}"  # a data set's row: file#row&t=...
            row = {"text": segment.text.strip(), "origin": origin, "document": recording,
                   "confidence": round(segment.avg_logprob, 4), "engine": "asr"}
            if not row["text"]:
                continue
            if segment.avg_logprob >= min_avg_logprob:
                counts.kept += 1
                heard.append(row["text"])
                records.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                counts.review += 1
                review.write(json.dumps({"source": source.id, "reason": "low_confidence", **row}, ensure_ascii=False) + "\n")
        transcript = item.transcript
        counts.human_transcripts += transcript is not None
        clip = SpeechClip.from_converted(converted, transcript or " ".join(heard), recording, source.lang,
                                         source.speaker, 1 if source.speaker else None, limits)
        for check in clip.failed_checks:
            counts.failed_checks[check] += 1
        clips.append(clip)
    return counts, clips
