"""Blind human preference: the Wilson interval against published values, win rates with ties and 'both bad',
and metrics/preference.json written and read back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from langfoundry.core.errors import UserError
from langfoundry.release.preference import preference_metrics, read_preference, wilson_interval, write_preference

REPO = Path(__file__).resolve().parents[1]


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17:857-872,
# Table II, method 3 (score interval without continuity correction), 95%.
NEWCOMBE = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)), ((0, 20), (0.0, 0.1611)),
            ((1, 29), (0.0061, 0.1718)), ((29, 29), (0.8830, 1.0))]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_wilson_interval_matches_newcombes_table(counts, expected):
    low, high = wilson_interval(*counts, confidence=0.95)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


def _score_bound(successes: float, total: int, z: float, upper: bool) -> float:
    """A bound found the way the interval is defined: the p where the score statistic |p̂ - p| / sqrt(p(1-p)/n) is z."""
    observed = successes / total
    low, high = (observed, 1.0) if upper else (0.0, observed)
    if (upper and observed == 1.0) or (not upper and observed == 0.0):
        return observed
    for _ in range(200):
        middle = (low + high) / 2
        outside = abs(observed - middle) / math.sqrt(middle * (1 - middle) / total) > z
        if outside == upper:
            high = middle
        else:
            low = middle
    return (low + high) / 2


@pytest.mark.parametrize(("successes", "total", "confidence", "z"),
                         [(7.5, 12, 0.95, 1.959964), (3, 40, 0.90, 1.644854), (22, 30, 0.99, 2.575829)])
def test_wilson_interval_inverts_the_score_test(successes, total, confidence, z):
    low, high = wilson_interval(successes, total, confidence)
    assert low == pytest.approx(_score_bound(successes, total, z, upper=False), abs=1e-6)
    assert high == pytest.approx(_score_bound(successes, total, z, upper=True), abs=1e-6)


def test_wilson_interval_widens_with_confidence_and_narrows_with_more_data():
    narrow, wide = wilson_interval(30, 50, 0.80), wilson_interval(30, 50, 0.99)
    assert wide[0] < narrow[0] < 0.6 < narrow[1] < wide[1]
    small, large = wilson_interval(6, 10, 0.95), wilson_interval(600, 1000, 0.95)
    assert large[1] - large[0] < (small[1] - small[0]) / 5


@pytest.mark.parametrize(("successes", "total", "confidence"), [(1, 0, 0.95), (5, 4, 0.95), (-1, 4, 0.95), (2, 4, 1.0)])
def test_wilson_interval_refuses_impossible_input(successes, total, confidence):
    with pytest.raises(ValueError):
        wilson_interval(successes, total, confidence)


def test_ties_count_half_and_both_bad_only_as_a_judgment():
    choices = ["candidate"] * 6 + ["reference"] * 2 + ["tie"] * 2 + ["both_bad"] * 3
    metrics = preference_metrics(choices, candidate="v2", reference="v1", confidence=0.95)
    assert (metrics["judgments"], metrics["candidate_wins"], metrics["reference_wins"], metrics["ties"],
            metrics["both_bad"]) == (13, 6, 2, 2, 3)
    assert metrics["win_rate"] == pytest.approx(7 / 10)  # 6 wins + 2 half-wins over the 10 that compared
    assert metrics["interval"] == pytest.approx(list(wilson_interval(7, 10, 0.95)))
    assert (metrics["candidate"], metrics["reference"], metrics["confidence"]) == ("v2", "v1", 0.95)


def test_no_comparison_has_no_win_rate():
    metrics = preference_metrics(["both_bad", "both_bad"], "adapter", "base", 0.95)
    assert metrics["judgments"] == 2 and metrics["win_rate"] is None and metrics["interval"] is None


def test_an_unknown_choice_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="'A'.*candidate, reference, tie, both_bad"):
        preference_metrics(["candidate", "A"], "adapter", "base", 0.95)


def test_written_preference_reads_back_and_is_stable(tmp_path):
    metrics = preference_metrics(["candidate", "tie", "reference"], "adapter", "base", 0.95)
    path = tmp_path / "metrics" / "preference.json"
    write_preference(path, metrics)
    first = path.read_bytes()
    assert read_preference(path) == json.loads(first)
    assert read_preference(path)["win_rate"] == 0.5
    write_preference(path, preference_metrics(["tie", "reference", "candidate"], "adapter", "base", 0.95))
    assert path.read_bytes() == first  # counts, not order, make the file


@pytest.mark.parametrize(("change", "message"), [
    ({"ties": -1}, "key 'ties' must be a count"),
    ({"candidate_wins": "3"}, "key 'candidate_wins' must be a count"),
    ({"judgments": 7}, "'judgments' \\(7\\) is not the sum"),
])
def test_a_bad_preference_file_names_the_file_and_key(tmp_path, change, message):
    path = tmp_path / "preference.json"
    data = preference_metrics(["candidate", "reference"], "adapter", "base", 0.95)
    path.write_text(json.dumps({**data, **change}), encoding="utf-8")
    with pytest.raises(UserError, match=f"preference.json: {message}"):
        read_preference(path)


def test_a_preference_file_that_is_not_json_is_a_user_error(tmp_path):
    path = tmp_path / "preference.json"
    path.write_text("{judgments: 3", encoding="utf-8")
    with pytest.raises(UserError, match="preference.json: not valid JSON"):
        read_preference(path)


def test_the_repository_starts_with_no_judgments():
    metrics = read_preference(REPO / "metrics" / "preference.json")
    assert metrics["judgments"] == 0 and metrics["win_rate"] is None and metrics["interval"] is None
