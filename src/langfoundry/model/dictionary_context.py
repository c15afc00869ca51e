"""Dictionary context for translation prompts (evaluate.dictionary_context).

Each translation test example's last user turn gets a short block of the vocabulary index's entries
for the words of its source text, in the source-to-target direction, placed by
evaluate.dictionary_template. The index holds the train split only, so no test word is glossed
from its own test record. Free of torch: the evaluation passes the prompts on to the models.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langfoundry.core.config import EvaluateParams
from langfoundry.core.errors import UserError
from langfoundry.data.lookup import DictionaryIndex, Entry

PLACEHOLDERS = frozenset({"entries", "prompt"})


def check_template(template: str) -> None:
    """evaluate.dictionary_template must use {entries} and {prompt}, and nothing else."""
    key = "params.yaml: evaluate.dictionary_template"
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise UserError(f"{key} is not a valid template ({err}); write literal braces as {{{{ and }}}}") from None
    if used != PLACEHOLDERS:
        wrong = sorted(used - PLACEHOLDERS) or sorted(PLACEHOLDERS - used)
        raise UserError(f"{key} must use exactly {{entries}} and {{prompt}}; "
                        f"{'unknown' if used - PLACEHOLDERS else 'missing'}: {{{wrong[0]}}}")


def source_languages(example: Mapping[str, Any]) -> tuple[str, str] | None:
    """(language of the source text, language of the answer) of a translation example, else None."""
    if example["task"] == "translate_to_pivot":
        return example["lang"], example["pivot_lang"]
    if example["task"] == "translate_from_pivot":
        return example["pivot_lang"], example["lang"]
    return None


def entry_line(entry: Entry) -> str:
    return f"- {entry.headword} ({entry.pos}): {entry.gloss}" if entry.pos else f"- {entry.headword}: {entry.gloss}"


def with_entries(example: Mapping[str, Any], entries: Sequence[Entry], template: str) -> dict[str, Any]:
    """A copy of the example whose last user turn carries the entries (the answer turn is left alone)."""
    messages = [dict(message) for message in example["messages"]]
    last_user = max(index for index, message in enumerate(messages[:-1]) if message["role"] == "user")
    block = "\n".join(entry_line(entry) for entry in entries)
    messages[last_user]["content"] = template.format(entries=block, prompt=messages[last_user]["content"])
    return {**example, "messages": messages, "dictionary_entries": len(entries)}


def add_context(examples: Sequence[Mapping[str, Any]], index_path: Path,
                params: EvaluateParams) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """The examples with dictionary context where their source words have entries (the others as they were),
    and counts for metrics/eval.json."""
    check_template(params.dictionary_template)
    out: list[Mapping[str, Any]] = []
    given = total = 0
    with DictionaryIndex(index_path) as index:
        for example in examples:
            languages = source_languages(example)
            entries = index.for_text(example["source_text"], *languages, params.dictionary_entries) if languages else []
            if entries:
                given += 1
                total += len(entries)
                out.append(with_entries(example, entries, params.dictionary_template))
            else:
                out.append(example)
    translations = sum(source_languages(example) is not None for example in examples)
    return out, {"dictionary_context.prompts": given, "dictionary_context.translation_prompts": translations,
                 "dictionary_context.entries": total}
