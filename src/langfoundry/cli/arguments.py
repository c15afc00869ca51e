"""Option types and the error handling shared by the commands (langfoundry check, serve, data-stats ...)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from langfoundry.core.errors import UserError


def with_one_line_errors(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """run(args); a UserError becomes one line on stderr and exit 2 (--verbose adds the traceback)."""
    try:
        return run(args)
    except UserError as err:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2


def share_argument(text: str) -> float:
    """argparse type of an option that is a share between 0 and 1 (a reject rate, a traffic split)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value
