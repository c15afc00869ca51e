"""Frames sampled from real (small) videos written with PyAV: the sample times, one kept frame per slide, text
Tesseract reads back from a kept frame, and every bad file ending as a reject with a reason, never a traceback."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from langfoundry.core.errors import UserError
from langfoundry.media.ocr import TesseractEngine
from langfoundry.media.ocr_check import noto_font
from langfoundry.media.video import (
    DEFAULT_SIMILARITY,
    SampledVideo,
    VideoFrame,
    VideoReject,
    available_video_codec,
    drop_near_duplicates,
    format_timestamp,
    frame_group,
    hash_similarity,
    iter_frames,
    perceptual_hash,
    sample_video,
    write_video,
)

SIZE = (320, 240)
FPS = 5
SLIDE_SECONDS = 10
SLIDE_TEXTS = ("Selamat pagi", "Terima kasih", "Sampai jumpa")


def slide(number: int, text: str) -> Image.Image:
    """A lesson slide: its text in Noto Sans on top, under it a dark band and a disc whose places differ per slide
    (so the pictures differ, not only the words)."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    band_top = (70, 170, 120)[number % 3]
    draw.rectangle((0, band_top, SIZE[0], band_top + 40), fill=(40, 40, 120))
    disc_left = 20 + 110 * number
    draw.ellipse((disc_left, 240 - band_top // 2 - 40, disc_left + 70, 240 - band_top // 2), fill=(200, 60, 60))
    draw.text((20, 15), text, font=ImageFont.truetype(str(noto_font("Latn")), 30), fill="black")
    return image


@pytest.fixture(scope="module")
def slides() -> list[Image.Image]:
    return [slide(number, text) for number, text in enumerate(SLIDE_TEXTS)]


@pytest.fixture(scope="module")
def lesson(tmp_path_factory, slides) -> Path:
    """30 s at 5 fps: three slides, each held 10 s."""
    path = tmp_path_factory.mktemp("video") / "lesson.mp4"
    write_video([image for image in slides for _ in range(SLIDE_SECONDS * FPS)], path, FPS)
    return path


def frames_of(path: Path, fps: float) -> list[VideoFrame]:
    items = list(iter_frames(path, fps))
    assert all(isinstance(item, VideoFrame) for item in items), items
    return items  # type: ignore[return-value]


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    return float(np.abs(np.asarray(first.convert("L"), dtype=float) - np.asarray(second.convert("L"), dtype=float)).mean())


# --- sampling and dedup ---------------------------------------------------------------------------------------------

def test_default_rate_samples_every_5_s_and_keeps_one_frame_per_slide(lesson, slides) -> None:
    result = sample_video(lesson)
    assert (result.sampled, result.kept, result.dropped_duplicate, result.reject) == (6, 3, 3, None)
    assert [(frame.timestamp, frame.index) for frame in result.frames] == [(0.0, 0), (10.0, 50), (20.0, 100)]
    assert [frame.origin for frame in result.frames] == [f"{lesson.as_posix()}#t=00:00:{second}.000" for second in
                                                         ("00", "10", "20")]
    for number, frame in enumerate(result.frames):
        assert frame.image.size == SIZE and frame.image.mode == "RGB" and frame.file == lesson.as_posix()
        # the frame shows its own slide, through the codec's loss, and not the others
        differences = [mean_difference(frame.image, image) for image in slides]
        assert differences[number] < 3 and min(differences[:number] + differences[number + 1:]) > 15, differences


def test_sample_times_follow_the_requested_rate(lesson) -> None:
    assert [frame.timestamp for frame in frames_of(lesson, 0.2)] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    once_a_second = frames_of(lesson, 1.0)
    assert [frame.timestamp for frame in once_a_second] == [float(second) for second in range(30)]
    assert [frame.index for frame in once_a_second][:4] == [0, 5, 10, 15]
    # faster than the video itself: every frame once, none twice
    every_frame = frames_of(lesson, 10.0)
    assert len(every_frame) == 150 and len({frame.index for frame in every_frame}) == 150
    with pytest.raises(UserError, match="must be above 0"):
        list(iter_frames(lesson, 0))


def test_sparse_keyframes_and_mpeg4_in_matroska_give_the_same_samples(tmp_path, slides) -> None:
    """One keyframe in the whole video (seeking saves nothing, decoding runs straight on) and the other codec."""
    frames = [image for image in slides for _ in range(SLIDE_SECONDS * FPS)]
    one_keyframe = tmp_path / "one-keyframe.mp4"
    write_video(frames, one_keyframe, FPS, keyframe_interval_s=60)
    assert [frame.timestamp for frame in frames_of(one_keyframe, 0.2)] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert write_video(frames, tmp_path / "mpeg4.mkv", FPS, codec="mpeg4") == "mpeg4"
    result = sample_video(tmp_path / "mpeg4.mkv")
    assert (result.sampled, result.kept, result.dropped_duplicate) == (6, 3, 3)
    assert [frame.timestamp for frame in result.frames] == [0.0, 10.0, 20.0]


def test_keyframes_only_lands_on_the_first_keyframe_at_or_after_each_sample_time(lesson) -> None:
    # write_video puts a keyframe every 2 s: 0, 2, 4, 6, ...
    assert [frame.timestamp for frame in frames_of_keyframes(lesson)] == [0.0, 6.0, 10.0, 16.0, 20.0, 26.0]
    result = sample_video(lesson, keyframes_only=True)
    assert (result.sampled, result.kept, result.dropped_duplicate) == (6, 3, 3)
    assert [frame.timestamp for frame in result.frames] == [0.0, 10.0, 20.0]


def frames_of_keyframes(path: Path) -> list[VideoFrame]:
    items = list(iter_frames(path, keyframes_only=True))
    assert all(isinstance(item, VideoFrame) for item in items), items
    return items  # type: ignore[return-value]


def test_near_duplicates_are_compared_with_the_last_kept_frame(slides) -> None:
    first, second = slides[0], slides[1]
    noisy_first = Image.fromarray(np.clip(np.asarray(first, dtype=int) + np.random.default_rng(0).integers(-6, 7, (240, 320, 3)),
                                          0, 255).astype(np.uint8))
    assert hash_similarity(perceptual_hash(first), perceptual_hash(noisy_first)) >= DEFAULT_SIMILARITY
    assert hash_similarity(perceptual_hash(first), perceptual_hash(second)) < DEFAULT_SIMILARITY
    sequence = [VideoFrame("x.mp4", index, float(index), image) for index, image in
                enumerate([first, noisy_first, second, first])]
    kept, dropped = drop_near_duplicates(sequence)
    assert [frame.index for frame in kept] == [0, 2, 3] and dropped == 1  # slide 1 again after slide 2: kept
    kept_all, dropped_none = drop_near_duplicates(sequence, similarity_threshold=1.01)
    assert len(kept_all) == 4 and dropped_none == 0


def text_slide(lines: list[str]) -> Image.Image:
    image = Image.new("RGB", (640, 240), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((24, 24 + 48 * row), line, font=ImageFont.truetype(str(noto_font("Latn")), 32), fill="black")
    return image


def test_two_text_slides_that_hash_alike_are_both_kept_and_a_recompressed_one_is_not() -> None:
    two, three = text_slide(["Pelajaran dua", "Terima kasih banyak"]), text_slide(["Pelajaran tiga", "Sampai jumpa lagi"])
    buffer = io.BytesIO()
    two.save(buffer, format="JPEG", quality=40)
    two_again = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    # the hash alone would call the second slide a copy of the first: same layout, other words
    assert hash_similarity(perceptual_hash(two), perceptual_hash(three)) >= DEFAULT_SIMILARITY
    frames = [VideoFrame("x.mp4", index, float(index), image) for index, image in enumerate([two, two_again, three])]
    kept, dropped = drop_near_duplicates(frames)
    assert [frame.index for frame in kept] == [0, 2] and dropped == 1


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract binary is absent (apt-get install -y tesseract-ocr)")
def test_tesseract_reads_each_slide_from_its_kept_frame(lesson) -> None:
    engine = TesseractEngine(page_segmentation=6)
    result = sample_video(lesson)
    read = [" ".join(line.text for line in engine.recognise(frame.image, "id")) for frame in result.frames]
    for text, got in zip(SLIDE_TEXTS, read, strict=True):
        assert text.lower() in got.lower(), read


def test_a_phone_video_filmed_portrait_comes_out_upright(tmp_path) -> None:
    """A phone stores a portrait scene as landscape pixels turned a quarter, and a matrix in the track header (tkhd)
    telling players to turn it back; PyAV writes the identity matrix, so the test writes the phone's one in its place."""
    portrait = Image.new("RGB", (240, 320), "white")
    draw = ImageDraw.Draw(portrait)
    draw.text((20, 20), "Tegak", font=ImageFont.truetype(str(noto_font("Latn")), 40), fill="black")
    draw.rectangle((0, 250, 120, 320), fill=(40, 40, 120))
    stored = portrait.rotate(90, expand=True)  # the sensor's landscape pixels, 320x240
    path = tmp_path / "phone.mp4"
    write_video([stored] * 10, path, FPS)
    data = path.read_bytes()
    identity = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    quarter_turn = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)  # what phones write: rotate 90
    matrix_at = data.index(identity, data.index(b"tkhd"))
    path.write_bytes(data[:matrix_at] + quarter_turn + data[matrix_at + len(identity):])

    (frame,) = frames_of(path, 0.2)
    assert frame.image.size == (240, 320)
    assert mean_difference(frame.image, portrait) < 3 < mean_difference(frame.image, portrait.rotate(180))


def test_origins_and_the_split_group_name_the_video() -> None:
    assert format_timestamp(65) == "00:01:05.000" and format_timestamp(3725.4996) == "01:02:05.500"
    assert frame_group("data/raw/videos/lesson.mp4") == frame_group(Path("lesson.mp4")) == "video:lesson.mp4"
    assert VideoFrame("v/lesson.mp4", 325, 65.0, Image.new("RGB", (2, 2))).origin == "v/lesson.mp4#t=00:01:05.000"


def test_write_video_refuses_frames_it_cannot_encode(tmp_path) -> None:
    assert available_video_codec() in ("libx264", "mpeg4")
    with pytest.raises(UserError, match="no frames"):
        write_video([], tmp_path / "none.mp4", 5)
    with pytest.raises(UserError, match="even width and height.*321x240"):
        write_video([Image.new("RGB", (321, 240))], tmp_path / "odd.mp4", 5)
    with pytest.raises(UserError, match="frame 1 is 160x120, not 320x240"):
        write_video([Image.new("RGB", SIZE), Image.new("RGB", (160, 120))], tmp_path / "sizes.mp4", 5)


# --- bad files ------------------------------------------------------------------------------------------------------

def only_reject(path: Path) -> VideoReject:
    result = sample_video(path)
    assert isinstance(result, SampledVideo) and result.frames == [] and result.sampled == 0, result
    reject = result.reject
    assert reject is not None and reject.file == path.as_posix() and reject.timestamp is None
    error = reject.as_error()
    assert isinstance(error, UserError) and str(error).startswith(path.as_posix() + ": ") and "\n" not in str(error)
    return reject


def test_an_audio_only_file_has_no_video_stream(tmp_path) -> None:
    path = tmp_path / "speech.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for number in range(16):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, number * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    reject = only_reject(path)
    assert reject.reason == "no_video_stream" and "audio" in reject.detail


def test_a_truncated_mp4_is_corrupt_and_a_truncated_mkv_keeps_what_it_has(tmp_path, lesson, slides) -> None:
    data = lesson.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end, as PyAV and most encoders write it
    reject = only_reject(cut)
    assert reject.reason == "corrupt_video" and "download it again" in reject.detail

    whole = tmp_path / "whole.mkv"
    write_video([image for image in slides for _ in range(SLIDE_SECONDS * FPS)], whole, FPS)
    matroska = whole.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(matroska[: len(matroska) // 2])
    result = sample_video(tmp_path / "cut.mkv")
    assert result.reject is not None and result.reject.reason == "truncated", result.reject
    assert result.kept >= 1 and result.frames[0].timestamp == 0.0
    assert result.reject.timestamp is not None and 5 <= result.reject.timestamp < 25
    assert "00:00:30.000" in result.reject.detail and "\n" not in str(result.reject.as_error())


def test_damage_inside_the_stream_never_raises(tmp_path, lesson) -> None:
    data = bytearray(lesson.read_bytes())
    noise = np.random.default_rng(3).integers(0, 256, size=len(data) // 3, dtype=np.uint8).tobytes()
    start = len(data) // 4
    data[start:start + len(noise)] = noise  # the middle of the coded frames; the index at the end intact
    (tmp_path / "damaged.mp4").write_bytes(bytes(data))
    items = list(iter_frames(tmp_path / "damaged.mp4", 1.0))
    assert items and all(isinstance(item, VideoFrame | VideoReject) for item in items)
    assert not any(isinstance(item, VideoReject) for item in items[:-1])  # a reject only ends the file
    times = [item.timestamp for item in items if isinstance(item, VideoFrame)]
    assert times == sorted(set(times)) and times[0] == 0.0


def test_a_png_named_mp4_is_told_to_be_renamed(tmp_path, slides) -> None:
    slides[0].save(tmp_path / "slide.mp4", format="PNG")
    reject = only_reject(tmp_path / "slide.mp4")
    assert reject.reason == "wrong_extension" and "image/png" in reject.detail and "rename it to .png" in reject.detail


def test_empty_missing_unknown_and_unrecognisable_files(tmp_path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert only_reject(tmp_path / "empty.mp4").reason == "empty_file"
    assert only_reject(tmp_path / "missing.mp4").reason == "not_found"
    (tmp_path / "notes.txt").write_text("not a video")
    assert only_reject(tmp_path / "notes.txt").reason == "unsupported_format"
    (tmp_path / "noise.avi").write_bytes(bytes(range(256)) * 8)
    reject = only_reject(tmp_path / "noise.avi")
    assert reject.reason == "wrong_extension" and "no known format" in reject.detail
    (tmp_path / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)  # MP4 header, no content
    assert only_reject(tmp_path / "fake.mp4").reason == "corrupt_video"
