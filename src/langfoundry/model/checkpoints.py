"""Resuming a training run that was killed, and publishing its output whole or not at all.

Checkpoints live in a hidden sibling of the output (models/.adapter-checkpoints for models/adapter): not
part of any DVC output, which DVC deletes before it reruns a stage. A checkpoint is resumed only when the
run that wrote it had the same inputs (fingerprint.txt: parameters, seed, data, base model, library
versions); otherwise the folder is emptied and training starts over. A checkpoint counts once its
trainer_state.json, which transformers writes last, reads back whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FINGERPRINT = "fingerprint.txt"
# files up to this size are hashed; bigger ones (a pretrained model's weights) by size and modification time
HASH_LIMIT = 64 * 2**20
LIBRARIES = ("torch", "transformers", "peft", "trl", "accelerate")


def checkpoint_dir_for(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}-checkpoints"


def file_signature(path: Path) -> str:
    stat = path.stat()
    if stat.st_size > HASH_LIMIT:
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(settings: str, inputs: Iterable[str | Path]) -> str:
    """A hash of the settings text, the input files (a folder: every file in it) and the library versions."""
    digest = hashlib.sha256(settings.encode())
    for library in LIBRARIES:
        digest.update(f"{library}={version(library)}\n".encode())
    for item in inputs:
        item = Path(item)
        files = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for path in files:
            if path.exists():
                digest.update(f"{path.relative_to(item) if item.is_dir() else path.name}={file_signature(path)}\n".encode())
    return digest.hexdigest()


def checkpoint_step(path: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (checkpoint / "rng_state.pth").exists()


def last_complete_checkpoint(checkpoint_dir: Path) -> Path | None:
    candidates = sorted((p for p in checkpoint_dir.glob("checkpoint-*") if checkpoint_step(p) >= 0), key=checkpoint_step)
    return next((p for p in reversed(candidates) if is_complete(p)), None)


def checkpoint_tokens(checkpoint: Path | None) -> int:
    """The input tokens trained on up to checkpoint (0 for none)."""
    if checkpoint is None:
        return 0
    return json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("num_input_tokens_seen", 0)


def restore_token_counter(trainer, checkpoint: Path) -> None:
    """TRL counts the tokens it trained on (its `num_tokens` curve) in the trainer, not in the checkpoint's
    state: set the count back to the last training log of the checkpoint, or the resumed curve would restart."""
    history = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("log_history", [])
    counts = [entry["num_tokens"] for entry in history if "num_tokens" in entry and "loss" in entry]
    if counts and hasattr(trainer, "_total_train_tokens"):
        trainer._total_train_tokens = counts[-1]


def mean_train_loss(log_history: list[dict[str, Any]], call_mean: float, start_step: int, end_step: int) -> float:
    """The mean loss per step of the whole run: a resumed call's mean covers only its own steps, so the
    steps before the checkpoint come from the logged losses (every checkpoint falls on a logged step)."""
    if start_step == 0:
        return call_mean
    before, previous = 0.0, 0
    for entry in log_history:
        if "loss" in entry and entry["step"] <= start_step:
            before += entry["loss"] * (entry["step"] - previous)
            previous = entry["step"]
    return (before + call_mean * (end_step - start_step)) / end_step


def resumable_checkpoint(checkpoint_dir: str | Path, stamp: str) -> Path | None:
    """The last complete checkpoint of a run with this fingerprint, if any (reads only)."""
    checkpoint_dir = Path(checkpoint_dir)
    stamp_path = checkpoint_dir / FINGERPRINT
    if not stamp_path.exists() or stamp_path.read_text(encoding="utf-8") != stamp:
        return None
    return last_complete_checkpoint(checkpoint_dir)


def reset_stale_checkpoints(checkpoint_dir: str | Path, stamp: str) -> None:
    """Unless there is a checkpoint to resume, empty the folder and stamp it with this run's fingerprint."""
    checkpoint_dir = Path(checkpoint_dir)
    if resumable_checkpoint(checkpoint_dir, stamp) is not None:
        return
    if (checkpoint_dir / FINGERPRINT).exists():
        log.info("%s: checkpoints of a run with other inputs or none complete; starting over", checkpoint_dir)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    checkpoint_dir.mkdir(parents=True)
    (checkpoint_dir / FINGERPRINT).write_text(stamp, encoding="utf-8")


def staging_dir_for(out_dir: str | Path) -> Path:
    """Where the output is written before `publish` renames it into place (emptied here)."""
    out_dir = Path(out_dir)
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def publish(staging: Path, out_dir: str | Path) -> None:
    """Replace out_dir by staging with renames: a kill leaves the old output or none, never half of one."""
    out_dir = Path(out_dir)
    old = out_dir.parent / f".{out_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
