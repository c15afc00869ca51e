"""Video frames: seconds per minute of video to sample at 0.2 fps and drop near-duplicates, and to OCR what is kept.

Usage: python benchmarks/bench_video.py [--minutes 2] [--fps 0.2]

Builds, with langfoundry.media.video.write_video, a 640x360 25 fps lesson of slides that change every 10 s
(Noto Sans text, a band and a disc placed per slide) in a temporary folder, three ways: keyframes every 2 s
(write_video's default), every 10 s (libx264's own default of 250 frames), and every 10 s with a pointer that
moves on every frame (so no frame is a copy of the one before, as in a screen recording with a mouse). Each is
sampled and deduplicated (sample_video), beside the cost of decoding every frame once, the floor for a reader
that does not seek, and sample_video with keyframes_only; then Tesseract reads the kept frames, where it is installed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from langfoundry.media.ocr import TesseractEngine
from langfoundry.media.ocr_check import SENTENCES, noto_font
from langfoundry.media.video import SampledVideo, perceptual_hash, sample_video, write_video

SIZE = (640, 360)
VIDEO_FPS = 25
SLIDE_SECONDS = 10


def slide(number: int, font: ImageFont.FreeTypeFont) -> Image.Image:
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    band_top = 140 + (number * 37) % 160
    draw.rectangle((0, band_top, SIZE[0], band_top + 50), fill=(40, 40, 120))
    disc_left = 30 + (number * 113) % 520
    draw.ellipse((disc_left, 100, disc_left + 80, 130), fill=(200, 60, 60))
    sentences = SENTENCES["id"]
    draw.text((30, 20), f"{number + 1}. {sentences[number % len(sentences)][:40]}", font=font, fill="black")
    return image


def lesson_frames(minutes: float, pointer: bool) -> Iterator[Image.Image]:
    font = ImageFont.truetype(str(noto_font("Latn")), 26)
    total = round(minutes * 60 * VIDEO_FPS)
    slides = [slide(number, font) for number in range(-(-total // (SLIDE_SECONDS * VIDEO_FPS)))]
    for index in range(total):
        image = slides[index // (SLIDE_SECONDS * VIDEO_FPS)]
        if pointer:  # a new image each frame: the writer converts every one, the encoder codes real motion
            image = image.copy()
            x = 20 + (index * 7) % (SIZE[0] - 40)
            ImageDraw.Draw(image).ellipse((x, 320, x + 12, 332), fill=(0, 160, 0))
        yield image


def decode_everything(path: Path) -> float:
    started = time.perf_counter()
    with av.open(str(path)) as container:
        for _ in container.decode(container.streams.video[0]):
            pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--fps", type=float, default=0.2, help="sampling rate, frames per second (default 0.2)")
    args = parser.parse_args()
    variants = [("static, keyframe 2 s", 2.0, False), ("static, keyframe 10 s", 10.0, False),
                ("moving pointer, keyframe 10 s", 10.0, True)]
    print(f"{args.minutes:g} min of {SIZE[0]}x{SIZE[1]} at {VIDEO_FPS} fps, slides every {SLIDE_SECONDS} s, "
          f"sampled at {args.fps:g} fps")
    header = f"{'video':30s} {'write s':>8s} {'sample+dedup s/min':>19s} {'decode-all s/min':>17s} " \
             f"{'sampled':>8s} {'kept':>5s} {'dropped':>8s} {'keyframes-only s/min':>21s} {'kept':>5s}"
    print(header)
    print("-" * len(header))
    kept_example: SampledVideo | None = None
    perceptual_hash(Image.new("RGB", (64, 64)))  # the first hash initialises SciPy's FFT: not the video's cost
    with tempfile.TemporaryDirectory() as scratch:
        for name, keyframe_s, pointer in variants:
            path = Path(scratch) / f"lesson-{keyframe_s:g}-{int(pointer)}.mp4"
            started = time.perf_counter()
            codec = write_video(lesson_frames(args.minutes, pointer), path, VIDEO_FPS, keyframe_interval_s=keyframe_s)
            written = time.perf_counter() - started
            started = time.perf_counter()
            result = sample_video(path, fps=args.fps)
            sampled = time.perf_counter() - started
            assert result.reject is None, result.reject
            everything = decode_everything(path)
            started = time.perf_counter()
            keyframes = sample_video(path, fps=args.fps, keyframes_only=True)
            keyframes_seconds = time.perf_counter() - started
            print(f"{name:30s} {written:8.1f} {sampled / args.minutes:19.3f} {everything / args.minutes:17.3f} "
                  f"{result.sampled:8d} {result.kept:5d} {result.dropped_duplicate:8d} "
                  f"{keyframes_seconds / args.minutes:21.3f} {keyframes.kept:5d}")
            kept_example = kept_example or result
        print(f"codec: {codec}; decode-all: every frame decoded once, none converted to an image (the floor without "
              f"seeking); keyframes-only: sample_video(keyframes_only=True)")
        if kept_example is None or shutil.which("tesseract") is None:
            print("OCR: skipped, the tesseract binary is absent (apt-get install -y tesseract-ocr tesseract-ocr-ind)")
            return 0
        engine = TesseractEngine()
        started = time.perf_counter()
        read = [engine.recognise(frame.image, "id") for frame in kept_example.frames]
        ocr_seconds = time.perf_counter() - started
        print(f"OCR (Tesseract, ind) of the {kept_example.kept} kept frames: {ocr_seconds:.2f} s, "
              f"{ocr_seconds / args.minutes:.2f} s per minute of video; first frame read: "
              f"{' '.join(line.text for line in read[0])!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
