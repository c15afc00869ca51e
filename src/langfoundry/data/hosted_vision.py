"""The vision stage's image-and-text examples (paths.vision: {train,val,test}.jsonl beside images/) in the JSONL
hosted fine-tuning services accept, images inlined as base64, each line checked against a JSON Schema written from
the documented format and against the documented image limits.

- openai: vision fine-tuning (developers.openai.com/api/docs/guides/vision-fine-tuning, "Data format" and
  "Image data requirements"): a user turn's `content` is a list of {"type": "text", "text": ...} and
  {"type": "image_url", "image_url": {"url": "data:image/png;base64,..." (or an HTTP URL), "detail": optional
  "low"|"high"|"auto"}} parts; images only in user turns; JPEG, PNG or WEBP in RGB or RGBA mode; at most 10
  images per example, 10 MB per image, 50,000 examples with images per file. The assistant answer is a string.
  (That guide now says OpenAI is winding the fine-tuning platform down: closed to new users.)
- vertex: Gemini supervised tuning (cloud.google.com/vertex-ai/generative-ai/docs/models/tune_gemini/image_tune
  and .../gemini-supervised-tuning-prepare): `contents[].parts[]` hold {"text": ...} or an image, here
  {"inlineData": {"mimeType": "image/png", "data": <base64>}} since the frames are local files. Image tuning:
  at most 30 images per example; the image-understanding page (.../multimodal/image-understanding) allows
  image/png, jpeg, webp, heic, heif, and at most 7 MB per file for inline data (20 MB, the tuning page's limit,
  holds for files in Cloud Storage). The tuning pages document a part as `text` or
  {"fileData": {"mimeType": ..., "fileUri": "gs://..."}} and their image example uses fileData: for a bucket,
  upload the images/ folder and point fileUri at it to keep the JSONL small; `--check` accepts such parts.

The limits are decimal megabytes (the conservative reading of "MB"); tests may monkeypatch MAX_IMAGE_BYTES.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from langfoundry.core.errors import UserError
from langfoundry.data.hosted_formats import iter_jsonl, turn_order_error

FORMATS = ("openai", "vertex")
MAX_IMAGE_BYTES = {"openai": 10_000_000, "vertex": 7_000_000}  # per image (vertex: inline data)
MAX_IMAGES = {"openai": 10, "vertex": 30}  # per example
MAX_IMAGE_EXAMPLES = {"openai": 50_000}  # examples with images per training file
MIME_TYPES = {"openai": ("image/jpeg", "image/png", "image/webp"),
              "vertex": ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")}
DETAILS = ("low", "high", "auto")

_TEXT = {"type": "string", "minLength": 1}
_BASE64 = "[A-Za-z0-9+/]+={0,2}"
_TEXT_PART = {"type": "object", "required": ["type", "text"],
              "properties": {"type": {"const": "text"}, "text": _TEXT}, "additionalProperties": False}
_IMAGE_URL_PART = {
    "type": "object", "required": ["type", "image_url"],
    "properties": {"type": {"const": "image_url"},
                   "image_url": {"type": "object", "required": ["url"],
                                 "properties": {"url": {"type": "string", "pattern": rf"^(data:image/(png|jpeg|webp);base64,"
                                                                                     rf"{_BASE64}|https?://\S+)$"},
                                                "detail": {"enum": list(DETAILS)}},
                                 "additionalProperties": False}},
    "additionalProperties": False,
}
OPENAI_VISION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OpenAI vision fine-tuning example",
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array", "minItems": 2,
            "items": {
                "type": "object", "required": ["role", "content"],
                "properties": {"role": {"enum": ["system", "user", "assistant"]},
                               "content": {"oneOf": [_TEXT, {"type": "array", "minItems": 1,
                                                             "items": {"oneOf": [_TEXT_PART, _IMAGE_URL_PART]}}]},
                               "name": {"type": "string"}, "weight": {"enum": [0, 1]}},
                "additionalProperties": False,
                "allOf": [{"if": {"required": ["weight"]}, "then": {"properties": {"role": {"const": "assistant"}}}},
                          # images only in user turns; the answer a string
                          {"if": {"properties": {"role": {"const": "user"}}},
                           "else": {"properties": {"content": _TEXT}}}],
            },
            "contains": {"type": "object", "properties": {"role": {"const": "assistant"}}},
        },
        "tools": {"type": "array"},
        "parallel_tool_calls": {"type": "boolean"},
    },
    "additionalProperties": False,
}

_VERTEX_TEXT = {"type": "object", "required": ["text"], "properties": {"text": _TEXT}, "additionalProperties": False}
_VERTEX_INLINE = {"type": "object", "required": ["inlineData"], "additionalProperties": False,
                  "properties": {"inlineData": {"type": "object", "required": ["mimeType", "data"],
                                                "properties": {"mimeType": {"enum": list(MIME_TYPES["vertex"])},
                                                               "data": {"type": "string", "pattern": f"^{_BASE64}$"}},
                                                "additionalProperties": False}}}
_VERTEX_FILE = {"type": "object", "required": ["fileData"], "additionalProperties": False,
                "properties": {"fileData": {"type": "object", "required": ["mimeType", "fileUri"],
                                            "properties": {"mimeType": {"enum": list(MIME_TYPES["vertex"])},
                                                           "fileUri": {"type": "string", "pattern": r"^(gs|https?)://\S+$"}},
                                            "additionalProperties": False}}}
VERTEX_VISION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Vertex AI Gemini supervised tuning example with images",
    "type": "object",
    "required": ["contents"],
    "properties": {
        "systemInstruction": {
            "type": "object", "required": ["parts"],
            "properties": {"role": {"type": "string"}, "parts": {"type": "array", "minItems": 1, "items": _VERTEX_TEXT}},
            "additionalProperties": False,
        },
        "contents": {"type": "array", "minItems": 2, "items": {
            "type": "object", "required": ["role", "parts"],
            "properties": {"role": {"enum": ["user", "model"]},
                           "parts": {"type": "array", "minItems": 1,
                                     "items": {"oneOf": [_VERTEX_TEXT, _VERTEX_INLINE, _VERTEX_FILE]}}},
            "additionalProperties": False,
            # images go in, text comes out: a model turn holds text parts only
            "if": {"properties": {"role": {"const": "model"}}},
            "then": {"properties": {"parts": {"items": _VERTEX_TEXT}}},
        }},
    },
    "additionalProperties": False,
}
VISION_SCHEMAS = {"openai": OPENAI_VISION_SCHEMA, "vertex": VERTEX_VISION_SCHEMA}

# An image as the export needs it: (MIME type, base64 of the file's bytes)
Loader = Callable[[str], tuple[str, str]]


class ImageError(ValueError):
    """An image an example names cannot go out: missing, unreadable, too large or of a refused type."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"image {path}: {problem}")


