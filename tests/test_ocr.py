"""OCR engines: Tesseract on rendered text (CER against the issue's target), the vision endpoint against a fake
OpenAI-compatible server on 127.0.0.1, confidence splitting, and the one-line errors for missing packs."""

from __future__ import annotations

import base64
import io
import shutil
import socket
import stat
import unicodedata
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from local_server import serving
from PIL import Image

from langfoundry.core.errors import UserError
from langfoundry.media.ocr import (
    VISION_KEY_ENV,
    OcrLine,
    TesseractEngine,
    VisionEndpointEngine,
    parse_tesseract_tsv,
    split_by_confidence,
    tesseract_packs,
)
from langfoundry.media.ocr_check import (
    SENTENCES,
    build_check_set,
    character_error_rate,
    edit_distance,
    noto_font,
    render_lines,
    run_check,
)

HAS_TESSERACT = shutil.which("tesseract") is not None
needs_tesseract = pytest.mark.skipif(not HAS_TESSERACT, reason="the tesseract binary is absent "
                                                               "(apt-get install -y tesseract-ocr tesseract-ocr-eng ...)")
LATIN_TARGET_CER = 0.02  # issue 14's target for rendered Latin-script text
# Malayalam measured 0.54% on this check set (Tesseract 5.3.0, Debian's mal pack 4.1.0: one ZWNJ inserted in
# 372 characters). The bound is about four times that, room for another Tesseract or pack version, yet under
# what broken paths measured: 3.8% with the text drawn unshaped (Pillow's basic layout, no libraqm) and 91%
# when read with the English pack.
MALAYALAM_BOUND_CER = 0.02


# --- Tesseract ------------------------------------------------------------------------------------------------

@needs_tesseract
def test_a_rendered_latin_line_reads_within_the_two_percent_target() -> None:
    line = SENTENCES["en"][0]
    image = render_lines([line], noto_font("Latn"), 24, seed=7)
    lines = TesseractEngine().recognise(image, "en")
    cer = character_error_rate(line, " ".join(found.text for found in lines))
    assert cer <= LATIN_TARGET_CER, f"CER {cer:.2%} on {line!r}: read {[found.text for found in lines]}"
    assert len(lines) == 1
    left, top, right, bottom = lines[0].box
    assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
    assert 0.5 < lines[0].confidence <= 1.0


@needs_tesseract
def test_latin_check_set_cer_per_language_is_within_the_target(record_property) -> None:
    images = build_check_set(seed=3, groups=("jv-x-banyumas", "id"))
    results = run_check([TesseractEngine()], images)["tesseract"]
    for group, measured in results.items():
        record_property(f"cer.tesseract.{group}", measured["cer"])
        print(f"tesseract {group}: CER {measured['cer']:.2%} over {measured['chars']} characters")
        assert measured["images"] == 2 and measured["chars"] > 100
        assert measured["cer"] <= LATIN_TARGET_CER, measured["worst"]


@needs_tesseract
def test_malayalam_cer_is_measured_and_within_a_loose_bound(record_property) -> None:
    results = run_check([TesseractEngine()], build_check_set(seed=0, groups=("ml",)))["tesseract"]["ml"]
    record_property("cer.tesseract.ml", results["cer"])
    print(f"tesseract ml: CER {results['cer']:.2%} over {results['chars']} characters")
    malayalam = sum(1 for char in results["worst"]["read"] if "MALAYALAM" in unicodedata.name(char, ""))
    assert malayalam > 0.7 * len(results["worst"]["read"].replace(" ", ""))  # it read Malayalam, not Latin guesses
    assert results["cer"] <= MALAYALAM_BOUND_CER, results["worst"]


def fake_tesseract(folder: Path, packs: list[str]) -> str:
    """A `tesseract` that lists only the given packs (and fails if asked to read)."""
    script = folder / "tesseract"
    listing = "\\n".join([f"List of available languages in \"/nowhere/\" ({len(packs)}):", *packs])
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = --list-langs ]; then printf '{listing}\\n'; exit 0; fi\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_missing_pack_stops_with_the_one_apt_command(tmp_path) -> None:
    engine = TesseractEngine(binary=fake_tesseract(tmp_path, ["eng", "osd"]))
    with pytest.raises(UserError) as caught:
        engine.recognise(Image.new("L", (40, 20), 255), "ml+id")
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("run: apt-get install -y tesseract-ocr tesseract-ocr-mal tesseract-ocr-ind")


def test_a_missing_binary_and_a_language_without_a_model_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(UserError, match=r"not installed; run: apt-get install -y tesseract-ocr tesseract-ocr-mal$"):
        TesseractEngine(binary=str(tmp_path / "no-tesseract")).recognise(Image.new("L", (40, 20), 255), "ml")
    with pytest.raises(UserError, match=r"'nqo': Tesseract has no model .* use the vision engine"):
        tesseract_packs("nqo")
    assert tesseract_packs("jv-x-banyumas+jv+id") == ["jav", "ind"]  # Banyumasan reads with the Javanese pack, once


