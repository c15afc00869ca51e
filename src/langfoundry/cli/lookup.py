"""`langfoundry lookup WORD`: the vocabulary index's entries for a word (exact, then prefix, then text matches).

Exit 0 with entries, 1 when the word has none, 2 when the index is missing (build it: dvc repro dictionary).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from langfoundry.core.config import PathsParams, load_params
from langfoundry.data.lookup import DictionaryIndex, Entry


def add_parser(commands) -> None:
    lookup = commands.add_parser(
        "lookup", help="a word's entries in the dictionary index (data/interim/dictionary.sqlite)",
        description="Look a word up in the train split's vocabulary index: exact headwords first, then headwords "
                    "that start with it, then headwords that contain it. Exit 1 when there is no entry, 2 when "
                    "the index is missing.")
    lookup.add_argument("word", help="a word or short phrase, in any language of the index")
    lookup.add_argument("--lang", help="only headwords in this language tag")
    lookup.add_argument("--limit", type=int, default=10, help="at most this many entries (default: 10)")
    lookup.add_argument("--index", type=Path, help="the index file (default: paths.dictionary in --params)")
    lookup.add_argument("--params", default="params.yaml")
    lookup.add_argument("--json", action="store_true", help="one JSON list of entries")
    lookup.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    lookup.set_defaults(func=run_lookup)


def describe(entry: Entry) -> str:
    pos = f" ({entry.pos})" if entry.pos else ""
    origins = ", ".join(entry.origins) + (", ..." if entry.count > len(entry.origins) else "")  # the first few
    line = (f"{entry.headword}{pos} → {entry.gloss}  [{entry.lang}>{entry.gloss_lang}, {entry.match}, "
            f"{entry.kinds} ×{entry.count}]\n    from {origins}")
    return line + (f"\n    e.g. {entry.example}" if entry.example else "")


def run_lookup(args: argparse.Namespace) -> int:
    index_path = args.index
    if index_path is None:
        index_path = load_params(args.params).paths.dictionary if Path(args.params).exists() else PathsParams().dictionary
    with DictionaryIndex(index_path) as index:
        entries = index.lookup(args.word, args.lang, max(args.limit, 1))
    if args.json:
        print(json.dumps([entry.as_dict() for entry in entries], ensure_ascii=False, indent=2))
    elif entries:
        print("\n".join(describe(entry) for entry in entries))
    else:
        print(f"no entry for {args.word}")
    return 0 if entries else 1
