"""Sentence alignment on the perturbed Banyumasan-Indonesian test set: F1 of the links with dictionary anchors and
with lengths alone, at several dictionary coverages, and the time per 1,000 sentences.

    python benchmarks/bench_align.py [--documents 10] [--pairs 100] [--seed 13] [--coverage 1.0 0.8 0.5 0.3]

Coverage is the share of source words whose translation is their dictionary gloss (the rest are translated by
another entry's gloss, as a free translation would); 0.8 is the set metrics/align.json reports.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json

from langfoundry.media.alignment_eval import evaluate_alignment

CORPUS = importlib.resources.files("banyumasan_corpus") / "data/corpus.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=100, help="sentence pairs per document before perturbation")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--coverage", type=float, nargs="+", default=[1.0, 0.8, 0.5, 0.3])
    args = parser.parse_args()
    entries = [(entry["ngapak"], entry["indonesia"]) for entry in json.loads(CORPUS.read_text(encoding="utf-8"))["entries"]]
    print(f"{args.documents} documents of {args.pairs} perturbed sentence pairs each, seed {args.seed}")
    print("| coverage | method | precision | recall | F1 | accepted precision | 1-0 recall | 2-1 recall | s per 1,000 sent. |")
    print("|---|---|---|---|---|---|---|---|---|")
    for coverage in args.coverage:
        for anchors in (True, False):
            metrics = evaluate_alignment(entries, seed=args.seed, documents=args.documents, pairs_per_document=args.pairs,
                                         coverage=coverage, use_anchors=anchors)
            kinds = metrics["by_kind"]
            print(f"| {coverage:.1f} | {'anchors' if anchors else 'length only'} | {metrics['precision']:.3f} | "
                  f"{metrics['recall']:.3f} | {metrics['f1']:.3f} | {metrics['accepted_precision']:.3f} | "
                  f"{kinds.get('1-0', {}).get('recall', 0):.2f} | {kinds.get('2-1', {}).get('recall', 0):.2f} | "
                  f"{metrics['seconds_per_1000_sentences']:.2f} |", flush=True)
    long = evaluate_alignment(entries, seed=args.seed, documents=1, pairs_per_document=1000, coverage=0.8)
    print(f"one document of {long['sentences']:,} sentences: F1 {long['f1']:.3f}, "
          f"{long['seconds_per_1000_sentences']:.2f} s per 1,000 sentences")


if __name__ == "__main__":
    main()
