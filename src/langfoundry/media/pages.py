"""Page images from scans and PDFs: PNG, JPEG and TIFF through Pillow, PDF pages rendered by pypdfium2.

A file that cannot give pages (corrupt, truncated, password-protected, not what its extension says) is a
PageReject with a reason and a one-line detail that says how to fix it, never a traceback; a caller that
must stop turns it into a UserError with `as_error()`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filetype
import pypdfium2
import pypdfium2.raw as pdfium_c
from PIL import Image, UnidentifiedImageError

from langfoundry.core.errors import UserError

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
PDF_SUFFIX = ".pdf"
# filetype's extension for each format this module reads, to tell a file that is not what its name says
_SNIFFED = {"png": "PNG", "jpg": "JPEG", "tif": "TIFF", "pdf": "PDF"}
DEFAULT_DPI = 300  # Tesseract reads best at about 300 DPI
MIN_CREDIBLE_DPI = 50
DEFAULT_MAX_PIXELS = 80_000_000  # a page beyond this (about A0 at 300 DPI) is refused rather than held in memory


@dataclass(frozen=True)
class Page:
    file: str  # as given, for origins
    number: int  # 1-based page (PDF) or frame (multi-page TIFF)
    image: Image.Image  # RGB or L, info["dpi"] set where known


@dataclass(frozen=True)
class PageReject:
    file: str
    number: int | None  # None: the whole file
    reason: str  # not_found, unsupported_format, wrong_extension, corrupt_image, corrupt_pdf, password_protected, too_large
    detail: str  # one line: what is wrong and how to fix it

    def as_error(self) -> UserError:
        where = self.file if self.number is None else f"{self.file} page {self.number}"
        return UserError(f"{where}: {self.detail}")


def iter_pages(path: str | Path, dpi: int = DEFAULT_DPI, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Page | PageReject]:
    """Every page of one image or PDF file, in order, or the reject that ends it."""
    path = Path(path)
    shown = path.as_posix()
    suffix = path.suffix.lower()
    if not path.is_file():
        yield PageReject(shown, None, "not_found", "no such file; check the path in sources.yaml")
        return
    if suffix != PDF_SUFFIX and suffix not in IMAGE_FORMATS:
        yield PageReject(shown, None, "unsupported_format",
                         f"{suffix or 'no extension'} is not a page format; use PNG, JPEG, TIFF or PDF")
        return
    expected = "PDF" if suffix == PDF_SUFFIX else IMAGE_FORMATS[suffix]
    actual = sniff_format(path)
    if actual != expected:
        yield _wrong_extension(shown, suffix, expected, actual)
        return
    if expected == "PDF":
        yield from _pdf_pages(path, shown, dpi, max_pixels)
    else:
        yield from _image_pages(path, shown, expected, max_pixels)


def sniff_format(path: Path) -> str | None:
    """PNG, JPEG, TIFF or PDF as the file's bytes say; the MIME type for another known kind; None if unknown."""
    try:
        kind = filetype.guess(str(path))
    except OSError:
        return None
    if kind is None:
        return None
    return _SNIFFED.get(kind.extension, kind.mime)


def _wrong_extension(shown: str, suffix: str, expected: str, actual: str | None) -> PageReject:
    if actual is None:
        what = "bytes no known format starts with"
        fix = "check that the file is complete and what it should be"
    else:
        what = f"a {actual} file"
        readable = {value: key for key, value in reversed(IMAGE_FORMATS.items())} | {"PDF": PDF_SUFFIX}
        fix = f"rename it to {readable[actual]}" if actual in readable else "convert it to PNG, TIFF or PDF"
    return PageReject(shown, None, "wrong_extension", f"named {suffix} but its bytes are {what}, not {expected}; {fix}")


def _image_pages(path: Path, shown: str, expected: str, max_pixels: int) -> Iterator[Page | PageReject]:
    number = 0
    try:
        with _quiet_pillow():
            opened = Image.open(path, formats=[expected])
        with opened:
            while True:
                with _quiet_pillow():
                    try:
                        opened.seek(number)  # frame by frame: a 300-page TIFF is never held whole
                    except EOFError:
                        return
                    number += 1
                    too_large = opened.width * opened.height > max_pixels
                    if not too_large:
                        opened.load()  # decode now: a truncated file fails here, inside the try
                        image = opened.convert("L" if opened.mode in ("1", "L", "I;16", "I") else "RGB")
                if too_large:
                    yield PageReject(shown, _frame(expected, number), "too_large", f"{opened.width}x{opened.height} "
                                     f"pixels is over the {max_pixels:,} allowed; scan at a lower resolution")
                    continue
                dpi = opened.info.get("dpi")
                if dpi and min(dpi) >= MIN_CREDIBLE_DPI:  # JPEGs with only an aspect ratio say 1 DPI: unknown
                    image.info["dpi"] = dpi
                yield Page(shown, number, image)
    except Image.DecompressionBombError as err:
        yield PageReject(shown, _frame(expected, number), "too_large", f"{err}; scan at a lower resolution")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        # Pillow says "image file is truncated", "broken data stream", ...: the file is damaged
        yield PageReject(shown, _frame(expected, number), "corrupt_image", f"the {expected} image cannot be decoded "
                                                                           f"({first_line(err)}); re-export or re-scan it")


def _frame(image_format: str, number: int) -> int | None:
    """The frame a reject names: only a TIFF has several; a PNG or JPEG is the whole file."""
    return number if image_format == "TIFF" and number else None


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow warns of damaged metadata ("Corrupt EXIF data") as it decodes: the page still reads, or ends as
    a reject, so the warning adds nothing. Never held across a yield: the filter is process-wide."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _pdf_pages(path: Path, shown: str, dpi: int, max_pixels: int) -> Iterator[Page | PageReject]:
    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as err:
        if err.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            yield PageReject(shown, None, "password_protected", "the PDF is password-protected; save an unprotected copy "
                                                                "(for example: qpdf --decrypt --password=... in.pdf out.pdf)")
        elif err.err_code == pdfium_c.FPDF_ERR_SECURITY:
            yield PageReject(shown, None, "password_protected", "the PDF uses a security handler PDFium cannot open; "
                                                                "save an unprotected copy")
        else:
            yield PageReject(shown, None, "corrupt_pdf", f"the PDF cannot be read ({first_line(err)}); re-export it")
        return
    try:
        scale = dpi / 72  # PDF units are 1/72 inch
        for index in range(len(document)):
            number = index + 1
            try:
                page = document[index]
                width, height = page.get_size()
                pixels = round(width * scale) * round(height * scale)
                if pixels > max_pixels:
                    yield PageReject(shown, number, "too_large", f"at {dpi} DPI the page is {pixels:,} pixels, over the "
                                                                 f"{max_pixels:,} allowed; lower the DPI")
                    continue
                image = page.render(scale=scale, grayscale=True).to_pil()
                page.close()
            except pypdfium2.PdfiumError as err:
                yield PageReject(shown, number, "corrupt_pdf", f"the page cannot be rendered ({first_line(err)})")
                continue
            image.info["dpi"] = (dpi, dpi)
            yield Page(shown, number, image)
    finally:
        document.close()


def load_pages(path: str | Path, dpi: int = DEFAULT_DPI, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Page]:
    """All pages of a file, or UserError (one line) at the first reject: for callers that must stop."""
    pages = []
    for item in iter_pages(path, dpi, max_pixels):
        if isinstance(item, PageReject):
            raise item.as_error()
        pages.append(item)
    return pages


def first_line(err: object) -> str:
    """A library's error message, its first line only, for a one-line reject or UserError."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
