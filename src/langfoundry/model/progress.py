"""Training progress a person can read: one tqdm bar on a terminal, else a plain line every few steps.

Under `dvc repro` (or in CI) the output is a log, not a screen: carriage-return bars and raw log
dictionaries turn it into noise, so there each line stands alone, e.g.
`train step 50/150 (33%)  loss 3.0123  4,081 tokens/s  elapsed 0:12  left 0:24`.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

# about this many progress lines per run when not on a terminal
LINES_PER_RUN = 20


def lines_every(total_steps: int, multiple_of: int = 1) -> int:
    """The step interval that prints about LINES_PER_RUN lines, a multiple of multiple_of (where a loss is known)."""
    multiple_of = max(1, multiple_of)
    wanted = max(1, math.ceil(total_steps / LINES_PER_RUN))
    return math.ceil(wanted / multiple_of) * multiple_of


def clock(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def quiet_library_output() -> None:
    """Turn off the libraries' own bars (loading weights, writing shards, tokenizing the examples) and their
    deprecation chatter, so that progress is ours alone: one bar, or plain lines."""
    import logging
    import warnings

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules:  # loaded by TRL for training; not worth importing for the base stage
        sys.modules["datasets"].disable_progress_bars()
    if not sys.stderr.isatty():  # a download's bar is worth watching on a terminal, not in a log
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # its INFO notes on gathering evaluation batches
    # PEFT and TRL call a transformers method renamed in v5; nothing a user of this pipeline can act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def write_line(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


class Progress:
    """Progress of one training loop from step `start` to `total`; `update` after each step."""

    def __init__(self, label: str, total: int, start: int = 0, every: int | None = None,
                 stream: TextIO | None = None, tokens_at_start: int = 0, unit: str = "step") -> None:
        self.label, self.total, self.start, self.unit = label, total, start, unit
        self.every = every or lines_every(total)
        self.stream = stream or sys.stderr
        self.tokens_at_start = tokens_at_start
        self.started = time.perf_counter()
        self.last_printed = -1
        self.bar = None
        if self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=label, unit=unit, file=self.stream, dynamic_ncols=True)

    def line(self, step: int, loss: float | None, tokens: int | None, final: bool = False) -> str:
        elapsed = time.perf_counter() - self.started
        done = step - self.start
        parts = [f"{self.label} {self.unit} {step}/{self.total} ({100 * step / max(1, self.total):.0f}%)"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if tokens is not None and elapsed > 0:
            parts.append(f"{(tokens - self.tokens_at_start) / elapsed:,.0f} tokens/s")
        left = 0.0 if final else elapsed / done * (self.total - step) if done > 0 else math.nan
        parts += [f"elapsed {clock(elapsed)}", f"left {clock(left)}"]
        return "  ".join(parts)

    def update(self, step: int, loss: float | None = None, tokens: int | None = None, final: bool = False) -> None:
        """Step `step` is done: move the bar, or print a line on a printing step or the final one (which may come
        early: early stopping)."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if loss is not None:
                self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            return
        if step == self.last_printed or not (final or step % self.every == 0 or step == self.total):
            return
        self.last_printed = step
        self.note(self.line(step, loss, tokens, final))

    def note(self, text: str) -> None:
        """A line of its own (an evaluation's loss, say), above the bar on a terminal."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            write_line(self.stream, text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_callback(label: str = "train", stream: TextIO | None = None):
    """A Trainer callback that reports progress through `Progress` (transformers' printer and bars removed)."""
    from transformers import TrainerCallback

    class ReadableProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.loss: float | None = None
            self.trained = False

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                every = lines_every(state.max_steps, state.logging_steps or 1)
                self.progress = Progress(label, state.max_steps, start=state.global_step, every=every, stream=stream,
                                         tokens_at_start=state.num_input_tokens_seen)

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None and self.progress.bar is not None:
                self.progress.update(state.global_step, self.loss)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if not state.is_world_process_zero:
                return
            if isinstance(logs.get("loss"), (int, float)):
                self.loss = float(logs["loss"])
                if self.progress is not None:
                    self.progress.update(state.global_step, self.loss, state.num_input_tokens_seen)
            if isinstance(logs.get("eval_loss"), (int, float)):
                loss = f"val loss {logs['eval_loss']:.4f}"
                if self.progress is not None:
                    self.progress.note(f"{label} step {state.global_step}: {loss}")
                else:  # an evaluation outside training
                    write_line(stream or sys.stderr, f"{label}: {loss} {'after' if self.trained else 'before'} training")

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(state.global_step, self.loss, state.num_input_tokens_seen, final=True)
                if state.global_step < state.max_steps:
                    self.progress.note(f"{label}: stopped early at step {state.global_step}: the val loss stopped improving")
                self.progress.close()
                self.progress = None
            self.trained = True

    return ReadableProgress()
