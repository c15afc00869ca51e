"""Stage base: build the base model (a small one trained from scratch, or a pinned pretrained one) into models/base/."""

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.stage import run_stage
from langfoundry.core.timings import write_stage_metrics
from langfoundry.model.base import prepare_base
from langfoundry.model.vocab_extension import extend_base


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    train = paths.split_file("train")
    metrics = prepare_base(params.base, params.seed, train_path=train, out_dir=paths.base)
    if params.tokenizer.extend.enabled:
        metrics.update(extend_base(paths.base, train, params.tokenizer.extend,
                                   trust_remote_code=params.base.trust_remote_code))
    write_stage_metrics(paths.metric("base"), metrics)  # timings go to metrics/timings/base.json
    print(f"base: {metrics['source']} model, {metrics['parameters']:,} parameters, "
          f"vocabulary {metrics['vocab_size']}, {metrics['wall_seconds']:.1f} s")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__)
