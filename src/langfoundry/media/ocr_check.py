"""The OCR check set the project builds itself, and the character error rate of each engine on it.

Known text (Banyumasan dictionary entries with their Indonesian glosses, Indonesian, English and Malayalam
sentences) is rendered with Debian's Noto fonts at two sizes, softened and given mild seeded noise, then
read back by an engine. CER = edit distance / reference length, summed over a language's images, after the
normalisation the clean stage applies to every record (NFC, Malayalam atomic chillus, spaces collapsed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from langfoundry.core.errors import UserError
from langfoundry.core.normalize import normalize_text
from langfoundry.media.ocr import OcrEngine

FONT_DIR = Path("/usr/share/fonts")
FONT_FILES = {"Latn": "NotoSans-Regular.ttf", "Mlym": "NotoSansMalayalam-Regular.ttf", "Nkoo": "NotoSansNKo-Regular.ttf"}
FONT_PACKAGE = "fonts-noto-core"
SIZES = (24, 36)  # font sizes in pixels; at 300 DPI about 6 and 9 points: dictionary small print and body text
NOISE_SIGMA = 12.0  # grey levels of Gaussian noise: a clean scan, not a fax
BLUR_RADIUS = 0.7  # pixels: the softness of a scanner's optics
DPI = 300

SENTENCES = {
    "id": ["Semua orang dilahirkan merdeka dan mempunyai martabat dan hak-hak yang sama.",
           "Mereka dikaruniai akal dan hati nurani dan hendaknya bergaul satu sama lain.",
           "Setiap orang berhak atas pendidikan.",
           "Pasar pagi di desa itu ramai sekali sejak subuh."],
    "en": ["All human beings are born free and equal in dignity and rights.",
           "They are endowed with reason and conscience.",
           "Everyone has the right to education.",
           "The morning market in the village is busy from dawn."],
    "ml": ["മലയാളം കേരളത്തിലെ ഭാഷയാണ്.",
           "എല്ലാ മനുഷ്യരും സ്വതന്ത്രരായി ജനിക്കുന്നു.",
           "ഞാൻ ഇന്ന് സ്കൂളിൽ പോകുന്നു.",
           "ഈ പുസ്തകം വളരെ നല്ലതാണ്.",
           "കുട്ടികൾ മഴയത്ത് കളിക്കുന്നു.",
           "അമ്മ അടുക്കളയിൽ ചോറ് വയ്ക്കുന്നു."],
}
SCRIPTS = {"id": "Latn", "en": "Latn", "jv-x-banyumas": "Latn", "ml": "Mlym"}


@dataclass(frozen=True)
class CheckImage:
    group: str  # the language the CER is reported for
    lang: str  # what the engine is asked for: "jv-x-banyumas+id" for dictionary lines with their glosses
    size: int
    text: str  # the reference, one rendered line per text line
    image: Image.Image


def noto_font(script: str, font_dir: Path = FONT_DIR) -> Path:
    """The Noto font file for a script (Latn, Mlym, Nkoo); UserError with the install command if absent."""
    name = FONT_FILES.get(script)
    if name is None:
        raise UserError(f"no check font for script {script!r}; known: {', '.join(FONT_FILES)}")
    found = sorted(font_dir.rglob(name)) if font_dir.is_dir() else []
    if not found:
        raise UserError(f"{name} not found under {font_dir}; run: apt-get install -y {FONT_PACKAGE}")
    return found[0]


def render_lines(lines: Sequence[str], font_path: Path, size: int, seed: int, noise_sigma: float = NOISE_SIGMA,
                 blur_radius: float = BLUR_RADIUS) -> Image.Image:
    """Black text on white, one line each, a margin around; softened and noised reproducibly from seed."""
    font = ImageFont.truetype(str(font_path), size)  # Pillow shapes complex scripts (Malayalam) with libraqm
    line_height = round(size * 1.6)
    margin = size
    width = max(round(font.getlength(line)) for line in lines) + 2 * margin
    height = line_height * len(lines) + 2 * margin
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * line_height), line, font=font, fill=0)
    if blur_radius > 0:
        image = image.filter(ImageFilter.GaussianBlur(blur_radius))
    noise = np.random.default_rng(seed).normal(0.0, noise_sigma, size=(height, width))
    noisy = Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8), mode="L")
    noisy.info["dpi"] = (DPI, DPI)
    return noisy


def dictionary_lines(count: int, seed: int) -> list[str]:
    """count "headword: gloss" lines drawn reproducibly from the Banyumasan dictionary package (sources.yaml)."""
    from banyumasan_corpus import load_entries  # the default source's own package: the check reads the same words

    entries = load_entries()
    picked = random.Random(seed).sample(range(len(entries)), min(count, len(entries)))
    return [f"{entries[index].ngapak}: {entries[index].indonesia}" for index in sorted(picked)]


A4_PIXELS = (2480, 3508)  # 210 x 297 mm at 300 DPI
PAGE_FONT_SIZE = 36  # about 9 points at 300 DPI
PAGE_MARGIN = 200  # pixels: a typical top-left margin
FIXED_PDF_DATE = (2000, 1, 1, 0, 0, 0, 5, 1, 0)  # a PDF's dates, fixed so the same pages give the same bytes


def a4_page(lines: Sequence[str], seed: int) -> Image.Image:
    """Lines of Latin-script text on an A4 page at 300 DPI, as a scanner would give it."""
    block = render_lines(lines, noto_font("Latn"), PAGE_FONT_SIZE, seed)
    page = Image.new("L", A4_PIXELS, 255)
    page.paste(block, (PAGE_MARGIN, PAGE_MARGIN))
    page.info["dpi"] = (DPI, DPI)
    return page


def write_pdf(pages: Sequence[Image.Image], path: Path) -> None:
    """The pages as one PDF, the same bytes for the same pages (no creation time in it)."""
    date = time.struct_time(FIXED_PDF_DATE)
    pages[0].save(path, format="PDF", save_all=True, append_images=list(pages[1:]), resolution=DPI,
                  creationDate=date, modDate=date)


def render_dictionary_pdf(path: Path, entries: int, lines_per_page: int, seed: int) -> list[list[str]]:
    """A stand-in scan: "headword: gloss" lines of the dictionary package on A4 pages, saved as a PDF;
    returns each page's lines (the reference text)."""
    lines = dictionary_lines(entries, seed)
    texts = [lines[start:start + lines_per_page] for start in range(0, len(lines), lines_per_page)]
    write_pdf([a4_page(text, seed + index) for index, text in enumerate(texts)], path)
    return texts


