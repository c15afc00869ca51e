"""A scans source (media: scans) through OCR: records for ingest, low-confidence lines for people to review.

Every page of every image or PDF of the source is read by the engine, line by line. A line at or above
media.ocr.min_confidence becomes a record whose origin names file, page and line; a line under it goes to
the review queue with a crop of the line saved beside it, so a person can type what the page says. A file
that gives no pages (corrupt, password-protected, not what its name says) is a reject with its reason.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image

from langfoundry.core.config import Source
from langfoundry.media.inputs import media_files, shown_path
from langfoundry.media.ocr import OcrEngine, OcrLine
from langfoundry.media.pages import IMAGE_FORMATS, PDF_SUFFIX, Page, PageReject, iter_pages

SCAN_SUFFIXES = frozenset(IMAGE_FORMATS) | {PDF_SUFFIX}
CROP_PADDING = 8  # pixels around a review line's box, so a descender or an accent is not cut off


@dataclass
class ScanCounts:
    files: int = 0
    pages: int = 0
    lines: int = 0
    kept: int = 0
    review: int = 0
    no_separator: int = 0  # of the review lines: sure, but a two-sided line with nothing to split at
    rejected_files: Counter = field(default_factory=Counter)  # reason -> files or pages
    confidence_sum: float = 0.0
    seconds: float = 0.0

    def as_metrics(self) -> dict:
        return {"files": self.files, "pages": self.pages, "lines": self.lines, "kept": self.kept, "review": self.review,
                "no_separator": self.no_separator, "rejected": dict(sorted(self.rejected_files.items())),
                "mean_confidence": round(self.confidence_sum / self.lines, 4) if self.lines else None,
                "page_seconds": round(self.seconds / self.pages, 3) if self.pages else None}


def scan_files(source: Source, root: Path) -> list[Path]:
    """The images and PDFs of a scans source, in name order."""
    return media_files(source, root, SCAN_SUFFIXES, "image or PDF files")


def record_fields(source: Source, text: str) -> dict[str, str] | None:
    """The record fields of one line: the whole line, or (with a separator) its two sides; None when a
    two-sided line has nothing to split at or an empty side."""
    if source.separator is None:
        return {"text": text}
    first, found, second = text.partition(source.separator)
    first, second = first.strip(), second.strip()
    if not found or not first or not second:
        return None
    names = ("headword", "gloss") if source.kind == "dictionary" else ("text", "pivot_text")
    return {names[0]: first, names[1]: second}


def ocr_language(source: Source) -> str:
    """What the engine is asked for: both languages where a page holds an entry and its gloss."""
    return f"{source.lang}+{source.pivot_lang}" if source.separator and source.pivot_lang else source.lang


def _crop(page: Page, line: OcrLine, crops: Path, name: str) -> str | None:
    if line.box == (0, 0, 0, 0):
        return None
    left, top, right, bottom = line.box
    box = (max(0, left - CROP_PADDING), max(0, top - CROP_PADDING), min(page.image.width, right + CROP_PADDING),
           min(page.image.height, bottom + CROP_PADDING))
    crops.mkdir(parents=True, exist_ok=True)
    target = crops / name
    page.image.crop(box).save(target, format="PNG")
    return target.as_posix()


def ocr_source(source: Source, engine: OcrEngine, min_confidence: float, dpi: int, root: Path, records: IO[str],
               review: IO[str], crops: Path) -> ScanCounts:
    """OCR every page of a source: records (one JSON object a line) to `records`, the review queue to `review`,
    line crops for review into `crops`; the counts."""
    counts = ScanCounts()
    lang = ocr_language(source)
    for path in scan_files(source, root):
        counts.files += 1
        shown = shown_path(path, root)
        for item in iter_pages(path, dpi=dpi):
            if isinstance(item, PageReject):
                counts.rejected_files[item.reason] += 1
                where = shown if item.number is None else f"{shown}#page={item.number}"
                review.write(json.dumps({"source": source.id, "origin": where, "reason": item.reason,
                                         "detail": item.detail}, ensure_ascii=False) + "\n")
                continue
            counts.pages += 1
            started = time.perf_counter()
            lines = engine.recognise(_as_grey(item.image), lang)
            counts.seconds += time.perf_counter() - started
            for number, line in enumerate(lines, start=1):
                counts.lines += 1
                counts.confidence_sum += line.confidence
                origin = f"{shown}#page={item.number}&line={number}"
                sure = line.confidence >= min_confidence
                fields = record_fields(source, line.text) if sure else None
                if fields is not None:
                    counts.kept += 1
                    records.write(json.dumps({**fields, "origin": origin, "confidence": round(line.confidence, 4),
                                              "engine": engine.name}, ensure_ascii=False) + "\n")
                    continue
                reason = "no_separator" if sure else "low_confidence"
                counts.review += 1
                counts.no_separator += sure
                crop = _crop(item, line, crops, f"{source.id}-{counts.review:05d}.png")
                review.write(json.dumps({"source": source.id, "origin": origin, "reason": reason, "text": line.text,
                                         "confidence": round(line.confidence, 4), "engine": engine.name, "crop": crop},
                                        ensure_ascii=False) + "\n")
    return counts


def _as_grey(image: Image.Image) -> Image.Image:
    return image if image.mode == "L" else image.convert("L")
