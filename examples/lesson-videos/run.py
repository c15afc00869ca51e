"""Walkthrough: a community's lesson videos of a board written in N'Ko become four training sets (translation
both ways, conversations, image-and-text examples for a vision-language model, vocabulary), split so that each
video stays on one side, a small model trained on the text sets, and exports for hosted fine-tuning services.

    python examples/lesson-videos/run.py [--work DIR]      (make example-lesson-videos)

Every command runs in DIR (default examples/lesson-videos/work), a copy of the repository with this folder's
sources.yaml and overrides.yaml laid over it; `rm -r DIR` undoes it. Offline: the hosted vision model that
would read N'Ko (media.ocr.engine: vision) is replaced by a local stand-in server (stand_in.py) on 127.0.0.1
that looks each frame up in a table build_data.py wrote; it does not read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parent
sys.path[:0] = [str(EXAMPLE.parent)]  # examples/workspace.py

from workspace import Workspace, set_params, sibling  # noqa: E402

build_data = sibling(EXAMPLE, "build_data")
stand_in = sibling(EXAMPLE, "stand_in")


def section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def read_json(ws: Workspace, name: str) -> dict:
    return json.loads(ws.path(name).read_text(encoding="utf-8"))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split_by_video(ws: Workspace) -> dict[str, dict[str, int]]:
    """Video file -> split -> records, from the split table (frames, cues and the typed-up dialogues)."""
    import pyarrow.parquet as pq

    table = pq.read_table(ws.path("data/interim/split.parquet"), columns=["source", "origin", "meta", "split"]).to_pylist()
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in table:
        meta = json.loads(row["meta"] or "{}")
        video = meta.get("document") or (meta.get("group") or "").rsplit(":", 1)[-1] or None
        if video:
            out[video.removeprefix("video:")][row["split"]] += 1
    return {video: dict(splits) for video, splits in sorted(out.items())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="the walkthrough's project folder (default: examples/lesson-videos/work)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    overrides = yaml.safe_load((EXAMPLE / "overrides.yaml").read_text(encoding="utf-8"))

    section("1. A copy of the project with the community's sources.yaml and a small model")
    ws = Workspace.create(EXAMPLE, root=args.work, overrides=overrides)
    print(f"project: {ws.root}")

    section("2. Their lesson videos, built offline (what they would copy into data/raw/lessons/)")
    built = build_data.build(ws.root)
    for kind, files in built.items():
        print(f"{kind}: {', '.join(path.relative_to(ws.root).as_posix() for path in files)}")

    calls: list[dict] = []
    with stand_in.serving(ws.path(build_data.TABLE.as_posix()), calls) as url:
        section("3. The vision engine: params.yaml names the hosted model; this run points it at the local stand-in")
        configured = {key: overrides[key] for key in ("media.ocr.engine", "media.ocr.vision_url", "media.ocr.vision_model")}
        print(f"configured: {configured}")
        set_params(ws.path("params.yaml"), {"media.ocr.vision_url": url})
        print(f"this run:   media.ocr.vision_url = {url} (stand_in.py: looks frames up in {build_data.TABLE}, does not read)")
        ws.commit("the community's lesson videos")
        ws.run(["langfoundry", "validate"])

        section("4. The pipeline: frames at 0.2 fps, near-duplicates dropped, OCR, ingest ... split, format, vision, base, train")
        ws.run(["dvc", "repro", "train", "vision"])
    ocr = read_json(ws, "metrics/ocr.json")
    print(f"\nthe stand-in answered {len(calls)} request(s) for model {calls[0]['model'] if calls else None!r}")

    section("5. Every video on one side of the 90/10 split (records per video and split)")
    per_video = split_by_video(ws)
    for video, splits in per_video.items():
        print(f"  {video}: {splits}")

    section("6. The training sets")
    fmt = read_json(ws, "metrics/format.json")
    print("text (data/processed, what train reads): " + ", ".join(
        f"{key.removeprefix('total.by_task.')} {value}" for key, value in fmt.items() if key.startswith("total.by_task.")))
    print("  by split: " + ", ".join(f"{split} {fmt.get(f'{split}.examples', 0)}" for split in ("train", "val", "test")))
    vision = read_json(ws, "metrics/vision.json")
    print(f"vision (data/vision, for a vision-language model): {vision}")
    samples: dict[str, dict] = {}
    for example in jsonl(ws.path("data/processed/train.jsonl")) + jsonl(ws.path("data/processed/test.jsonl")):
        samples.setdefault(example["task"], example)
    for task, example in sorted(samples.items()):
        print(f"  {task}: {json.dumps(example['messages'], ensure_ascii=False)}")
    vision_train = jsonl(ws.path("data/vision/train.jsonl"))
    if vision_train:
        print(f"  vision: {json.dumps(vision_train[0]['messages'], ensure_ascii=False)}")

    section("7. Training on the text sets (metrics/train.json; `dvc repro` goes on to evaluate, release, export)")
    train = read_json(ws, "metrics/train.json")
    print(json.dumps({key: value for key, value in train.items() if "loss" in key or "examples" in key or "steps" in key}))

    section("8. Exports for hosted fine-tuning (OpenAI chat format, Vertex AI Gemini tuning format), validated")
    exports: dict[str, int] = {}
    for fmt_name in ("openai", "vertex"):
        for split in ("train", "test"):
            out = f"data/exports/{fmt_name}/{split}.jsonl"
            ws.run(["langfoundry", "export-data", "--format", fmt_name, "--split", split, "--out", out])
            ws.run(["langfoundry", "export-data", "--format", fmt_name, "--check", out])
            exports[f"{fmt_name}.{split}"] = len(jsonl(ws.path(out)))
    print(f"\n{ws.path('data/exports/vertex/train.jsonl').read_text(encoding='utf-8').splitlines()[0]}")

    print(f"\nwalkthrough done in {time.monotonic() - started:.0f} s; everything is in {ws.root}")
    return {"root": ws.root, "ocr": ocr, "per_video": per_video, "format": fmt, "vision": vision, "train": train,
            "exports": exports, "calls": calls, "built": built}


if __name__ == "__main__":
    main()
