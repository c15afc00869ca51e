"""Routing between champion and challenger (langfoundry.serve.routing): sticky A/B by user, shadow copies."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from langfoundry.serve.routing import CHALLENGER, CHAMPION, Route, route, route_named, user_bucket

USERS = [f"user-{index}" for index in range(20_000)]


def challenger_share(share: float, salt: str = "13") -> float:
    return sum(route("ab", user, share, salt).answer == CHALLENGER for user in USERS) / len(USERS)


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.9])
def test_about_the_share_of_users_meets_the_challenger(share: float) -> None:
    # 20,000 users: the binomial standard deviation is at most 0.0036, so 0.015 is over four of them
    assert challenger_share(share) == pytest.approx(share, abs=0.015)


def test_no_share_sends_nobody_and_a_full_share_everybody() -> None:
    assert challenger_share(0.0) == 0.0
    assert challenger_share(1.0) == 1.0


def test_a_user_always_meets_the_same_model() -> None:
    first = [route("ab", user, 0.3, "13") for user in USERS[:2000]]
    again = [route("ab", user, 0.3, "13") for user in reversed(USERS[:2000])]
    assert first == again[::-1]
    assert {item.answer for item in first} == {CHAMPION, CHALLENGER}


def test_a_larger_share_keeps_the_challenger_users_of_a_smaller_one() -> None:
    # raising the share during an experiment adds users to the challenger; nobody switches back and forth
    small = {user for user in USERS if route("ab", user, 0.1, "13").answer == CHALLENGER}
    large = {user for user in USERS if route("ab", user, 0.3, "13").answer == CHALLENGER}
    assert small and small < large


def test_another_salt_reshuffles_the_users() -> None:
    first = {user for user in USERS if route("ab", user, 0.5, "13").answer == CHALLENGER}
    second = {user for user in USERS if route("ab", user, 0.5, "14").answer == CHALLENGER}
    overlap = len(first & second) / len(first)
    assert overlap == pytest.approx(0.5, abs=0.05)  # independent halves share about half


def test_a_request_without_a_user_goes_to_the_champion() -> None:
    assert route("ab", None, 1.0, "13") == Route(CHAMPION)


def test_buckets_are_the_same_in_every_process() -> None:
    # Python's own hash() of a string changes with PYTHONHASHSEED; the buckets must not
    code = "from langfoundry.serve.routing import user_bucket; print(repr([user_bucket(f'u{i}', 's') for i in range(50)]))"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outputs) == 1
    assert ast.literal_eval(outputs.pop()) == [user_bucket(f"u{i}", "s") for i in range(50)]


def test_buckets_spread_over_the_unit_interval() -> None:
    buckets = [user_bucket(user, "13") for user in USERS]
    assert all(0.0 <= bucket < 1.0 for bucket in buckets)
    deciles = [sum(low / 10 <= bucket < (low + 1) / 10 for bucket in buckets) for low in range(10)]
    assert min(deciles) > 0.09 * len(USERS) and max(deciles) < 0.11 * len(USERS)


def test_shadow_mode_answers_with_the_champion_and_copies_to_the_challenger() -> None:
    for user in (None, *USERS[:500]):
        assert route("shadow", user, 0.5, "13") == Route(CHAMPION, shadow=CHALLENGER)


def test_champion_only_never_reaches_the_challenger() -> None:
    assert {route("champion_only", user, 1.0, "13") for user in USERS[:500]} == {Route(CHAMPION)}


def test_a_named_model_answers_itself() -> None:
    assert route_named(CHALLENGER, "ab") == Route(CHALLENGER)
    assert route_named(CHAMPION, "ab") == Route(CHAMPION)
    assert route_named(CHALLENGER, "shadow") == Route(CHALLENGER)  # no shadow copy of the challenger's own answer
    assert route_named(CHAMPION, "shadow") == Route(CHAMPION, shadow=CHALLENGER)