def build_check_set(seed: int = 0, groups: Iterable[str] = ("jv-x-banyumas", "id", "en", "ml"), sizes: Sequence[int] = SIZES,
                    dictionary_count: int = 8, noise_sigma: float = NOISE_SIGMA) -> list[CheckImage]:
    """One image per language group and size: the whole check set, the same for the same seed."""
    images = []
    for group_index, group in enumerate(groups):
        if group == "jv-x-banyumas":
            lines, lang = dictionary_lines(dictionary_count, seed), "jv-x-banyumas+id"
        elif group in SENTENCES:
            lines, lang = SENTENCES[group], group
        else:
            raise UserError(f"OCR check: no check text for {group!r}; known: jv-x-banyumas, {', '.join(SENTENCES)}")
        font = noto_font(SCRIPTS[group])
        for size_index, size in enumerate(sizes):
            image_seed = seed * 1000 + group_index * 10 + size_index
            image = render_lines(lines, font, size, image_seed, noise_sigma)
            images.append(CheckImage(group, lang, size, "\n".join(lines), image))
    return images


def comparable(text: str) -> str:
    """Text as a training record would hold it (the clean stage's normalisation), line breaks as spaces."""
    return " ".join(normalize_text(text).split())


def edit_distance(first: str, second: str) -> int:
    """Levenshtein distance over code points. No edit-distance library is among the project's dependencies
    (rapidfuzz, python-Levenshtein and editdistance are absent), and check texts are a few hundred
    characters, so the classic two-row dynamic programme is quick enough."""
    if len(first) < len(second):
        first, second = second, first
    previous = list(range(len(second) + 1))
    for row, char in enumerate(first, start=1):
        current = [row]
        for column, other in enumerate(second, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + (char != other)))
        previous = current
    return previous[-1]


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance / reference length, both made comparable first."""
    reference, hypothesis = comparable(reference), comparable(hypothesis)
    return edit_distance(reference, hypothesis) / max(1, len(reference))


def run_check(engines: Sequence[OcrEngine], images: Sequence[CheckImage]) -> dict:
    """Per engine and language group: CER (errors / reference characters, over all its images), images,
    characters, seconds per image; and the worst image, to look at."""
    results: dict[str, dict[str, dict]] = {}
    for engine in engines:
        per_group: dict[str, dict] = {}
        for item in images:
            started = time.perf_counter()
            hypothesis = "\n".join(line.text for line in engine.recognise(item.image, item.lang))
            seconds = time.perf_counter() - started
            reference, read = comparable(item.text), comparable(hypothesis)
            errors = edit_distance(reference, read)
            totals = per_group.setdefault(item.group, {"errors": 0, "chars": 0, "images": 0, "seconds": 0.0, "worst": None})
            totals["errors"] += errors
            totals["chars"] += len(reference)
            totals["images"] += 1
            totals["seconds"] += seconds
            image_cer = errors / max(1, len(reference))
            if totals["worst"] is None or image_cer > totals["worst"]["cer"]:
                totals["worst"] = {"size": item.size, "cer": round(image_cer, 4), "reference": reference, "read": read}
        results[engine.name] = {group: {"cer": round(totals["errors"] / max(1, totals["chars"]), 4),
                                        "errors": totals["errors"], "chars": totals["chars"], "images": totals["images"],
                                        "seconds_per_image": round(totals["seconds"] / totals["images"], 3),
                                        "worst": totals["worst"]}
                                for group, totals in per_group.items()}
    return results
