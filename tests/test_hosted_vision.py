"""langfoundry export-data --set vision: the vision stage's image-and-text examples as OpenAI and Vertex AI tuning
JSONL, images inlined as base64, each line validated against the schema and the documented image limits."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from langfoundry.cli.export_data import main as export_main
from langfoundry.core.errors import UserError
from langfoundry.core.vision_config import VisionParams
from langfoundry.data import hosted_vision
from langfoundry.data.hosted_formats import validate_file
from langfoundry.data.hosted_vision import (
    VISION_SCHEMAS,
    export_vision,
    file_loader,
    to_openai_vision,
    to_vertex_vision,
    validate_vision_file,
    vision_validation_error,
)
from langfoundry.data.vision_examples import build_vision_examples, frame_index, write_vision_examples

FRAMES = {"data/raw/lessons/lesson-01.mp4#t=00:00:10.000": "green", "data/raw/lessons/lesson-01.mp4#t=00:00:15.000": "blue"}


def record(frame: str, line: int, text: str, pivot: str | None) -> dict:
    return {"id": f"{frame}-{line}", "source": "boards", "kind": "parallel", "lang": "nqo", "text": text,
            "pivot_lang": "en" if pivot else None, "pivot_text": pivot, "origin": f"{frame}&line={line}",
            "group": "doc:boards:video:lesson-01.mp4", "split": "train"}


def make_vision_set(out: Path, frames_folder: Path) -> Path:
    """out/{train,val,test}.jsonl and out/images/ as the vision stage writes them, from two rendered PNG frames."""
    (frames_folder / "boards").mkdir(parents=True)
    index = []
    for number, (origin, colour) in enumerate(FRAMES.items()):
        Image.new("RGB", (64, 36), colour).save(frames_folder / "boards" / f"f{number}.png")
        index.append(json.dumps({"origin": origin, "image": f"boards/f{number}.png"}))
    (frames_folder / "boards.jsonl").write_text("\n".join(index) + "\n", encoding="utf-8")
    first, second = FRAMES
    rows = [record(first, 1, "ߌ ߣߌ ߗߋ", "hello"), record(first, 2, "ߌ ߣߌ ߛߐߜߐߡߊ", "good morning"),
            record(second, 1, "ߖߌ", None)]
    result = build_vision_examples(rows, frame_index(frames_folder), VisionParams(enabled=True), {"nqo": "N'Ko", "en": "English"})
    assert write_vision_examples(result, out) == {"train": 3, "val": 0, "test": 0}
    return out / "train.jsonl"


@pytest.fixture
def vision_set(tmp_path: Path) -> Path:
    return make_vision_set(tmp_path / "vision", tmp_path / "frames")


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_openai_export_inlines_each_image_byte_for_byte(vision_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "openai.jsonl"
    assert export_vision("openai", vision_set, out, detail="high") == (3, 3)
    sources, lines = read_lines(vision_set), read_lines(out)
    assert len(lines) == 3
    for source, line in zip(sources, lines):
        jsonschema.validate(line, VISION_SCHEMAS["openai"])
        assert vision_validation_error("openai", line) is None
        (user_image, user_text), answer = source["messages"][0]["content"], source["messages"][1]["content"][0]["text"]
        user, assistant = line["messages"]
        assert user["role"] == "user" and [part["type"] for part in user["content"]] == ["image_url", "text"]
        assert user["content"][1]["text"] == user_text["text"]
        assert assistant == {"role": "assistant", "content": answer}
        url = user["content"][0]["image_url"]
        assert url["detail"] == "high" and url["url"].startswith("data:image/png;base64,")
        decoded = base64.b64decode(url["url"].removeprefix("data:image/png;base64,"), validate=True)
        assert decoded == (vision_set.parent / user_image["image"]).read_bytes()
    # the two frames differ, and each example carries its own frame
    assert len({line["messages"][0]["content"][0]["image_url"]["url"] for line in lines}) == 2
    assert validate_vision_file("openai", out) == 3


def test_vertex_export_uses_inline_data_and_model_turns(vision_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "vertex.jsonl"
    assert export_vision("vertex", vision_set, out) == (3, 3)
    for source, line in zip(read_lines(vision_set), read_lines(out)):
        jsonschema.validate(line, VISION_SCHEMAS["vertex"])
        user, model = line["contents"]
        assert [user["role"], model["role"]] == ["user", "model"] and "systemInstruction" not in line
        inline = user["parts"][0]["inlineData"]
        assert inline["mimeType"] == "image/png"
        image = vision_set.parent / source["messages"][0]["content"][0]["image"]
        assert base64.b64decode(inline["data"], validate=True) == image.read_bytes()
        assert user["parts"][1] == {"text": source["messages"][0]["content"][1]["text"]}
        assert model["parts"] == [{"text": source["messages"][1]["content"][0]["text"]}]
    assert validate_vision_file("vertex", out) == 3
    with pytest.raises(UserError, match=r"vertex\.jsonl:1: not a valid openai vision example"):
        validate_vision_file("openai", out)


def test_a_system_prompt_and_trl_bare_image_parts_are_kept(vision_set: Path) -> None:
    image = read_lines(vision_set)[0]["images"][0]
    example = {"images": [image], "messages": [
        {"role": "system", "content": "You read N'Ko boards."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Read it."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ߖߌ"}]}]}
    load = file_loader("vertex", vision_set.parent)
    line = to_vertex_vision(example, load)
    assert line["systemInstruction"]["parts"] == [{"text": "You read N'Ko boards."}]
    assert vision_validation_error("vertex", line) is None
    line = to_openai_vision(example, file_loader("openai", vision_set.parent))
    assert line["messages"][0] == {"role": "system", "content": "You read N'Ko boards."}
    assert "detail" not in line["messages"][1]["content"][0]["image_url"]


def test_a_missing_image_names_example_line_and_image_and_writes_nothing(vision_set: Path, tmp_path: Path) -> None:
    second = read_lines(vision_set)[1]["images"][0]
    (vision_set.parent / second).unlink()
    out = tmp_path / "out.jsonl"
    with pytest.raises(UserError) as caught:
        export_vision("openai", vision_set, out)
    message = str(caught.value)
    assert message.startswith(f"{vision_set}:2: image {vision_set.parent / second}: not found")
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*"))


def test_an_image_over_the_limit_is_refused(vision_set: Path, tmp_path: Path, monkeypatch) -> None:
    size = (vision_set.parent / read_lines(vision_set)[0]["images"][0]).stat().st_size
    monkeypatch.setitem(hosted_vision.MAX_IMAGE_BYTES, "vertex", size - 1)
    with pytest.raises(UserError, match=rf"train\.jsonl:1: image .*\.png: is 0\.0 MB, over vertex's {(size - 1) / 1e6:g} MB"):
        export_vision("vertex", vision_set, tmp_path / "out.jsonl")
    assert export_vision("openai", vision_set, tmp_path / "out.jsonl")[0] == 3  # openai's own limit is untouched
    # --check decodes the inlined images and holds them to the limit too
    monkeypatch.setitem(hosted_vision.MAX_IMAGE_BYTES, "openai", size - 1)
    with pytest.raises(UserError, match=r"out\.jsonl:1: .*messages/0/content/0: the image is .* over openai's"):
        validate_vision_file("openai", tmp_path / "out.jsonl")


def test_wrong_image_types_and_modes_are_refused(vision_set: Path, tmp_path: Path) -> None:
    folder = vision_set.parent
    Image.new("L", (8, 8), 128).save(folder / "images" / "grey.png")
    Image.new("RGB", (8, 8), "red").save(folder / "images" / "red.gif")
    (folder / "images" / "fake.png").write_bytes(b"not an image at all")
    example = lambda image: {"messages": [{"role": "user", "content": [{"type": "image", "image": image},  # noqa: E731
                                                                        {"type": "text", "text": "Read it."}]},
                                          {"role": "assistant", "content": "x"}]}
    with pytest.raises(ValueError, match=r"grey\.png: is a PNG in mode L \(grey\); openai takes RGB or RGBA"):
        to_openai_vision(example("images/grey.png"), file_loader("openai", folder))
    assert to_vertex_vision(example("images/grey.png"), file_loader("vertex", folder))["contents"][0]["parts"][0]
    with pytest.raises(ValueError, match=r"red\.gif: is GIF; openai takes JPEG, PNG, WEBP"):
        to_openai_vision(example("images/red.gif"), file_loader("openai", folder))
    with pytest.raises(ValueError, match=r"fake\.png: is NOT A KNOWN IMAGE TYPE"):
        to_vertex_vision(example("images/fake.png"), file_loader("vertex", folder))


def test_malformed_vision_lines_are_named(vision_set: Path, tmp_path: Path) -> None:
    good = read_lines(vision_set)[0]
    bad_rows = {
        "holds an image; only user turns may": {**good, "messages": [good["messages"][0], {"role": "assistant", "content": [
            {"type": "image", "image": good["images"][0]}]}]},
        "neither text nor image": {**good, "messages": [{"role": "user", "content": [{"type": "audio"}]},
                                                               good["messages"][1]]},
        "no messages": {"images": good["images"]},
    }
    for reason, row in bad_rows.items():  # the reason the error gives
        source = tmp_path / "bad" / "train.jsonl"
        source.parent.mkdir(exist_ok=True)
        (source.parent / "images").mkdir(exist_ok=True)
        source.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
        (source.parent / good["images"][0]).write_bytes((vision_set.parent / good["images"][0]).read_bytes())
        with pytest.raises(UserError, match=r"bad/train\.jsonl:2: cannot be a openai vision example") as caught:
            export_vision("openai", source, tmp_path / "out.jsonl")
        assert reason in str(caught.value)
    source.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"train\.jsonl:2: not JSON"):
        export_vision("vertex", source, tmp_path / "out.jsonl")


@pytest.mark.parametrize(("fmt", "change", "words"), [
    ("openai", lambda line: line["messages"][0]["content"][0]["image_url"].update(detail="ultra"), "ultra"),
    ("openai", lambda line: line["messages"][1].update(content=[{"type": "text", "text": "x"}]), "messages/1/content"),
    ("openai", lambda line: line["messages"][0]["content"].extend([line["messages"][0]["content"][0]] * 10),
     "11 images; openai takes at most 10"),
    ("openai", lambda line: line["messages"][0]["content"][0]["image_url"].update(
        url=line["messages"][0]["content"][0]["image_url"]["url"].replace("image/png", "image/jpeg")),
     "declared image/jpeg but its bytes are image/png"),
    ("openai", lambda line: line["messages"][0]["content"][0]["image_url"].update(url="data:image/gif;base64,R0lG"), "url"),
])
def test_check_catches_what_the_documented_format_refuses(vision_set: Path, tmp_path: Path, fmt: str, change, words: str) -> None:
    out = tmp_path / "out.jsonl"
    export_vision(fmt, vision_set, out)
    line = read_lines(out)[0]
    change(line)
    problem = vision_validation_error(fmt, line)
    assert problem is not None and words in problem


@pytest.mark.parametrize(("part", "ok"), [
    ({"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/vision/images/a.png"}}, True),
    ({"fileData": {"mimeType": "image/png", "fileUri": "/local/a.png"}}, False),
    ({"inlineData": {"mimeType": "image/gif", "data": "R0lG"}}, False),
    ({"text": "x", "inlineData": {"mimeType": "image/png", "data": "iVBO"}}, False),
])
def test_vertex_parts(part: dict, ok: bool) -> None:
    line = {"contents": [{"role": "user", "parts": [part, {"text": "Read it."}]}, {"role": "model", "parts": [{"text": "a"}]}]}
    assert (vision_validation_error("vertex", line) is None) is ok
    model_image = {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": [part]}]}
    assert vision_validation_error("vertex", model_image) is not None


def test_cli_exports_vision_checks_it_and_fails_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    make_vision_set(Path("data/vision"), Path("frames"))
    assert export_main(["--format", "openai", "--set", "vision", "--split", "train", "--detail", "low"]) == 0
    out = Path("data/exports/openai/vision/train.jsonl")
    assert capsys.readouterr().out.strip() == (f"{out}: 3 openai vision examples (3 images inlined) from "
                                               "data/vision/train.jsonl, every line valid")
    assert export_main(["--format", "openai", "--set", "vision", "--check", str(out)]) == 0
    assert "3 lines, all valid openai vision examples" in capsys.readouterr().out
    # the text schema stays text-only: a vision line is not a valid text example
    assert export_main(["--format", "openai", "--check", str(out)]) == 2
    assert f"{out}:1: not a valid openai example" in capsys.readouterr().err
    assert export_main(["--format", "vertex", "--set", "vision", "--split", "val"]) == 2  # the stage wrote it empty
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "data/vision/val.jsonl: no examples" in error[0]
    images = [example["images"][0] for example in read_lines(Path("data/vision/train.jsonl"))]
    Path("data/vision", images[-1]).unlink()
    first = images.index(images[-1]) + 1  # the first line that names it (a frame gives transcribe and translate)
    assert export_main(["--format", "vertex", "--set", "vision"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert error[0].startswith(f"error: data/vision/train.jsonl:{first}: image data/vision/{images[-1]}: not found")
    assert not Path("data/exports/vertex/vision/train.jsonl").exists()
    with pytest.raises(SystemExit):
        export_main(["--format", "vertex", "--set", "vision", "--detail", "low"])


def test_a_text_export_is_unchanged_by_the_vision_option(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data/processed").mkdir(parents=True)
    Path("data/processed/train.jsonl").write_text(json.dumps({"messages": [
        {"role": "system", "content": "You teach N'Ko."}, {"role": "user", "content": "ߌ ߣߌ ߗߋ"},
        {"role": "assistant", "content": "hello"}], "task": "translate_to_pivot"}, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = ('{"messages": [{"role": "system", "content": "You teach N\'Ko."}, {"role": "user", "content": "ߌ ߣߌ ߗߋ"}, '
                '{"role": "assistant", "content": "hello"}]}\n')
    assert export_main(["--format", "openai"]) == 0
    assert Path("data/exports/openai/train.jsonl").read_text(encoding="utf-8") == expected
    Path("data/exports/openai/train.jsonl").unlink()
    assert export_main(["--format", "openai", "--set", "text"]) == 0
    assert Path("data/exports/openai/train.jsonl").read_text(encoding="utf-8") == expected
    assert validate_file("openai", Path("data/exports/openai/train.jsonl")) == 1
    assert not Path("data/exports/openai/vision").exists()
