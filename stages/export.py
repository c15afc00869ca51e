"""Stage export: the adapter merged into the base (models/merged/, with its model card), GGUF files (models/gguf/)
and their read-back agreement with the merged model (metrics/export.json)."""

import shutil
import time

from langfoundry.core.config import Params, PathsParams, load_sources
from langfoundry.core.errors import UserError
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import read_jsonl, write_metrics
from langfoundry.model.determinism import pin_threads
from langfoundry.model.progress import quiet_library_output
from langfoundry.model.scoring import select_examples
from langfoundry.release.gguf_export import write_gguf
from langfoundry.release.gguf_readback import compare_gguf_files
from langfoundry.release.merge import merge_adapter
from langfoundry.release.model_card import CardInputs, card_license, language_tags, read_json, render_model_card, used_sources

CHECK_PROMPTS = 4  # test prompts on which merged and base+adapter logits must agree


def main(params: Params, paths: PathsParams | None = None) -> dict:
    started = time.perf_counter()
    paths = paths or params.paths
    test = paths.split_file("test")
    if not test.exists():
        raise UserError(f"{test}: not found; run the format stage first (dvc repro format)")
    examples = select_examples(read_jsonl(test), params.evaluate.max_examples, params.seed)
    sources = used_sources(load_sources(paths.sources).sources)
    pin_threads()  # the thread count of the other model stages: the same sums, so the same greedy answers
    quiet_library_output()
    merged = merge_adapter(paths.base, paths.adapter, paths.merged, examples[:CHECK_PROMPTS])
    shutil.rmtree(paths.gguf, ignore_errors=True)  # a type dropped from export.gguf_types must not leave its file behind
    gguf_files = {file_type: write_gguf(paths.merged, paths.gguf / f"model-{file_type}.gguf", file_type, params.export.model_name,
                                        license=card_license(sources, params.export.license), languages=language_tags(sources))
                  for file_type in params.export.gguf_types}
    readback = compare_gguf_files(merged.model, merged.tokenizer, {kind: file.path for kind, file in gguf_files.items()},
                                  examples, params.evaluate)
    for kind, file in gguf_files.items():
        readback[kind].update(file=file.path.name, bytes=file.bytes, tensor_types=file.tensor_types)
    metrics = {**readback, "merged": {**readback["merged"], "max_logit_difference": merged.max_logit_difference,
                                      "parameters": merged.parameters}}
    flat = write_metrics(paths.metric("export"), metrics)

    config = merged.model.config
    card = render_model_card(CardInputs(
        model_name=params.export.model_name, base=params.base, sources=sources, license=params.export.license,
        model_facts={"architecture": config.model_type, "parameters": merged.parameters, "hidden_size": config.hidden_size,
                     "layers": config.num_hidden_layers, "vocab_size": len(merged.tokenizer)},
        adapter_config=read_json(paths.adapter / "adapter_config.json"), train=read_json(paths.metric("train")),
        evaluation=read_json(paths.metric("eval")), release=read_json(paths.metric("release")),
        gguf={kind: readback[kind] for kind in gguf_files}))
    (paths.merged / "README.md").write_text(card, encoding="utf-8")

    print(f"merged: {paths.merged} ({merged.parameters:,} parameters), logits within {merged.max_logit_difference:.1e} "
          f"of base+adapter, chrF {readback['merged']['chrf']:.2f} on {readback['n_prompts']} test prompts")
    for kind, file in gguf_files.items():
        result = readback[kind]
        target = result["agreement_target"]
        verdict = "" if result["agreement"] >= target else f" BELOW the {target:.0%} target"
        print(f"{file.path}: {file.bytes:,} bytes, identical greedy answers {result['agreement']:.1%}{verdict}, "
              f"chrF delta {result['chrf_delta']:+.2f}")
    print(f"export: {time.perf_counter() - started:.1f} s")
    return flat


if __name__ == "__main__":
    run_stage(main, __doc__)
