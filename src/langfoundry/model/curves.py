"""Training curves to DVCLive, identical between identical runs, whether or not one was killed and resumed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Logged values that depend on the machine's speed, not on the training: kept out of the curves so that
# a rerun on CPU gives identical files.
TIMING_WORDS = ("time", "per_second", "flos")


def curve_values(logs: Mapping[str, Any]) -> dict[str, float]:
    """DVCLive metric names and values of one trainer log entry, without timings and bookkeeping."""
    values = {}
    for key, value in sorted(logs.items()):
        if key == "step" or any(word in key for word in TIMING_WORDS) or not isinstance(value, (int, float)):
            continue
        name = "eval/" + key.removeprefix("eval_") if key.startswith("eval_") else "train/" + key.removeprefix("train_")
        values[name] = float(value)
    return values


def dvclive_callback(live_dir: str | Path):
    """A Trainer callback writing loss curves to DVCLive under live_dir, against the optimizer step.

    transformers' own DVCLive callback also logs every training argument (including the scratch
    checkpoint path) and the timings, which would make the curves differ between identical runs.
    A resumed run first replays the checkpoint's log history, so its curves match an uninterrupted run's.
    """
    from dvclive import Live
    from transformers import TrainerCallback

    class DvcLiveCurves(TrainerCallback):
        def __init__(self) -> None:
            self.live = None

        def write(self, step: int, logs: Mapping[str, Any]) -> None:
            if self.live is None:
                # dvc.yaml declares the outputs and plots, and DVC records experiments: DVCLive only writes files
                self.live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
            self.live.step = step
            for name, value in curve_values(logs).items():
                self.live.log_metric(name, value)
            self.live.sync()

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and state.global_step > 0:  # resumed from a checkpoint
                for entry in state.log_history:
                    self.write(entry["step"], entry)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            # the end-of-training summary is no point of a curve: its train_loss is the mean of the call (of
            # the steps since a resume only), which would land at the last step beside the last logged loss
            if state.is_world_process_zero and "train_loss" not in logs:  # one writes under `accelerate launch`
                self.write(state.global_step, logs)

        def on_train_end(self, args, state, control, **kwargs):
            if self.live is not None:
                self.live.end()

    return DvcLiveCurves()
