"""Image-and-text examples for a vision-language model, from OCR records read off video frames.

The ocr stage, with media.video.keep_frames, saves every kept frame as PNG beside an index of
{"origin": "lesson.mp4#t=00:00:10.000", "image": "<source>/<name>.png"} (media/video_text.keep_frame). Each
record of the split table whose origin is such a frame plus "&line=N" belongs to that frame; the lines of a
frame that passed clean and dedup, in line order, make its answers:

- transcribe: the frame and "Transcribe the ... text on this board." -> the lines as read;
- translate: the frame and "Translate ... into <pivot>." -> the lines' pivot sides (frames whose every kept
  line has one).

An example is the chat `messages` format with an image part, as Hugging Face chat templates and TRL's
vision-language SFT read it:

    {"messages": [{"role": "user", "content": [{"type": "image", "image": "images/<name>.png"},
                                               {"type": "text", "text": "<prompt>"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "<answer>"}]}],
     "images": ["images/<name>.png"], "task": ..., "split": ..., "group": ..., ...}

Image paths are relative to the JSONL's folder, where the images are copied, so the folder travels whole.
A frame's records share its video's split group, so an image never sits on both sides of the split.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langfoundry.core.vision_config import VisionParams

SPLITS = ("train", "val", "test")
IMAGES = "images"  # the folder beside {train,val,test}.jsonl that holds the frames the examples name
_LINE = re.compile(r"^(?P<frame>.+#t=[0-9:.]+)&line=(?P<line>[0-9]+)$")  # a frame's line, not a subtitle span


@dataclass
class VisionResult:
    examples: dict[str, list[dict[str, Any]]]  # split -> examples, sorted by id
    images: dict[str, Path]  # name under images/ -> the saved frame it is copied from
    counts: Counter = field(default_factory=Counter)  # task and skip reasons -> examples or records

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"{split}.examples": len(rows) for split, rows in self.examples.items()}
        out["images"] = len(self.images)
        out.update({key: value for key, value in sorted(self.counts.items())})
        return out


def frame_index(folder: Path) -> dict[str, Path]:
    """Frame origin -> its saved image, from every <source>.jsonl index in the frames folder (none: empty)."""
    index: dict[str, Path] = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                index[entry["origin"]] = folder / entry["image"]
    return index


def frame_of(origin: str) -> tuple[str, int] | None:
    """("lesson.mp4#t=00:00:10.000", 2) for "lesson.mp4#t=00:00:10.000&line=2"; None for any other origin."""
    match = _LINE.match(origin)
    return (match["frame"], int(match["line"])) if match else None


def image_name(frame: str, image: Path) -> str:
    """A stable, flat file name under images/: a hash of the frame's origin, with the saved file's suffix."""
    return hashlib.blake2b(frame.encode(), digest_size=8).hexdigest() + image.suffix


def vision_message(image: str, prompt: str, answer: str) -> list[dict[str, Any]]:
    """One user turn holding the image and the prompt, one assistant turn holding the answer."""
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]}]


def build_vision_examples(records: Iterable[Mapping[str, Any]], frames: Mapping[str, Path], params: VisionParams,
                          language_names: Mapping[str, str]) -> VisionResult:
    """Examples per split from split-table rows (id, source, kind, lang, text, pivot_lang, pivot_text, origin,
    group, split) whose origin is a line of a saved frame."""
    counts: Counter = Counter()
    by_frame: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for record in records:
        located = frame_of(record["origin"])
        if located is None:
            counts["skipped.not_a_frame_line"] += 1
            continue
        frame, number = located
        if frame not in frames:
            counts["skipped.frame_not_saved"] += 1
            continue
        by_frame.setdefault(frame, []).append((number, record))
    examples: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    images: dict[str, Path] = {}
    name = lambda tag: language_names.get(tag, tag)  # noqa: E731
    for frame, lines in sorted(by_frame.items()):
        lines.sort(key=lambda item: item[0])
        rows = [record for _, record in lines]
        first = rows[0]
        if len({(row["split"], row["group"]) for row in rows}) > 1:  # cannot happen while frames share the video's group
            raise ValueError(f"{frame}: its lines lie in more than one split group; the split must keep a video together")
        image = image_name(frame, frames[frame])
        shown = f"{IMAGES}/{image}"
        answers = {"transcribe": "\n".join(row["text"] for row in rows)}
        if all(row["pivot_text"] and row["pivot_lang"] for row in rows) and len({row["pivot_lang"] for row in rows}) == 1:
            answers["translate"] = "\n".join(row["pivot_text"] for row in rows)
        for task in params.tasks:
            if task not in answers:
                counts[f"skipped.{task}.no_pivot"] += 1
                continue
            prompt = params.templates[task].format(source_name=name(first["lang"]),
                                                   target_name=name(first["pivot_lang"] or ""))
            examples[first["split"]].append({
                "id": hashlib.blake2b(f"{frame}\x1f{task}".encode(), digest_size=8).hexdigest(),
                "task": task, "split": first["split"], "group": first["group"], "source": first["source"],
                "lang": first["lang"], "pivot_lang": first["pivot_lang"] if task == "translate" else None,
                "origin": frame, "record_ids": [row["id"] for row in rows],
                "messages": vision_message(shown, prompt, answers[task]), "images": [shown]})
            counts[f"tasks.{task}"] += 1
        images[image] = frames[frame]
    for split in SPLITS:
        examples[split].sort(key=lambda example: example["id"])
    return VisionResult(examples, images, counts)


def write_vision_examples(result: VisionResult, out: Path) -> dict[str, int]:
    """out/{train,val,test}.jsonl and out/images/ (emptied first); lines per split."""
    shutil.rmtree(out / IMAGES, ignore_errors=True)
    (out / IMAGES).mkdir(parents=True)
    for image, saved in sorted(result.images.items()):
        shutil.copyfile(saved, out / IMAGES / image)
    written = {}
    for split, rows in result.examples.items():
        with (out / f"{split}.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        written[split] = len(rows)
    return written


def check_vision_example(example: Mapping[str, Any], folder: Path | None = None) -> None:
    """ValueError unless the example is a user turn with an image part and a text part, then an assistant text
    turn; with folder, the image must exist under it."""
    messages = example.get("messages")
    if not isinstance(messages, list) or [turn.get("role") for turn in messages] != ["user", "assistant"]:
        raise ValueError("messages must be one user turn and one assistant turn")
    parts = messages[0]["content"]
    kinds = [part.get("type") for part in parts] if isinstance(parts, list) else []
    if kinds != ["image", "text"] or not parts[1].get("text"):
        raise ValueError("the user turn must hold an image part, then a text part")
    answer = messages[1]["content"]
    if not (isinstance(answer, list) and len(answer) == 1 and answer[0].get("type") == "text" and answer[0].get("text")):
        raise ValueError("the assistant turn must hold one non-empty text part")
    if folder is not None and not (folder / parts[0]["image"]).is_file():
        raise ValueError(f"image {parts[0]['image']} is not in {folder}")
