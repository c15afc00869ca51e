"""Frames sampled from local video files with PyAV, near-duplicates dropped by perceptual hash.

A lesson recorded as slides changes picture every few seconds or minutes, so frames are sampled at a low
rate (DEFAULT_FPS, one every 5 s) and a frame whose pHash is within the similarity threshold of the last
kept frame is dropped: what is left is one frame per slide, ready for OCR.

Sampling seeks to each sample time when the video's keyframes are close enough for that to save decoding,
and decodes straight on otherwise (see _sampled_frames); only sampled frames are converted to images.

A file that cannot give frames (missing, empty, not what its extension says, no video stream, corrupt or
truncated) is a VideoReject with a reason and a one-line detail that says how to fix it, never a traceback;
a caller that must stop turns it into a UserError with `as_error()`.

All frames (and subtitle cues) of one video belong to one split group, `frame_group(path)`: neighbouring
frames show the same slide, so a video split across train and test would leak. Callers put it in a record's
meta as "document", which langfoundry.data.split already keeps together.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import filetype
import imagehash
import numpy as np
from PIL import Image, ImageOps

from langfoundry.core.errors import UserError
from langfoundry.media.pages import first_line

DEFAULT_FPS = 0.2  # one frame every 5 s: slides rarely change faster
DEFAULT_SIMILARITY = 0.85  # pHash similarity (1 - hamming/bits) at or above which a frame repeats the last kept one
# Extensions this module reads, each with the filetype extensions its bytes may sniff as: an MP4, M4V, MOV
# and 3GP are all ISO base media files told apart only by a brand, and a WebM is a Matroska file.
_ISO_MEDIA, _MATROSKA = frozenset({"mp4", "m4v", "mov", "3gp"}), frozenset({"mkv", "webm"})
VIDEO_SUFFIXES: dict[str, frozenset[str]] = {
    ".mp4": _ISO_MEDIA, ".m4v": _ISO_MEDIA, ".mov": _ISO_MEDIA, ".3gp": _ISO_MEDIA, ".mkv": _MATROSKA,
    ".webm": _MATROSKA, ".avi": frozenset({"avi"}), ".mpg": frozenset({"mpg"}), ".mpeg": frozenset({"mpg"}),
    ".wmv": frozenset({"wmv"}), ".flv": frozenset({"flv"}),
}
# Where a file named as a video is really something else this project reads, the fix says so.
_OTHER_PATHS = {"png": "a page image", "jpg": "a page image", "tif": "a page image", "pdf": "a PDF document"}
# Declared duration minus this, still not reached at end of stream, means the file was cut short.
_TRUNCATION_MARGIN_S = 1.0
_DECODE_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)


@dataclass(frozen=True)
class VideoFrame:
    file: str  # as given, for origins
    index: int  # 0-based frame number at the stream's average frame rate (exact for constant-rate video)
    timestamp: float  # seconds from the start of the video stream
    image: Image.Image  # RGB

    @property
    def origin(self) -> str:
        return video_origin(self.file, self.timestamp)


@dataclass(frozen=True)
class VideoReject:
    file: str
    timestamp: float | None  # None: the whole file; else where in the video decoding stopped
    reason: str  # not_found, empty_file, unsupported_format, wrong_extension, no_video_stream, corrupt_video, truncated
    detail: str  # one line: what is wrong and how to fix it

    def as_error(self) -> UserError:
        where = self.file if self.timestamp is None else f"{self.file} at {format_timestamp(self.timestamp)}"
        return UserError(f"{where}: {self.detail}")


@dataclass(frozen=True)
class SampledVideo:
    file: str
    frames: list[VideoFrame]  # the kept frames, in time order
    sampled: int  # frames taken at the sampling rate, before dropping duplicates
    dropped_duplicate: int
    reject: VideoReject | None = None  # set when the file gave no frames, or stopped early

    @property
    def kept(self) -> int:
        return len(self.frames)


def format_timestamp(seconds: float) -> str:
    """65.0 -> "00:01:05.000": hours always shown, so origins sort and read alike."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def video_origin(file: str | Path, start: float, end: float | None = None) -> str:
    """"lesson.mp4#t=00:01:05.000" for a frame, "...#t=00:01:05.000-00:01:08.500" for a span (a subtitle cue)."""
    shown = Path(file).as_posix() if isinstance(file, Path) else file
    span = format_timestamp(start) if end is None else f"{format_timestamp(start)}-{format_timestamp(end)}"
    return f"{shown}#t={span}"


