"""Tiny chat examples and a tiny scratch base model, so model tests run in seconds."""

from __future__ import annotations

from pathlib import Path

from langfoundry.core.config import BaseParams, ScratchParams
from langfoundry.core.storage import write_jsonl

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
