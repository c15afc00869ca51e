"""The `langfoundry` command: checks that run without the pipeline (validate, check), and the servers
around it (serve, review), which parse their own options."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from langfoundry.cli.arguments import share_argument
from langfoundry.cli.check import run_check
from langfoundry.cli.lookup import add_parser as add_lookup
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import validate_project
from langfoundry.core.records import KINDS
from langfoundry.data.readers import FORMAT_BY_SUFFIX

FORMATS = sorted(set(FORMAT_BY_SUFFIX.values()))
# command -> (module with main(argv), help); imported only when called, so validate and check stay light
SERVERS = {
    "serve": ("langfoundry.serve.cli", "OpenAI-compatible server of the champion and challenger models (A/B, shadow)"),
    "review": ("langfoundry.serve.review", "blind comparison of two models' answers in the browser -> metrics/preference.json"),
    "review-data": ("langfoundry.cli.review_data", "accept or reject synthetic variations -> data/review/synthetic.jsonl"),
    "data-stats": ("langfoundry.cli.data_stats", "examples per task and language, lengths, samples -> reports/data_stats.md"),
    "export-data": ("langfoundry.cli.export_data", "text or vision examples as OpenAI or Vertex AI tuning JSONL, validated"),
}


def validate(args: argparse.Namespace) -> int:
    """Validate params.yaml, sources.yaml and their language tags; print a one-line summary."""
    print(validate_project(args.params, args.sources, args.inventory))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="validate params.yaml and sources.yaml")
    check.add_argument("--params", default="params.yaml")
    check.add_argument("--sources", help="default: paths.sources in params.yaml")
    check.add_argument("--inventory", help="default: paths.inventory in params.yaml")
    check.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    check.set_defaults(func=validate)

    one_file = commands.add_parser(
        "check", help="read one file the way ingest would and say whether it is usable",
        description="Read one file (or folder) the way ingest would, without running the pipeline. Exit 0 when "
                    "it is usable, 1 when too many rows are rejected, 2 when it cannot be read at all.")
    one_file.add_argument("file", help="the file (or folder of files) to check")
    one_file.add_argument("--kind", required=True, choices=KINDS)
    one_file.add_argument("--lang", required=True, help="language tag of the text (from the language inventory)")
    one_file.add_argument("--pivot-lang", help="language tag of the pivot side (glosses, translations)")
    one_file.add_argument("--pivot-file", help="line-aligned pivot side of parallel text")
    one_file.add_argument("--format", choices=FORMATS, help="file format (default: from the file name)")
    one_file.add_argument("--map", action="append", metavar="COLUMN=FIELD",
                          help="read a record field from a column of another name (repeatable)")
    one_file.add_argument("--encoding", help="text encoding (default: detected)")
    one_file.add_argument("--sheet", help="xlsx: the sheet to read (default: every sheet)")
    one_file.add_argument("--records-key", help="JSON: the top-level key that holds the records")
    one_file.add_argument("--max-reject-rate", type=share_argument, metavar="RATE",
                          help="largest share of rejected rows still usable (default: quality.max_reject_rate "
                               "in params.yaml, else 0.5)")
    one_file.add_argument("--params", default="params.yaml")
    one_file.add_argument("--inventory", default="data/inventory/languages.csv")
    one_file.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    one_file.set_defaults(func=run_check)
    add_lookup(commands)
    for name, (_, help_text) in SERVERS.items():
        commands.add_parser(name, help=f"{help_text} (langfoundry {name} --help)", add_help=False)
    return parser




def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in SERVERS:
        return importlib.import_module(SERVERS[argv[0]][0]).main(argv[1:]) or 0
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
