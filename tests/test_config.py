"""params.yaml and sources.yaml validation: every mistake is one line naming the key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from langfoundry.cli.main import main as cli_main
from langfoundry.core.config import load_params, load_sources
from langfoundry.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_repository_params_and_sources_are_valid() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.base.trust_remote_code is False
    sources = load_sources(REPO / "sources.yaml").sources
    assert [(s.id, s.media, s.planned) for s in sources] == [("banyumasan-dictionary", None, False),
                                                              ("banyumasan-scans", "scans", False),
                                                              ("user-corrections", None, True)]


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


def _models(model: type, seen: set | None = None) -> set:
    """The model and every model nested in its fields (through Optional, lists and dicts)."""
    from pydantic import BaseModel

    seen = seen if seen is not None else set()
    if model in seen:
        return seen
    seen.add(model)
    pending = [field.annotation for field in model.model_fields.values()]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _models(annotation, seen)
        pending.extend(getattr(annotation, "__args__", ()))
    return seen


def test_every_section_forbids_unknown_keys_and_coercion() -> None:
    from langfoundry.core.config import Params, Sources

    models = _models(Params) | _models(Sources)
    assert len(models) > 10
    loose = [m.__name__ for m in models if m.model_config.get("extra") != "forbid" or not m.model_config.get("strict")]
    assert loose == []


@pytest.mark.parametrize(
    "data, expected",
    [
        # values a lenient parser would quietly turn into something else
        ({"train": {"lora": {"r": True}}}, "train.lora.r = True: Input should be a valid integer"),
        ({"train": {"lora": {"r": "8"}}}, "train.lora.r = '8': Input should be a valid integer"),
        ({"base": {"trust_remote_code": "yes"}}, "base.trust_remote_code = 'yes': Input should be a valid boolean"),
        # what is allowed is said
        ({"split": {"test_fraction": 1.5}}, "split.test_fraction = 1.5: Input should be less than 1"),
        ({"train": {"quantization": "3bit"}}, "Input should be 'none' or '4bit'"),
        ({"clean": {"min_chars": 0}}, "clean.min_chars = 0: Input should be greater than or equal to 1"),
        ({"evaluate": {"bleu_tokenize": "klingon"}}, "evaluate.bleu_tokenize = 'klingon': Input should be '13a'"),
        ({"format": {"task_weights": {"vocab": 1.0}}}, "unknown key 'format.task_weights.vocab': Input should be"),
        ({"format": {"task_weights": {"vocabulary": -1.0}}}, "format: task_weights.vocabulary is -1.0; weights must be"),
        ({"train": 5}, "train = 5: Input should be a valid dictionary"),
    ],
)
def test_wrong_types_and_impossible_values_say_what_is_allowed(tmp_path: Path, data: dict, expected: str) -> None:
    with pytest.raises(UserError) as err:
        load_params(write(tmp_path, "params.yaml", data))
    assert str(err.value) == f"{tmp_path / 'params.yaml'}: " + str(err.value).split(": ", 1)[1]
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bleu_tokenizers_allowed_are_sacrebleus() -> None:
    from typing import get_args

    from sacrebleu.metrics.bleu import BLEU

    from langfoundry.core.config import EvaluateParams

    assert sorted(get_args(EvaluateParams.model_fields["bleu_tokenize"].annotation)) == sorted(BLEU.TOKENIZERS)


def test_every_stage_stops_on_a_mistyped_key_before_it_does_any_work(tmp_path: Path) -> None:
    (tmp_path / "data" / "inventory").mkdir(parents=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", tmp_path / "data" / "inventory")
    shutil.copy(REPO / "sources.yaml", tmp_path)
    params = (REPO / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(params + "\ntrian:\n  epochs: 3\n", encoding="utf-8")
    scripts = sorted(path for path in (REPO / "stages").glob("*.py") if path.name != "retrain.py")
    runs = {script.name: subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) for script in scripts}
    for name, run in runs.items():
        _, err = run.communicate(timeout=300)
        assert run.returncode != 0, name
        assert "trian" in err and "Traceback" not in err, (name, err)
    assert sorted(path.name for path in tmp_path.rglob("*") if path.is_file()) == ["languages.csv", "params.yaml",
                                                                                   "sources.yaml"]


@pytest.mark.slow
def test_a_key_no_stage_reads_still_stops_dvc_repro(tmp_path: Path) -> None:
    from repo_copy import copy_repo, run

    repo = copy_repo(tmp_path / "repo")
    refused = run(["dvc", "exp", "run", "-S", "trian.lora.r=4"], repo, check=False)  # DVC refuses unknown keys
    assert refused.returncode != 0 and "trian" in refused.stderr
    with (repo / "params.yaml").open("a", encoding="utf-8") as handle:
        handle.write("trian:\n  lora:\n    r: 4\n")  # what a hand edit or `-S +trian.lora.r=4` leaves
    status = run(["dvc", "status", "validate"], repo).stdout
    assert "params.yaml" in status
    failed = run(["dvc", "repro", "validate"], repo, check=False)
    assert failed.returncode != 0
    assert "error: params.yaml: unknown key 'trian'; did you mean 'train'?" in failed.stdout + failed.stderr
