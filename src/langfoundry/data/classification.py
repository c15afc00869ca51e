"""Labelled records -> one classification set per task (intent, sentiment, dialect), for a classifier, not the LLM.

data/processed/classification/<task>/{train,val,test}.jsonl hold one row per record: id, text, label,
lang, source, origin, in the split the split stage chose (stratified by label), sorted by id; labels.json
beside them counts each label per split. The label table (one row per task and label, its rows per
split) is what the classification gate checks: enough training rows per label, and each label tested.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.core.storage import write_jsonl
from langfoundry.data.split import SPLITS

FOLDER = "classification"  # below data/processed
ROW_FIELDS = ("id", "text", "label", "lang", "source", "origin")
NO_LABELLED_NOTE = "No labelled source in sources.yaml: no classification set was written or checked.\n"

ClassificationSets = dict[str, dict[str, list[dict[str, Any]]]]  # task -> split -> rows


def classification_sets(table: pa.Table) -> ClassificationSets:
    """The labelled records of a split table, as rows per task and split."""
    labelled = table.filter(pc.equal(table.column("kind"), "labelled"))
    sets: ClassificationSets = {}
    for record in labelled.select(["id", "text", "lang", "source", "origin", "meta", "split"]).to_pylist():
        meta = json.loads(record.pop("meta") or "{}")
        split = record.pop("split")
        row = {"id": record["id"], "text": record["text"], "label": meta["label"], "lang": record["lang"],
               "source": record["source"], "origin": record["origin"]}
        sets.setdefault(meta["task"], {name: [] for name in SPLITS})[split].append(row)
    for splits in sets.values():
        for rows in splits.values():
            rows.sort(key=lambda row: row["id"])
    return dict(sorted(sets.items()))


def label_counts(sets: ClassificationSets) -> dict[str, dict[str, dict[str, int]]]:
    """task -> label -> split -> rows, labels sorted."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for task, splits in sets.items():
        per_split = {split: Counter(row["label"] for row in rows) for split, rows in splits.items()}
        labels = sorted(set().union(*per_split.values()))
        counts[task] = {label: {split: per_split[split][label] for split in SPLITS} for label in labels}
    return counts


def label_table(sets: ClassificationSets) -> pa.Table:
    """One row per task and label with its rows per split and in all: the classification gate's rows."""
    rows = [{"task": task, "label": label, **splits, "total": sum(splits.values())}
            for task, labels in label_counts(sets).items() for label, splits in labels.items()]
    schema = pa.schema([("task", pa.string()), ("label", pa.string())] +
                       [(name, pa.int64()) for name in (*SPLITS, "total")])
    return pa.Table.from_pylist(rows, schema=schema)


def texts_with_several_labels(splits: dict[str, list[dict[str, Any]]]) -> int:
    """Texts of one task that carry more than one label: ambiguous examples (or labelling mistakes) to look at."""
    labels: dict[str, set[str]] = {}
    for rows in splits.values():
        for row in rows:
            labels.setdefault(row["text"], set()).add(row["label"])
    return sum(1 for found in labels.values() if len(found) > 1)


def classification_metrics(sets: ClassificationSets) -> dict[str, int]:
    """Flat counts for metrics/format.json: rows per task and split, labels per task, and texts labelled twice."""
    metrics: dict[str, int] = {}
    for task, labels in label_counts(sets).items():
        metrics[f"classification.{task}.labels"] = len(labels)
        metrics[f"classification.{task}.texts_with_several_labels"] = texts_with_several_labels(sets[task])
        for split in SPLITS:
            metrics[f"classification.{task}.{split}"] = sum(counts[split] for counts in labels.values())
    return metrics


def write_classification_sets(sets: ClassificationSets, processed: Path) -> Path:
    """Write each task's splits and labels.json below processed/classification (emptied first)."""
    folder = Path(processed) / FOLDER
    shutil.rmtree(folder, ignore_errors=True)  # a task no source gives any more must not linger
    folder.mkdir(parents=True)
    if not sets:
        (folder / "README.txt").write_text(NO_LABELLED_NOTE, encoding="utf-8")
    for task, splits in sets.items():
        for split, rows in splits.items():
            write_jsonl(rows, folder / task / f"{split}.jsonl")
        labels = {"task": task, "labels": label_counts({task: splits})[task]}
        (folder / task / "labels.json").write_text(json.dumps(labels, indent=2, ensure_ascii=False) + "\n",
                                                     encoding="utf-8")
    return folder


def summary_line(sets: ClassificationSets) -> str:
    """One line a person reads: each task's rows per split and its labels."""
    parts = []
    for task, labels in label_counts(sets).items():
        splits = "/".join(str(sum(counts[split] for counts in labels.values())) for split in SPLITS)
        parts.append(f"{task} {splits} ({len(labels)} labels)")
    return "classification (train/val/test): " + "; ".join(parts)