def frame_group(video_path: str | Path) -> str:
    """The split group shared by every frame and cue of one video: "video:<file name>".

    By file name, not path, so moving the raw folder does not reshuffle splits; two videos with the same
    name in different folders share a group, which errs on the side of keeping them out of each other's test set.
    """
    return f"video:{Path(video_path).name}"


def sample_video(path: str | Path, fps: float = DEFAULT_FPS, similarity_threshold: float = DEFAULT_SIMILARITY,
                 keyframes_only: bool = False) -> SampledVideo:
    """Frames at `fps` with near-duplicates of the last kept frame dropped, and the reject that ended it, if any."""
    fresh = NearDuplicateFilter(similarity_threshold)
    kept: list[VideoFrame] = []
    sampled = 0
    reject: VideoReject | None = None
    for item in iter_frames(path, fps, keyframes_only):  # streamed: only kept frames are held
        if isinstance(item, VideoReject):
            reject = item
            break
        sampled += 1
        if fresh.is_new(item.image):
            kept.append(item)
    return SampledVideo(_shown(Path(path)), kept, sampled, sampled - len(kept), reject)


def perceptual_hash(image: Image.Image) -> imagehash.ImageHash:
    return imagehash.phash(image)


def hash_similarity(first: imagehash.ImageHash, second: imagehash.ImageHash) -> float:
    """1 - hamming distance / bits: 1.0 for the same picture, about 0.5 for unrelated ones."""
    return 1.0 - float(first - second) / first.hash.size


INK_WIDTH = 320  # pixels: the width at which frames are compared stroke by stroke
MIN_INK_CHANGE = 0.25  # share of the ink (dark pixels of either frame) not shared: another text, not noise


def ink_mask(image: Image.Image) -> np.ndarray:
    """The dark strokes of a frame at INK_WIDTH, after stretching its contrast: where the text is."""
    grey = ImageOps.autocontrast(image.convert("L"))
    small = grey.resize((INK_WIDTH, max(1, round(grey.height * INK_WIDTH / grey.width))), Image.Resampling.BILINEAR)
    return np.asarray(small) < 128


def ink_change(first: np.ndarray, second: np.ndarray) -> float:
    """1 - Jaccard similarity of two ink masks: 0 for the same strokes, near 1 for other words in other places."""
    union = np.count_nonzero(first | second)
    return np.count_nonzero(first ^ second) / union if union else 0.0


class NearDuplicateFilter:
    """Says whether each image in turn is new: under `similarity_threshold` similar to the last new one. Compared with
    the last kept, not the previous, image, so a slow fade or a pointer drifting across a slide cannot creep past it.

    A perceptual hash sees the layout, not the words: two slides of two text lines each hash alike (0.94 for
    "Pelajaran dua / Terima kasih banyak" against "Pelajaran tiga / Sampai jumpa lagi"). So a frame the hash
    calls a duplicate is still new when its ink differs by MIN_INK_CHANGE or more from the last kept frame's:
    another text on the same board."""

    def __init__(self, similarity_threshold: float = DEFAULT_SIMILARITY) -> None:
        self.similarity_threshold = similarity_threshold
        self._last_kept: tuple[imagehash.ImageHash, np.ndarray] | None = None

    def is_new(self, image: Image.Image) -> bool:
        image_hash = perceptual_hash(image)
        if self._last_kept is not None and hash_similarity(self._last_kept[0], image_hash) >= self.similarity_threshold:
            ink = ink_mask(image)
            if ink_change(self._last_kept[1], ink) < MIN_INK_CHANGE:
                return False
            self._last_kept = (image_hash, ink)
            return True
        self._last_kept = (image_hash, ink_mask(image))
        return True


def drop_near_duplicates(frames: Iterable[VideoFrame],
                         similarity_threshold: float = DEFAULT_SIMILARITY) -> tuple[list[VideoFrame], int]:
    """(kept, dropped) by NearDuplicateFilter."""
    fresh = NearDuplicateFilter(similarity_threshold)
    seen = list(frames)
    kept = [frame for frame in seen if fresh.is_new(frame.image)]
    return kept, len(seen) - len(kept)


