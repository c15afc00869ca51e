"""Speech clips into the JSON-lines manifests speech toolkits read (NeMo's format: one object a line with
`audio_filepath`, `text`, `duration`, plus `lang` and `speaker` when known), split into train/val/test by a hash of a
group key, and the stricter selection of clips fit for training a TTS voice.

Splits: every clip of a group (its recording, or its speaker) lands in one split, so a test clip is never a second
cut of a training recording. A group's split depends only on its key and the fractions, so adding recordings never
moves the others.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.errors import UserError
from langfoundry.core.storage import write_jsonl
from langfoundry.data.split import group_fraction
from langfoundry.media.audio import ConvertedAudio, QualityLimits, check_clip

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SpeechClip:
    audio_filepath: str  # written as given: NeMo resolves a relative path against the manifest's folder
    text: str
    duration: float  # seconds
    recording: str  # the source recording the clip was cut from
    lang: str | None = None
    speaker: str | None = None
    speaker_count: int | None = None  # speakers heard in the clip; None: unknown
    snr_db: float | None = None
    failed_checks: tuple[str, ...] = ()  # FailedCheck codes from media.audio.check_clip

    @classmethod
    def from_converted(cls, converted: ConvertedAudio, text: str, recording: str, lang: str | None = None,
                       speaker: str | None = None, speaker_count: int | None = None,
                       limits: QualityLimits | None = None) -> SpeechClip:
        """A clip from media.audio.convert_audio's result, its checks run against limits."""
        if converted.wav_path is None:
            raise ValueError("the clip was only measured, not written: give convert_audio a wav_out")
        measures = converted.measures
        return cls(converted.wav_path, text, round(measures.duration_seconds, 3), recording, lang, speaker,
                   speaker_count, measures.snr_db, tuple(check.code for check in check_clip(measures, limits)))

    def manifest_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"audio_filepath": self.audio_filepath, "text": self.text, "duration": self.duration}
        if self.lang is not None:
            row["lang"] = self.lang
        if self.speaker is not None:
            row["speaker"] = self.speaker
        return row


@dataclass(frozen=True)
class TtsBounds:
    min_seconds: float = 1.0
    max_seconds: float = 15.0  # longer utterances make attention-based TTS training unstable
    min_snr_db: float = 25.0  # a voice model learns the noise along with the voice


@dataclass(frozen=True)
class TtsReject:
    clip: SpeechClip
    reasons: tuple[str, ...]  # speaker_unknown, speaker_count_unknown, not_single_speaker, failed_checks:<codes>,
    #                           snr_unknown, low_snr, too_short, too_long, no_text


def split_of(group_key: str, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, salt: str = "") -> str:
    """The split a group belongs to: the text split's stable number for it (data.split.group_fraction, with the
    same salt), placed on the cumulative fractions."""
    _check_fractions(fractions)
    position = group_fraction(group_key, salt)
    total = 0.0
    for name in SPLITS:
        total += fractions.get(name, 0.0)
        if position < total:
            return name
    return next(name for name in reversed(SPLITS) if fractions.get(name, 0.0) > 0)  # rounding at the very top


def group_keys(clips: Iterable[SpeechClip], group_by: str = "recording") -> dict[str, str]:
    """Each recording's group key. By recording: the recording itself. By speaker: speakers who share a recording
    and the recordings they share form one group (named by its smallest member), so neither a speaker nor a
    recording is ever split."""
    if group_by not in ("recording", "speaker"):
        raise UserError(f"group_by must be 'recording' or 'speaker', not {group_by!r}")
    clips = list(clips)
    if group_by == "recording":
        return {clip.recording: f"recording:{clip.recording}" for clip in clips}
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps the trees flat
            node = parent[node]
        return node

    for clip in clips:
        recording = root(f"recording:{clip.recording}")
        if clip.speaker is not None:
            speaker = root(f"speaker:{clip.speaker}")
            if speaker != recording:
                low, high = sorted((speaker, recording))
                parent[high] = low  # the smaller name stays the root: the key does not depend on clip order
    return {clip.recording: root(f"recording:{clip.recording}") for clip in clips}


def write_speech_manifests(clips: Iterable[SpeechClip], out_dir: str | Path,
                           fractions: Mapping[str, float] = DEFAULT_FRACTIONS, group_by: str = "recording",
                           salt: str = "") -> dict[str, int]:
    """train.jsonl, val.jsonl and test.jsonl under out_dir (each written, empty or not), clips sorted by path;
    returns the clip count of each split."""
    _check_fractions(fractions)
    clips = sorted(clips, key=lambda clip: (clip.audio_filepath, clip.text))
    keys = group_keys(clips, group_by)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for clip in clips:
        rows[split_of(keys[clip.recording], fractions, salt)].append(clip.manifest_row())
    out_dir = Path(out_dir)
    return {name: write_jsonl(rows[name], out_dir / f"{name}.jsonl") for name in SPLITS}


def select_tts_clips(clips: Iterable[SpeechClip], bounds: TtsBounds | None = None,
                     ) -> tuple[list[SpeechClip], list[TtsReject]]:
    """(selected, rejected): clips of one known speaker, with text, that passed every quality check, with an SNR
    at or above the bound and a duration within the bounds."""
    bounds = bounds or TtsBounds()
    selected, rejected = [], []
    for clip in clips:
        reasons = _tts_reasons(clip, bounds)
        if reasons:
            rejected.append(TtsReject(clip, tuple(reasons)))
        else:
            selected.append(clip)
    return selected, rejected


def _tts_reasons(clip: SpeechClip, bounds: TtsBounds) -> list[str]:
    reasons = []
    if clip.speaker is None:
        reasons.append("speaker_unknown")
    if clip.speaker_count != 1:  # unknown counts as not single: a voice model must not learn two voices as one
        reasons.append("speaker_count_unknown" if clip.speaker_count is None else "not_single_speaker")
    if clip.failed_checks:
        reasons.append("failed_checks:" + ",".join(sorted(clip.failed_checks)))
    if clip.snr_db is None:
        reasons.append("snr_unknown")
    elif clip.snr_db < bounds.min_snr_db:
        reasons.append("low_snr")
    if clip.duration < bounds.min_seconds:
        reasons.append("too_short")
    if clip.duration > bounds.max_seconds:
        reasons.append("too_long")
    if not clip.text.strip():
        reasons.append("no_text")
    return reasons


def _check_fractions(fractions: Mapping[str, float]) -> None:
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise UserError(f"split fractions: unknown split(s) {sorted(unknown)}; use {', '.join(SPLITS)}")
    if any(not math.isfinite(value) or value < 0 for value in fractions.values()):
        raise UserError(f"split fractions must be finite and not negative, not {dict(fractions)}")
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise UserError(f"split fractions must add up to 1, not {sum(fractions.values()):g} ({dict(fractions)})")
