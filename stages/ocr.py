"""Stage ocr: the text of scans and PDFs (sources with media: scans) and of videos (media: video: sampled
frames and subtitles) -> data/interim/media/ocr/<source>.jsonl, which ingest reads in the source's place;
lines the engine is unsure of -> reports/ocr_review/queue.jsonl with a crop of each beside it;
metrics/ocr.json: lines kept and reviewed per source, frames sampled and kept per video source, and the
engine's character error rate per language on the rendered check set. Without such a source it says so
and writes empty outputs."""

import shutil
import time

from langfoundry.core.config import OcrParams, Params, PathsParams, Source, load_sources, media_records
from langfoundry.core.errors import UserError
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import atomic_output, ensure_parent
from langfoundry.core.timings import write_stage_metrics
from langfoundry.media.inputs import write_source_index
from langfoundry.media.ocr import OcrEngine, TesseractEngine, VisionEndpointEngine
from langfoundry.media.ocr_check import build_check_set, run_check
from langfoundry.media.scans import ocr_source
from langfoundry.media.video_text import ocr_video_source

STAGE_FOLDER = "ocr"
FRAMES = "frames"  # media.video.keep_frames: <source>/<frame>.png and <source>.jsonl (origin -> image)


def make_engine(settings: OcrParams) -> OcrEngine:
    if settings.engine == "vision":
        if not settings.vision_url or not settings.vision_model:
            raise UserError("params.yaml: media.ocr.engine is vision: set media.ocr.vision_url and media.ocr.vision_model")
        return VisionEndpointEngine(settings.vision_url, settings.vision_model)
    return TesseractEngine(default_dpi=settings.dpi)


def check_metrics(engine: OcrEngine, settings: OcrParams, seed: int) -> dict:
    """CER per language of the check set, with its size; the seconds per image apart (a timing)."""
    measured = run_check([engine], build_check_set(seed, settings.check_languages))[engine.name]
    for group, result in measured.items():
        worst = result.pop("worst")
        result["image_seconds"] = result.pop("seconds_per_image")
        misread = f"; the worst image read {worst['read'][:60]!r}" if result["errors"] else ""
        print(f"ocr check: {engine.name} {group}: CER {result['cer']:.2%} on {result['chars']:,} characters "
              f"({result['images']} images){misread}")
    return {engine.name: measured}


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    sources: list[Source] = [source for source in load_sources(paths.sources).sources
                             if source.media in ("scans", "video") and not source.planned]
    folder = paths.media / STAGE_FOLDER
    crops = paths.reports / "ocr_review"  # the queue and the crops of its lines, one folder for people to open
    review_path = crops / "queue.jsonl"
    shutil.rmtree(folder, ignore_errors=True)  # a source removed from sources.yaml leaves no records behind
    shutil.rmtree(crops, ignore_errors=True)
    folder.mkdir(parents=True)
    metrics: dict = {"sources": {}}
    if not sources:
        print("ocr: no source has media: scans or video; nothing to read (add one to sources.yaml, see README)")
        write_source_index(folder, {})
        ensure_parent(review_path).write_text("", encoding="utf-8")
        write_stage_metrics(paths.metric("ocr"), metrics)
        return metrics
    settings = params.media.ocr
    engine = make_engine(settings)
    root = paths.sources.parent.resolve()
    started = time.perf_counter()
    with atomic_output(review_path) as review_partial, review_partial.open("w", encoding="utf-8", newline="\n") as review:
        for source in sources:
            with atomic_output(root / media_records(source)) as partial, \
                    partial.open("w", encoding="utf-8", newline="\n") as records:
                if source.media == "video":
                    counts = ocr_video_source(source, engine, settings.min_confidence, params.media.video, root,
                                              records, review, folder / FRAMES if params.media.video.keep_frames else None)
                    read = (f"{counts.videos} video(s), {counts.sampled} frames sampled, {counts.kept_frames} kept "
                            f"({counts.dropped_duplicate} near-duplicates dropped), {counts.lines} lines: {counts.kept} "
                            f"kept, {counts.review} to review; {counts.subtitle_cues} subtitle cues")
                    rejected = counts.rejected
                else:
                    counts = ocr_source(source, engine, settings.min_confidence, settings.dpi, root, records, review, crops)
                    read = (f"{counts.pages} page(s) of {counts.files} file(s), {counts.lines} lines: {counts.kept} kept, "
                            f"{counts.review} to review")
                    rejected = counts.rejected_files
            metrics["sources"][source.id] = counts.as_metrics()
            print(f"ocr: {source.id}: {read}" + (f"; rejected: {', '.join(f'{reason} {n}' for reason, n in rejected.items())}"
                                                 if rejected else ""))
    write_source_index(folder, {source_id: counts["kept"] + counts.get("subtitle_cues", 0)
                         for source_id, counts in metrics["sources"].items()})
    metrics["check"] = check_metrics(engine, settings, params.seed)
    metrics["stage_seconds"] = round(time.perf_counter() - started, 2)
    write_stage_metrics(paths.metric("ocr"), metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main, "OCR of scans and PDFs into records, with a review queue and the engine's CER")
