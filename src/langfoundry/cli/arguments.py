"""Option types shared by the commands (langfoundry check, langfoundry serve)."""

from __future__ import annotations

import argparse


def share_argument(text: str) -> float:
    """argparse type of an option that is a share between 0 and 1 (a reject rate, a traffic split)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value
