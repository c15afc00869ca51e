"""Storage hygiene: cached outputs (models, DVCLive curves) stay out of git; checkpoints are adapter-only and few."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from langfoundry.reports import reproducibility

REPO = Path(__file__).resolve().parents[1]


def declared_outputs() -> list[tuple[str, bool]]:
    """(path, cached) for every output dvc.yaml declares, metrics and plots included."""
    return [(out.path, out.cached) for out in reproducibility.declared_outputs(REPO)]


def git_ignored(paths: list[str]) -> set[str]:
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.split())


def test_models_and_dvclive_are_cached_dvc_outputs() -> None:
    cached = {path for path, is_cached in declared_outputs() if is_cached}
    assert {"models/base", "models/adapter", "dvclive/train"} <= cached


def test_every_cached_output_is_ignored_by_git_and_every_uncached_one_is_not() -> None:
    outputs = declared_outputs()
    cached = [path for path, is_cached in outputs if is_cached]
    in_git = [path for path, is_cached in outputs if not is_cached]
    # a file inside each cached directory too: a pattern for the directory must cover what lies in it
    probes = cached + [f"{path}/model.safetensors" for path in cached]
    assert git_ignored(probes) == set(probes)
    assert not git_ignored(in_git), "metrics files (cache: false) belong in git"


def test_training_scratch_space_is_ignored() -> None:
    assert git_ignored(["models/.adapter-checkpoints/checkpoint-50/adapter_model.safetensors",
                        "models/.adapter.partial/adapter_model.safetensors"])


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_checkpoints_hold_only_the_adapter_and_respect_the_limit(tmp_path: Path) -> None:
    from tiny_models import build_tiny_base, write_examples
    from transformers import TrainerCallback

    from langfoundry.core.config import LoraParams, TrainParams
    from langfoundry.model.training import build_trainer

    write_examples(tmp_path)
    build_tiny_base(tmp_path / "base", tmp_path / "train.jsonl")
    params = TrainParams(lora=LoraParams(r=2, alpha=4, dropout=0.0), learning_rate=0.01, max_steps=8, batch_size=4,
                         gradient_accumulation=1, max_length=64, eval_steps=2, early_stopping_patience=10,
                         save_total_limit=1)
    seen: list[tuple[int, set[str], int]] = []
    adapter_sizes: list[int] = []

    class RecordCheckpoints(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            checkpoints = sorted(Path(args.output_dir).glob("checkpoint-*"))
            for checkpoint in checkpoints:
                adapter_sizes.append((checkpoint / "adapter_model.safetensors").stat().st_size)
                seen.append((state.global_step, {p.name for p in checkpoint.iterdir()}, len(checkpoints)))

    trainer = build_trainer(params, 13, tmp_path / "base", tmp_path / "train.jsonl", tmp_path / "val.jsonl",
                            live_dir=tmp_path / "live", checkpoint_dir=tmp_path / "checkpoints")
    trainer.add_callback(RecordCheckpoints())
    trainer.train()
    final = sorted((tmp_path / "checkpoints").glob("checkpoint-*"))
    seen.extend((8, {p.name for p in c.iterdir()}, len(final)) for c in final)
    assert seen, "early stopping needs checkpoints, so some were written"
    base_size = (tmp_path / "base" / "model.safetensors").stat().st_size
    assert max(adapter_sizes) < base_size / 5, "a checkpoint holds the LoRA weights, not the base model's"
    for step, names, count in seen:
        assert "adapter_model.safetensors" in names, (step, names)
        assert not names & {"model.safetensors", "pytorch_model.bin"}, (step, names)  # optimizer.pt: to resume
        # the limit, plus the best checkpoint when it is not the latest (the trainer never deletes the best)
        assert count <= params.save_total_limit + 1, (step, count)
