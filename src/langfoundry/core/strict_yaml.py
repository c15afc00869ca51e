"""Loading YAML into strict pydantic models, with one-line errors that name the file, the key and the fix.

Pydantic's own messages name a location as a tuple and stop at the first model; these name the dotted
key (a list entry by its id), suggest the closest allowed key for a typo, and say how many more problems
there are.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from langfoundry.core.errors import UserError


class Strict(BaseModel):
    # strict: no silent coercion, so `trust_remote_code: "yes"` or `lora.r: true` is an error, not True or 1
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at a location in the model tree (for did-you-mean hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", ()) or (annotation,):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            args = getattr(candidate, "__args__", ())
            inner = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
            if inner:
                current = inner[0]
                break
        else:
            return []
    return sorted(getattr(current, "model_fields", {}))


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted key, with list entries named by their id where they have one: sources[2](id 'x').kind."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            named = f"(id {node['id']!r})" if isinstance(node, dict) and "id" in node else ""
            parts[-1] += f"[{part}]{named}"
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _explain(error: dict[str, Any], model: type[BaseModel], source_name: str, data: Any) -> str:
    loc = tuple(error["loc"])
    key = _where(loc, data)
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        maybe = f"; did you mean {_where(loc[:-1] + (hint[0],), data)!r}?" if hint else ""
        return f"{source_name}: unknown key {key!r}{maybe} (allowed here: {', '.join(allowed)})"
    value = error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":  # a mapping key outside a fixed set, e.g. format.task_weights.vocab
        return f"{source_name}: unknown key {_where(loc[:-1], data)!r}: {message}"
    if isinstance(value, dict):  # a check across a section's keys; the message names them
        return f"{source_name}: {key}: {message}"
    return f"{source_name}: {key} = {value!r}: {message}"


def validate_model(model: type[BaseModel], data: Any, source_name: str) -> Any:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        problems = err.errors()
        first = _explain(problems[0], model, source_name, data)
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        raise UserError(first + more) from None


def load_yaml(path: Path) -> Any:
    if not path.exists():
        raise UserError(f"{path}: not found; run from the repository root or pass the right path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)}); fix the syntax there") from None
