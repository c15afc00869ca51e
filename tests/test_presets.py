"""Training presets: auto by training-set size, explicit values win, params.yaml validation; timings kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from langfoundry.core.config import TrainParams, load_params
from langfoundry.core.errors import UserError
from langfoundry.model.presets import PRESET_FIELDS, PRESETS, choose_preset, describe, resolve_preset
from langfoundry.core.timings import split_timings, write_stage_metrics


def test_presets_hold_the_documented_values() -> None:
    assert PRESETS["conservative"] == {"epochs": 3, "batch_size": 2, "learning_rate": 2e-5, "gradient_accumulation": 8}
    assert PRESETS["balanced"] == {"epochs": 3, "batch_size": 4, "learning_rate": 2e-4, "gradient_accumulation": 4}
    assert PRESETS["aggressive"] == {"epochs": 5, "batch_size": 8, "learning_rate": 5e-4, "gradient_accumulation": 2}


@pytest.mark.parametrize(("examples", "expected"), [
    (0, "conservative"), (999, "conservative"), (1000, "balanced"), (5000, "balanced"), (250_000, "balanced"),
])
def test_auto_picks_by_training_set_size(examples: int, expected: str) -> None:
    assert choose_preset("auto", examples) == expected


def test_a_named_preset_ignores_the_size() -> None:
    assert choose_preset("aggressive", 10) == "aggressive"
    assert choose_preset("conservative", 10**6) == "conservative"
    with pytest.raises(ValueError, match="unknown preset"):
        choose_preset("reckless", 10)


def test_unset_values_come_from_the_preset() -> None:
    resolved = resolve_preset(TrainParams(preset="aggressive"), train_examples=50)
    assert resolved.preset == "aggressive"
    assert resolved.from_preset == PRESET_FIELDS
    for field in PRESET_FIELDS:
        assert getattr(resolved.params, field) == PRESETS["aggressive"][field]


def test_explicit_values_override_the_preset() -> None:
    params = TrainParams(preset="auto", learning_rate=0.002, batch_size=16)
    resolved = resolve_preset(params, train_examples=300)
    assert resolved.preset == "conservative"
    assert resolved.params.learning_rate == 0.002 and resolved.params.batch_size == 16
    assert resolved.params.epochs == 3 and resolved.params.gradient_accumulation == 8
    assert set(resolved.from_preset) == {"epochs", "gradient_accumulation"}
    line = describe(resolved)
    assert "learning_rate=0.002 (set explicitly)" in line and "epochs=3.0," in line


def test_resolving_twice_changes_nothing() -> None:
    once = resolve_preset(TrainParams(), 2000)
    twice = resolve_preset(once.params, 2000)
    assert twice.params == once.params and twice.from_preset == ()
    assert "preset balanced unused" in describe(twice)


def test_the_rest_of_the_training_params_survive() -> None:
    params = TrainParams(max_steps=7, eval_steps=3, preset="balanced")
    resolved = resolve_preset(params, 10).params
    assert (resolved.max_steps, resolved.eval_steps, resolved.preset) == (7, 3, "balanced")


def _params_file(tmp_path: Path, train: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": train}), encoding="utf-8")
    return path


def test_null_in_params_yaml_leaves_the_value_to_the_preset(tmp_path: Path) -> None:
    params = load_params(_params_file(tmp_path, {"preset": "balanced", "learning_rate": None, "epochs": 1}))
    assert params.train.learning_rate is None and params.train.epochs == 1
    resolved = resolve_preset(params.train, 100)
    assert resolved.params.learning_rate == 2e-4 and resolved.params.epochs == 1


def test_a_mistyped_preset_is_one_line_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"train\.preset = 'balance'"):
        load_params(_params_file(tmp_path, {"preset": "balance"}))
    with pytest.raises(UserError, match=r"train\.batch_size = 0"):
        load_params(_params_file(tmp_path, {"batch_size": 0}))


def test_repository_params_keep_the_scratch_values_explicit() -> None:
    train = load_params(Path(__file__).resolve().parents[1] / "params.yaml").train
    assert train.preset in {"auto", "conservative", "balanced", "aggressive"}
    # the scratch model needs a higher learning rate than any preset gives; see the comment in params.yaml
    assert train.learning_rate is not None and train.learning_rate > max(p["learning_rate"] for p in PRESETS.values())


def test_timings_are_split_from_the_metrics(tmp_path: Path, monkeypatch) -> None:
    metrics = {"steps": 10, "wall_seconds": 1.5, "train_tokens_per_second": 900.0, "peak_memory_mb": 700.0,
               "train_tokens": 5000, "effective": {"learning_rate": 0.1}}
    stable, timings = split_timings(metrics)
    assert set(timings) == {"wall_seconds", "train_tokens_per_second", "peak_memory_mb"}
    assert set(stable) == {"steps", "train_tokens", "effective"}
    monkeypatch.chdir(tmp_path)
    write_stage_metrics("metrics/train.json", metrics)
    assert json.loads((tmp_path / "metrics/train.json").read_text()) == {
        "steps": 10, "train_tokens": 5000, "effective.learning_rate": 0.1}
    assert json.loads((tmp_path / "metrics/timings/train.json").read_text())["wall_seconds"] == 1.5
