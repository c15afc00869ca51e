"""Tiny chat examples, a tiny scratch base model and a tiny LoRA training, so model tests run in seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from langfoundry.core.config import BaseParams, LoraParams, ScratchParams, TrainParams
from langfoundry.core.storage import write_jsonl

TESTS = Path(__file__).resolve().parent

# Banyumasan headwords with Indonesian glosses, plus non-Latin scripts so the tokenizer sees them.
PAIRS = [
    ("abot", "berat"), ("abrit", "merah"), ("abuh", "bengkak"), ("adhem", "dingin"), ("aja", "jangan"),
    ("amba", "lebar"), ("angel", "sulit"), ("anyar", "baru"), ("apik", "bagus"), ("bocah", "anak"),
    ("dhuwur", "tinggi"), ("enteng", "ringan"), ("gedhe", "besar"), ("inyong", "saya"), ("kepriwe", "bagaimana"),
    ("mangan", "makan"), ("ngombe", "minum"), ("rika", "kamu"), ("turu", "tidur"), ("wedang", "minuman"),
    ("കടൽ", "laut"), ("ߞߊ߲", "bahasa"), ("café", "kedai kopi"),
]

TINY_SCRATCH = ScratchParams(
    vocab_size=300, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_length=32,
    steps=40, batch_size=8, learning_rate=0.01,
)

TINY_TRAIN = TrainParams(
    lora=LoraParams(r=4, alpha=8, dropout=0.0), learning_rate=0.01, max_steps=6, batch_size=4, max_length=64,
    eval_steps=3, early_stopping_patience=1, gradient_accumulation=1,
)


def example(source: str, target: str) -> dict:
    prompt = f"Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\n{source}"
    return {
        "id": f"{source}-{target}", "record_id": source, "task": "translate_to_pivot", "lang": "jv-x-banyumas",
        "pivot_lang": "id", "source": "tiny", "group": source,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": target}],
        "source_text": source, "reference": target,
    }


def write_examples(directory: Path) -> tuple[Path, Path]:
    """train.jsonl (20 examples) and val.jsonl (the rest) under directory."""
    rows = [example(source, target) for source, target in PAIRS]
    train, val = directory / "train.jsonl", directory / "val.jsonl"
    write_jsonl(rows[:20], train)
    write_jsonl(rows[20:], val)
    return train, val


def build_tiny_base(directory: Path, train_path: Path, seed: int = 13, **overrides) -> dict:
    """A scratch base model trained for a few steps, saved to directory; returns the base metrics."""
    from langfoundry.model.base import prepare_base

    scratch = TINY_SCRATCH.model_copy(update=overrides)
    return prepare_base(BaseParams(model="scratch", scratch=scratch), seed, train_path, directory)


def train_tiny_adapter(root: Path, params: TrainParams = TINY_TRAIN, name: str = "adapter", seed: int = 13) -> dict:
    """A LoRA adapter on root/base from root/train.jsonl and root/val.jsonl into root/<name> (curves: root/<name>-live)."""
    from langfoundry.model.training import train_adapter

    return train_adapter(params, seed, root / "base", root / "train.jsonl", root / "val.jsonl",
                         out_dir=root / name, live_dir=root / f"{name}-live")


def run_tiny_pipeline(root: Path, train: TrainParams = TINY_TRAIN, **base_overrides) -> None:
    """Examples, a scratch base and a LoRA adapter under root, as the base and train stages make them."""
    root.mkdir(parents=True, exist_ok=True)
    write_examples(root)
    build_tiny_base(root / "base", root / "train.jsonl", **base_overrides)
    train_tiny_adapter(root, train)


def python_command(statement: str) -> list[str]:
    """`python -c` running statement after `import tiny_models`, with logging on as run_stage sets it."""
    prologue = ("import logging, tiny_models; from pathlib import Path; "
                "logging.basicConfig(level=logging.INFO, format='%(message)s'); ")
    return [sys.executable, "-c", prologue + statement]


def subprocess_env(**overrides: str) -> dict[str, str]:
    """This environment with the tests importable and overrides applied (a value of "" removes the variable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env["TOKENIZERS_PARALLELISM"] = "false"
    for key, value in overrides.items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env
