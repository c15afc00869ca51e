"""Which model answers a request, and which answers a copy in the shadows: pure functions.

A/B: a user goes to the challenger when the hash of their salted id falls below `challenger_share`, so the
same user always meets the same model (sticky, deterministic across restarts and machines) and, over many
users, about that share meets the challenger; a request without a user id goes to the champion. Shadow:
the champion answers everyone and the challenger answers a copy, logged but never returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Mode = Literal["ab", "shadow", "champion_only"]
MODES: tuple[Mode, ...] = ("ab", "shadow", "champion_only")
CHAMPION, CHALLENGER = "champion", "challenger"
ROUTED = "auto"  # a request naming this model (or none) is routed by the mode


@dataclass(frozen=True)
class Route:
    answer: str  # role of the model whose answer is returned
    shadow: str | None = None  # role of the model that answers a logged copy, or None


def user_bucket(user_id: str, salt: str) -> float:
    """A user's fixed place in [0, 1): the first 8 bytes of sha256(salt:user_id) as a fraction."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(mode: Mode, user_id: str | None, challenger_share: float, salt: str) -> Route:
    """The route of a request that names no model."""
    if mode == "shadow":
        return Route(CHAMPION, shadow=CHALLENGER)
    if mode == "ab" and user_id is not None and user_bucket(user_id, salt) < challenger_share:
        return Route(CHALLENGER)
    return Route(CHAMPION)


def route_named(role: str, mode: Mode) -> Route:
    """The route of a request that names a model: that model answers; in shadow mode the challenger still
    answers a copy of what the champion is asked."""
    if mode == "shadow" and role == CHAMPION:
        return Route(CHAMPION, shadow=CHALLENGER)
    return Route(role)