def sniff_mime(data: bytes) -> str | None:
    """The image type the bytes begin with (not the file name's), or None when not an image type known here."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx"):
            return "image/heic"
        if brand in (b"mif1", b"msf1", b"heif"):
            return "image/heif"
    return None


_PNG_MODES = {0: "L (grey)", 2: "RGB", 3: "P (palette)", 4: "LA (grey with alpha)", 6: "RGBA"}


def image_problem(fmt: str, data: bytes, declared: str | None = None) -> str | None:
    """None when the image's bytes meet the format's documented limits; else what is wrong, one phrase."""
    if len(data) > MAX_IMAGE_BYTES[fmt]:
        return f"is {len(data) / 1e6:.1f} MB, over {fmt}'s {MAX_IMAGE_BYTES[fmt] / 1e6:g} MB per image"
    mime = sniff_mime(data)
    if mime not in MIME_TYPES[fmt]:
        allowed = ", ".join(m.removeprefix("image/").upper() for m in MIME_TYPES[fmt])
        return f"is {(mime or 'not a known image type').removeprefix('image/').upper()}; {fmt} takes {allowed}"
    if declared is not None and declared != mime:
        return f"is declared {declared} but its bytes are {mime}"
    if fmt == "openai" and mime == "image/png" and data[12:16] == b"IHDR" and len(data) > 25 and data[25] not in (2, 6):
        return f"is a PNG in mode {_PNG_MODES.get(data[25], data[25])}; openai takes RGB or RGBA images"
    return None


def file_loader(fmt: str, folder: Path) -> Loader:
    """Reads an example's image path (relative to the examples' folder) and checks it against the limits."""

    def load(name: str) -> tuple[str, str]:
        path = folder / name
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES[fmt]:  # refused before it is read
                raise ImageError(path, f"is {size / 1e6:.1f} MB, over {fmt}'s {MAX_IMAGE_BYTES[fmt] / 1e6:g} MB per image")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(path, "not found (the vision stage copies the frames to images/: dvc repro vision)") from None
        except OSError as err:
            raise ImageError(path, f"cannot be read ({err.strerror or err})") from None
        problem = image_problem(fmt, data)
        if problem is not None:
            raise ImageError(path, problem)
        return sniff_mime(data) or "", base64.b64encode(data).decode("ascii")

    return load


def _parts(message: Mapping[str, Any], images: Iterator[Any], where: str) -> list[tuple[str, str]]:
    """[("text", text) | ("image", path)] of a turn; a bare {"type": "image"} (TRL) takes the next of `images`."""
    content = message.get("content")
    if isinstance(content, str):
        return [("text", content)]
    if not isinstance(content, list) or not content:
        raise ValueError(f"{where} has no content")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(("text", part["text"]))
        elif kind == "image":
            image = part["image"] if "image" in part else next(images, None)
            if not isinstance(image, str) or not image:
                raise ValueError(f"{where} has an image part without a path")
            parts.append(("image", image))
        else:
            raise ValueError(f"{where} has a part that is neither text nor image: {json.dumps(part)[:80]}")
    return parts


def vision_turns(example: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, list[tuple[str, str]]]]]:
    """(system prompt or None, [(user|assistant, parts)]) of a vision example; ValueError if it is not one.
    Images only in user turns; the system prompt text only."""
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("no messages")
    images = iter(example.get("images") or [])
    system, turns = None, []
    for index, message in enumerate(messages):
        where = f"message {index + 1}"
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ("system", "user", "assistant") or (role == "system" and index > 0):
            raise ValueError(f"{where} has role {role!r}")
        parts = _parts(message, images, where)
        if role != "user" and any(kind == "image" for kind, _ in parts):
            raise ValueError(f"{where} ({role}) holds an image; only user turns may")
        if role == "system":
            system = "\n".join(text for _, text in parts)
        else:
            turns.append((role, parts))
    return system, turns


def to_openai_vision(example: Mapping[str, Any], load: Loader, detail: str | None = None) -> dict[str, Any]:
    """OpenAI's vision fine-tuning line: user parts as text and image_url (data URL) parts, answers as strings
    (several text parts joined by newlines)."""
    system, turns = vision_turns(example)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for role, parts in turns:
        if role == "assistant":
            messages.append({"role": role, "content": "\n".join(text for _, text in parts)})
            continue
        content = []
        for kind, value in parts:
            if kind == "text":
                content.append({"type": "text", "text": value})
            else:
                mime, data = load(value)
                url = {"url": f"data:{mime};base64,{data}"} | ({"detail": detail} if detail else {})
                content.append({"type": "image_url", "image_url": url})
        messages.append({"role": role, "content": content})
    return {"messages": messages}


def to_vertex_vision(example: Mapping[str, Any], load: Loader) -> dict[str, Any]:
    """Vertex AI's Gemini tuning line: user parts as text and inlineData parts, model turns as text parts."""
    system, turns = vision_turns(example)
    out: dict[str, Any] = {}
    if system:
        out["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
    contents = []
    for role, parts in turns:
        converted = []
        for kind, value in parts:
            if kind == "text":
                converted.append({"text": value})
            else:
                mime, data = load(value)
                converted.append({"inlineData": {"mimeType": mime, "data": data}})
        contents.append({"role": "model" if role == "assistant" else "user", "parts": converted})
    out["contents"] = contents
    return out


def _inline_images(fmt: str, line: Mapping[str, Any]) -> Iterator[tuple[str, str | None, str | None]]:
    """(where, declared MIME type, base64 data) of each image part; type and data None for URLs and fileData."""
    if fmt == "openai":
        for m, message in enumerate(line["messages"]):
            for p, part in enumerate(message["content"] if isinstance(message["content"], list) else []):
                if part["type"] == "image_url":
                    match = re.match(r"data:(image/[a-z]+);base64,", part["image_url"]["url"])
                    data = part["image_url"]["url"][match.end():] if match else None
                    yield f"messages/{m}/content/{p}", match[1] if match else None, data
    else:
        for c, content in enumerate(line["contents"]):
            for p, part in enumerate(content["parts"]):
                if "inlineData" in part:
                    yield f"contents/{c}/parts/{p}", part["inlineData"]["mimeType"], part["inlineData"]["data"]
                elif "fileData" in part:
                    yield f"contents/{c}/parts/{p}", None, None


def vision_validation_error(fmt: str, line: Any) -> str | None:
    """None when `line` is a valid image-and-text example of the format, inline images within its limits; else
    the first problem, one line."""
    validator = jsonschema.Draft202012Validator(VISION_SCHEMAS[fmt])
    error = jsonschema.exceptions.best_match(validator.iter_errors(line))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(the line)"
        return f"{where}: {error.message}"
    problem = turn_order_error(fmt, line)
    if problem is not None:
        return problem
    images = list(_inline_images(fmt, line))
    if len(images) > MAX_IMAGES[fmt]:
        return f"{len(images)} images; {fmt} takes at most {MAX_IMAGES[fmt]} per example"
    for where, declared, data in images:
        if data is None:
            continue
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error as err:
            return f"{where}: the image is not valid base64 ({err})"
        problem = image_problem(fmt, raw, declared)
        if problem is not None:
            return f"{where}: the image {problem}"
    return None


def _image_count_error(fmt: str, with_images: int) -> str | None:
    limit = MAX_IMAGE_EXAMPLES.get(fmt)
    if limit is not None and with_images > limit:
        return f"{with_images} examples with images; {fmt} takes at most {limit:,} per training file"
    return None


def export_vision(fmt: str, source: Path, out: Path, detail: str | None = None) -> tuple[int, int]:
    """The vision examples of `source` (images relative to its folder) in the format, to `out`; every line
    validated as it is written, and `out` only replaced once all are. (lines, images); UserError naming the input
    file and line, and the image, of the first example that cannot go out."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if detail is not None and (fmt != "openai" or detail not in DETAILS):
        raise UserError(f"--detail {detail} is for --format openai only, one of {', '.join(DETAILS)}")
    if not source.is_file():
        raise UserError(f"{source}: not found; run the vision stage first (dvc repro vision)")
    load = file_loader(fmt, source.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    lines = images = with_images = 0
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as handle:
            for number, example in iter_jsonl(source):
                try:
                    converted = (to_openai_vision(example, load, detail) if fmt == "openai"
                                 else to_vertex_vision(example, load))
                except ImageError as err:
                    raise UserError(f"{source}:{number}: {err}") from None
                except ValueError as err:
                    raise UserError(f"{source}:{number}: cannot be a {fmt} vision example: {err}") from None
                problem = vision_validation_error(fmt, converted)
                if problem is not None:
                    raise UserError(f"{source}:{number}: not a valid {fmt} vision example: {problem}")
                count = len(list(_inline_images(fmt, converted)))
                images, with_images, lines = images + count, with_images + bool(count), lines + 1
                handle.write(json.dumps(converted, ensure_ascii=False) + "\n")
        if lines == 0:
            raise UserError(f"{source}: no examples to export; the vision stage writes some with vision.enabled and "
                            "media.video.keep_frames set (then dvc repro vision)")
        problem = _image_count_error(fmt, with_images)
        if problem is not None:
            raise UserError(f"{source}: {problem}; export fewer")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return lines, images


def validate_vision_file(fmt: str, path: Path) -> int:
    """Check every line of an exported vision file: the number of lines, or UserError naming file and line of the
    first bad one."""
    count = with_images = 0
    for number, line in iter_jsonl(path):
        problem = vision_validation_error(fmt, line)
        if problem is not None:
            raise UserError(f"{path}:{number}: not a valid {fmt} vision example: {problem}")
        count += 1
        with_images += any(True for _ in _inline_images(fmt, line))
    problem = _image_count_error(fmt, with_images)
    if problem is not None:
        raise UserError(f"{path}: {problem}")
    return count
