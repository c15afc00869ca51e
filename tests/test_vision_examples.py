"""Image-and-text examples from the OCR lines of saved video frames (data/vision_examples.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from langfoundry.core.vision_config import VisionParams
from langfoundry.data.split import group_key
from langfoundry.data.vision_examples import (
    build_vision_examples,
    check_vision_example,
    frame_index,
    frame_of,
    write_vision_examples,
)

FRAME = "data/raw/lessons/lesson-01.mp4#t=00:00:10.000"


def record(line: int, text: str, pivot: str | None, split: str = "train", frame: str = FRAME) -> dict:
    return {"id": f"r{line}", "source": "boards", "kind": "parallel", "lang": "nqo", "text": text,
            "pivot_lang": "en" if pivot else None, "pivot_text": pivot, "origin": f"{frame}&line={line}",
            "group": "doc:boards:video:lesson-01.mp4", "split": split}


@pytest.fixture
def frames(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "frames"
    (folder / "boards").mkdir(parents=True)
    Image.new("RGB", (64, 36), "green").save(folder / "boards" / "f.png")
    (folder / "boards.jsonl").write_text(json.dumps({"origin": FRAME, "image": "boards/f.png"}) + "\n", encoding="utf-8")
    return frame_index(folder)


def test_frame_of_takes_frame_lines_only() -> None:
    assert frame_of(f"{FRAME}&line=2") == (FRAME, 2)
    assert frame_of("lesson.mp4#t=00:00:01.000-00:00:02.500") is None  # a subtitle cue
    assert frame_of("scan.pdf#page=1&line=3") is None


def test_one_example_per_frame_and_task_with_an_image_part(frames: dict[str, Path], tmp_path: Path) -> None:
    rows = [record(2, "ߌ ߣߌ ߛߐߜߐߡߊ", "good morning"), record(1, "ߌ ߣߌ ߗߋ", "hello"),
            {**record(1, "x", None), "origin": "lesson.mp4#t=00:00:01.000-00:00:02.500"}]
    result = build_vision_examples(rows, frames, VisionParams(enabled=True), {"nqo": "N'Ko", "en": "English"})
    train = result.examples["train"]
    assert [example["task"] for example in sorted(train, key=lambda e: e["task"])] == ["transcribe", "translate"]
    by_task = {example["task"]: example for example in train}
    user, answer = by_task["transcribe"]["messages"]
    assert user["content"][0]["type"] == "image" and user["content"][0]["image"].startswith("images/")
    assert user["content"][1]["text"] == "Transcribe the N'Ko text written on this board."
    assert answer["content"][0]["text"] == "ߌ ߣߌ ߗߋ\nߌ ߣߌ ߛߐߜߐߡߊ"  # line order, not row order
    assert by_task["translate"]["messages"][1]["content"][0]["text"] == "hello\ngood morning"
    assert result.counts["skipped.not_a_frame_line"] == 1
    out = tmp_path / "vision"
    assert write_vision_examples(result, out) == {"train": 2, "val": 0, "test": 0}
    for example in map(json.loads, (out / "train.jsonl").read_text(encoding="utf-8").splitlines()):
        check_vision_example(example, out)


def test_a_frame_without_pivots_gives_transcription_only(frames: dict[str, Path]) -> None:
    result = build_vision_examples([record(1, "ߌ ߣߌ ߗߋ", None)], frames, VisionParams(enabled=True), {})
    assert [example["task"] for example in result.examples["train"]] == ["transcribe"]
    assert result.counts["skipped.translate.no_pivot"] == 1


def test_lines_of_one_frame_on_two_sides_are_refused(frames: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="more than one split group"):
        build_vision_examples([record(1, "a", None), record(2, "b", None, split="test")], frames, VisionParams(), {})


def test_check_vision_example_wants_an_image_then_text() -> None:
    with pytest.raises(ValueError, match="image part"):
        check_vision_example({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]},
                                           {"role": "assistant", "content": [{"type": "text", "text": "y"}]}]})


def test_dictionary_entries_read_off_a_video_stay_with_the_video() -> None:
    meta = json.dumps({"document": "video:words-01.mp4"})
    assert group_key("dictionary", "vocab", "ߖߌ", meta) == "doc:vocab:video:words-01.mp4"
    assert group_key("dictionary", "vocab", "ߖߌ", json.dumps({"document": "kamus.pdf"})).startswith("text:")
