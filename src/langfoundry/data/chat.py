"""Records -> chat examples in TRL's conversational `messages` format.

One record can give several examples (a dictionary entry: both translation
directions and a vocabulary question). Every example carries its provenance
(record id, source, split group) and the plain `source_text` and `reference`
so evaluation can score it without parsing prompts back.

This is a data stage: it must stay free of torch, transformers, peft and trl.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from langfoundry.core.config import FormatParams
from langfoundry.core.errors import UserError

TASKS = ("translate_to_pivot", "translate_from_pivot", "vocabulary", "conversation", "instruction", "continuation")
TRANSLATION_TASKS = ("translate_to_pivot", "translate_from_pivot")
SPLITS = ("train", "val", "test")
ROLES = ("system", "user", "assistant")
# Text without a translation: the model learns the language by continuing it (plain language modelling).
CONTINUATION_KINDS = ("monolingual", "ocr", "transcription")
MIN_CONTINUATION_WORDS = 4  # fewer words leave too little to continue from, or to continue with

# template name -> (placeholders it must use, placeholders it may use)
TEMPLATE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "translate": (frozenset({"text", "target_name"}), frozenset({"text", "source_name", "target_name"})),
    "vocabulary": (frozenset({"text", "target_name"}), frozenset({"text", "source_name", "target_name"})),
    "vocabulary_pos": (frozenset({"pos"}), frozenset({"pos"})),
    "vocabulary_example": (frozenset({"example"}), frozenset({"example"})),
    "instruction_input": (frozenset({"instruction", "input"}), frozenset({"instruction", "input"})),
    "continuation": (frozenset({"text"}), frozenset({"text", "source_name"})),
}

# Built-in wording per template language; params.yaml format.templates overrides any of them.
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "id": {
        "translate": "Terjemahkan dari {source_name} ke {target_name}:\n{text}",
        "vocabulary": "Apa arti kata {source_name} \"{text}\" dalam {target_name}?",
        "vocabulary_pos": "Kelas kata: {pos}",
        "vocabulary_example": "Contoh: {example}",
        "instruction_input": "{instruction}\n\n{input}",
        "continuation": "Lanjutkan teks {source_name} berikut:\n{text}",
    },
    "en": {
        "translate": "Translate from {source_name} to {target_name}:\n{text}",
        "vocabulary": "What does the {source_name} word \"{text}\" mean in {target_name}?",
        "vocabulary_pos": "Part of speech: {pos}",
        "vocabulary_example": "Example: {example}",
        "instruction_input": "{instruction}\n\n{input}",
        "continuation": "Continue this {source_name} text:\n{text}",
    },
}

# Keys ingest readers may use in `meta` for a dictionary entry's extras.
POS_KEYS = ("pos", "part_of_speech")
EXAMPLE_KEYS = ("examples", "example")

SPLIT_COLUMNS = ("id", "source", "kind", "lang", "text", "pivot_lang", "pivot_text", "meta", "group", "split")


def resolve_templates(params: FormatParams) -> dict[str, str]:
    """The templates to use: built-ins for template_lang, overridden by params; each one checked."""
    unknown = sorted(set(params.templates) - set(TEMPLATE_FIELDS))
    if unknown:
        raise UserError(f"params.yaml: unknown template format.templates.{unknown[0]}; "
                        f"known templates: {', '.join(TEMPLATE_FIELDS)}")
    templates = {**DEFAULT_TEMPLATES.get(params.template_lang, {}), **params.templates}
    for name, (required, allowed) in TEMPLATE_FIELDS.items():
        key = f"format.templates.{name}"
        if name not in templates:
            raise UserError(f"params.yaml: {key} is missing and there are no built-in templates for "
                            f"format.template_lang {params.template_lang!r} (built-in: {', '.join(DEFAULT_TEMPLATES)}); "
                            f"add {key} using {', '.join('{' + p + '}' for p in sorted(required))}")
        used = _placeholders(templates[name], key)
        if used - allowed:
            raise UserError(f"params.yaml: {key} uses unknown placeholder {{{sorted(used - allowed)[0]}}}; "
                            f"allowed: {', '.join('{' + p + '}' for p in sorted(allowed))}")
        if required - used:
            raise UserError(f"params.yaml: {key} lacks placeholder {{{sorted(required - used)[0]}}}; "
                            f"it must use {', '.join('{' + p + '}' for p in sorted(required))}")
    return templates


def _placeholders(template: str, key: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise UserError(f"params.yaml: {key} is not a valid template ({err}); write literal braces as {{{{ and }}}}") from None
    names: set[str] = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or spec or conversion or not name.isidentifier():
            raise UserError(f"params.yaml: {key} has placeholder {{{name}{'!' + conversion if conversion else ''}"
                            f"{':' + spec if spec else ''}}}; use plain names such as {{text}}")
        names.add(name)
    return names


def example_id(record_id: str, task: str) -> str:
    """Stable across template wording, so subsampling and splits do not move when prompts change."""
    return hashlib.sha256(f"{record_id}\x1f{task}".encode()).hexdigest()[:16]


def hash_unit(seed: int, key: str) -> float:
    """A deterministic number in [0, 1) for a key, the same on every machine (unlike hash())."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def copies_in_train(weight: float, seed: int, key: str) -> int:
    """Integer part of the weight, plus one more copy for a hash-chosen fraction of examples."""
    whole = int(weight)
    return whole + (1 if hash_unit(seed, key) < weight - whole else 0)


