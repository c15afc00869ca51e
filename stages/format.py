"""Stage format: split records -> data/processed/{train,val,test}.jsonl chat examples and metrics/format.json;
labelled records -> data/processed/classification/<task>/{train,val,test}.jsonl."""

import shutil

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import read_records
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import write_jsonl, write_metrics
from langfoundry.data.chat import format_metrics
from langfoundry.data.classification import (
    classification_metrics,
    classification_sets,
    label_table,
    summary_line,
    write_classification_sets,
)
from langfoundry.data.formatting import format_dataset
from langfoundry.gates.early import early_gate
from langfoundry.gates.gate import QUALITY
from langfoundry.gates.gate import gate as run_gate
from langfoundry.gates.streamed import processed_gate_tables
from langfoundry.gates.tables import GateTables


def categories(params: Params, paths: PathsParams) -> dict[str, str | None] | None:
    """Source id -> category from sources.yaml, read only when format.mix needs it."""
    mix = params.format.mix
    if not mix.shares or (mix.by == "source" and not paths.sources.exists()):
        return None
    return {source.id: source.category for source in load_sources(paths.sources).sources}


def skip_gate(name: str, paths: PathsParams, reason: str) -> None:
    """A gate with nothing to check this run: its report says why and its metrics count nothing, so the
    stage's declared outputs exist, and a later run that has something to check shows as a change."""
    site = paths.reports / QUALITY / name
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    (site / "README.txt").write_text(f"gate {name}: not run ({reason})\n", encoding="utf-8")
    write_metrics(paths.metrics / QUALITY / f"{name}.json",
                  {"expectations": {"evaluated": 0, "passed": 0, "failed": 0}, "rows": 0, "sources": 0})
    print(f"gate {name}: nothing to check ({reason})")


def main(params: Params, paths: PathsParams | None = None, gate: bool = True) -> dict:
    paths = paths or params.paths
    synthesize = params.synthesize
    with early_gate(gate, paths.expectations) as early:  # Great Expectations imports in a process of its own while format works
        table = read_records(paths.split, made_by="split")
        result = format_dataset(table, params.format, params.seed, where=str(paths.split),
                                categories=categories(params, paths), require_review=synthesize.require_review,
                                max_synthetic_share=synthesize.max_share)
        for split, examples in result.examples.items():
            write_jsonl(examples, paths.split_file(split))
        labelled = classification_sets(table)
        write_classification_sets(labelled, paths.processed)
        metrics = write_metrics(paths.metric("format"), format_metrics(result) | classification_metrics(labelled))
        print(" ".join(f"{split}={metrics[f'{split}.examples']}" for split in result.examples))
        if labelled:
            print(summary_line(labelled))
        if early is not None:  # every example is a well-formed chat; the gate names the origin of any that is not
            inventory = load_inventory(paths.inventory)
            files = {split: paths.split_file(split) for split in result.examples}
            with processed_gate_tables(files, paths.split) as tables:
                run_gate("processed", tables, params, inventory, paths, early)
            if labelled:  # enough training rows per label, and each label tested; here, as the early gate answers once
                labels = GateTables(label_table(labelled), row_keys=("task", "label"), sorted_by=("task", "label"))
                run_gate("classification", labels, params, inventory, paths)
            else:
                skip_gate("classification", paths, "no labelled source")
    return metrics


if __name__ == "__main__":
    run_stage(main, __doc__, gated=True, pandas=False)
