"""OCR engines behind one small interface: the Tesseract CLI and an OpenAI-compatible vision endpoint.

An engine turns one page image into lines, each with its confidence (0..1) and its box on the page, so
lines the engine is unsure of can go to a review queue (split_by_confidence) instead of the training data.
A language is an inventory tag; a page holding two languages is asked for as "jv-x-banyumas+id".
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from PIL import Image

from langfoundry.core.errors import UserError

# Inventory tag -> Tesseract's traineddata name (Debian ships each as tesseract-ocr-<name>). Banyumasan has
# no model of its own; Javanese is its closest. N'Ko (nqo) has none at all: use the vision engine.
TESSERACT_PACKS = {
    "en": "eng",
    "id": "ind",
    "jv": "jav",
    "jv-x-banyumas": "jav",
    "su": "sun",
    "ml": "mal",
    "ms": "msa",
}
PROJECT_PACKS = ("eng", "ind", "jav", "sun", "mal")  # the packs the project's set-up installs
VISION_KEY_ENV = "LANGFOUNDRY_VISION_API_KEY"
_TSV_WORD_LEVEL = "5"  # Tesseract's TSV levels: 1 page, 2 block, 3 paragraph, 4 line, 5 word


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float  # 0..1; 1.0 where the engine gives none
    box: tuple[int, int, int, int]  # left, top, right, bottom in page pixels; (0, 0, 0, 0) where the engine gives none


class OcrEngine(Protocol):
    name: str

    def recognise(self, image: Image.Image, lang: str) -> list[OcrLine]:
        """The lines of text on one page image, top to bottom."""
        ...


def split_by_confidence(lines: Iterable[OcrLine], min_confidence: float) -> tuple[list[OcrLine], list[OcrLine]]:
    """(kept, review): lines at or above min_confidence, and those under it, each in page order."""
    kept: list[OcrLine] = []
    review: list[OcrLine] = []
    for line in lines:
        (kept if line.confidence >= min_confidence else review).append(line)
    return kept, review


def language_tags(lang: str) -> list[str]:
    """"jv-x-banyumas+id" -> ["jv-x-banyumas", "id"]: the languages one page holds."""
    tags = [tag.strip() for tag in lang.split("+") if tag.strip()]
    if not tags:
        raise UserError(f"OCR language {lang!r} is empty; give an inventory tag such as 'id' or 'jv-x-banyumas+id'")
    return tags


def tesseract_packs(lang: str) -> list[str]:
    """The Tesseract packs for the tags in lang, in order, without repeats."""
    packs: list[str] = []
    for tag in language_tags(lang):
        pack = TESSERACT_PACKS.get(tag)
        if pack is None:
            known = ", ".join(sorted(TESSERACT_PACKS))
            raise UserError(f"OCR language {tag!r}: Tesseract has no model for it (it has: {known}); "
                            f"use the vision engine for this source")
        if pack not in packs:
            packs.append(pack)
    return packs


def apt_command(packs: Sequence[str]) -> str:
    """The one command that installs the Tesseract binary and the given packs."""
    return "apt-get install -y tesseract-ocr " + " ".join(f"tesseract-ocr-{pack}" for pack in packs)


def installed_tesseract_packs(binary: str = "tesseract") -> set[str]:
    """The packs the Tesseract binary finds; UserError with the install command when there is no binary."""
    if shutil.which(binary) is None:
        raise UserError(f"{binary}: the Tesseract binary is not installed; run: {apt_command(PROJECT_PACKS)}")
    listing = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, check=False)
    # the first line is a heading ("List of available languages in ..."); each further line is one pack
    return {line.strip() for line in listing.stdout.splitlines()[1:] if line.strip()}


def require_tesseract(lang: str, binary: str = "tesseract") -> list[str]:
    """The packs lang needs, once each is installed; otherwise UserError with the one command to run."""
    packs = tesseract_packs(lang)
    if shutil.which(binary) is None:
        raise UserError(f"{binary}: the Tesseract binary is not installed; run: {apt_command(packs)}")
    missing = [pack for pack in packs if pack not in installed_tesseract_packs(binary)]
    if missing:
        raise UserError(f"OCR language {lang!r} needs the Tesseract pack(s) {', '.join(missing)}; run: {apt_command(missing)}")
    return packs


class TesseractEngine:
    """The `tesseract` CLI, TSV output: per-word confidences, grouped into lines (mean of their words)."""

    name = "tesseract"

    def __init__(self, binary: str = "tesseract", page_segmentation: int = 3, default_dpi: int = 300,
                 timeout_s: float = 300.0) -> None:
        self.binary = binary
        self.page_segmentation = page_segmentation  # Tesseract's --psm: 3 finds the layout itself, 6 is one block, 7 one line
        self.default_dpi = default_dpi  # for images that carry no resolution (Tesseract would assume 70 DPI)
        self.timeout_s = timeout_s
        self._checked: set[str] = set()

    def recognise(self, image: Image.Image, lang: str) -> list[OcrLine]:
        if lang not in self._checked:  # once per language: --list-langs costs a process
            require_tesseract(lang, self.binary)
            self._checked.add(lang)
        dpi = round(float((image.info.get("dpi") or (self.default_dpi,))[0])) or self.default_dpi
        command = [self.binary, "stdin", "stdout", "-l", "+".join(tesseract_packs(lang)),
                   "--psm", str(self.page_segmentation), "--dpi", str(dpi),
                   # plain C++ dot products, not the CPU's widest SIMD: the same text and confidences on any
                   # x86-64 machine, for about 15% more time
                   "-c", "dotproduct=generic", "tsv"]
        # one thread: pages are the unit of parallel work, and OpenMP threads slow Tesseract down on small pages
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            done = subprocess.run(command, input=_png_bytes(image), capture_output=True, env=env,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"tesseract took longer than {self.timeout_s:.0f} s on one page; "
                            f"render at a lower DPI or split the page") from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise UserError(f"tesseract failed (exit {done.returncode}): {message[-1] if message else 'no message'}")
        return parse_tesseract_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tesseract_tsv(tsv: str) -> list[OcrLine]:
    """Tesseract's TSV (one row per page, block, paragraph, line and word) -> its lines, in reading order."""
    words_by_line: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    # QUOTE_NONE: a recognised word may be a lone quotation mark
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != _TSV_WORD_LEVEL or not (row.get("text") or "").strip():
            continue
        key = (row["page_num"], row["block_num"], row["par_num"], row["line_num"])
        words_by_line.setdefault(key, []).append(row)
    lines = []
    for words in words_by_line.values():  # dicts keep insertion order, which is Tesseract's reading order
        lefts = [int(word["left"]) for word in words]
        tops = [int(word["top"]) for word in words]
        rights = [int(word["left"]) + int(word["width"]) for word in words]
        bottoms = [int(word["top"]) + int(word["height"]) for word in words]
        confidence = sum(max(0.0, float(word["conf"])) for word in words) / len(words) / 100.0
        lines.append(OcrLine(" ".join(word["text"].strip() for word in words), round(confidence, 4),
                             (min(lefts), min(tops), max(rights), max(bottoms))))
    return lines


