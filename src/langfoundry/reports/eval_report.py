"""reports/eval.md: the evaluation metrics as tables people can read, with sample generations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from langfoundry.model.scoring import direction

MAIN_ROWS = (
    ("chrF, all tasks", "chrf"),
    ("chrF++, all tasks", "chrf_pp"),
    ("BLEU, all tasks", "bleu"),
    ("chrF, translation", "translation.chrf"),
    ("chrF++, translation", "translation.chrf_pp"),
    ("BLEU, translation", "translation.bleu"),
    ("exact match, vocabulary", "vocabulary.exact_match"),
    ("perplexity, target-language text (lower is better)", "perplexity"),
)


def _number(metrics: Mapping[str, Any], key: str, signed: bool = False) -> str:
    value = metrics.get(key)
    if not isinstance(value, (int, float)):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "∅"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _versus(metrics: Mapping[str, Any], key: str) -> list[str]:
    """base, adapter and delta cells for one metric."""
    return [_number(metrics, f"base.{key}"), _number(metrics, f"adapter.{key}"), _number(metrics, f"delta.{key}", signed=True)]


def _sample(examples: Sequence[Mapping[str, Any]], count: int) -> list[int]:
    """Indices of up to `count` examples taken round-robin over tasks, so every task is shown."""
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_task[example["task"]].append(index)
    queues = [by_task[task] for task in sorted(by_task)]
    chosen: list[int] = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def _context_section(metrics: Mapping[str, Any]) -> list[str]:
    """With evaluate.dictionary_context: the scores with and without the entries in the prompts."""
    if "base.no_context.chrf" not in metrics:
        return []
    lines = ["", "## Dictionary context (chrF)", "",
             f"{metrics.get('dictionary_context.prompts', 0)} of {metrics.get('dictionary_context.translation_prompts', 0)} "
             f"translation prompts carried {metrics.get('dictionary_context.entries', 0)} entries of the training "
             "split's dictionary (data/interim/dictionary.sqlite); the other prompts are unchanged. "
             "The main tables above score the prompts with context.", ""]
    rows = []
    for label, key in (("all tasks", "chrf"), ("translation", "translation.chrf"),
                       ("translate_to_pivot", "translate_to_pivot.chrf"), ("translate_from_pivot", "translate_from_pivot.chrf")):
        if f"base.{key}" not in metrics:
            continue
        cells = [label]
        for model in ("base", "adapter"):
            without, with_ = metrics.get(f"{model}.no_context.{key}"), metrics.get(f"{model}.{key}")
            gain = with_ - without if isinstance(with_, (int, float)) and isinstance(without, (int, float)) else None
            cells += [_number(metrics, f"{model}.no_context.{key}"), _number(metrics, f"{model}.{key}"),
                      f"{gain:+.2f}" if gain is not None else "–"]
        rows.append(cells)
    return lines + _table(["chrF", "base without", "base with", "base gain", "adapter without", "adapter with",
                           "adapter gain"], rows)


def render_report(metrics: Mapping[str, Any], examples: Sequence[Mapping[str, Any]], hypotheses: Mapping[str, list[str]],
                  translations: Sequence[Mapping[str, Any]], samples: int) -> str:
    lines = ["# Evaluation", "",
             f"{metrics['n_examples']} test examples. *base* is models/base, *adapter* is models/base with models/adapter, "
             "*baseline* translates word for word with the training split's dictionary (translation tasks only). "
             "Scores are corpus-level sacrebleu scores (0–100); delta is adapter minus base.", "",
             "## Main metrics", ""]
    # the baseline only translates, so it has a cell only in the translation rows
    main_rows = [[label] + _versus(metrics, key)
                 + [_number(metrics, f"baseline.{key}") if key.startswith("translation") else "–"]
                 for label, key in MAIN_ROWS if f"base.{key}" in metrics]
    lines += _table(["metric", "base", "adapter", "delta", "baseline"], main_rows)

    tasks = sorted({example["task"] for example in examples})
    lines += ["", "## Per task (chrF, and BLEU)", ""]
    task_rows = [[task, str(metrics.get(f"n.{task}", 0))] + _versus(metrics, f"{task}.chrf")
                 + [_number(metrics, f"baseline.{task}.chrf")]
                 + [_number(metrics, f"{model}.{task}.bleu") for model in ("base", "adapter", "baseline")] for task in tasks]
    lines += _table(["task", "n", "base chrF", "adapter chrF", "delta chrF", "baseline chrF",
                     "base BLEU", "adapter BLEU", "baseline BLEU"], task_rows)

    lines += _context_section(metrics)

    directions = sorted({direction(example) for example in translations})
    if directions:
        lines += ["", "## Per translation direction (chrF)", ""]
        direction_rows = [[key.replace(">", " → ")] + _versus(metrics, f"direction.{key}.chrf")
                          + [_number(metrics, f"baseline.direction.{key}.chrf")] for key in directions]
        lines += _table(["direction", "base", "adapter", "delta", "baseline"], direction_rows)

    langs = sorted({example["lang"] for example in examples})
    lines += ["", "## Per language (chrF; perplexity on that language's text)", ""]
    lines += _table(["language", "base chrF", "adapter chrF", "delta chrF", "base ppl", "adapter ppl", "delta ppl"],
                    [[lang] + _versus(metrics, f"lang.{lang}.chrf") + _versus(metrics, f"lang.{lang}.perplexity")
                     for lang in langs])

    regions = sorted({key.split(".")[2] for key in metrics if key.startswith("base.region.") and key.endswith(".chrf")})
    if regions:
        lines += ["", "## Per region (chrF; perplexity on the region's languages)", ""]
        lines += _table(["region", "base chrF", "adapter chrF", "delta chrF", "base ppl", "adapter ppl", "delta ppl"],
                        [[region] + _versus(metrics, f"region.{region}.chrf") + _versus(metrics, f"region.{region}.perplexity")
                         for region in regions])

    translation_index = {example["id"]: index for index, example in enumerate(translations)}
    chosen = _sample(examples, samples)
    if chosen:
        lines += ["", f"## Sample generations ({len(chosen)})", ""]
    for number, index in enumerate(chosen, start=1):
        example = examples[index]
        lines += [f"### {number}. {example['task']} ({example['lang']}) `{example['id']}`", "",
                  f"- source: {_cell(example['source_text'])}", f"- reference: {_cell(example['reference'])}",
                  f"- base: {_cell(hypotheses['base'][index])}", f"- adapter: {_cell(hypotheses['adapter'][index])}"]
        if example["id"] in translation_index:
            lines.append(f"- baseline: {_cell(hypotheses['baseline'][translation_index[example['id']]])}")
        lines.append("")

    lines += ["## Metric signatures", ""]
    lines += [f"- {name}: `{metrics[f'signature.{name}']}`" for name in ("bleu", "chrf", "chrf_pp")
              if f"signature.{name}" in metrics]
    return "\n".join(lines).rstrip() + "\n"
