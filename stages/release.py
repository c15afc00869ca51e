"""Stage release: the release gate on what evaluate measured -> metrics/release.json, reports/release.md.

A failing gate is a result, not an error: the stage exits 0 and says which criteria failed; the
registry refuses to promote a candidate whose decision is "fail".
"""

import json
from pathlib import Path

from langfoundry.core.config import Params, PathsParams
from langfoundry.core.errors import UserError
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import ensure_parent, read_jsonl
from langfoundry.release.gate import CANDIDATE, GateInputs, GeneralPerplexity, render_report, run_gate, summary_lines
from langfoundry.release.preference import read_preference
from langfoundry.reports.retrain import file_sha256

PERPLEXITY_BATCH = 32  # fixed, not evaluate.batch_size: this stage's outputs depend only on the release params


def pivot_languages(test_path: Path) -> list[str]:
    """The pivot languages the test examples translate from and into."""
    pivots = sorted({example["pivot_lang"] for example in read_jsonl(test_path) if example.get("pivot_lang")})
    if not pivots:
        raise UserError(f"{test_path}: no example names a pivot_lang, so there is no pivot language to check general "
                        f"text in; rerun the format stage on records that have a pivot (dvc repro format)")
    return pivots


def read_scores(path: Path) -> dict:
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err}); rerun the evaluate stage (dvc repro evaluate)") from err
    if not isinstance(scores, dict):
        raise UserError(f"{path}: expected a JSON object of flat metrics; rerun the evaluate stage (dvc repro evaluate)")
    return scores


def general_sentences(general_dir: Path, pivot: str) -> list[str]:
    path = general_dir / f"{pivot}.txt"
    hint = (f"put 80-120 everyday sentences in language {pivot!r} there, one per line (UTF-8), "
            f"none taken from the training data")
    if not path.is_file():
        raise UserError(f"{path}: not found; {hint}")
    sentences = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not sentences:
        raise UserError(f"{path}: no sentences; {hint}")
    return sentences


def general_perplexities(base: Path, adapter: Path, texts: dict[str, list[str]],
                         sources: dict[str, str]) -> list[GeneralPerplexity]:
    """Perplexity of the base model, then of the base with the adapter attached, on each pivot's general text."""
    from langfoundry.model.determinism import pin_threads
    from langfoundry.model.evaluation import attach_adapter, load_base, load_tokenizer, perplexities, token_nll
    from langfoundry.model.progress import quiet_library_output

    quiet_library_output()
    pin_threads()  # the thread count the other model stages use: the same sums, so the same perplexities
    pairs = [(pivot, sentence) for pivot, sentences in texts.items() for sentence in sentences]
    scores: dict[str, dict[str, float]] = {}
    model = load_base(base)
    for name in ("base", "adapter"):
        if name == "adapter":
            model = attach_adapter(model, adapter)  # wraps the base in place, so the base is measured first
        # the tokenizer evaluate uses for each model (the adapter saves one when training extended it)
        tokenizer = load_tokenizer(adapter if name == "adapter" and (adapter / "tokenizer_config.json").exists() else base)
        nll = token_nll(model, tokenizer, [sentence for _, sentence in pairs], PERPLEXITY_BATCH, desc=f"{name}: general text")
        scores[name] = perplexities(pairs, nll)
    return [GeneralPerplexity(pivot, scores["base"][f"lang.{pivot}.perplexity"], scores["adapter"][f"lang.{pivot}.perplexity"],
                              len(texts[pivot]), sources[pivot]) for pivot in texts]


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    eval_path, predictions_path, test_path = paths.metric("eval"), paths.reports / "predictions.jsonl", paths.split_file("test")
    for path, stage in ((eval_path, "evaluate"), (predictions_path, "evaluate"), (test_path, "format"),
                        (paths.base, "base"), (paths.adapter, "train")):
        if not path.exists():
            raise UserError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})")
    texts = {pivot: general_sentences(paths.general, pivot) for pivot in pivot_languages(test_path)}
    preference_path = paths.metric("preference")
    # every file read and checked before the models load, so a bad one stops the stage at once
    scores = read_scores(eval_path)
    outputs = [row for row in read_jsonl(predictions_path) if row.get("model") == CANDIDATE]
    preference = read_preference(preference_path) if preference_path.exists() else None
    general = general_perplexities(paths.base, paths.adapter, texts,
                                   {pivot: (paths.general / f"{pivot}.txt").as_posix() for pivot in texts})
    inputs = GateInputs(scores=scores, outputs=outputs, general=general, preference=preference,
                        scores_path=eval_path.as_posix(), preference_path=preference_path.as_posix(),
                        predictions_sha256=file_sha256(predictions_path))
    decision, results = run_gate(params.release, inputs)
    ensure_parent(paths.metric("release")).write_text(json.dumps(decision, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    ensure_parent(paths.reports / "release.md").write_text(render_report(decision), encoding="utf-8")
    print("\n".join(summary_lines(decision, results)))
    return decision


if __name__ == "__main__":
    run_stage(main, __doc__)
