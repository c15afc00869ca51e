"""sources.yaml's models: the dataset manifest, one Source per input, and where acquired or extracted text lives.

langfoundry.core.config re-exports every name, so callers import them from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from langfoundry.core.records import KINDS
from langfoundry.core.strict_yaml import Strict

ACQUIRED_DIR = Path("data/raw/acquired")
MEDIA_DIR = Path("data/interim/media")  # the media stages' records, one JSONL per source, read by ingest


class PackageSpec(Strict):
    name: str  # distribution name on PyPI, e.g. banyumasan-corpus
    version: str  # the pinned version that must be installed
    resource: str  # path inside the installed package, e.g. banyumasan_corpus/data/corpus.json


class HuggingFaceSpec(Strict):
    dataset: str  # hub id, or a local directory
    revision: str | None = None  # commit sha or tag; required for hub ids
    config: str | None = None
    split: str = "train"


class UrlSpec(Strict):
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class RenderSpec(Strict):
    """Pages rendered from the Banyumasan dictionary package's entries ("headword: gloss" lines, Noto Sans with
    mild scanner noise), saved as a PDF: the default pipeline's stand-in for a scanned dictionary."""
    entries: int = Field(60, ge=1, le=2000)
    lines_per_page: int = Field(30, ge=1, le=80)
    seed: int = 0


class VideosSpec(Strict):
    """Videos fetched by yt-dlp (any site it supports, or file:// URLs), with their subtitles in the source's language."""
    urls: list[str] = Field(min_length=1)
    format: str = "mp4/best"  # yt-dlp's format selector


class FeedbackSpec(Strict):
    """The serving database (langfoundry serve): corrections become training examples."""
    database: str = Field(pattern=r"^[a-z][a-z0-9+]*://")  # sqlite:///data/serve/langfoundry.db, postgresql://...
    review_below_rating: int = Field(3, ge=1, le=5)  # rated below this without a correction: the review queue


class AcquireSpec(Strict):
    package: PackageSpec | None = None
    huggingface: HuggingFaceSpec | None = None
    url: UrlSpec | None = None
    feedback: FeedbackSpec | None = None
    render: RenderSpec | None = None
    videos: VideosSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AcquireSpec:
        kinds = ("package", "huggingface", "url", "feedback", "render", "videos")
        given = [name for name in kinds if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(kinds)} (got {given or 'none'})")
        return self


class Source(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    kind: Literal[KINDS]  # type: ignore[valid-type]
    lang: str
    pivot_lang: str | None = None
    path: str | None = None  # a file, a directory of files, or (parallel text) the target side
    pivot_path: str | None = None  # parallel text: the line-aligned pivot side
    format: Literal["csv", "tsv", "json", "jsonl", "parquet", "xlsx", "txt", "tmx", "po"] | None = None
    acquire: AcquireSpec | None = None
    columns: dict[str, str] = {}  # record field -> column name in the file; lang: a column with each row's tag
    group_by: str | None = None  # a column (document, video, question, speaker id) whose rows share a split
    records_key: str | None = None  # JSON: the key that holds the list of records
    sheet: str | None = None  # xlsx: the sheet to read (default: every sheet)
    encoding: str | None = None  # default: detected (UTF-8, UTF-8 with BOM, UTF-16)
    # media: files whose text a media stage extracts first (scans: PNG/JPEG/TIFF/PDF through OCR; video: frames
    # through OCR, and subtitles; audio: recordings through ASR; documents: a document and its translation, not
    # sentence-aligned, through align)
    media: Literal["scans", "video", "audio", "documents"] | None = None
    separator: str | None = None  # scans of two-sided entries ("headword: gloss"): where a line splits
    speaker: str | None = None  # audio: the one speaker of every recording, which makes its clean clips TTS material
    task: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]*$")  # labelled: what the label says (intent, dialect)
    # manifest fields, for people and for the coverage report
    category: str | None = None
    region: str | None = None
    target_examples: int | None = Field(None, ge=0)
    priority: Literal["critical", "high", "medium", "low"] | None = None
    license: str | None = None
    notes: str | None = None
    planned: bool = False  # expected but not in the pipeline yet: acquire and ingest skip it, coverage lists it

    @model_validator(mode="after")
    def _has_input(self) -> Source:
        if self.path is None and self.acquire is None:
            raise ValueError("give a path (a file under data/raw/) or an acquire spec")
        if self.media == "documents" and (self.path is None or self.pivot_path is None):
            raise ValueError("media: documents needs path (the document) and pivot_path (its translation)")
        if self.separator is not None and self.media not in ("scans", "video"):
            raise ValueError("separator splits OCR lines: it needs media: scans or video")
        if self.kind == "labelled" and self.task is None:
            raise ValueError("kind labelled needs task: what its label says (intent, sentiment, dialect, ...), "
                             "which names its classification set")
        if self.task is not None and self.kind != "labelled":
            raise ValueError(f"task names the classification set of a labelled source; kind {self.kind} has none")
        if self.separator == "":
            raise ValueError("separator must not be empty; remove it to keep each OCR line whole")
        return self


class Sources(Strict):
    sources: list[Source]

    @model_validator(mode="after")
    def _unique_ids(self) -> Sources:
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice; ids must be unique")
            seen.add(source.id)
        return self


# the stage that extracts each media kind's text
MEDIA_STAGE = {"scans": "ocr", "video": "ocr", "audio": "asr", "documents": "align"}


def media_records(source: Source) -> Path:
    """The JSONL of text a media stage extracted for a source (ocr, align), which ingest reads in its place."""
    assert source.media is not None
    return MEDIA_DIR / MEDIA_STAGE[source.media] / f"{source.id}.jsonl"


def acquired_dir(source_id: str) -> Path:
    """Where acquire puts a source and ingest reads it: a fixed place below data/raw, since sources.yaml
    names no path for an acquired source (params.yaml's paths.acquired must say the same; validate checks)."""
    return ACQUIRED_DIR / source_id


def source_inputs(source: Source) -> list[str]:
    """The paths a source reads: its acquired folder, or its file(s) or folder."""
    if source.acquire is not None:
        return [acquired_dir(source.id).as_posix()]
    return [path for path in (source.path, source.pivot_path) if path]
