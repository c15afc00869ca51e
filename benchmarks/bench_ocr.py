"""OCR: character error rate per language and engine on the project's own check set, and seconds per page.

Usage: python benchmarks/bench_ocr.py [--seed N] [--pages N] [--vision-url URL --vision-model NAME]

The check set (src/langfoundry/media/ocr_check.py): Banyumasan dictionary lines with their Indonesian
glosses, Indonesian, English and Malayalam sentences, rendered with Debian's Noto fonts at two sizes with
mild seeded noise. Then whole A4 pages of dictionary lines, saved as a PDF, rendered back by pypdfium2 at
300 DPI and read by each engine: the time per page, rendering and OCR apart. The vision engine runs only
when a URL and a model are given (its key from LANGFOUNDRY_VISION_API_KEY).
Target (issue 14): CER at most 2% on rendered Latin-script text.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from langfoundry.core.errors import UserError
from langfoundry.media.ocr import OcrEngine, TesseractEngine, VisionEndpointEngine
from langfoundry.media.ocr_check import (
    A4_PIXELS,
    DPI,
    PAGE_FONT_SIZE,
    PAGE_MARGIN,
    build_check_set,
    character_error_rate,
    render_dictionary_pdf,
    run_check,
)
from langfoundry.media.pages import Page, iter_pages

LATIN_TARGET = 0.02


def full_pages(engines: list[OcrEngine], pages: int, seed: int) -> None:
    lines_per_page = (A4_PIXELS[1] - 2 * PAGE_MARGIN) // round(PAGE_FONT_SIZE * 1.6) - 2
    with tempfile.TemporaryDirectory() as scratch:
        pdf = Path(scratch) / "pages.pdf"
        texts = render_dictionary_pdf(pdf, lines_per_page * pages, lines_per_page, seed)
        started = time.perf_counter()
        rendered = [item for item in iter_pages(pdf, dpi=DPI) if isinstance(item, Page)]
        render_seconds = (time.perf_counter() - started) / pages
        assert len(rendered) == pages, "a page did not render"
        print(f"\nwhole pages: {pages} A4 page(s) of {lines_per_page} dictionary lines, PDF rendered at {DPI} DPI "
              f"in {render_seconds:.2f} s/page")
        for engine in engines:
            started = time.perf_counter()
            read = ["\n".join(line.text for line in engine.recognise(page.image, "jv-x-banyumas+id")) for page in rendered]
            ocr_seconds = (time.perf_counter() - started) / pages
            cer = sum(character_error_rate("\n".join(text), hypothesis) for text, hypothesis in zip(texts, read)) / pages
            print(f"  {engine.name:10s} OCR {ocr_seconds:.2f} s/page, render + OCR {render_seconds + ocr_seconds:.2f} s/page, "
                  f"CER {cer:.2%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", type=int, default=2, help="whole A4 pages to time (default 2)")
    parser.add_argument("--vision-url", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--vision-model", help="the vision model's name at that endpoint")
    args = parser.parse_args()
    engines: list[OcrEngine] = [TesseractEngine()]
    if args.vision_url and args.vision_model:
        engines.append(VisionEndpointEngine(args.vision_url, args.vision_model))
    try:
        started = time.perf_counter()
        images = build_check_set(args.seed)
        print(f"check set: {len(images)} images (seed {args.seed}), built in {time.perf_counter() - started:.1f} s; "
              f"{os.cpu_count()} CPU core(s)")
        results = run_check(engines, images)
        print(f"{'engine':10s} {'language':14s} {'CER':>7s} {'chars':>6s} {'images':>6s} {'s/image':>8s}")
        failed = False
        for engine, groups in results.items():
            for group, measured in groups.items():
                latin = group != "ml"
                verdict = ("ok" if measured["cer"] <= LATIN_TARGET else "OVER TARGET") if latin else ""
                failed |= latin and measured["cer"] > LATIN_TARGET
                print(f"{engine:10s} {group:14s} {measured['cer']:7.2%} {measured['chars']:6d} {measured['images']:6d} "
                      f"{measured['seconds_per_image']:8.2f}  {verdict}")
        full_pages(engines, args.pages, args.seed)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\ntarget: CER <= {LATIN_TARGET:.0%} on Latin-script text: {'missed' if failed else 'met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
