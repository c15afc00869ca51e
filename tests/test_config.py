"""params.yaml and sources.yaml validation: every mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from langfoundry.cli import main as cli_main
from langfoundry.config import load_params, load_sources
from langfoundry.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_repository_params_and_sources_are_valid() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.base.trust_remote_code is False
    assert [s.id for s in load_sources(REPO / "sources.yaml").sources] == ["banyumasan-dictionary"]


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"trian": {"lora": {"r": 4}}}, "unknown key 'trian'; did you mean 'train'?"),
        ({"train": {"lora": {"rr": 4}}}, "unknown key 'train.lora.rr'; did you mean 'train.lora.r'?"),
        ({"train": {"lora": {"r": "four"}}}, "train.lora.r = 'four'"),
        ({"split": {"test_fraction": 1.5}}, "split.test_fraction = 1.5"),
        ({"split": {"test_fraction": 0.5, "val_fraction": 0.6}}, "must be below 1"),
        ({"train": {"quantization": "3bit"}}, "train.quantization = '3bit'"),
    ],
)
def test_bad_params_name_the_key(tmp_path: Path, data: dict, expected: str) -> None:
    with pytest.raises(UserError) as err:
        load_params(write(tmp_path, "params.yaml", data))
    message = str(err.value)
    assert expected in message and message.startswith(str(tmp_path / "params.yaml"))
    assert "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"params.yaml:3: not valid YAML"):
        load_params(write(tmp_path, "params.yaml", "seed: 1\ntrain:\n\tlora: 2\n"))


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "source, expected",
    [
        ({"id": "a", "kind": "dict", "lang": "id", "path": "x.csv"}, "kind = 'dict'"),
        ({"id": "a", "kind": "parallel", "lang": "id"}, "give a path"),
        ({"id": "a", "kind": "parallel", "lang": "id", "path": "x", "colums": {}}, "did you mean \"sources[0](id 'a').columns\""),
        ({"id": "a", "kind": "dictionary", "lang": "id",
          "acquire": {"url": {"url": "http://127.0.0.1/x", "sha256": "abc"}}}, "sha256"),
    ],
)
def test_bad_sources_name_the_key(tmp_path: Path, source: dict, expected: str) -> None:
    with pytest.raises(UserError, match=None) as err:
        load_sources(write(tmp_path, "sources.yaml", {"sources": [source]}))
    assert expected in str(err.value)


def test_duplicate_source_ids_are_refused(tmp_path: Path) -> None:
    source = {"id": "a", "kind": "monolingual", "lang": "id", "path": "a.txt"}
    with pytest.raises(UserError, match="used twice"):
        load_sources(write(tmp_path, "sources.yaml", {"sources": [source, source]}))


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = REPO / "data/inventory/languages.csv"
    assert cli_main(["validate", "--params", str(REPO / "params.yaml"), "--sources", str(REPO / "sources.yaml"),
                     "--inventory", str(inventory)]) == 0
    bad = write(tmp_path, "sources.yaml", {"sources": [{"id": "a", "kind": "monolingual", "lang": "xx-nope", "path": "a"}]})
    assert cli_main(["validate", "--params", str(REPO / "params.yaml"), "--sources", str(bad),
                     "--inventory", str(inventory)]) == 2
    assert "'xx-nope' not in" in capsys.readouterr().err
