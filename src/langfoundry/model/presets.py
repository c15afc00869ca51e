"""Training presets: named sets of epochs, batch size, learning rate and gradient accumulation.

`train.preset` names one, or `auto` picks one by the size of the training set. Any of the four values given
explicitly in params.yaml wins over the preset; the others come from it. Pure functions, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from langfoundry.core.config import TrainParams

PresetName = Literal["conservative", "balanced", "aggressive"]
PRESET_FIELDS = ("epochs", "batch_size", "learning_rate", "gradient_accumulation")

# Values for a pretrained base model: the smaller the data, the smaller the learning rate and the batch.
PRESETS: dict[str, dict[str, float | int]] = {
    "conservative": {"epochs": 3.0, "batch_size": 2, "learning_rate": 2e-5, "gradient_accumulation": 8},
    "balanced": {"epochs": 3.0, "batch_size": 4, "learning_rate": 2e-4, "gradient_accumulation": 4},
    "aggressive": {"epochs": 5.0, "batch_size": 8, "learning_rate": 5e-4, "gradient_accumulation": 2},
}

# auto: below this many training examples, conservative; from there on, balanced. Aggressive is only ever
# chosen by name: large sets tolerate it, but whether they need it is the user's call.
SMALL_TRAINING_SET = 1000


@dataclass(frozen=True)
class ResolvedTraining:
    params: TrainParams  # the four preset fields all set
    preset: PresetName  # the preset in force (what auto chose)
    from_preset: tuple[str, ...]  # the fields the preset filled; the others were set explicitly


def choose_preset(name: str, train_examples: int) -> PresetName:
    """The preset a `train.preset` value stands for, given the number of training examples."""
    if name != "auto":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose auto or one of {sorted(PRESETS)}")
        return name  # type: ignore[return-value]
    return "conservative" if train_examples < SMALL_TRAINING_SET else "balanced"


def resolve_preset(params: TrainParams, train_examples: int) -> ResolvedTraining:
    """Fill the preset fields params leaves unset (None) from the chosen preset."""
    preset = choose_preset(params.preset, train_examples)
    missing = tuple(field for field in PRESET_FIELDS if getattr(params, field) is None)
    filled = params.model_copy(update={field: PRESETS[preset][field] for field in missing})
    return ResolvedTraining(params=filled, preset=preset, from_preset=missing)


def describe(resolved: ResolvedTraining) -> str:
    """One line for the log: the preset and where each value came from."""
    parts = [
        f"{field}={getattr(resolved.params, field)}{'' if field in resolved.from_preset else ' (set explicitly)'}"
        for field in PRESET_FIELDS
    ]
    if not resolved.from_preset:
        return f"train: preset {resolved.preset} unused, all four values set explicitly: " + ", ".join(
            f"{field}={getattr(resolved.params, field)}" for field in PRESET_FIELDS)
    return f"train: preset {resolved.preset}: " + ", ".join(parts)
