"""langfoundry export-data: processed chat examples as OpenAI and Vertex AI tuning JSONL, each line validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langfoundry.cli.export_data import main as export_main
from langfoundry.core.errors import UserError
from langfoundry.data.hosted_formats import export, to_openai, to_vertex, validate_file, validation_error

SYSTEM = {"role": "system", "content": "You teach N'Ko."}
USER = {"role": "user", "content": "Translate: ߌ ߣߌ ߗߋ"}
ANSWER = {"role": "assistant", "content": "hello"}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_openai_keeps_the_turns_and_validates() -> None:
    line = to_openai({"messages": [SYSTEM, USER, ANSWER], "task": "translate_to_pivot", "id": "x"})
    assert line == {"messages": [SYSTEM, USER, ANSWER]}
    assert validation_error("openai", line) is None


def test_vertex_maps_system_to_system_instruction_and_assistant_to_model() -> None:
    line = to_vertex({"messages": [SYSTEM, USER, ANSWER]})
    assert line == {"systemInstruction": {"role": "system", "parts": [{"text": "You teach N'Ko."}]},
                    "contents": [{"role": "user", "parts": [{"text": USER["content"]}]},
                                 {"role": "model", "parts": [{"text": "hello"}]}]}
    assert validation_error("vertex", line) is None
    assert "systemInstruction" not in to_vertex({"messages": [USER, ANSWER]})


@pytest.mark.parametrize(("fmt", "line", "words"), [
    ("openai", {"messages": [USER]}, "messages"),
    ("openai", {"messages": [USER, {"role": "tool", "content": "x"}]}, "role"),
    ("openai", {"messages": [USER, ANSWER], "model": "gpt"}, "model"),
    ("openai", {"messages": [ANSWER, USER]}, "alternate"),
    ("vertex", {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "assistant", "parts": [{"text": "b"}]}]},
     "assistant"),
    ("vertex", {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": []}]}, "parts"),
    ("vertex", {"messages": [USER, ANSWER]}, "contents"),
])
def test_invalid_lines_are_named(fmt: str, line: dict, words: str) -> None:
    problem = validation_error(fmt, line)
    assert problem is not None and words in problem


def test_export_writes_valid_files_and_names_the_bad_input_line(tmp_path: Path) -> None:
    good = write(tmp_path / "train.jsonl", [{"messages": [USER, ANSWER]}, {"messages": [SYSTEM, USER, ANSWER]}])
    for fmt in ("openai", "vertex"):
        out = tmp_path / fmt / "train.jsonl"
        assert export(fmt, good, out) == 2
        assert validate_file(fmt, out) == 2
    empty_answer = {"messages": [USER, {"role": "assistant", "content": ""}]}
    bad = write(tmp_path / "bad.jsonl", [{"messages": [USER, ANSWER]}, empty_answer])
    with pytest.raises(UserError, match=r"bad\.jsonl:2: not a valid openai example"):
        export("openai", bad, tmp_path / "out.jsonl")
    with pytest.raises(UserError, match=r"train\.jsonl:1: not a valid vertex example"):
        validate_file("vertex", tmp_path / "openai" / "train.jsonl")


def test_cli_exports_checks_and_fails_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data/processed").mkdir(parents=True)
    write(Path("data/processed/test.jsonl"), [{"messages": [USER, ANSWER]}])
    assert export_main(["--format", "vertex", "--split", "test"]) == 0
    assert Path("data/exports/vertex/test.jsonl").is_file()
    assert export_main(["--format", "vertex", "--check", "data/exports/vertex/test.jsonl"]) == 0
    assert export_main(["--format", "openai", "--check", "data/exports/vertex/test.jsonl"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "data/exports/vertex/test.jsonl:1" in error[0]
