"""Stage train: LoRA supervised fine-tuning of models/base on the training set into models/adapter/."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.stage import run_stage
from langfoundry.core.timings import write_stage_metrics
from langfoundry.model.training import train_adapter
from langfoundry.reports.retrain import data_version


def main(params: Params, paths: PathsParams | None = None) -> dict | None:
    paths = paths or params.paths
    metrics = train_adapter(
        params.train,
        params.seed,
        base_dir=paths.base,
        train_path=paths.split_file("train"),
        val_path=paths.split_file("val"),
        out_dir=paths.adapter,
        live_dir=paths.live,
        trust_remote_code=params.base.trust_remote_code,  # a custom architecture saved by the base stage
    )
    if not metrics.pop("main_process"):
        return None
    # the data this adapter learnt from; stages/retrain.py compares with it
    metrics.update(data_version(paths.clean, paths.split_file("train")))
    write_stage_metrics(paths.metric("train"), metrics)  # timings go to metrics/timings/train.json
    print(f"train: {metrics['steps']} steps, train loss {metrics['train_loss_final']:.4f}, "
          f"val loss {metrics['val_loss_final']:.4f}, {metrics['train_tokens_per_second']:.0f} tokens/s, "
          f"{metrics['wall_seconds']:.1f} s")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
