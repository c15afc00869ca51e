"""Packing against padded batches: the train stage's own code, run twice on the default data.

Usage:
    .venv/bin/python benchmarks/bench_training.py                      # 150 steps a run: ~1 min packed, ~20 s padded (2 cores)
    .venv/bin/python benchmarks/bench_training.py --max-steps 2        # a smoke test
    .venv/bin/python benchmarks/bench_training.py --out DIR --keep

Both runs call langfoundry.model.training.train_adapter, the function stages/train.py calls, on the pipeline's
data/processed/{train,val}.jsonl and models/base (`make repro` makes them), with params.yaml's train section
except train.packing (false, then true) and train.max_steps (--max-steps). Adapters, checkpoints and curves go to
a temporary folder, so the repository is untouched. Prints a Markdown table per run: steps, wall seconds (the
whole call, as the stage would take it), training seconds (the optimisation loop without its evaluations), real
(non-padding) and total tokens per second, padding share, final train loss and validation loss; then which
run is faster per real token. Writes the two loss curves side by side to loss_curves.png and, per optimizer
step, both runs' losses and tokens to loss_curves.csv under --out.

bench_gpu.py imports count_batch_tokens and StepProbe from here.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("/tmp/langfoundry-bench-packing")
# On an idle 2-core CPU with the default scratch model (batch 16, at most 128 tokens): a packed step carries
# ~1,900 real tokens and takes ~0.35 s, a padded one ~350 tokens and ~0.08 s; 150 steps (the default pipeline's
# run: early stopping ends it there) make the packed run about a minute and the padded one about 20 s.
DEFAULT_MAX_STEPS = 150


# --- counting tokens ---------------------------------------------------------------------------------------


def count_batch_tokens(inputs: Mapping[str, Any]) -> tuple[Any, Any]:
    """(real, total) tokens of one collated batch, as 0-d tensors (no device sync: callers sum them later).

    Padded batches (TRL's collator without padding-free) carry an attention mask that is 1 on every token of an
    example and 0 on padding, so real = mask.sum() and total = input_ids.numel(). Packed batches (packing's
    default "bfd" strategy makes TRL padding-free) carry no mask: the packed examples are concatenated into one
    row with position_ids restarting at each example, and the collator pads only to pad_to_multiple_of, which
    TRL leaves off except on Neuron, so every position is a real token and real = total.
    """
    input_ids = inputs["input_ids"]
    total = input_ids.new_tensor(input_ids.numel())
    mask = inputs.get("attention_mask")
    real = mask.sum() if mask is not None else total
    return real, total


@dataclass
class StepRecord:
    real_tokens: Any = 0  # summed over the step's micro-batches (gradient accumulation)
    total_tokens: Any = 0
    loss: Any = 0.0  # the sum of the micro-batch losses training_step returns is the step's loss
    ended: float = float("nan")  # perf_counter when the optimizer step ended


@dataclass
class StepProbe:
    """What a Trainer does per optimizer step, without changing it: tokens, loss, end time; and evaluation time.

    It wraps the trainer instance's training_step (the batch it gets is the collated one, on the device) and
    evaluate, and adds a callback. `synchronize` (torch.cuda.synchronize on a GPU) makes step end times real.
    """

    synchronize: Any = None
    steps: dict[int, StepRecord] = field(default_factory=dict)
    train_began: float = float("nan")
    train_ended: float = float("nan")
    eval_seconds_in_train: float = 0.0  # the periodic evaluations run inside train(); not training work
    in_train: bool = False
    trainer: Any = None

    def attach(self, trainer) -> None:
        from transformers import TrainerCallback

        self.trainer = trainer
        probe, training_step, evaluate = self, trainer.training_step, trainer.evaluate

        def counted_training_step(model, inputs, *args, **kwargs):
            record = probe.steps.setdefault(trainer.state.global_step + 1, StepRecord())
            real, total = count_batch_tokens(inputs)  # before the call: compute_loss adds keys to inputs
            loss = training_step(model, inputs, *args, **kwargs)
            record.real_tokens = record.real_tokens + real
            record.total_tokens = record.total_tokens + total
            record.loss = record.loss + loss
            return loss

        def timed_evaluate(*args, **kwargs):
            started = time.perf_counter()
            try:
                return evaluate(*args, **kwargs)
            finally:
                if probe.in_train:
                    probe.eval_seconds_in_train += time.perf_counter() - started

        class Clock(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                probe._sync()
                probe.in_train, probe.train_began = True, time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                probe._sync()
                probe.steps.setdefault(state.global_step, StepRecord()).ended = time.perf_counter()

            def on_train_end(self, args, state, control, **kwargs):
                probe._sync()
                probe.in_train, probe.train_ended = False, time.perf_counter()

        trainer.training_step = counted_training_step
        trainer.evaluate = timed_evaluate
        trainer.add_callback(Clock())

    def _sync(self) -> None:
        if self.synchronize is not None:
            self.synchronize()

    def rows(self) -> list[dict[str, float]]:
        """Per completed optimizer step, in order: step, loss, real and total tokens, end time."""
        return [{"step": step, "loss": float(record.loss), "real_tokens": int(record.real_tokens),
                 "total_tokens": int(record.total_tokens), "ended": record.ended}
                for step, record in sorted(self.steps.items()) if not math.isnan(record.ended)]  # NaN: never ended

    def training_seconds(self) -> float:
        """Time inside train() less the evaluations it ran."""
        return self.train_ended - self.train_began - self.eval_seconds_in_train


def throughput(tokens: float, seconds: float) -> float:
    return tokens / seconds if seconds > 0 else float("nan")


# --- running the train stage's function ----------------------------------------------------------------------


@contextlib.contextmanager
def probed_trainers(probes: list[StepProbe]) -> Iterator[None]:
    """Attach a fresh StepProbe to every trainer langfoundry.model.training.build_trainer builds meanwhile.

    train_adapter builds its trainer and trains it in one call; replacing the module's build_trainer for the
    duration is the one way in that leaves the stage's code as it is.
    """
    from langfoundry.model import training

    original = training.build_trainer

    def build_and_probe(*args, **kwargs):
        trainer = original(*args, **kwargs)
        probe = StepProbe()
        probe.attach(trainer)
        probes.append(probe)
        return trainer

    training.build_trainer = build_and_probe
    try:
        yield
    finally:
        training.build_trainer = original


@dataclass
class RunResult:
    name: str
    metrics: dict[str, Any]
    wall_seconds: float
    probe: StepProbe
    eval_points: list[tuple[int, float]]  # (step, validation loss): before training, during, after


def run_training(name: str, packing: bool, max_steps: int, repo: Path, workdir: Path) -> RunResult:
    from langfoundry.core.config import load_params
    from langfoundry.model.training import train_adapter

    params = load_params(repo / "params.yaml")
    train = params.train.model_copy(update={"packing": packing, "max_steps": max_steps})
    run_dir = workdir / name
    probes: list[StepProbe] = []
    started = time.perf_counter()
    # the Trainer prints its logs to stdout when there is no terminal; stderr keeps stdout to the tables
    with probed_trainers(probes), contextlib.redirect_stdout(sys.stderr):
        metrics = train_adapter(train, params.seed, base_dir=repo / "models/base",
                                train_path=repo / "data/processed/train.jsonl", val_path=repo / "data/processed/val.jsonl",
                                out_dir=run_dir / "adapter", live_dir=run_dir / "live",
                                checkpoint_dir=run_dir / "checkpoints", trust_remote_code=params.base.trust_remote_code)
    wall = time.perf_counter() - started
    probe = probes[-1]
    # evaluations during training are in the trainer's log; before and after are train_adapter's own calls
    during = [(int(entry["step"]), float(entry["eval_loss"])) for entry in probe.trainer.state.log_history
              if "eval_loss" in entry]
    points = [(0, metrics["val_loss_base"]), *during, (metrics["steps"], metrics["val_loss_final"])]
    return RunResult(name, metrics, wall, probe, points)


def missing_inputs(repo: Path) -> list[Path]:
    needed = ["data/processed/train.jsonl", "data/processed/val.jsonl", "models/base/config.json"]
    return [repo / name for name in needed if not (repo / name).exists()]


# --- reporting ---------------------------------------------------------------------------------------------


def summary(result: RunResult) -> dict[str, float]:
    rows = result.probe.rows()
    real = sum(row["real_tokens"] for row in rows)
    total = sum(row["total_tokens"] for row in rows)
    seconds = result.probe.training_seconds()
    return {
        "steps": result.metrics["steps"],
        "wall_seconds": result.wall_seconds,
        "train_seconds": seconds,
        "real_tokens": real,
        "real_tokens_per_second": throughput(real, seconds),
        "total_tokens_per_second": throughput(total, seconds),
        "padding_share": 1 - real / total if total else float("nan"),
        "train_loss_final": result.metrics["train_loss_final"],
        "val_loss_base": result.metrics["val_loss_base"],
        "val_loss_final": result.metrics["val_loss_final"],
    }


def print_table(results: Sequence[RunResult]) -> dict[str, dict[str, float]]:
    figures = {result.name: summary(result) for result in results}
    print("| run | steps | wall s | train s | real tokens | real tokens/s | total tokens/s | padding | "
          "train loss (final) | val loss (base) | val loss (final) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row in figures.items():
        print(f"| {name} | {row['steps']} | {row['wall_seconds']:.1f} | {row['train_seconds']:.1f} | "
              f"{row['real_tokens']:,} | {row['real_tokens_per_second']:,.0f} | {row['total_tokens_per_second']:,.0f} | "
              f"{row['padding_share']:.1%} | {row['train_loss_final']:.4f} | {row['val_loss_base']:.4f} | "
              f"{row['val_loss_final']:.4f} |")
    return figures


def faster_per_real_token(figures: Mapping[str, Mapping[str, float]]) -> str:
    """One line naming the run with more real tokens per second, and by how much."""
    (first, a), (second, b) = figures.items()
    ordered = ((first, a), (second, b))
    fast, slow = ordered if a["real_tokens_per_second"] >= b["real_tokens_per_second"] else ordered[::-1]
    ratio = fast[1]["real_tokens_per_second"] / slow[1]["real_tokens_per_second"]
    return (f"faster per real token: {fast[0]} ({fast[1]['real_tokens_per_second']:,.0f} real tokens/s against "
            f"{slow[1]['real_tokens_per_second']:,.0f} for {slow[0]}, {ratio:.2f}x)")


def write_curves(results: Sequence[RunResult], out: Path) -> tuple[Path, Path]:
    """loss_curves.csv (one row per optimizer step, the runs side by side) and loss_curves.png."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    per_run = {}
    for result in results:
        seen, rows = 0, []
        for row in result.probe.rows():
            seen += row["real_tokens"]
            rows.append({**row, "real_tokens_seen": seen})
        per_run[result.name] = {row["step"]: row for row in rows}
    evals = {result.name: dict(result.eval_points) for result in results}
    steps = sorted(set().union(*per_run.values(), *evals.values()))

    csv_path = out / "loss_curves.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step"] + [f"{name}_{column}" for name in per_run
                                    for column in ("train_loss", "val_loss", "real_tokens_seen")])
        for step in steps:
            line: list[Any] = [step]
            for name, rows in per_run.items():
                row = rows.get(step)
                line += [f"{row['loss']:.6f}" if row else "", f"{evals[name][step]:.6f}" if step in evals[name] else "",
                         row["real_tokens_seen"] if row else ""]
            writer.writerow(line)

    figure, (by_step, by_tokens) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for (name, rows), colour in zip(per_run.items(), ("tab:blue", "tab:orange")):
        ordered = [rows[step] for step in sorted(rows)]
        by_step.plot([row["step"] for row in ordered], [row["loss"] for row in ordered], color=colour, label=f"{name}: train")
        by_tokens.plot([row["real_tokens_seen"] for row in ordered], [row["loss"] for row in ordered], color=colour,
                       label=f"{name}: train")
        points = sorted(evals[name].items())
        by_step.plot([step for step, _ in points], [loss for _, loss in points], "o--", color=colour, label=f"{name}: val")
    by_step.set(title="loss by optimizer step", xlabel="step", ylabel="loss")
    by_tokens.set(title="train loss by real (non-padding) tokens seen", xlabel="real tokens seen")
    for axes in (by_step, by_tokens):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    png_path = out / "loss_curves.png"
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return csv_path, png_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                        help=f"optimizer steps of each run (default {DEFAULT_MAX_STEPS}: about a minute for the "
                             "packed run on 2 cores)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for loss_curves.png and loss_curves.csv (default {DEFAULT_OUT})")
    parser.add_argument("--repo", type=Path, default=REPO, help="the repository whose pipeline outputs to read")
    parser.add_argument("--keep", action="store_true", help="keep the adapters and DVCLive curves (under --out/runs)")
    args = parser.parse_args(argv)
    if args.max_steps < 1:
        parser.error("--max-steps must be at least 1")

    repo = args.repo.resolve()
    missing = missing_inputs(repo)
    if missing:
        print(f"error: {missing[0].relative_to(repo)} not found; run `make repro` in {repo} to build the pipeline "
              f"outputs first", file=sys.stderr)
        return 2

    import torch

    workdir = args.out / "runs" if args.keep else Path(tempfile.mkdtemp(prefix="langfoundry-bench-training-"))
    try:
        # both runs in this process, one after the other: the second finds imports and caches warm, which the
        # wall seconds show and the training seconds (model loading and evaluations left out) mostly do not
        results = [run_training(name, packing, args.max_steps, repo, workdir)
                   for name, packing in (("padded", False), ("packed", True))]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"\nmachine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, device {device}; "
          f"params.yaml train section with max_steps={args.max_steps}, packing false/true")
    print()
    figures = print_table(results)
    print()
    print(faster_per_real_token(figures))
    print("real tokens: every non-padding token of the batches (prompt and answer); the loss covers the answers only "
          "(completion_only_loss). train s: inside train(), its evaluations left out.")
    print("val loss: the Trainer's mean of per-batch means, and packed runs evaluate on packed batches, so the same "
          "model scores differently under the two batchings: the val loss (base) column, one base model, shows by how much.")
    csv_path, png_path = write_curves(results, args.out)
    print(f"curves: {png_path} and {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
