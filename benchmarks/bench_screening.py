"""What blocklist screening costs the clean stage: clean_files on a generated corpus without lists and with
a list of N terms per language (a tenth of them two words long), on one worker and on all cores.

Usage:
    .venv/bin/python benchmarks/bench_screening.py                  # 200,000 pairs, 1,000 terms per language
    .venv/bin/python benchmarks/bench_screening.py --rows 20000 --terms 100 --workers 2

The corpus is seeded syllable words in jv (text) and id (pivot_text); about 1% of rows carry a listed term,
so both the no-hit path (most rows) and the hit path run. Figures are wall seconds of clean_files, best of
--repeat runs, and the rows the lists rejected.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from langfoundry.clean.driver import clean_files
from langfoundry.clean.screening import load_blocklists
from langfoundry.core.config import CleanParams
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import write_parquet

SCRIPTS = {"jv": "Latn", "id": "Latn"}
SYLLABLES = [c + v for c in "bcdgjklmnprstwy" for v in "aiueo"]


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))


def corpus(rows: int, terms: list[str], rng: random.Random) -> list[dict]:
    out = []
    for i in range(rows):
        text = [word(rng) for _ in range(rng.randint(3, 14))]
        pivot = [word(rng) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.01:
            text.insert(rng.randrange(len(text)), rng.choice(terms))
        if i % 5 == 0:
            text[0] = text[0].capitalize() + ","
        out.append(make_record(source="bench", kind="parallel", lang="jv", text=" ".join(text), pivot_lang="id",
                               pivot_text=" ".join(pivot) + ".", origin=f"bench.txt:{i + 1}"))
    return out


def timed(folder: Path, name: str, blocklists, workers: int, repeat: int) -> tuple[float, int]:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = clean_files(folder / "in.parquet", folder / f"{name}.parquet", folder / f"{name}_rejects.parquet",
                              CleanParams(), SCRIPTS, workers=workers, blocklists=blocklists)
        best = min(best, time.perf_counter() - start)
    return best, sum(n for key, n in outcome.counts.items() if key[:2] == ("dropped", "blocklist"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--terms", type=int, default=1000, help="terms per language list")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, os.cpu_count() or 1])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(7)
    terms: set[str] = set()
    while len(terms) < args.terms:  # made-up words of 5+ syllables, rare in the corpus by chance
        term = "".join(rng.choice(SYLLABLES) for _ in range(5))
        terms.add(term if len(terms) % 10 else f"{term} {word(rng)}")
    terms_list = sorted(terms)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_parquet(records_table(corpus(args.rows, terms_list, rng)), folder / "in.parquet", sort_by=("id", "origin"))
        (folder / "screening").mkdir()
        for lang in SCRIPTS:
            (folder / "screening" / f"{lang}.txt").write_text("\n".join(terms_list) + "\n", encoding="utf-8")
        start = time.perf_counter()
        blocklists = load_blocklists(folder / "screening", SCRIPTS)
        print(f"{args.rows:,} rows; lists: {args.terms:,} terms x {len(SCRIPTS)} languages, "
              f"loaded in {time.perf_counter() - start:.3f} s; python {sys.version.split()[0]}")
        for workers in args.workers:
            plain, _ = timed(folder, "plain", None, workers, args.repeat)
            screened, rejected = timed(folder, "screened", blocklists, workers, args.repeat)
            print(f"workers {workers:>2}: without lists {plain:6.2f} s ({args.rows / plain:,.0f} rows/s), "
                  f"with lists {screened:6.2f} s ({args.rows / screened:,.0f} rows/s), "
                  f"{100 * (screened / plain - 1):+.1f}%, {rejected:,} rows rejected by the lists")


if __name__ == "__main__":
    main()
