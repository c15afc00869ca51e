"""Stage base: build the base model (a small one trained from scratch, or a pinned pretrained one) into models/base/."""

import argparse
import logging

from langfoundry.core.config import load_params
from langfoundry.core.errors import stage_entry
from langfoundry.model.base import prepare_base
from langfoundry.core.timings import write_stage_metrics
from langfoundry.model.vocab_extension import extend_base


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_params()
    metrics = prepare_base(params.base, params.seed, train_path="data/processed/train.jsonl", out_dir="models/base")
    if params.tokenizer.extend.enabled:
        metrics.update(extend_base("models/base", "data/processed/train.jsonl", params.tokenizer.extend,
                                   trust_remote_code=params.base.trust_remote_code))
    write_stage_metrics("metrics/base.json", metrics)  # timings go to metrics/timings/base.json
    print(f"base: {metrics['source']} model, {metrics['parameters']:,} parameters, "
          f"vocabulary {metrics['vocab_size']}, {metrics['wall_seconds']:.1f} s")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
