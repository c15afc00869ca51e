"""Is a training cycle due? The clean data now against the data the current adapter was trained on.

The train stage records the data version it trained on in metrics/train.json (`data_version.*`:
clean row count and file hashes). The check compares the clean table now with that record:

- full: no record yet (no adapter, or one from before records were kept), or the clean data grew by
  `retrain.full_growth` (10%) or more since then;
- mini: at least `retrain.mini_every` (1,000) new clean records since then, or at least
  `retrain.min_corrections` (20) new corrections from users (records of feedback sources);
- none: otherwise (the data may have changed a little; the record says so).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from langfoundry.core.config import RetrainParams
from langfoundry.core.errors import UserError

PREFIX = "data_version."
VERDICTS = ("none", "mini", "full")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file read in 1 MiB blocks (the clean table can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def clean_rows(path: Path) -> int:
    """Rows of the clean table, from its footer (nothing else is read)."""
    if not path.exists():
        raise UserError(f"{path}: not found; run the clean stage first (dvc repro clean)")
    return pq.ParquetFile(path).metadata.num_rows


def feedback_rows(path: Path) -> int:
    """Clean records that are users' corrections (kind feedback), reading the kind column only."""
    count = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 16, columns=["kind"]):
        count += pc.sum(pc.equal(batch.column(0), "feedback")).as_py() or 0
    return count


def data_version(clean: Path, train: Path) -> dict[str, Any]:
    """What the train stage records: flat `data_version.*` keys for metrics/train.json."""
    return {f"{PREFIX}clean_rows": clean_rows(clean), f"{PREFIX}clean_sha256": file_sha256(clean),
            f"{PREFIX}feedback_rows": feedback_rows(clean), f"{PREFIX}train_sha256": file_sha256(train)}


def trained_version(metrics_path: Path) -> dict[str, Any] | None:
    """The recorded version (without the prefix), or None when there is none."""
    if not metrics_path.exists():
        return None
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"{metrics_path}: not valid JSON; rerun the train stage (dvc repro train)") from None
    version = {key.removeprefix(PREFIX): value for key, value in metrics.items() if key.startswith(PREFIX)}
    return version if isinstance(version.get("clean_rows"), int) else None


@dataclass(frozen=True)
class Verdict:
    verdict: str  # none | mini | full
    reason: str
    clean_rows: int
    trained_rows: int | None
    new: int  # clean records beyond those the adapter was trained on (0 when the data shrank)
    growth: float | None  # (now - then) / then
    changed: bool  # the clean table differs from the one trained on
    new_corrections: int = 0  # users' corrections (feedback records) beyond those trained on

    @property
    def due(self) -> bool:
        return self.verdict != "none"

    def metrics(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "due": self.due, "clean_rows": self.clean_rows,
                "trained_clean_rows": self.trained_rows, "new_examples": self.new, "growth": self.growth,
                "changed": self.changed, "new_corrections": self.new_corrections}


def decide(clean_now: int, trained_rows: int | None, params: RetrainParams, changed: bool = True,
           new_corrections: int = 0) -> Verdict:
    """The verdict for a clean row count against the recorded one (None: no record)."""
    if trained_rows is None:
        return Verdict("full", "no record of the data the adapter was trained on", clean_now, None, clean_now, None, True)
    new = max(0, clean_now - trained_rows)
    if trained_rows == 0:
        growth = None
        verdict = "full" if clean_now > 0 else "none"
        reason = "the adapter was trained on no clean data" if clean_now else "there is still no clean data"
        return Verdict(verdict, reason, clean_now, trained_rows, new, growth, changed)
    growth = (clean_now - trained_rows) / trained_rows
    if growth >= params.full_growth:
        reason = f"the clean data grew {growth:.1%} (full refresh from {params.full_growth:.0%})"
        return Verdict("full", reason, clean_now, trained_rows, new, growth, changed)
    if new >= params.mini_every:
        reason = f"{new:,} new clean records (mini fine-tune from {params.mini_every:,})"
        return Verdict("mini", reason, clean_now, trained_rows, new, growth, changed, new_corrections)
    if new_corrections >= params.min_corrections:
        reason = f"{new_corrections:,} new corrections from users (mini fine-tune from {params.min_corrections:,})"
        return Verdict("mini", reason, clean_now, trained_rows, new, growth, changed, new_corrections)
    if changed:
        reason = (f"{new:,} new clean records, {new_corrections:,} new corrections and {growth:+.1%} growth: below "
                  f"every threshold ({params.mini_every:,} records, {params.min_corrections:,} corrections, "
                  f"{params.full_growth:.0%})")
    else:
        reason = "the clean data is the one the adapter was trained on"
    return Verdict("none", reason, clean_now, trained_rows, new, growth, changed, new_corrections)


def check(params: RetrainParams, clean: Path, train_metrics: Path) -> Verdict:
    recorded = trained_version(train_metrics)
    rows = clean_rows(clean)
    if recorded is None:
        return decide(rows, None, params)
    changed = recorded.get("clean_sha256") != file_sha256(clean)
    corrections = max(0, feedback_rows(clean) - int(recorded.get("feedback_rows") or 0))
    return decide(rows, recorded["clean_rows"], params, changed, corrections)
