"""Page images from scans and PDFs, and every bad file ending as a reject with a reason, never a traceback."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import struct
from collections import Counter
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageDraw

from langfoundry.core.errors import UserError
from langfoundry.media.ocr import TesseractEngine
from langfoundry.media.ocr_check import SENTENCES, character_error_rate, noto_font, render_lines
from langfoundry.media.pages import Page, PageReject, iter_pages, load_pages


def page_image(width: int, height: int, square: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle(square, fill="black")
    return image


def only_reject(path: Path, **options) -> PageReject:
    items = list(iter_pages(path, **options))
    assert len(items) == 1 and isinstance(items[0], PageReject), items
    assert "\n" not in items[0].detail
    return items[0]


# --- pages that read ----------------------------------------------------------------------------------------------

def test_pdf_pages_render_at_the_requested_dpi(tmp_path) -> None:
    path = tmp_path / "scan.pdf"
    first, second = page_image(300, 450, (30, 30, 130, 130)), page_image(450, 300, (300, 150, 420, 280))
    first.save(path, save_all=True, append_images=[second], resolution=150)  # 2 x 3 inch and 3 x 2 inch pages

    pages = list(iter_pages(path, dpi=100))
    assert [type(page) for page in pages] == [Page, Page] and [page.number for page in pages] == [1, 2]
    assert [page.image.size for page in pages] == [(200, 300), (300, 200)]
    assert all(page.image.info["dpi"] == (100, 100) and page.file == path.as_posix() for page in pages)
    # each page's own square, where it was drawn (scaled by 100/150), and white elsewhere
    assert pages[0].image.getpixel((50, 50)) < 60 and pages[0].image.getpixel((150, 250)) > 200
    assert pages[1].image.getpixel((240, 140)) < 60 and pages[1].image.getpixel((50, 50)) > 200


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract binary is absent (apt-get install -y tesseract-ocr)")
def test_a_pdf_of_rendered_text_reads_back_through_tesseract(tmp_path) -> None:
    lines = SENTENCES["id"][:2]
    rendered = render_lines(lines, noto_font("Latn"), 36, seed=5).convert("RGB")
    rendered.save(tmp_path / "kamus.pdf", resolution=300)
    (page,) = load_pages(tmp_path / "kamus.pdf", dpi=300)
    assert all(abs(got - want) <= 1 for got, want in zip(page.image.size, rendered.size))  # PDFium rounds page points up
    read = TesseractEngine().recognise(page.image, "id")
    assert character_error_rate("\n".join(lines), "\n".join(line.text for line in read)) <= 0.02


def test_png_jpeg_and_multi_page_tiff_read(tmp_path) -> None:
    square = page_image(120, 80, (10, 10, 40, 40))
    square.save(tmp_path / "a.png", dpi=(300, 300))
    square.save(tmp_path / "b.JPEG", quality=90)
    square.save(tmp_path / "c.tif", save_all=True, append_images=[page_image(60, 60, (0, 0, 5, 5)).convert("L")])

    (png,) = load_pages(tmp_path / "a.png")
    assert png.image.size == (120, 80) and tuple(round(value) for value in png.image.info["dpi"]) == (300, 300)
    (jpeg,) = load_pages(tmp_path / "b.JPEG")
    assert jpeg.image.getpixel((20, 20))[0] < 60 and "dpi" not in jpeg.image.info  # no resolution stored: none invented
    tiff = load_pages(tmp_path / "c.tif")
    assert [(page.number, page.image.size, page.image.mode) for page in tiff] == [(1, (120, 80), "RGB"), (2, (60, 60), "L")]


# --- bad files ------------------------------------------------------------------------------------------------------

PADDING = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def rc4(key: bytes, data: bytes) -> bytes:
    state, j = list(range(256)), 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: str, owner_password: str) -> bytes:
    """A one-page PDF under the standard security handler, revision 2 (40-bit RC4), as the PDF 1.7 spec's
    algorithms 2 to 4 build it: no library here writes encrypted PDFs."""
    file_id = hashlib.md5(b"langfoundry-test").digest()
    permissions = struct.pack("<i", -4)
    owner = rc4(hashlib.md5((owner_password.encode() + PADDING)[:32]).digest()[:5], (user_password.encode() + PADDING)[:32])
    key = hashlib.md5((user_password.encode() + PADDING)[:32] + owner + permissions + file_id).digest()[:5]
    user = rc4(key, PADDING)
    content = rc4(hashlib.md5(key + struct.pack("<I", 4)[:3] + b"\0\0").digest()[:10], b"0 0 0 rg 20 20 100 100 re f")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
               b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>" % (owner.hex().encode(), user.hex().encode())]
    body, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, file_id.hex().encode(), file_id.hex().encode(), xref)
    return bytes(body)


def test_a_password_protected_pdf_is_a_clear_reject(tmp_path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted_pdf("secret", "owner"))
    with pypdfium2.PdfDocument(path, password="secret") as unlocked:  # the file itself is sound: the password opens it
        assert unlocked[0].render(scale=1).to_pil().convert("L").getpixel((50, 150)) < 60

    reject = only_reject(path)
    assert (reject.reason, reject.number) == ("password_protected", None)
    with pytest.raises(UserError, match=r"locked\.pdf: the PDF is password-protected; save an unprotected copy"):
        load_pages(path)


def test_a_png_named_pdf_is_rejected_with_the_name_to_give_it(tmp_path) -> None:
    path = tmp_path / "page-3.pdf"
    page_image(50, 50, (0, 0, 10, 10)).save(path, format="PNG")
    reject = only_reject(path)
    assert reject.reason == "wrong_extension"
    assert reject.detail == "named .pdf but its bytes are a PNG file, not PDF; rename it to .png"


def test_a_truncated_png_is_a_corrupt_image(tmp_path) -> None:
    whole = tmp_path / "whole.png"
    page_image(400, 300, (10, 10, 300, 200)).save(whole)
    data = whole.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    reject = only_reject(tmp_path / "cut.png")
    assert reject.reason == "corrupt_image" and "truncated" in reject.detail
    with pytest.raises(UserError, match=r"cut\.png: the PNG image cannot be decoded"):
        load_pages(tmp_path / "cut.png")


@pytest.mark.parametrize(("name", "data", "reason", "detail"), [
    ("noise.png", bytes(range(256)) * 4, "wrong_extension", "bytes no known format starts with"),
    ("broken.pdf", b"%PDF-1.7\n1 0 obj <</Type /Catalog /Pages 9 0 R>> endobj\ntrailer <<>>\n%%EOF\n", "corrupt_pdf",
     "the PDF cannot be read"),
    ("notes.docx", b"PK\x03\x04", "unsupported_format", ".docx is not a page format"),
    ("missing.png", None, "not_found", "no such file"),
])
def test_other_bad_files_are_rejects_with_reasons(tmp_path, name, data, reason, detail) -> None:
    if data is not None:
        (tmp_path / name).write_bytes(data)
    reject = only_reject(tmp_path / name)
    assert reject.reason == reason and detail in reject.detail


def test_a_page_over_the_pixel_limit_is_rejected_and_the_rest_still_read(tmp_path) -> None:
    path = tmp_path / "mixed.pdf"
    page_image(100, 100, (0, 0, 10, 10)).save(path, save_all=True, append_images=[page_image(1000, 1000, (0, 0, 10, 10))],
                                              resolution=72)
    items = list(iter_pages(path, dpi=72, max_pixels=200_000))
    assert isinstance(items[0], Page) and items[0].image.size == (100, 100)
    assert isinstance(items[1], PageReject) and (items[1].number, items[1].reason) == (2, "too_large")


def test_damaged_files_of_every_format_end_as_pages_or_rejects_never_exceptions(tmp_path) -> None:
    """Seeded damage (cut short, bytes overwritten) to a PNG, a JPEG, an LZW TIFF and a PDF: each file gives
    pages or a reject with a known reason, and no exception leaves iter_pages."""
    sound = page_image(160, 120, (10, 10, 90, 90))
    originals = {}
    for suffix, image_format, options in ((".png", "PNG", {}), (".jpg", "JPEG", {}),
                                          (".tif", "TIFF", {"compression": "tiff_lzw"}), (".pdf", "PDF", {"resolution": 72})):
        buffer = io.BytesIO()
        sound.save(buffer, format=image_format, **options)
        originals[suffix] = buffer.getvalue()
    rng = random.Random(14)
    reasons: Counter = Counter()
    for index in range(240):
        suffix = list(originals)[index % 4]
        data = bytearray(originals[suffix])
        if index % 3 == 0:
            data = data[: rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randint(1, 12)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"damaged-{index}{suffix}"
        path.write_bytes(bytes(data))
        for item in iter_pages(path, dpi=72):
            reasons[item.reason if isinstance(item, PageReject) else "page"] += 1
    assert set(reasons) <= {"page", "corrupt_image", "corrupt_pdf", "wrong_extension", "too_large"}, reasons
    assert reasons["corrupt_image"] > 50 and reasons["corrupt_pdf"] > 5  # the damage is real, and caught as such
