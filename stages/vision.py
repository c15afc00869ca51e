"""Stage vision: image-and-text examples for a vision-language model -> data/vision/{train,val,test}.jsonl with
the frames they name in data/vision/images/, and metrics/vision.json. From the split table's OCR lines of video
frames that the ocr stage saved (media.video.keep_frames), on the same side of the split as their video.
With vision.enabled false (the default) it writes empty files; the text training never reads them."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.records import read_records
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics
from langfoundry.data.vision_examples import SPLITS, VisionResult, build_vision_examples, frame_index, write_vision_examples

FRAMES = "ocr/frames"  # under paths.media: where the ocr stage saves frames (stages/ocr.py FRAMES)
COLUMNS = ["id", "source", "kind", "lang", "text", "pivot_lang", "pivot_text", "origin", "group", "split"]


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    paths.vision.mkdir(parents=True, exist_ok=True)
    settings = params.vision
    if not settings.enabled:
        result = VisionResult({split: [] for split in SPLITS}, {})
        write_vision_examples(result, paths.vision)
        print("vision: vision.enabled is false; wrote empty data/vision files (set it, and media.video.keep_frames)")
        return write_metrics(paths.metric("vision"), {"enabled": False, **result.metrics()})
    frames = frame_index(paths.media / FRAMES)
    if not frames:
        print("vision: no saved frames; set media.video.keep_frames: true and rerun the ocr stage")
    rows = read_records(paths.split, made_by="split").select(COLUMNS).to_pylist()
    result = build_vision_examples(rows, frames, settings, params.format.language_names)
    written = write_vision_examples(result, paths.vision)
    metrics = write_metrics(paths.metric("vision"), {"enabled": True, **result.metrics()})
    print(f"vision: {len(result.images)} frame images, examples "
          + " ".join(f"{split}={count}" for split, count in written.items())
          + f" ({', '.join(f'{key} {value}' for key, value in sorted(result.counts.items()))})")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
