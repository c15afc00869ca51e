"""`langfoundry review-data`: accept or reject the synthetic variations the synthesize stage wrote.

Decisions go to paths.synthetic_review (data/review/synthetic.jsonl, in git), one line per variation id;
the synthesize stage reads them into each variation's meta "review" the next time it runs (from its
cache: no request is repeated), and format trains only on accepted variations unless
synthesize.require_review is false.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from langfoundry.cli.arguments import with_one_line_errors
from langfoundry.core.config import load_params
from langfoundry.core.errors import UserError
from langfoundry.data.synth_records import REVIEW_STATES, STAGE_FOLDER, load_decisions, read_variations, save_decisions

MIN_PREFIX = 4  # an id may be shortened to a unique prefix of at least this many characters
APPLY_HINT = "run `dvc repro synthesize` (or the whole pipeline) to apply the decisions"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry review-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    actions = parser.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="the variations in one review state (default: pending), with their seeds")
    listing.add_argument("--state", choices=[*REVIEW_STATES, "all"], default="pending")
    listing.add_argument("--limit", type=int, default=50, help="show at most this many (0: all)")
    actions.add_parser("counts", help="variations accepted, rejected and pending")
    for action, verb in (("accept", "accepted"), ("reject", "rejected")):
        marking = actions.add_parser(action, help=f"mark variations {verb}, by id (or a unique prefix) or --all pending")
        marking.add_argument("ids", nargs="*", metavar="ID")
        marking.add_argument("--all", action="store_true", help="every pending variation")
        marking.set_defaults(decision=verb)
    return parser


def _state(variation: dict, decisions: dict[str, dict]) -> str:
    return decisions.get(variation["meta"]["variation"], {}).get("decision", "pending")


def _counts_line(variations: list[dict], decisions: dict[str, dict]) -> str:
    counts = Counter(_state(variation, decisions) for variation in variations)
    return (f"{len(variations)} synthetic variations: {counts['accepted']} accepted, {counts['rejected']} rejected, "
            f"{counts['pending']} pending")


def _resolve(wanted: list[str], variations: list[dict]) -> list[dict]:
    ids = {variation["meta"]["variation"]: variation for variation in variations}
    chosen = []
    for key in wanted:
        matches = [vid for vid in ids if vid == key] or (
            [vid for vid in ids if vid.startswith(key)] if len(key) >= MIN_PREFIX else [])
        if len(matches) != 1:
            problem = "matches several variations" if matches else "is no variation's id"
            raise UserError(f"review-data: {key!r} {problem}; `langfoundry review-data list --state all` shows the ids")
        chosen.append(ids[matches[0]])
    return chosen


def _show(variation: dict, state: str) -> str:
    meta = variation["meta"]
    return (f"{meta['variation']}  {state:8}  {meta['seed_source']} {meta['register']}\n"
            f"    seed:      {variation.get('seed_text', '')}\n    variation: {variation.get('variation_text', '')}")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    paths = params.paths
    folder = paths.media / STAGE_FOLDER
    variations = read_variations(folder)
    decisions = load_decisions(paths.synthetic_review)
    if not variations:
        print(f"no synthetic variations in {folder}; set synthesize.enabled: true in {args.params} and run "
              f"`dvc repro synthesize`")
        return 0
    action = args.action or "list"
    if action == "counts":
        print(_counts_line(variations, decisions))
        return 0
    if action == "list":
        shown = [variation for variation in variations
                 if args.state == "all" or _state(variation, decisions) == args.state]
        for variation in shown[:args.limit or None]:
            print(_show(variation, _state(variation, decisions)))
        if args.limit and len(shown) > args.limit:
            print(f"... and {len(shown) - args.limit} more (--limit 0 shows all)")
        print(_counts_line(variations, decisions))
        return 0
    if bool(args.ids) == args.all:
        raise UserError(f"review-data {action}: give variation ids or --all (every pending variation), not both or neither")
    chosen = ([variation for variation in variations if _state(variation, decisions) == "pending"] if args.all
              else _resolve(args.ids, variations))
    for variation in chosen:
        vid = variation["meta"]["variation"]
        decisions[vid] = {"id": vid, "decision": args.decision, "text": variation.get("variation_text", "")}
    save_decisions(Path(paths.synthetic_review), decisions)
    print(f"{len(chosen)} marked {args.decision} in {paths.synthetic_review}; {_counts_line(variations, decisions)}; "
          f"{APPLY_HINT}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return with_one_line_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