def test_tesseract_tsv_words_group_into_lines_with_mean_confidence_and_joint_box() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t500\t200\t-1\t",
        "4\t1\t1\t1\t1\t0\t10\t10\t300\t30\t-1\t",
        "5\t1\t1\t1\t1\t1\t10\t12\t80\t28\t96.5\tabab:",
        "5\t1\t1\t1\t1\t2\t100\t10\t120\t30\t83.5\ttiupan",
        "5\t1\t1\t1\t1\t3\t230\t10\t5\t30\t95\t ",  # an empty word: Tesseract's space, not text
        "5\t1\t1\t1\t2\t1\t10\t60\t60\t30\t40\t\"",  # a lone quotation mark is a word
        "5\t1\t2\t1\t1\t1\t10\t120\t90\t30\t-1\tnapas",  # a word without a confidence counts as 0
    ]
    lines = parse_tesseract_tsv("\n".join([header, *rows]) + "\n")
    assert [line.text for line in lines] == ["abab: tiupan", "\"", "napas"]
    assert lines[0].confidence == pytest.approx(0.9)
    assert lines[0].box == (10, 10, 220, 40)
    assert lines[1].confidence == pytest.approx(0.4) and lines[2].confidence == 0.0


# --- CER and confidence ------------------------------------------------------------------------------------------

def test_edit_distance_and_cer() -> None:
    assert edit_distance("kitten", "sitting") == 3 == edit_distance("sitting", "kitten")
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert edit_distance("ഞാൻ", "ഞാന്\u200d") == 3  # code points: the atomic chillu is one, its legacy spelling three
    assert character_error_rate("ഞാൻ  പോകുന്നു", "ഞാന്\u200d\nപോകുന്നു") == 0.0  # clean's normalisation: chillu, spaces
    assert character_error_rate("abcd", "abXd") == 0.25


def test_split_by_confidence_keeps_order_and_the_threshold_itself() -> None:
    lines = [OcrLine(text, confidence, (0, 0, 1, 1)) for text, confidence in
             (("a", 0.95), ("b", 0.4), ("c", 0.7), ("d", 0.69999), ("e", 1.0))]
    kept, review = split_by_confidence(lines, 0.7)
    assert [line.text for line in kept] == ["a", "c", "e"]
    assert [line.text for line in review] == ["b", "d"]
    assert split_by_confidence([], 0.5) == ([], [])


# --- the vision endpoint -----------------------------------------------------------------------------------------

def fake_vision_app(answers: list[str], seen: list[dict]) -> FastAPI:
    """A chat-completions endpoint that records each request and answers with the next of answers."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append({"authorization": request.headers.get("authorization"), "body": body})
        if request.headers.get("authorization") != "Bearer test-key":
            return JSONResponse({"error": {"message": "invalid key"}}, status_code=401)
        content = answers[len(seen) - 1]
        if content == "not-a-completion":
            return JSONResponse({"result": "nothing"})
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": content}}]})

    return app


def test_vision_endpoint_sends_the_page_as_a_data_url_and_reads_lines(monkeypatch) -> None:
    monkeypatch.setenv(VISION_KEY_ENV, "test-key")
    answers = ["ߒ ߓߊ߯ߙߊ\nߌ ߣߌ߫ ߕߎ߬ߡߊ߬\n",
               '```json\n{"lines": [{"text": "first", "confidence": 0.92}, {"text": "second", "confidence": 0.31}, '
               '{"text": "third"}]}\n```',
               "not-a-completion"]
    seen: list[dict] = []
    page = render_lines(["ߒ ߓߊ߯ߙߊ"], noto_font("Nkoo"), 36, seed=1)
    with serving(fake_vision_app(answers, seen)) as root:
        url = f"{root}/v1"
        engine = VisionEndpointEngine(url, "local-vision-model", language_names={"nqo": "Manding (N'Ko script)"})
        plain = engine.recognise(page, "nqo")
        scored = engine.recognise(page, "nqo")
        with pytest.raises(UserError, match=r"not a chat completion"):
            engine.recognise(page, "nqo")
        monkeypatch.setenv(VISION_KEY_ENV, "wrong-key")
        with pytest.raises(UserError, match=rf"HTTP 401.*set {VISION_KEY_ENV}"):
            engine.recognise(page, "nqo")

    assert [line.text for line in plain] == ["ߒ ߓߊ߯ߙߊ", "ߌ ߣߌ߫ ߕߎ߬ߡߊ߬"]
    assert all(line.confidence == 1.0 for line in plain)
    assert [(line.text, line.confidence) for line in scored] == [("first", 0.92), ("second", 0.31), ("third", 1.0)]
    kept, review = split_by_confidence(scored, 0.5)
    assert [line.text for line in review] == ["second"]

    request = seen[0]
    assert request["authorization"] == "Bearer test-key"
    assert request["body"]["model"] == "local-vision-model"
    content = request["body"]["messages"][0]["content"]
    assert "Manding (N'Ko script)" in next(part["text"] for part in content if part["type"] == "text")
    data_url = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
    assert data_url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    assert sent.format == "PNG" and sent.size == page.size
    assert sent.mode == page.mode and sent.tobytes() == page.tobytes()  # the page itself, losslessly


def test_an_unreachable_vision_endpoint_is_one_line(monkeypatch) -> None:
    monkeypatch.delenv(VISION_KEY_ENV, raising=False)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = VisionEndpointEngine(f"http://127.0.0.1:{port}/v1", "m", timeout_s=5)
    with pytest.raises(UserError) as caught:
        engine.recognise(Image.new("L", (20, 20), 255), "nqo")
    assert f"127.0.0.1:{port}/v1/chat/completions" in str(caught.value) and "\n" not in str(caught.value)
