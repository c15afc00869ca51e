"""Blind human preference between a candidate and a reference model: counts, win rate and its Wilson interval.

metrics/preference.json holds the counts of the judgments `langfoundry review` collected; the release
gate reads it. A tie counts half a win to each side; "both bad" says nothing about which model is
better, so it counts as a judgment but not towards the win rate.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from statistics import NormalDist
from typing import Any

from langfoundry.core.errors import UserError
from langfoundry.core.storage import ensure_parent

CHOICES = ("candidate", "reference", "tie", "both_bad")
COUNT_KEYS = {"candidate": "candidate_wins", "reference": "reference_wins", "tie": "ties", "both_bad": "both_bad"}


def wilson_interval(successes: float, total: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion successes/total at the given two-sided confidence.

    Wilson (1927): with p = s/n and z the normal quantile 1 - (1 - confidence)/2,
    centre = (p + z²/2n) / (1 + z²/n) and half-width = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
    Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and is sensible at p = 0 or 1 and small n.
    successes may be fractional (ties count half).
    """
    if total <= 0:
        raise ValueError("a proportion of no trials has no interval; give total >= 1")
    if not 0.0 <= successes <= total:
        raise ValueError(f"successes must be between 0 and total ({total}); got {successes}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive); got {confidence}")
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = successes / total
    shrink = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / shrink
    half = z / shrink * math.sqrt(p * (1.0 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def preference_metrics(choices: Iterable[str], candidate: str, reference: str, confidence: float,
                       predictions_sha256: str | None = None) -> dict[str, Any]:
    """Counts, win rate (ties half) and its Wilson interval for judgments that each chose one of CHOICES.
    predictions_sha256: the reports/predictions.jsonl whose answers were judged, so the release gate can tell
    judgments of an earlier candidate from judgments of the current one."""
    counts: Counter[str] = Counter()
    for choice in choices:
        if choice not in COUNT_KEYS:
            raise UserError(f"judgment choice {choice!r} is not one of {', '.join(CHOICES)}")
        counts[choice] += 1
    compared = counts["candidate"] + counts["reference"] + counts["tie"]
    wins = counts["candidate"] + 0.5 * counts["tie"]
    interval = wilson_interval(wins, compared, confidence) if compared else None
    metrics: dict[str, Any] = {"judgments": sum(counts.values())}
    metrics.update({key: counts[choice] for choice, key in COUNT_KEYS.items()})
    metrics.update({"win_rate": wins / compared if compared else None,
                    "interval": list(interval) if interval else None,
                    "confidence": confidence, "candidate": candidate, "reference": reference})
    if predictions_sha256 is not None:
        metrics["predictions_sha256"] = predictions_sha256
    return metrics


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def write_preference(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """metrics/preference.json: keys sorted, floats rounded to 6 places, so an unchanged count is an unchanged file."""
    rounded = {key: _rounded(value) for key, value in metrics.items()}
    ensure_parent(path).write_text(json.dumps(rounded, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def read_preference(path: str | Path) -> dict[str, Any]:
    """The counts in metrics/preference.json, checked: a one-line UserError names a missing or bad key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err}); rewrite it with `langfoundry review` or restore it from git") from err
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of judgment counts; rewrite it with `langfoundry review`")
    for key in ("judgments", *COUNT_KEYS.values()):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"{path}: key {key!r} must be a count (an integer >= 0), got {value!r}; "
                            f"rewrite the file with `langfoundry review`")
    if data["judgments"] != sum(data[key] for key in COUNT_KEYS.values()):
        raise UserError(f"{path}: 'judgments' ({data['judgments']}) is not the sum of candidate_wins, reference_wins, "
                        f"ties and both_bad; rewrite the file with `langfoundry review`")
    return data
