"""The processed chat examples in the JSON Lines formats hosted fine-tuning services accept, each line checked
against a JSON Schema written from the service's documented format.

- openai: OpenAI's chat fine-tuning format, one {"messages": [{"role": "system"|"user"|"assistant",
  "content": "..."}]} per line, ending with an assistant turn (platform.openai.com, fine-tuning guide; the
  FineTuneChatRequestInput schema of the OpenAI API: optional per-message "name" and, on assistant turns,
  "weight" 0 or 1).
- vertex: Vertex AI's supervised tuning format for Gemini, one {"systemInstruction": {"role": ..., "parts":
  [{"text": ...}]}, "contents": [{"role": "user"|"model", "parts": [{"text": ...}]}]} per line
  (cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning-prepare; systemInstruction is
  optional and its role ignored; contents alternate user and model and end with model).

Here the text examples go out: data/processed/{train,val,test}.jsonl, whose `messages` are TRL's
(system?, user, assistant, ...) turns with string contents. The vision stage's image-and-text examples go out
through hosted_vision.py (export-data --set vision), with these schemas' image-part counterparts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from langfoundry.core.errors import UserError

_TEXT = {"type": "string", "minLength": 1}

OPENAI_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OpenAI chat fine-tuning example",
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array", "minItems": 2,
            "items": {
                "type": "object", "required": ["role", "content"],
                "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": _TEXT,
                               "name": {"type": "string"}, "weight": {"enum": [0, 1]}},
                "additionalProperties": False,
                "if": {"properties": {"weight": {"enum": [0, 1]}}, "required": ["weight"]},
                "then": {"properties": {"role": {"const": "assistant"}}},
            },
            "contains": {"type": "object", "properties": {"role": {"const": "assistant"}}},
        },
        "tools": {"type": "array"},
        "parallel_tool_calls": {"type": "boolean"},
    },
    "additionalProperties": False,
}

_VERTEX_CONTENT = {
    "type": "object", "required": ["role", "parts"],
    "properties": {"role": {"enum": ["user", "model"]},
                   "parts": {"type": "array", "minItems": 1,
                             "items": {"type": "object", "required": ["text"], "properties": {"text": _TEXT},
                                       "additionalProperties": False}}},
    "additionalProperties": False,
}
VERTEX_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Vertex AI Gemini supervised tuning example",
    "type": "object",
    "required": ["contents"],
    "properties": {
        "systemInstruction": {
            "type": "object", "required": ["parts"],
            "properties": {"role": {"type": "string"},
                           "parts": {"type": "array", "minItems": 1,
                                     "items": {"type": "object", "required": ["text"], "properties": {"text": _TEXT},
                                               "additionalProperties": False}}},
            "additionalProperties": False,
        },
        "contents": {"type": "array", "minItems": 2, "items": _VERTEX_CONTENT},
    },
    "additionalProperties": False,
}
SCHEMAS = {"openai": OPENAI_SCHEMA, "vertex": VERTEX_SCHEMA}


def _turns(example: Mapping[str, Any]) -> tuple[str | None, list[dict[str, str]]]:
    """(system prompt or None, the user/assistant turns) of a processed example; ValueError if not chat turns."""
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("no messages")
    system = None
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
            raise ValueError(f"message {index + 1} is not a turn with text content")
        if message.get("role") == "system" and index == 0:
            system = message["content"]
        elif message.get("role") in ("user", "assistant"):
            turns.append({"role": message["role"], "content": message["content"]})
        else:
            raise ValueError(f"message {index + 1} has role {message.get('role')!r}")
    return system, turns


def to_openai(example: Mapping[str, Any]) -> dict[str, Any]:
    system, turns = _turns(example)
    return {"messages": ([{"role": "system", "content": system}] if system else []) + turns}


def to_vertex(example: Mapping[str, Any]) -> dict[str, Any]:
    system, turns = _turns(example)
    out: dict[str, Any] = {}
    if system:
        out["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
    out["contents"] = [{"role": "model" if turn["role"] == "assistant" else "user", "parts": [{"text": turn["content"]}]}
                       for turn in turns]
    return out


CONVERTERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {"openai": to_openai, "vertex": to_vertex}


def turn_order_error(fmt: str, line: Mapping[str, Any]) -> str | None:
    """What the documented formats ask beyond a schema's reach: turns alternate and end with the answer."""
    if fmt == "openai":
        roles = [message["role"] for message in line["messages"] if message["role"] != "system"]
        if [message["role"] for message in line["messages"]].count("system") > 1 or \
                (line["messages"][0]["role"] != "system" and "system" in [m["role"] for m in line["messages"]]):
            return "a system message may only come first, once"
        expected = ("user", "assistant")
    else:
        roles = [content["role"] for content in line["contents"]]
        expected = ("user", "model")
    if any(role != expected[index % 2] for index, role in enumerate(roles)):
        return f"turns must alternate {expected[0]}, {expected[1]}, ... (got {', '.join(roles)})"
    if roles[-1] != expected[1]:
        return f"the last turn must be {expected[1]}'s (got {roles[-1]})"
    return None


def validation_error(fmt: str, line: Any) -> str | None:
    """None when `line` is a valid example of the format; else the first problem, one line."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[fmt])
    error = jsonschema.exceptions.best_match(validator.iter_errors(line))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(the line)"
        return f"{where}: {error.message}"
    return turn_order_error(fmt, line)


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line; UserError naming file and line for bad JSON."""
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except ValueError as err:
                raise UserError(f"{path}:{number}: not JSON ({err})") from None


def export(fmt: str, source: Path, out: Path) -> int:
    """The processed examples of `source` in the format, to `out`; every line validated first. The number of
    lines; UserError naming the input file and line of the first example that cannot be converted or is invalid."""
    if fmt not in CONVERTERS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(CONVERTERS)}")
    if not source.is_file():
        raise UserError(f"{source}: not found; run the format stage first (dvc repro format)")
    lines = []
    for number, example in iter_jsonl(source):
        try:
            converted = CONVERTERS[fmt](example)
        except ValueError as err:
            raise UserError(f"{source}:{number}: cannot be a {fmt} example: {err}") from None
        problem = validation_error(fmt, converted)
        if problem is not None:
            raise UserError(f"{source}:{number}: not a valid {fmt} example: {problem}")
        lines.append(json.dumps(converted, ensure_ascii=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
    return len(lines)


def validate_file(fmt: str, path: Path) -> int:
    """Check every line of an exported file against the format's schema: the number of lines, or UserError
    naming file and line of the first bad one."""
    count = 0
    for number, line in iter_jsonl(path):
        problem = validation_error(fmt, line)
        if problem is not None:
            raise UserError(f"{path}:{number}: not a valid {fmt} example: {problem}")
        count += 1
    return count
