"""Errors that are the user's to fix, and the one-line way stages report them."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable


class UserError(Exception):
    """A problem in the user's files or parameters.

    The message says what is wrong, where (file, line or key) and how to fix it;
    stages print it as one line without a traceback.
    """


def stage_entry(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Run a stage's main: one clear line and exit 1 on a UserError, traceback only with --verbose."""
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    args = parser.parse_args()
    try:
        main(args)
    except UserError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
