"""Measurements that depend on the machine (durations, throughput, memory), kept out of the metrics files.

Two runs of the pipeline give identical metrics but never identical timings. Keeping timings in their own files
(metrics/timings/<stage>.json, git-tracked outputs that are not declared as metrics) keeps `dvc metrics diff` and
the reproducibility check to what the data and the training decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langfoundry.core.storage import flatten_metrics, write_metrics

TIMINGS = "timings"  # metrics/timings/<stage>.json, beside the stage's metrics


def is_timing(key: str) -> bool:
    return key.endswith(("seconds", "per_second")) or "memory" in key


def split_timings(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the metrics without timings, the timings) of a flat metrics mapping."""
    stable = {key: value for key, value in metrics.items() if not is_timing(key)}
    timings = {key: value for key, value in metrics.items() if is_timing(key)}
    return stable, timings


def write_stage_metrics(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """Write the metrics (nested or flat) to path and their timings to timings/<same name> in the same folder."""
    stable, timings = split_timings(flatten_metrics(metrics))
    write_metrics(path, stable)
    write_metrics(Path(path).parent / TIMINGS / Path(path).name, timings)