def iter_frames(path: str | Path, fps: float = DEFAULT_FPS, keyframes_only: bool = False) -> Iterator[VideoFrame | VideoReject]:
    """One frame every 1/fps seconds from the start (the first frame at or after each sample time), in order,
    or the reject that ends the file. A frame that already answered one sample time is not given again.

    keyframes_only: decode keyframes alone and take the first at or after each sample time. Several times
    cheaper where keyframes are sparse (libx264's default is one every 250 frames), but times land on keyframes,
    a slide shown for less than the keyframe interval can be missed, and a cut-short file is not noticed."""
    if fps <= 0:
        raise UserError(f"video sampling rate {fps} frames/second must be above 0; 0.2 takes one frame every 5 s")
    path = Path(path)
    shown = _shown(path)
    reject = _check_file(path, shown)
    if reject is not None:
        yield reject
        return
    try:
        container = av.open(str(path))
    except _DECODE_ERRORS as err:
        yield VideoReject(shown, None, "corrupt_video", f"the video cannot be opened ({_first_line(err)}); the file is "
                                                        f"damaged or incomplete (an MP4 cut short loses its index): "
                                                        f"copy or download it again")
        return
    with container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["no streams"]
            yield VideoReject(shown, None, "no_video_stream", f"the file holds {', '.join(kinds)} but no video stream; "
                                                              f"give the video itself")
            return
        yield from _sampled_frames(container, container.streams.video[0], shown, fps, keyframes_only)


def _check_file(path: Path, shown: str) -> VideoReject | None:
    if not path.is_file():
        return VideoReject(shown, None, "not_found", "no such file; check the path in sources.yaml")
    if path.stat().st_size == 0:
        return VideoReject(shown, None, "empty_file", "the file has no bytes; copy or download it again")
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        known = ", ".join(sorted(VIDEO_SUFFIXES))
        return VideoReject(shown, None, "unsupported_format",
                           f"{suffix or 'no extension'} is not a video format; use one of {known}")
    try:
        kind = filetype.guess(str(path))
    except OSError as err:
        return VideoReject(shown, None, "not_found", f"the file cannot be read ({_first_line(err)}); check its permissions")
    if kind is not None and kind.extension in VIDEO_SUFFIXES[suffix]:
        return None
    if kind is None:
        what, fix = "bytes no known format starts with", "check that the file is complete and really a video"
    elif kind.mime.startswith("audio/"):
        return VideoReject(shown, None, "no_video_stream", f"named {suffix} but its bytes are {kind.mime} audio with no "
                                                           f"video stream; give the video itself")
    elif kind.mime.startswith("video/"):
        what, fix = f"{kind.mime} data", f"rename it to .{kind.extension}"
    else:
        other = _OTHER_PATHS.get(kind.extension)
        what = f"{kind.mime} data"
        fix = f"rename it to .{kind.extension} and add it as {other}" if other else "give the video itself"
    return VideoReject(shown, None, "wrong_extension", f"named {suffix} but its bytes are {what}, not a video; {fix}")


def _sampled_frames(container: av.container.InputContainer, stream: av.VideoStream, shown: str, fps: float,
                    keyframes_only: bool) -> Iterator[VideoFrame | VideoReject]:
    """Seek to each sample time while that saves decoding; decode straight on while the next sample is closer
    than the keyframe a seek would land on (learned from the seeks made: a seek lands on the keyframe at or
    before the target, and everything from there must be decoded anyway)."""
    time_base = stream.time_base or Fraction(1, 1000)
    start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    tolerance = 0.5 / rate  # a frame half a frame early is the frame at the sample time (timestamps are rounded)
    declared = _declared_duration(container, stream, time_base)
    frames: Iterator[av.VideoFrame] | None = None
    position = float("-inf")  # time of the last decoded frame, from the start of the stream
    keyframe_lag = 0.0  # the furthest a seek has landed before its target
    can_seek = not keyframes_only  # skipped frames cost only reading their packets: straight on is cheapest
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"
    sample = 0
    while True:
        target = sample / fps
        if declared is not None and target > declared:
            return
        if position >= target - tolerance:
            sample += 1  # the frame just given covers this sample time too (sampling faster than the video): once is enough
            continue
        try:
            if frames is None or (can_seek and target - position > keyframe_lag + 1.0 / rate):
                sought = _seek(container, stream, start + target, time_base)
                can_seek = can_seek and sought
                if sought or frames is None:
                    frames = container.decode(stream)
                    position = float("-inf")
            picked = None
            for frame in frames:
                if frame.time is None:
                    continue
                if position == float("-inf"):
                    keyframe_lag = max(keyframe_lag, target - (frame.time - start))
                position = frame.time - start
                if position >= target - tolerance:
                    picked = frame
                    break
        except _DECODE_ERRORS as err:
            yield VideoReject(shown, max(position, 0.0), "corrupt_video",
                              f"decoding stopped ({_first_line(err)}); the file is damaged: re-encode or download it again")
            return
        if picked is None:
            # with keyframes only, the last keyframe may lie well before the end of a whole file
            if declared is not None and not keyframes_only and target < declared - _TRUNCATION_MARGIN_S:
                yield VideoReject(shown, max(position, 0.0), "truncated",
                                  f"the video ends at {format_timestamp(max(position, 0.0))} but the file says it lasts "
                                  f"{format_timestamp(declared)}; it was cut short: copy or download it again")
            return
        yield VideoFrame(shown, round(position * rate), round(position, 3), _upright(picked))
        sample += 1


