"""Stage synthesize: variations of seed examples (synthesize.sources) per register, asked of an
OpenAI-compatible endpoint (synthesize.endpoint; `langfoundry serve` by default) -> data/interim/media/
synthesize/<source>.jsonl, which ingest reads as the source `<source>.synthetic`. Answers are cached by
request hash in data/synthetic_cache, so a rerun asks nothing. Each variation is pending until
`langfoundry review-data` accepts or rejects it (data/review/synthetic.jsonl). metrics/synthesize.json:
variations asked, returned, dropped per reason, review states, cache hits and misses. With
synthesize.enabled false it writes empty outputs and asks nothing."""

import json
import shutil

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_metrics
from langfoundry.data.synth_records import INDEX_FILE, STAGE_FOLDER
from langfoundry.data.synthesize import SourceCounts, run_synthesis

CACHE_README = ("Answers of synthesize.endpoint, one file per request (<sha256 of endpoint and request>.json),\n"
                "written by the synthesize stage so that a rerun asks nothing. Delete a file to ask again.\n")


def off_metrics() -> dict:
    return {"enabled": False, **SourceCounts().as_metrics(), "cache": {"hits": 0, "misses": 0},
            "decisions_unmatched": 0, "sources": {}}


def main(params: Params, paths: PathsParams | None = None, transport=None) -> dict:
    paths = paths or params.paths
    folder = paths.media / STAGE_FOLDER
    shutil.rmtree(folder, ignore_errors=True)  # a seed source dropped from synthesize.sources leaves nothing behind
    folder.mkdir(parents=True)
    paths.synthetic_cache.mkdir(parents=True, exist_ok=True)  # persists across runs (dvc.yaml: persist: true)
    readme = paths.synthetic_cache / "README.txt"
    if not readme.exists():  # so the folder is never empty: DVC warns of an empty output
        readme.write_text(CACHE_README, encoding="utf-8")
    written: dict[str, int] = {}
    if not params.synthesize.enabled:
        print("synthesize: off (synthesize.enabled: false in params.yaml); no variations written")
        metrics = off_metrics()
    else:
        result = run_synthesis(params, paths, load_sources(paths.sources).sources, paths.sources.parent, transport)
        metrics, written = result["metrics"], result["written"]
        dropped = ", ".join(f"{reason} {n}" for reason, n in metrics["dropped"].items() if n) or "none"
        review = metrics["review"]
        print(f"synthesize: {metrics['seeds']} seeds, {metrics['requested']} variations asked, {metrics['returned']} "
              f"returned, {metrics['kept']} kept (dropped: {dropped}); review: {review['accepted']} accepted, "
              f"{review['rejected']} rejected, {review['pending']} pending (langfoundry review-data); cache: "
              f"{metrics['cache']['hits']} hits, {metrics['cache']['misses']} asked")
    (folder / INDEX_FILE).write_text(json.dumps(written, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_metrics(paths.metric("synthesize"), metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main, "Synthetic variations of seed examples, per register, pending review")
