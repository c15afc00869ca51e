"""`langfoundry export-data --format openai|vertex [--set text|vision]`: training examples in the JSONL a hosted
fine-tuning service accepts (OpenAI's chat fine-tuning format, Vertex AI's Gemini tuning format), every line validated
against a JSON Schema of the documented format; `--check FILE` validates a file already written.

--set text (the default): the processed chat examples, data/processed/<split>.jsonl.
--set vision: the vision stage's image-and-text examples, data/vision/<split>.jsonl, each image it names (under
data/vision/images/) inlined as base64 (OpenAI image_url data URLs, Vertex inlineData) and checked against the
service's documented limits (type, size per image, images per example).

Exit 0 when every line is valid, 2 with one line naming file and line (and image) of the first that is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langfoundry.cli.arguments import with_one_line_errors
from langfoundry.core.config import PathsParams, load_params
from langfoundry.data.hosted_formats import CONVERTERS, export, validate_file
from langfoundry.data.hosted_vision import DETAILS, export_vision, validate_vision_file

SPLITS = ("train", "val", "test")
SETS = ("text", "vision")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry export-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(CONVERTERS), dest="fmt",
                        help="openai: chat fine-tuning JSONL; vertex: Gemini supervised tuning JSONL")
    parser.add_argument("--set", choices=SETS, default="text", dest="dataset",
                        help="text: data/processed chat examples (default); vision: data/vision image-and-text examples")
    parser.add_argument("--split", choices=SPLITS, default="train", help="which split (default: train)")
    parser.add_argument("--out", type=Path,
                        help="the file to write (default: data/exports/<format>/<split>.jsonl, "
                             "data/exports/<format>/vision/<split>.jsonl for --set vision)")
    parser.add_argument("--detail", choices=DETAILS,
                        help="--format openai --set vision: the image_url detail to ask for (default: left out, i.e. auto)")
    parser.add_argument("--check", type=Path, metavar="FILE", help="only validate FILE (already in the format)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    return parser


def run(args: argparse.Namespace) -> int:
    vision = args.dataset == "vision"
    if args.detail is not None and not (vision and args.fmt == "openai"):
        build_parser().error("--detail goes with --format openai --set vision")
    if args.check is not None:
        count = (validate_vision_file if vision else validate_file)(args.fmt, args.check)
        print(f"{args.check}: {count} lines, all valid {args.fmt}{' vision' if vision else ''} examples")
        return 0
    paths = load_params(args.params).paths if Path(args.params).exists() else PathsParams()
    if vision:
        source = paths.vision / f"{args.split}.jsonl"
        out = args.out or Path("data/exports") / args.fmt / "vision" / f"{args.split}.jsonl"
        count, images = export_vision(args.fmt, source, out, args.detail)
        print(f"{out}: {count} {args.fmt} vision examples ({images} images inlined) from {source}, every line valid")
        return 0
    out = args.out or Path("data/exports") / args.fmt / f"{args.split}.jsonl"
    count = export(args.fmt, paths.split_file(args.split), out)
    print(f"{out}: {count} {args.fmt} examples from {paths.split_file(args.split)}, every line valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    return with_one_line_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
