"""Stage format: split records -> data/processed/{train,val,test}.jsonl chat examples and metrics/format.json."""

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import read_records
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_jsonl, write_metrics
from langfoundry.data.chat import format_metrics
from langfoundry.data.formatting import format_dataset
from langfoundry.gates.early import early_gate
from langfoundry.gates.gate import gate as run_gate
from langfoundry.gates.streamed import processed_gate_tables


def categories(params: Params, paths: PathsParams) -> dict[str, str | None] | None:
    """Source id -> category from sources.yaml, read only when format.mix needs it."""
    mix = params.format.mix
    if not mix.shares or (mix.by == "source" and not paths.sources.exists()):
        return None
    return {source.id: source.category for source in load_sources(paths.sources).sources}


def main(params: Params, paths: PathsParams | None = None, gate: bool = True) -> dict:
    paths = paths or params.paths
    synthesize = params.synthesize
    with early_gate(gate) as early:  # Great Expectations imports in a process of its own while format works
        table = read_records(paths.split, made_by="split")
        result = format_dataset(table, params.format, params.seed, where=str(paths.split),
                                categories=categories(params, paths), require_review=synthesize.require_review,
                                max_synthetic_share=synthesize.max_share)
        for split, examples in result.examples.items():
            write_jsonl(examples, paths.split_file(split))
        metrics = write_metrics(paths.metric("format"), format_metrics(result))
        print(" ".join(f"{split}={metrics[f'{split}.examples']}" for split in result.examples))
        if early is not None:  # every example is a well-formed chat; the gate names the origin of any that is not
            files = {split: paths.split_file(split) for split in result.examples}
            with processed_gate_tables(files, paths.split) as tables:
                run_gate("processed", tables, params, load_inventory(paths.inventory), paths, early)
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, gated=True)
