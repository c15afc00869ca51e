"""A video source (media: video) to text: sampled frames through OCR, and the subtitles beside each video.

Frames are sampled at media.video.fps and a frame too like the last kept one is dropped (media.video), so a
slide shown for a minute is read once. Each kept frame goes through the OCR engine as a scan page does; with
media.video.subtitles, lesson.srt or lesson.<lang>.vtt beside lesson.mp4 gives one record per cue. Every
record names its video and time in its origin, and carries the video's split group as its "document", so
no video has frames or cues in both train and test.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from langfoundry.core.config import Source, VideoParams
from langfoundry.media.inputs import media_files, shown_path
from langfoundry.media.ocr import OcrEngine
from langfoundry.media.scans import ocr_language, record_fields
from langfoundry.media.subtitles import find_subtitles, pair_cues_with_video, read_subtitles
from langfoundry.media.video import VIDEO_SUFFIXES, VideoFrame, frame_group, sample_video, video_origin


@dataclass
class VideoCounts:
    videos: int = 0
    sampled: int = 0  # frames taken at the sampling rate
    kept_frames: int = 0  # after near-duplicates were dropped
    dropped_duplicate: int = 0
    lines: int = 0
    kept: int = 0  # records from frames
    review: int = 0
    subtitle_cues: int = 0  # records from subtitles
    rejected: Counter = field(default_factory=Counter)  # reason -> videos
    seconds: float = 0.0

    def as_metrics(self) -> dict:
        return {"videos": self.videos, "sampled_frames": self.sampled, "kept_frames": self.kept_frames,
                "dropped_duplicate_frames": self.dropped_duplicate, "lines": self.lines, "kept": self.kept,
                "review": self.review, "subtitle_cues": self.subtitle_cues, "rejected": dict(sorted(self.rejected.items())),
                "frame_seconds": round(self.seconds / self.kept_frames, 3) if self.kept_frames else None}


def video_files(source: Source, root: Path) -> list[Path]:
    return media_files(source, root, VIDEO_SUFFIXES, "video files")


def ocr_video_source(source: Source, engine: OcrEngine, min_confidence: float, settings: VideoParams, root: Path,
                     records: IO[str], review: IO[str], frames: Path | None = None) -> VideoCounts:
    """Frames and subtitles of every video of a source: records to `records`, unsure lines and rejected videos
    to `review` (JSON Lines); the counts. With `frames`, each kept frame is saved there too (keep_frame)."""
    counts = VideoCounts()
    lang = ocr_language(source)
    for path in video_files(source, root):
        counts.videos += 1
        shown = shown_path(path, root)
        group = frame_group(path)
        sampled = sample_video(path, settings.fps, settings.dedup_similarity)
        if sampled.reject is not None:
            counts.rejected[sampled.reject.reason] += 1
            review.write(json.dumps({"source": source.id, "origin": shown, "reason": sampled.reject.reason,
                                     "detail": sampled.reject.detail}, ensure_ascii=False) + "\n")
        counts.sampled += sampled.sampled
        counts.kept_frames += sampled.kept
        counts.dropped_duplicate += sampled.dropped_duplicate
        for frame in sampled.frames:
            started = time.perf_counter()
            lines = engine.recognise(frame.image.convert("L"), lang)
            counts.seconds += time.perf_counter() - started
            origin = video_origin(shown, frame.timestamp)
            if frames is not None:
                keep_frame(frame, origin, frames, source.id)
            for number, line in enumerate(lines, start=1):
                counts.lines += 1
                fields = record_fields(source, line.text) if line.confidence >= min_confidence else None
                row = {"origin": f"{origin}&line={number}", "document": group, "confidence": round(line.confidence, 4),
                       "engine": engine.name}
                if fields is not None:
                    counts.kept += 1
                    records.write(json.dumps({**fields, **row}, ensure_ascii=False) + "\n")
                else:
                    counts.review += 1
                    reason = "low_confidence" if line.confidence < min_confidence else "no_separator"
                    review.write(json.dumps({"source": source.id, "reason": reason, "text": line.text, **row},
                                            ensure_ascii=False) + "\n")
        if settings.subtitles and source.separator is None:
            counts.subtitle_cues += _subtitle_records(source, path, shown, group, records)
    return counts


def keep_frame(frame: VideoFrame, origin: str, folder: Path, source_id: str) -> None:
    """The frame as PNG in folder/<source>/ and a line {"origin", "image"} in folder/<source>.jsonl, the image
    relative to folder: what a record's origin (minus its &line=N) was read from, for vision examples."""
    name = f"{source_id}/{origin.replace('/', '_').replace('#t=', '-').replace(':', '')}.png"
    (folder / source_id).mkdir(parents=True, exist_ok=True)
    frame.image.save(folder / name, format="PNG")
    with (folder / f"{source_id}.jsonl").open("a", encoding="utf-8", newline="\n") as index:
        index.write(json.dumps({"origin": origin, "image": name}, ensure_ascii=False) + "\n")


def _subtitle_records(source: Source, video: Path, shown: str, group: str, records: IO[str]) -> int:
    track = find_subtitles(video, source.lang)
    if track is None:
        return 0
    cues = pair_cues_with_video(read_subtitles(track, source.encoding, source.lang), shown)
    for cue in cues:
        records.write(json.dumps({"text": cue.text, "origin": cue.origin, "document": group, "engine": "subtitles"},
                                 ensure_ascii=False) + "\n")
    return len(cues)
