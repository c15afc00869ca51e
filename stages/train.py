"""Stage train: LoRA supervised fine-tuning of models/base on the training set into models/adapter/."""

import argparse
import logging

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.reports.retrain import data_version
from langfoundry.core.timings import write_stage_metrics
from langfoundry.model.training import train_adapter


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_params()
    metrics = train_adapter(
        params.train,
        params.seed,
        base_dir="models/base",
        train_path="data/processed/train.jsonl",
        val_path="data/processed/val.jsonl",
        out_dir="models/adapter",
        live_dir="dvclive/train",
        trust_remote_code=params.base.trust_remote_code,  # a custom architecture saved by the base stage
    )
    if not metrics.pop("main_process"):
        return
    metrics.update(data_version())  # the data this adapter learnt from; stages/retrain.py compares with it
    write_stage_metrics("metrics/train.json", metrics)  # timings go to metrics/timings/train.json
    print(f"train: {metrics['steps']} steps, train loss {metrics['train_loss_final']:.4f}, "
          f"val loss {metrics['val_loss_final']:.4f}, {metrics['train_tokens_per_second']:.0f} tokens/s, "
          f"{metrics['wall_seconds']:.1f} s")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
