"""Training presets: auto by training-set size, explicit values win, params.yaml validation; timings kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from langfoundry.core.config import TrainParams, load_params
from langfoundry.core.errors import UserError
from langfoundry.core.timings import split_timings, write_stage_metrics
from langfoundry.model.presets import PRESET_FIELDS, PRESETS, choose_preset, describe, resolve_preset

ORDER = ("conservative", "balanced", "aggressive")  # from the gentlest to the hardest training
DOCUMENTED_THRESHOLD = 1000  # README "Training presets": auto is conservative under 1,000 training examples


def preset_values(name: str) -> TrainParams:
    return resolve_preset(TrainParams(preset=name), train_examples=10).params


@pytest.mark.parametrize(("examples", "expected"), [
    (0, "conservative"), (DOCUMENTED_THRESHOLD - 1, "conservative"),
    (DOCUMENTED_THRESHOLD, "balanced"), (250_000, "balanced"),
])
def test_auto_is_conservative_below_the_documented_threshold_and_balanced_from_it(examples: int, expected: str) -> None:
    resolved = resolve_preset(TrainParams(preset="auto"), examples)
    assert resolved.preset == expected
    assert resolved.params.model_dump(include=set(PRESET_FIELDS)) == \
        preset_values(expected).model_dump(include=set(PRESET_FIELDS))


def test_a_named_preset_ignores_the_size() -> None:
    assert choose_preset("aggressive", 10) == "aggressive"
    assert choose_preset("conservative", 10**6) == "conservative"
    with pytest.raises(ValueError, match="unknown preset"):
        choose_preset("reckless", 10)


def test_harder_presets_train_harder() -> None:
    values = [preset_values(name) for name in ORDER]
    rates = [params.learning_rate for params in values]
    assert rates == sorted(set(rates)), "the learning rate rises strictly from conservative to aggressive"
    for gentler, harder in zip(values, values[1:]):
        assert harder.epochs >= gentler.epochs and harder.batch_size >= gentler.batch_size


def test_every_preset_fills_all_four_values_validly() -> None:
    for name in ORDER:
        resolved = resolve_preset(TrainParams(preset=name), train_examples=50)
        assert resolved.preset == name and resolved.from_preset == PRESET_FIELDS
        TrainParams.model_validate(resolved.params.model_dump())  # within the bounds params.yaml must respect


@pytest.mark.parametrize("field", PRESET_FIELDS)
def test_an_explicit_value_overrides_the_preset(field: str) -> None:
    from_preset = resolve_preset(TrainParams(preset="auto"), train_examples=300).params
    explicit = getattr(from_preset, field) * 3  # differs from what the preset would give
    resolved = resolve_preset(TrainParams(preset="auto", **{field: explicit}), train_examples=300)
    assert getattr(resolved.params, field) == explicit
    assert field not in resolved.from_preset and set(resolved.from_preset) == set(PRESET_FIELDS) - {field}
    for other in resolved.from_preset:
        assert getattr(resolved.params, other) == getattr(from_preset, other)
    assert f"{field}={explicit} (set explicitly)" in describe(resolved)


def test_the_log_line_names_the_preset_and_values_in_force() -> None:
    resolved = resolve_preset(TrainParams(preset="auto", learning_rate=0.002), train_examples=5000)
    line = describe(resolved)
    assert f"preset {resolved.preset}" in line and "auto" not in line, "auto is logged as what it chose"
    for field in PRESET_FIELDS:
        assert f"{field}={getattr(resolved.params, field)}" in line


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
    assert resolved.params.learning_rate == preset_values("balanced").learning_rate and resolved.params.epochs == 1


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