def _upright(frame: av.VideoFrame) -> Image.Image:
    """The picture as players show it: a phone films portrait into landscape pixels and a display matrix saying
    how to turn them, and Tesseract cannot read sideways text."""
    image = frame.to_image()
    rotation = frame.rotation  # counterclockwise degrees, as PIL's rotate takes them
    return image.rotate(rotation, expand=True) if rotation % 360 else image


def _seek(container: av.container.InputContainer, stream: av.VideoStream, seconds: float, time_base: Fraction) -> bool:
    """Seek to the keyframe at or before `seconds`; False where the file cannot seek (then decoding just goes on)."""
    try:
        container.seek(int(seconds / time_base), stream=stream, backward=True, any_frame=False)
    except _DECODE_ERRORS:
        return False
    return True


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream, time_base: Fraction) -> float | None:
    """How long the video stream says it lasts. The container's duration stands in only where the video is its one
    stream: with audio beside it, it may be the audio's, and a video that stops before its soundtrack is not cut short."""
    if stream.duration:
        return float(stream.duration * time_base)
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def available_video_codec() -> str:
    """libx264 where PyAV's FFmpeg has it (PyPI wheels do), else mpeg4, which every FFmpeg build has."""
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except av.FFmpegError:
            continue
        return name
    raise UserError("PyAV's FFmpeg has neither libx264 nor mpeg4 encoders; reinstall the av package from PyPI")


def write_video(frames: Iterable[Image.Image], path: str | Path, fps: float, codec: str | None = None,
                keyframe_interval_s: float = 2.0) -> str:
    """Write images as a yuv420p video (the container from the extension: .mp4, .mkv, ...); returns the codec used.

    All images must have the size of the first, with even width and height (yuv420p halves the colour planes).
    Consecutive identical image objects are converted once, so a slide held for minutes costs one conversion.
    A keyframe every `keyframe_interval_s` seconds keeps seeking cheap for readers.
    """
    images = iter(frames)
    first = next(images, None)
    if first is None:
        raise UserError(f"no frames to write to {path}; give at least one image")
    if first.width % 2 or first.height % 2:
        raise UserError(f"video frames must have an even width and height for yuv420p, not {first.width}x{first.height}; "
                        f"crop or pad them")
    codec = codec or available_video_codec()
    rate = Fraction(fps).limit_denominator(1001)
    written = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = first.size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = max(1, round(fps * keyframe_interval_s))
        if codec == "libx264":
            stream.options = {"preset": "veryfast"}
        previous: Image.Image | None = None
        converted: av.VideoFrame | None = None
        for image in itertools.chain([first], images):
            if image.size != first.size:
                raise UserError(f"frame {written} is {image.width}x{image.height}, not {first.width}x{first.height} "
                                f"like the first; resize the frames to one size")
            if image is not previous:
                converted = av.VideoFrame.from_image(image.convert("RGB")).reformat(format="yuv420p")
                previous = image
            assert converted is not None
            converted.pts = written
            converted.time_base = 1 / rate
            for packet in stream.encode(converted):
                container.mux(packet)
            written += 1
        for packet in stream.encode():
            container.mux(packet)
    return codec


def _shown(path: Path) -> str:
    return path.as_posix()


def _first_line(err: BaseException) -> str:
    # FFmpeg's own words without PyAV's "[Errno N] ...: 'path'" wrapping: the reject names the file already
    return first_line(err.strerror if isinstance(err, av.FFmpegError) and err.strerror else err)
