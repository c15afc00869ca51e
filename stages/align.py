"""Stage align: documents that are not sentence-aligned (sources with media: documents) -> linked sentence
pairs in data/interim/media/align/<source>.jsonl, which ingest reads in the source's place; rejected links
(1-0, 0-1, low scores) -> reports/align/rejects.jsonl, with a summary for people in reports/align/summary.md.
metrics/align.json: links per kind and source, and the precision, recall and F1 of the aligner on perturbed
Banyumasan-Indonesian documents built from the dictionary."""

import shutil
import time

from langfoundry.core.config import Params, PathsParams, Source, load_sources, media_records
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import atomic_output
from langfoundry.core.timings import write_stage_metrics
from langfoundry.media.align import Dictionary
from langfoundry.media.alignment_eval import evaluate_alignment
from langfoundry.media.documents import align_source, dictionary_pairs, settings_of
from langfoundry.media.inputs import write_source_index

STAGE_FOLDER = "align"
CHECK_LANGS = ("jv-x-banyumas", "id")  # the check set is built from this pair's dictionary entries


def check_metrics(sources: list[Source], params: Params, root) -> dict:
    entries = dictionary_pairs(sources, *CHECK_LANGS, root)
    if not entries:
        print(f"align check: no {CHECK_LANGS[0]}-{CHECK_LANGS[1]} dictionary source to build the check documents from")
        return {}
    measured = evaluate_alignment(entries, settings_of(params.media.align), seed=params.seed,
                                  documents=params.media.align.check_documents, langs=CHECK_LANGS)
    measured["sentence_seconds"] = measured.pop("seconds_per_1000_sentences") / 1000
    print(f"align check: F1 {measured['f1']:.3f} (precision {measured['precision']:.3f}, recall {measured['recall']:.3f}) "
          f"on {measured['gold_links']} known links of {measured['documents']} perturbed documents")
    return measured


def summary(metrics: dict) -> str:
    """reports/align/summary.md: per source, the links by kind and the rejected ones by reason; the check's scores."""
    lines = ["# Sentence alignment", "", "| source | sentences | pivot sentences | links by kind | kept | rejected |",
             "|---|---|---|---|---|---|"]
    for source_id, counts in metrics["sources"].items():
        kinds = ", ".join(f"{kind}: {n}" for kind, n in counts["links"].items())
        rejected = ", ".join(f"{reason}: {n}" for reason, n in counts["rejected"].items()) or "none"
        lines.append(f"| {source_id} | {counts['source_sentences']} | {counts['target_sentences']} | {kinds} | "
                     f"{counts['accepted']} | {rejected} |")
    if not metrics["sources"]:
        lines.append("| (no source has media: documents) | | | | | |")
    check = metrics["check"]
    if check:
        lines += ["", f"Check: F1 {check['f1']:.3f}, precision {check['precision']:.3f}, recall {check['recall']:.3f} "
                      f"on {check['gold_links']} known links of {check['documents']} perturbed documents "
                      "(rejected links are in rejects.jsonl beside this file)."]
    return "\n".join(lines) + "\n"


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    all_sources = [source for source in load_sources(paths.sources).sources if not source.planned]
    documents = [source for source in all_sources if source.media == "documents"]
    root = paths.sources.parent.resolve()
    folder = paths.media / STAGE_FOLDER
    shutil.rmtree(folder, ignore_errors=True)  # a source removed from sources.yaml leaves no records behind
    folder.mkdir(parents=True)
    started = time.perf_counter()
    metrics: dict = {"sources": {}}
    if not documents:
        print("align: no source has media: documents; nothing to align (add one to sources.yaml, see README)")
    settings = settings_of(params.media.align)
    report = paths.reports / "align"
    shutil.rmtree(report, ignore_errors=True)
    with atomic_output(report / "rejects.jsonl") as partial, \
            partial.open("w", encoding="utf-8", newline="\n") as rejects:
        for source in documents:
            assert source.pivot_lang is not None
            pairs = dictionary_pairs(all_sources, source.lang, source.pivot_lang, root)
            dictionary = Dictionary.from_pairs(pairs) if pairs else None
            with atomic_output(root / media_records(source)) as records_partial, \
                    records_partial.open("w", encoding="utf-8", newline="\n") as records:
                counts = align_source(source, dictionary, settings, root, records, rejects)
            metrics["sources"][source.id] = counts.as_metrics()
            print(f"align: {source.id}: {counts.source_sentences} and {counts.target_sentences} sentences, "
                  f"{counts.accepted} pairs kept, {sum(counts.rejected.values())} links rejected "
                  f"({', '.join(f'{reason} {n}' for reason, n in counts.rejected.items()) or 'none'}); "
                  f"{len(pairs):,} dictionary anchors")
    write_source_index(folder, {source_id: counts["accepted"] for source_id, counts in metrics["sources"].items()})
    metrics["check"] = check_metrics(all_sources, params, root)
    (report / "summary.md").write_text(summary(metrics), encoding="utf-8")
    metrics["stage_seconds"] = round(time.perf_counter() - started, 2)
    write_stage_metrics(paths.metric("align"), metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main, "sentence alignment of document pairs, and the aligner's F1 on perturbed documents")
