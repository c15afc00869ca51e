"""Synthetic records (meta "synthetic": true) in the format stage.

Only reviewed text trains: a synthetic record trains when its meta "review" is "accepted", or also when it
is "pending" if review is not required; "rejected" never does. Synthetic text never enters val or test,
where it would score the model on what a generator wrote. Its share of the train examples is capped,
dropping hash-chosen synthetic examples, so the same inputs keep the same ones.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.core.errors import UserError
from langfoundry.data.chat import hash_unit

log = logging.getLogger(__name__)

REVIEWS = ("pending", "accepted", "rejected")


def is_synthetic(meta: Any) -> bool:
    return isinstance(meta, dict) and meta.get("synthetic") is True


def select_synthetic(table: pa.Table, require_review: bool,
                     where: str = "data/interim/split.parquet") -> tuple[pa.Table, set[str], Counter]:
    """(the table without synthetic records that may not train, ids of the synthetic ones kept, counts)."""
    counts: Counter = Counter()
    kept_ids: set[str] = set()
    if table.num_rows == 0 or "meta" not in table.column_names:
        return table, kept_ids, counts
    candidates = pc.fill_null(pc.match_substring(table.column("meta"), '"synthetic"'), False).to_pylist()
    keep = [True] * table.num_rows
    ids, metas, splits = table.column("id"), table.column("meta"), table.column("split")
    for row, candidate in enumerate(candidates):
        if not candidate:
            continue
        try:
            meta = json.loads(metas[row].as_py())
        except json.JSONDecodeError:
            continue  # the format stage names the record and the fix
        if not is_synthetic(meta):
            continue
        record_id, review = ids[row].as_py(), meta.get("review", "pending")
        if review not in REVIEWS:
            raise UserError(f"{where}: synthetic record {record_id} has meta review {review!r}; expected one of "
                            f"{', '.join(REVIEWS)} (fix the synthesize stage's output and rerun it)")
        if splits[row].as_py() != "train":
            keep[row], reason = False, "dropped_heldout"
        elif review == "rejected":
            keep[row], reason = False, "excluded_rejected"
        elif review == "pending" and require_review:
            keep[row], reason = False, "excluded_pending"
        else:
            kept_ids.add(record_id)
            reason = f"kept_{review}"
        counts[reason] += 1
    if not all(keep):
        table = table.filter(pa.array(keep, pa.bool_()))
    return table, kept_ids, counts


def cap_synthetic(train: Sequence[dict[str, Any]], synthetic_ids: set[str], max_share: float,
                  seed: int) -> tuple[list[dict[str, Any]], int]:
    """(train with at most max_share of its examples synthetic, sorted by id; synthetic examples dropped)."""
    synthetic = [example for example in train if example["record_id"] in synthetic_ids]
    real = len(train) - len(synthetic)
    allowed = len(synthetic) if max_share >= 1 else math.floor(max_share * real / (1 - max_share) + 1e-9)
    if len(synthetic) <= allowed:
        return list(train), 0
    seen: Counter = Counter()
    order = []
    for example in synthetic:  # (id, which repeat) per entry, so a task weight's repeats are drawn one by one
        order.append((hash_unit(seed, f"synthetic\x1f{example['id']}\x1f{seen[example['id']]}"), example["id"], example))
        seen[example["id"]] += 1
    order.sort(key=lambda unit: (unit[0], unit[1]))
    kept = [example for example in train if example["record_id"] not in synthetic_ids] + [unit[2] for unit in order[:allowed]]
    log.warning("format: synthetic examples capped at synthesize.max_share %g of train: %d of %d kept",
                max_share, allowed, len(synthetic))
    return sorted(kept, key=lambda example: example["id"]), len(synthetic) - allowed


def synthetic_metrics(counts: Counter, train: Sequence[dict[str, Any]], synthetic_ids: set[str], capped: int,
                      max_share: float, require_review: bool) -> dict[str, Any]:
    """Flat synthetic.* metrics: records kept or left out (by reason), examples capped, share of train."""
    in_train = sum(example["record_id"] in synthetic_ids for example in train)
    metrics: dict[str, Any] = {f"synthetic.records.{reason}": count for reason, count in counts.items()}
    metrics.update({"synthetic.train_examples": in_train, "synthetic.capped_examples": capped,
                    "synthetic.train_share": round(in_train / len(train), 6) if train else 0.0,
                    "synthetic.max_share": max_share, "synthetic.require_review": int(require_review)})
    return metrics
