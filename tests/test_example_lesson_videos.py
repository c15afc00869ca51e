"""The lesson-videos walkthrough end to end (examples/lesson-videos/run.py), in a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from langfoundry.data.hosted_formats import validate_file
from langfoundry.data.vision_examples import check_vision_example

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lesson-videos"


@pytest.mark.slow
def test_lesson_videos_walkthrough(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("lesson_videos_run", EXAMPLE / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    result = module.main(["--work", str(tmp_path / "work")])
    root = result["root"]

    ocr = result["ocr"]  # metrics/ocr.json: flat keys
    boards = "sources.nko-lesson-boards."
    assert (ocr[boards + "sampled_frames"], ocr[boards + "kept_frames"], ocr[boards + "dropped_duplicate_frames"]) \
        == (18, 12, 6), "six boards, three frames each at 0.2 fps, two of them the same board"
    assert ocr["sources.nko-dialogue-lessons.subtitle_cues"] == 4
    assert result["calls"] and all(call["lines"] > 0 for call in result["calls"])  # every frame through the vision engine
    ocr_rows = [json.loads(line) for line in (root / "data/interim/media/ocr/nko-lesson-boards.jsonl").read_text().splitlines()]
    assert {row["engine"] for row in ocr_rows} == {"vision"}

    tasks = {key.removeprefix("total.by_task."): value for key, value in result["format"].items()
             if key.startswith("total.by_task.")}
    for task in ("translate_to_pivot", "translate_from_pivot", "conversation", "vocabulary"):
        assert tasks.get(task, 0) > 0, task
    vision = [json.loads(line) for split in ("train", "val", "test")
              for line in (root / "data/vision" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert vision and {example["task"] for example in vision} == {"transcribe", "translate"}
    for example in vision:
        check_vision_example(example, root / "data/vision")

    assert all(len(splits) == 1 for splits in result["per_video"].values()), result["per_video"]
    assert {"train", "test"} <= {split for splits in result["per_video"].values() for split in splits}

    assert any("loss" in key for key in result["train"]), result["train"]  # training ran on the text sets
    assert (root / "models/adapter").is_dir()
    for name, count in result["exports"].items():
        fmt, split = name.split(".")
        assert count > 0 and validate_file(fmt, root / "data/exports" / fmt / f"{split}.jsonl") == count
