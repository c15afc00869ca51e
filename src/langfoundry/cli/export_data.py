"""`langfoundry export-data --format openai|vertex`: the processed chat examples in the JSONL a hosted fine-tuning
service accepts (OpenAI's chat fine-tuning format, Vertex AI's Gemini tuning format), every line validated
against a JSON Schema of the documented format; `--check FILE` validates a file already written.

Exit 0 when every line is valid, 2 with one line naming file and line of the first that is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langfoundry.cli.arguments import with_one_line_errors
from langfoundry.core.config import PathsParams, load_params
from langfoundry.data.hosted_formats import CONVERTERS, export, validate_file

SPLITS = ("train", "val", "test")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry export-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(CONVERTERS), dest="fmt",
                        help="openai: chat fine-tuning JSONL; vertex: Gemini supervised tuning JSONL")
    parser.add_argument("--split", choices=SPLITS, default="train", help="which processed split (default: train)")
    parser.add_argument("--out", type=Path, help="the file to write (default: data/exports/<format>/<split>.jsonl)")
    parser.add_argument("--check", type=Path, metavar="FILE", help="only validate FILE (already in the format)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.check is not None:
        count = validate_file(args.fmt, args.check)
        print(f"{args.check}: {count} lines, all valid {args.fmt} examples")
        return 0
    paths = load_params(args.params).paths if Path(args.params).exists() else PathsParams()
    out = args.out or Path("data/exports") / args.fmt / f"{args.split}.jsonl"
    count = export(args.fmt, paths.split_file(args.split), out)
    print(f"{out}: {count} {args.fmt} examples from {paths.split_file(args.split)}, every line valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    return with_one_line_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