class VisionEndpointEngine:
    """An OpenAI-compatible chat endpoint with a vision model (for scripts Tesseract has no model for, such as N'Ko).

    The page goes as a base64 PNG data URL; the answer is one text line per line, confidence 1.0, or JSON
    {"lines": [{"text": ..., "confidence": ...}]} where the model gives confidences. The key comes from
    LANGFOUNDRY_VISION_API_KEY; a local server that needs none works without it.
    """

    name = "vision"

    def __init__(self, url: str, model: str, timeout_s: float = 120.0, language_names: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.language_names = language_names or {}
        self._transport = transport  # tests may answer in process

    def recognise(self, image: Image.Image, lang: str) -> list[OcrLine]:
        languages = ", ".join(self.language_names.get(tag, tag) for tag in language_tags(lang))
        prompt = (f"Transcribe every line of text in this image exactly as written (language: {languages}). "
                  "Answer with the text only, one line of the image per line, nothing else.")
        data_url = "data:image/png;base64," + base64.b64encode(_png_bytes(image)).decode("ascii")
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "user", "content": [{"type": "text", "text": prompt},
                                                          {"type": "image_url", "image_url": {"url": data_url}}]}]}
        key = os.environ.get(VISION_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        endpoint = f"{self.url}/chat/completions"
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self._transport) as client:
                response = client.post(endpoint, json=body, headers=headers)
        except httpx.HTTPError as err:
            raise UserError(f"vision endpoint {endpoint}: {type(err).__name__}: {err}; "
                            f"check the URL and that the server runs") from None
        if response.status_code in (401, 403):
            raise UserError(f"vision endpoint {endpoint} refused the request (HTTP {response.status_code}); "
                            f"set {VISION_KEY_ENV} to a valid key")
        if response.status_code >= 400:
            raise UserError(f"vision endpoint {endpoint}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise UserError(f"vision endpoint {endpoint}: the answer is not a chat completion "
                            f"(expected choices[0].message.content): {response.text[:200]}") from None
        return parse_vision_answer(content or "")


def parse_vision_answer(content: str) -> list[OcrLine]:
    """A vision model's answer -> lines: JSON with per-line confidences where given, else one line per text line."""
    stripped = content.strip()
    if stripped.startswith("```"):  # models often fence their answer
        stripped = stripped.strip("`").removeprefix("json").removeprefix("text").strip()
    try:
        parsed = json.loads(stripped)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("lines"), list):
        lines = []
        for item in parsed["lines"]:
            text, confidence = (item.get("text"), item.get("confidence", 1.0)) if isinstance(item, dict) else (item, 1.0)
            if isinstance(text, str) and text.strip():
                valid = isinstance(confidence, int | float) and not isinstance(confidence, bool)
                lines.append(OcrLine(text.strip(), min(1.0, max(0.0, float(confidence))) if valid else 1.0, (0, 0, 0, 0)))
        return lines
    return [OcrLine(line.strip(), 1.0, (0, 0, 0, 0)) for line in stripped.splitlines() if line.strip()]


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    dpi = image.info.get("dpi")
    image.save(buffer, format="PNG", **({"dpi": dpi} if dpi else {}))
    return buffer.getvalue()
