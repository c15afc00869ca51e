"""The `langfoundry` command: checks that run without the pipeline."""

from __future__ import annotations

import argparse
import sys
import traceback

from .config import load_params, load_sources
from .errors import UserError
from .inventory import load_inventory, require_languages


def validate(args: argparse.Namespace) -> int:
    """Validate params.yaml, sources.yaml and their language tags; print a one-line summary."""
    load_params(args.params)
    sources = load_sources(args.sources).sources
    inventory = load_inventory(args.inventory)
    for source in sources:
        require_languages({source.lang, source.pivot_lang or ""}, inventory, f"{args.sources}: source {source.id!r}")
    print(f"ok: {args.params} valid; {len(sources)} source(s) in {args.sources}, every language in {args.inventory}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="validate params.yaml and sources.yaml")
    check.add_argument("--params", default="params.yaml")
    check.add_argument("--sources", default="sources.yaml")
    check.add_argument("--inventory", default="data/inventory/languages.csv")
    check.set_defaults(func=validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