@dataclass
class FormatResult:
    examples: dict[str, list[dict[str, Any]]]  # split -> sorted examples
    skipped: Counter = field(default_factory=Counter)  # (task, reason) -> count
    records_without_task: Counter = field(default_factory=Counter)  # kind -> count
    dropped_by_weight: Counter = field(default_factory=Counter)  # task -> train examples left out
    repeated_by_weight: Counter = field(default_factory=Counter)  # task -> extra train copies
    extra: dict[str, Any] = field(default_factory=dict)  # flat metrics of the train mix and synthetic records


Built = tuple[list[dict[str, str]], str, str]  # (messages, source_text, reference)


class _Skip(Exception):
    """An example a record cannot give, with the reason counted in metrics."""


class Formatter:
    def __init__(self, params: FormatParams):
        self.params = params
        self.templates = resolve_templates(params)

    def name(self, tag: str) -> str:
        return self.params.language_names.get(tag, tag)

    def system(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.params.system_prompt}] if self.params.system_prompt else []

    def chat(self, prompt: str, answer: str) -> list[dict[str, str]]:
        return self.system() + [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    def translate(self, text: str, source_lang: str, target: str, target_lang: str) -> Built:
        prompt = self.templates["translate"].format(source_name=self.name(source_lang), target_name=self.name(target_lang),
                                                    text=text)
        return self.chat(prompt, target), text, target

    def vocabulary(self, record: Mapping[str, Any], meta: Mapping[str, Any]) -> Built:
        prompt = self.templates["vocabulary"].format(source_name=self.name(record["lang"]),
                                                     target_name=self.name(record["pivot_lang"]), text=record["text"])
        lines = [record["pivot_text"]]
        pos = next((meta[key] for key in POS_KEYS if meta.get(key)), None)
        if pos:
            lines.append(self.templates["vocabulary_pos"].format(pos=str(pos).strip()))
        for example in _examples(next((meta[key] for key in EXAMPLE_KEYS if meta.get(key)), None)):
            lines.append(self.templates["vocabulary_example"].format(example=example))
        answer = "\n".join(lines)
        return self.chat(prompt, answer), record["text"], answer

    def conversation(self, meta: Mapping[str, Any]) -> Built:
        messages = meta.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Skip("no_messages")
        turns = []
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") not in ROLES:
                raise _Skip("bad_role")
            content = message.get("content")
            if not isinstance(content, str) or not content.strip():
                raise _Skip("empty_content")
            turns.append({"role": message["role"], "content": content})
        head = turns[:1] if turns[0]["role"] == "system" else self.system()
        body = turns[1:] if turns[0]["role"] == "system" else turns
        while body and body[-1]["role"] != "assistant":
            body.pop()  # a trailing question has no answer to learn from
        if not body:
            raise _Skip("no_assistant_turn")
        if any(turn["role"] != ("user", "assistant")[index % 2] for index, turn in enumerate(body)):
            raise _Skip("turns_out_of_order")
        return head + body, body[-2]["content"], body[-1]["content"]

    def instruction(self, record: Mapping[str, Any], meta: Mapping[str, Any]) -> Built:
        instruction = _text(meta.get("instruction")) or _text(record["text"])
        output = _text(meta.get("output"))
        if not instruction:
            raise _Skip("no_instruction")
        if not output:
            raise _Skip("no_output")
        extra = _text(meta.get("input"))
        prompt = self.templates["instruction_input"].format(instruction=instruction, input=extra) if extra else instruction
        return self.chat(prompt, output), prompt, output

    def continuation(self, record: Mapping[str, Any]) -> Built:
        """The first half of the words as the prompt, the rest as the answer."""
        parts = continuation_parts(record["text"])
        if parts is None:
            raise _Skip("too_short")
        head, rest = parts
        prompt = self.templates["continuation"].format(source_name=self.name(record["lang"]), text=head)
        return self.chat(prompt, rest), head, rest

    def tasks_for(self, record: Mapping[str, Any], meta: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
        """(task, thunk) pairs a record offers; a thunk returns (messages, source_text, reference)."""
        kind = record["kind"]
        has_pair = bool(_text(record["pivot_text"]) and record["pivot_lang"] and _text(record["text"]))
        text, lang, pivot_text, pivot_lang = record["text"], record["lang"], record["pivot_text"], record["pivot_lang"]
        if has_pair and kind not in ("conversation", "instruction", "feedback"):
            yield "translate_to_pivot", lambda: self.translate(text, lang, pivot_text, pivot_lang)
            yield "translate_from_pivot", lambda: self.translate(pivot_text, pivot_lang, text, lang)
        if has_pair and kind == "dictionary":
            yield "vocabulary", lambda: self.vocabulary(record, meta)
        if kind in ("conversation", "feedback"):  # feedback: a user's prompt and its corrected answer
            yield "conversation", lambda: self.conversation(meta)
        if kind == "instruction":
            yield "instruction", lambda: self.instruction(record, meta)
        if kind in CONTINUATION_KINDS and not has_pair:
            yield "continuation", lambda: self.continuation(record)


def continuation_parts(text: str) -> tuple[str, str] | None:
    """(head, rest) cut at the word that starts the second half, line breaks kept; None when too short."""
    words = list(re.finditer(r"\S+", text or ""))
    if len(words) < MIN_CONTINUATION_WORDS:
        return None
    start = words[len(words) // 2].start()
    return text[:start].strip(), text[start:].strip()


def continued_text(head: str, rest: str) -> str:
    """The whole text of a continuation example again (the cut's whitespace becomes one space)."""
    return f"{head} {rest}"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _examples(value: Any) -> list[str]:
    """Usage examples from meta: a string, a list of strings, or a list of {text, translation}."""
    items = value if isinstance(value, list) else [value] if value else []
    shown = []
    for item in items:
        if isinstance(item, Mapping):
            text = _text(item.get("text"))
            translation = _text(item.get("translation") or item.get("pivot_text"))
            if text:
                shown.append(f"{text} ({translation})" if translation else text)
        elif _text(item):
            shown.append(_text(item))
    return shown


def format_records(table: pa.Table, params: FormatParams, seed: int, where: str = "data/interim/split.parquet") -> FormatResult:
    """Every split record -> its chat examples, weighted per task, grouped by split and sorted."""
    missing = [name for name in SPLIT_COLUMNS if name not in table.column_names]
    if missing:
        raise UserError(f"{where}: missing column(s) {', '.join(missing)}; rerun the split stage (dvc repro split)")
    formatter = Formatter(params)
    weights = {task: params.task_weights.get(task, 1.0) for task in TASKS}
    result = FormatResult(examples={split: [] for split in SPLITS})
    for record in table.select(list(SPLIT_COLUMNS)).to_pylist():
        split = record["split"]
        if split not in SPLITS:
            raise UserError(f"{where}: record {record['id']} has split {split!r}; expected one of {', '.join(SPLITS)} "
                            f"(rerun the split stage)")
        try:
            meta = json.loads(record["meta"] or "{}")
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: record {record['id']} has meta that is not JSON ({err.msg}); rerun ingest") from None
        offered = False
        for task, build in formatter.tasks_for(record, meta):
            offered = True
            if weights[task] == 0:
                continue
            try:
                messages, source_text, reference = build()
            except _Skip as skip:
                result.skipped[(task, str(skip))] += 1
                continue
            example = {
                "id": example_id(record["id"], task),
                "record_id": record["id"],
                "task": task,
                "lang": record["lang"],
                "pivot_lang": record["pivot_lang"],
                "source": record["source"],
                "group": record["group"],
                "messages": messages,
                "source_text": source_text,
                "reference": reference,
            }
            copies = copies_in_train(weights[task], seed, example["id"]) if split == "train" else 1
            if copies == 0:
                result.dropped_by_weight[task] += 1
            elif copies > 1:
                result.repeated_by_weight[task] += copies - 1
            result.examples[split].extend([example] * copies)
        if not offered and record["kind"] != "labelled":  # labelled records go to the classification sets
            result.records_without_task[record["kind"]] += 1
    for examples in result.examples.values():
        examples.sort(key=lambda example: example["id"])  # repeats are identical, so ties need no tie-break
    return result


def format_metrics(result: FormatResult) -> dict[str, Any]:
    """Flat counts: per split, task and language, plus what was skipped, dropped or repeated."""
    metrics: dict[str, Any] = {}
    totals: Counter = Counter()
    for split, examples in result.examples.items():
        metrics[f"{split}.examples"] = len(examples)
        for example in examples:
            for key in (f"{split}.by_task.{example['task']}", f"{split}.by_lang.{example['lang']}",
                        f"{split}.{example['task']}.{example['lang']}", f"total.by_task.{example['task']}"):
                totals[key] += 1
    metrics.update(totals)
    metrics["total.examples"] = sum(len(examples) for examples in result.examples.values())
    for (task, reason), count in result.skipped.items():
        metrics[f"skipped.{task}.{reason}"] = count
    for kind, count in result.records_without_task.items():
        metrics[f"records_without_task.{kind}"] = count
    for task, count in result.dropped_by_weight.items():
        metrics[f"train.dropped_by_weight.{task}"] = count
    for task, count in result.repeated_by_weight.items():
        metrics[f"train.repeated_by_weight.{task}"] = count
    metrics.update(result.extra)
    return dict(sorted(metrics.items()))


def check_example(example: Mapping[str, Any]) -> None:
    """Raise ValueError unless the messages are a well-formed chat that ends with the answer."""
    messages = example["messages"]
    roles = [message["role"] for message in messages]
    body = roles[1:] if roles and roles[0] == "system" else roles
    if not body or len(body) % 2 or any(role != ("user", "assistant")[i % 2] for i, role in enumerate(body)):
        raise ValueError(f"example {example['id']}: roles {roles} are not (system,) user/assistant turns ending with assistant")
    if any(not isinstance(message["content"], str) or not message["content"].strip() for message in messages):
        raise ValueError(f"example {example['id']}: a message has empty content")
