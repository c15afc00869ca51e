"""Subtitles (SRT and WebVTT) as timed cues, paired with the video they belong to.

Files as people have them: a byte order mark, CRLF or CR line ends, a missing final blank line, a missing
blank line between SRT cues, WebVTT headers and NOTE / STYLE / REGION blocks, cue settings after the end time
("align:start line:90%"), 1- to 3-digit hours, times without hours (WebVTT) and "," or "." before the
milliseconds. Cue text loses inline markup (<i>, <font>, <v Speaker>, <c.class>, karaoke <00:00:01.000>,
SRT's {\\an8}) and its lines are joined with one space. A legacy code page is read as the project's text
readers read it (langfoundry.data.readers). A timing line that cannot be read stops with a one-line
UserError naming the file and line: a silently skipped cue would shift nothing but lose text unnoticed.

Cues pair with their video by origin "lesson.mp4#t=00:00:01.000-00:00:04.000" and share the video's split
group (langfoundry.media.video.frame_group), so the text of a lesson never sits on both sides of a split.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from langfoundry.core.errors import UserError
from langfoundry.data.readers.encoding import read_text, reader_codec
from langfoundry.media.video import frame_group, video_origin

SUBTITLE_SUFFIXES = (".srt", ".vtt")
_VTT_BLOCK_KEYWORDS = ("NOTE", "STYLE", "REGION")  # WebVTT blocks that hold no cue text
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # not str.splitlines: that also splits on form feeds and U+2028 in cue text
_TIMING = re.compile(r"^\s*(\S+?)\s*-->\s*(\S+)(?:\s+.*)?$")  # anything after the end time is cue settings
_TIMESTAMP = re.compile(r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})(?:[,.](\d{1,3}))?")
# A line with a time in it, in a block without "-->": a timing line whose arrow was mistyped, not text
_TIMESTAMPISH = re.compile(r"\d{1,3}:\d{2}:\d{2}|\d{2}:\d{2}[,.]\d")
# A cue text line that starts with a full time is a mistyped timing line run into the cue before it
_STARTS_WITH_TIME = re.compile(r"\s*(?:\d{1,3}:)?\d{2}:\d{2}[,.]\d{1,3}(?!\d)")
_TAG = re.compile(r"</?(?:[A-Za-z][^<>\s]*|\d+:\d{2}(?::\d{2})?\.\d{3})(?:\s[^<>]*)?>")
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")  # {\an8}, {\i1}: SSA positioning some SRT writers keep
_COUNTER = re.compile(r"\s*\d+\s*")
_LANG_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")  # en, id, pt-BR, jv-x-banyumas
_FORMAT_HINT = "write cue times as HH:MM:SS,mmm --> HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm --> HH:MM:SS.mmm (WebVTT)"


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str  # markup removed, lines joined with a space
    line: int  # 1-based line of its timing line in the file


@dataclass(frozen=True)
class SubtitleRecord:
    text: str
    start: float
    end: float
    origin: str  # "lesson.mp4#t=00:00:01.000-00:00:04.000"
    group: str  # the video's split group, shared with its frames


@dataclass(frozen=True)
class SubtitleTrack:
    path: Path
    lang: str | None  # from "lesson.<lang>.vtt"; None for "lesson.vtt"


def read_subtitles(path: str | Path, encoding: str | None = None, lang: str | None = None) -> list[Cue]:
    """The cues of one .srt or .vtt file, in file order; UserError (one line) for a file that cannot be read."""
    path = Path(path)
    shown = path.as_posix()
    suffix = path.suffix.lower()
    if suffix not in SUBTITLE_SUFFIXES:
        raise UserError(f"{shown}: {suffix or 'no extension'} is not a subtitle format; use .srt or .vtt")
    if not path.is_file():
        raise UserError(f"{shown}: no such file; check the path in sources.yaml")
    if path.stat().st_size == 0:
        return []
    text = read_text(path, reader_codec(path, shown, encoding, lang), shown)
    return parse_subtitles(text, shown, webvtt=suffix == ".vtt")


def parse_subtitles(text: str, file: str, webvtt: bool) -> list[Cue]:
    """Cues from the text of an SRT (webvtt False) or WebVTT file; `file` names it in errors."""
    cues: list[Cue] = []
    for block_index, block in enumerate(_blocks(text.removeprefix("\ufeff"))):
        arrows = [index for index, (_, line) in enumerate(block) if "-->" in line]
        if not arrows:
            if not (webvtt and _is_vtt_metadata(block, block_index)):
                # where a timing line would be, after the counter or identifier: later lines are stray text
                _refuse_mistyped_timing(block[:2], file)
            continue  # stray text, a WebVTT header or NOTE: nothing timed to keep
        if not (webvtt and _is_vtt_metadata(block, block_index)):
            _refuse_mistyped_timing(block[:arrows[0]], file)  # a cue whose arrow was mistyped, run into this one
        for position, arrow in enumerate(arrows):
            stop = arrows[position + 1] if position + 1 < len(arrows) else len(block)
            # cues run together without a blank line: the SRT counter before the next timing line is not text
            if stop < len(block) and stop - 1 > arrow and _COUNTER.fullmatch(block[stop - 1][1]):
                stop -= 1
            number, timing = block[arrow]
            start, end = _parse_timing(timing, file, number)
            text_lines = block[arrow + 1:stop]
            _refuse_mistyped_timing([(row, line) for row, line in text_lines if _STARTS_WITH_TIME.match(line)], file)
            cue_text = clean_cue_text([line for _, line in text_lines], webvtt)
            if cue_text:
                cues.append(Cue(start, end, cue_text, number))
    return cues


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines with their 1-based line numbers."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:  # no blank line after the last cue
        blocks.append(current)
    return blocks


def _is_vtt_metadata(block: list[tuple[int, str]], block_index: int) -> bool:
    first = block[0][1].strip()
    if block_index == 0 and first.startswith("WEBVTT"):
        return True
    return first.split(maxsplit=1)[0] in _VTT_BLOCK_KEYWORDS


def _refuse_mistyped_timing(lines: list[tuple[int, str]], file: str) -> None:
    for number, line in lines:
        if _TIMESTAMPISH.search(line):
            raise UserError(f"{file}:{number}: a timing line without '-->' ({line.strip()!r}); {_FORMAT_HINT}")


def _parse_timing(line: str, file: str, number: int) -> tuple[float, float]:
    matched = _TIMING.match(line)
    if matched is None:
        raise UserError(f"{file}:{number}: cannot read the timing line {line.strip()!r}; {_FORMAT_HINT}")
    start, end = (_seconds(token, file, number) for token in matched.groups())
    if end < start:
        raise UserError(f"{file}:{number}: the cue ends ({matched.group(2)}) before it starts ({matched.group(1)}); "
                        f"correct the times")
    return start, end


def _seconds(token: str, file: str, number: int) -> float:
    matched = _TIMESTAMP.fullmatch(token)
    if matched is None or int(matched.group(2)) > 59 or int(matched.group(3)) > 59:
        raise UserError(f"{file}:{number}: malformed timestamp {token!r}; {_FORMAT_HINT}")
    hours, minutes, seconds, fraction = matched.groups()
    # "1,5" is one and a half seconds: the digits are a decimal fraction, however many there are
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + float(f"0.{fraction or 0}")


def clean_cue_text(lines: Iterable[str], webvtt: bool) -> str:
    """Cue lines without markup, joined with single spaces. WebVTT escapes &, < and > as entities; SRT does not."""
    joined = " ".join(lines)
    text = _ASS_OVERRIDE.sub("", _TAG.sub("", joined))
    if webvtt:
        text = html.unescape(text)
    return " ".join(text.split())


def pair_cues_with_video(cues: Iterable[Cue], video_path: str | Path) -> list[SubtitleRecord]:
    """One record per cue, its origin the video and the cue's span, its group the video's."""
    group = frame_group(video_path)
    shown = Path(video_path).as_posix()
    return [SubtitleRecord(cue.text, cue.start, cue.end, video_origin(shown, cue.start, cue.end), group) for cue in cues]


def subtitle_tracks(video_path: str | Path) -> list[SubtitleTrack]:
    """The subtitle files beside a video, by name: lesson.mp4 -> lesson.srt, lesson.vtt, lesson.<lang>.srt/.vtt.
    Untagged first, then by language; .srt before .vtt."""
    video = Path(video_path)
    folder = video.parent
    if not folder.is_dir():
        return []
    tracks = []
    for candidate in folder.iterdir():
        suffix = candidate.suffix.lower()
        if suffix not in SUBTITLE_SUFFIXES or not candidate.is_file():
            continue
        name = candidate.name[: -len(suffix)]
        if name == video.stem:
            tracks.append(SubtitleTrack(candidate, None))
        elif name.startswith(video.stem + ".") and _LANG_TAG.fullmatch(tag := name[len(video.stem) + 1:]):
            tracks.append(SubtitleTrack(candidate, tag))
    return sorted(tracks, key=lambda track: (track.lang is not None, (track.lang or "").lower(), track.path.suffix.lower()))


def find_subtitles(video_path: str | Path, lang: str | None = None) -> Path | None:
    """The subtitle file for a video: with `lang`, lesson.<lang>.srt/.vtt, else an untagged lesson.srt/.vtt
    (taken to be in the source's language); without, the untagged one, else the only language there is.
    None where there is none; UserError where several languages are there and `lang` does not choose."""
    tracks = subtitle_tracks(video_path)
    if lang is not None:
        wanted = lang.replace("_", "-").lower()
        tagged = [track for track in tracks if track.lang is not None and track.lang.replace("_", "-").lower() == wanted]
        if tagged:
            return tagged[0].path
    untagged = [track for track in tracks if track.lang is None]
    if untagged:
        return untagged[0].path
    if lang is not None:
        return None
    langs = sorted({track.lang for track in tracks if track.lang is not None})
    if len(langs) > 1:
        raise UserError(f"{Path(video_path).as_posix()}: subtitles in several languages ({', '.join(langs)}); "
                        f"say which language to read")
    return tracks[0].path if tracks else None
