"""The release gate: each criterion at its threshold, the decision, release.json read back, and the stage run on
the default pipeline's outputs."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from langfoundry.core.config import ReleaseParams, load_params
from langfoundry.core.errors import UserError
from langfoundry.release.gate import (
    CriterionResult,
    CriticalErrors,
    GateInputs,
    GeneralPerplexity,
    GeneralRegression,
    HumanPreference,
    RelativeGain,
    blocked_terms,
    decide,
    failed_criteria,
    load_decision,
    render_report,
    run_gate,
    term_pattern,
)
from langfoundry.release.preference import preference_metrics

REPO = Path(__file__).resolve().parents[1]
TASKS = ["translate_to_pivot", "translate_from_pivot"]


def scores(base: dict[str, float], adapter: dict[str, float], metric: str = "chrf") -> dict[str, float]:
    """eval.json keys for per-task scores: {"translate_to_pivot": 10.0} -> {"base.translate_to_pivot.chrf": 10.0}."""
    flat = {f"base.{task}.{metric}": value for task, value in base.items()}
    flat.update({f"adapter.{task}.{metric}": value for task, value in adapter.items()})
    return flat


def outputs(*hypotheses: str | None) -> list[dict]:
    return [{"id": f"ex{index}", "model": "adapter", "hypothesis": text} for index, text in enumerate(hypotheses)]


def inputs(**overrides) -> GateInputs:
    """Inputs on which every criterion passes at the default ReleaseParams, with some of them replaced."""
    values = {"scores": scores({task: 10.0 for task in TASKS}, {task: 13.0 for task in TASKS}),
              "outputs": outputs("berat", "merah"),
              "general": [GeneralPerplexity("id", base=100.0, adapter=101.0, sentences=3, source="data/general/id.txt")],
              "preference": preference_metrics(["candidate"] * 30, "adapter", "base", 0.95)}
    return GateInputs(**{**values, **overrides})


def gain(threshold: float = 0.2, tasks: list[str] = TASKS, metric: str = "chrf") -> RelativeGain:
    return RelativeGain(metric=metric, tasks=tasks, min_relative_gain=threshold)


# --- relative_gain ---------------------------------------------------------------------------------------------


# 1.2 over 1.0 is 0.19999999999999996 in floating point: the threshold itself must still pass
@pytest.mark.parametrize(("adapter", "status"), [(1.2, "pass"), (1.199, "fail"), (0.9, "fail"), (3.0, "pass")])
def test_relative_gain_passes_from_its_threshold_on(adapter, status):
    result = gain(0.2).check(inputs(scores=scores({task: 1.0 for task in TASKS}, {task: adapter for task in TASKS})))
    assert result.status == status
    assert result.value == pytest.approx(adapter - 1.0)


def test_relative_gain_averages_the_tasks_before_comparing():
    # 4 -> 6 and 16 -> 18: the means go 10 -> 12, +20%; the mean of the two gains (+50%, +12.5%) would be +31%
    result = gain(0.25).check(inputs(scores=scores({"translate_to_pivot": 4.0, "translate_from_pivot": 16.0},
                                                   {"translate_to_pivot": 6.0, "translate_from_pivot": 18.0})))
    assert result.value == pytest.approx(0.2) and result.status == "fail"
    assert "translate_to_pivot, translate_from_pivot" in result.detail


def test_relative_gain_uses_the_tasks_that_exist_and_says_which_are_missing():
    result = gain(0.2).check(inputs(scores=scores({"translate_to_pivot": 10.0}, {"translate_to_pivot": 11.0})))
    assert result.value == pytest.approx(0.1) and result.status == "fail"
    assert "translate_from_pivot has no chrF score" in result.detail


def test_relative_gain_falls_back_to_the_all_task_score_when_no_task_has_one():
    result = gain(0.2).check(inputs(scores={"base.chrf": 8.0, "adapter.chrf": 10.0}))
    assert result.value == pytest.approx(0.25) and result.status == "pass"
    assert "all tasks" in result.detail and "none of translate_to_pivot, translate_from_pivot" in result.detail


def test_relative_gain_without_any_score_names_the_file_and_the_tasks_that_have_one():
    eval_scores = scores({"vocabulary": 1.0}, {"vocabulary": 1.0}, metric="exact_match")
    with pytest.raises(UserError, match=r"metrics/eval.json: no base and adapter exact match scores.*\(vocabulary\)"):
        gain(metric="exact_match").check(inputs(scores=eval_scores))


@pytest.mark.parametrize(("adapter", "threshold", "status", "value"),
                         [(3.0, 0.2, "pass", None), (0.0, 0.2, "fail", 0.0), (0.0, 0.0, "pass", 0.0)])
def test_a_zero_base_score_is_no_division(adapter, threshold, status, value):
    result = gain(threshold).check(inputs(scores=scores({task: 0.0 for task in TASKS}, {task: adapter for task in TASKS})))
    assert (result.status, result.value) == (status, value)
    assert "base scores 0" in result.detail


# --- general_regression ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("adapter", "status"), [(1.05, "pass"), (1.0501, "fail"), (0.8, "pass")])
def test_general_regression_allows_a_rise_up_to_its_threshold(adapter, status):
    general = [GeneralPerplexity("id", 1.0, adapter, 10, "data/general/id.txt")]  # 1.05 - 1.0 is 0.050000000000000044
    result = GeneralRegression("perplexity", 0.05).check(inputs(general=general))
    assert result.status == status and result.value == pytest.approx(adapter - 1.0)
    assert "data/general/id.txt" in result.detail


def test_general_regression_judges_the_worst_pivot():
    general = [GeneralPerplexity("id", 100.0, 90.0, 10, "data/general/id.txt"),
               GeneralPerplexity("en", 50.0, 60.0, 10, "data/general/en.txt")]
    result = GeneralRegression("perplexity", 0.05).check(inputs(general=general))
    assert result.status == "fail" and result.value == pytest.approx(0.2)
    assert result.shortfall == "en +20.0% > +5.0%"


# --- critical_errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("term", "text", "found"), [
    ("bodoh", "Dasar BODOH!", True),  # case-insensitive
    ("ass", "a first-class answer", False),  # whole words: not inside another word
    ("ass", "you ass.", True),
    ("kurang ajar", "dasar kurang   ajar", True),  # any run of spaces between a term's words
    ("f*ck", "what the F*CK", True),  # a term ending in punctuation matches without a word edge there
    ("café", "cafe\u0301 tutup", True),  # decomposed é in the output matches composed é in the term
    ("ജി", "ജിക്ക് വന്നു", False),  # a vowel sign ends the term: the word goes on, so no match
    ("馬鹿", "お前は馬鹿だ", True),  # Japanese spaces no words: anywhere
    ("ควาย", "เขาเป็นควายจริงๆ", True),  # Thai likewise
])
def test_blocklist_terms_match_whole_words_regardless_of_case(term, text, found):
    assert blocked_terms(text, {term: term_pattern(term)}) == ([term] if found else [])


def test_an_empty_blocklist_term_is_a_user_error():
    with pytest.raises(UserError, match="release.blocklist has an empty term"):
        term_pattern("  ")


def test_a_blocklisted_output_fails_and_names_the_example():
    result = CriticalErrors(blocklist=["bodoh"], max_empty_share=0.0).check(inputs(outputs=outputs("berat", "Bodoh sekali")))
    assert result.status == "fail" and result.extra["blocklist_hits"] == 1
    assert "ex1 'bodoh'" in result.detail and result.shortfall == "1 outputs with blocklisted terms"


@pytest.mark.parametrize(("max_share", "status"), [(0.0, "fail"), (0.25, "fail"), (0.5, "pass")])
def test_empty_outputs_fail_above_their_allowed_share(max_share, status):
    result = CriticalErrors(blocklist=[], max_empty_share=max_share).check(inputs(outputs=outputs("a", "  ", None, "b")))
    assert result.value == pytest.approx(0.5) and result.status == status and result.extra["empty"] == 2
    assert "first: ex1, ex2" in result.detail


def test_no_candidate_outputs_is_a_user_error():
    with pytest.raises(UserError, match="rerun the evaluate stage"):
        CriticalErrors(blocklist=[], max_empty_share=0.0).check(inputs(outputs=[]))


# --- human_preference and the decision ------------------------------------------------------------------------


def preference(wins: int, losses: int, ties: int = 0, both_bad: int = 0) -> dict:
    choices = ["candidate"] * wins + ["reference"] * losses + ["tie"] * ties + ["both_bad"] * both_bad
    return preference_metrics(choices, "adapter", "base", 0.95)


def test_preference_is_pending_below_min_judgments_and_does_not_block():
    params = ReleaseParams(min_judgments=30)
    decision, results = run_gate(params, inputs(preference=preference(29, 0)))
    judged = {result.name: result for result in results}["human_preference"]
    assert judged.status == "pending" and "29 of 30 judgments" in judged.detail
    assert decision["decision"] == "pass" and decision["failed"] == []


def test_a_missing_preference_file_is_pending_and_says_so():
    result = HumanPreference(0.7, 30, 0.95).check(inputs(preference=None))
    assert result.status == "pending" and "metrics/preference.json not found" in result.detail


@pytest.mark.parametrize(("counts", "status"), [((21, 9), "pass"), ((20, 10), "fail"), ((22, 6, 4), "pass"),
                                                 ((20, 8, 4), "fail"), ((21, 9, 0, 5), "pass")])
def test_preference_is_required_once_there_are_enough_judgments(counts, status):
    decision, results = run_gate(ReleaseParams(min_preference=0.7, min_judgments=30), inputs(preference=preference(*counts)))
    judged = {result.name: result for result in results}["human_preference"]
    assert judged.status == status
    assert decision["decision"] == status and ("human_preference" in decision["failed"]) == (status == "fail")
    assert judged.extra["interval"][0] < judged.value < judged.extra["interval"][1]
    assert "Wilson interval" in judged.detail and "rule:" in judged.detail


def test_judgments_that_all_say_both_bad_fail():
    result = HumanPreference(0.7, 5, 0.95).check(inputs(preference=preference(0, 0, both_bad=6)))
    assert result.status == "fail" and result.value is None


def test_a_blocking_pending_criterion_fails_the_decision():
    passing = CriterionResult("relative_gain", "chrf", 0.2, 0.3, "pass", "")
    waiting = CriterionResult("new_check", "x", 1.0, None, "pending", "", blocks_when_pending=True)
    assert decide([passing, waiting])["decision"] == "fail"
    assert decide([passing, CriterionResult("human_preference", "win_rate", 0.7, None, "pending", "",
                                            blocks_when_pending=False)])["decision"] == "pass"


def test_release_json_reads_back_with_its_failed_criteria(tmp_path):
    decision, _ = run_gate(ReleaseParams(), inputs(outputs=outputs("", "ok")))
    path = tmp_path / "release.json"
    path.write_text(json.dumps(decision), encoding="utf-8")
    loaded = load_decision(path)
    assert loaded["decision"] == "fail" and failed_criteria(loaded) == ["critical_errors"] == loaded["failed"]
    assert [criterion["name"] for criterion in loaded["criteria"]] == [
        "relative_gain", "general_regression", "critical_errors", "human_preference"]


def test_load_decision_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(UserError, match="release.json: not found; run the release stage"):
        load_decision(tmp_path / "release.json")
    (tmp_path / "release.json").write_text('{"decision": "maybe", "criteria": []}', encoding="utf-8")
    with pytest.raises(UserError, match="not a release decision"):
        load_decision(tmp_path / "release.json")


def test_the_report_has_a_row_per_criterion_with_its_status():
    decision, _ = run_gate(ReleaseParams(blocklist=["a|b"]), inputs(outputs=outputs("a|b")))
    report = render_report(decision)
    assert report.startswith("# Release gate: FAIL")
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| criterion")]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == [criterion["name"] for criterion in decision["criteria"]]
    assert "| critical_errors | 0.0% | 0.0% | fail |" in report and "'a\\|b'" in report


# --- the stage on the default pipeline's outputs ---------------------------------------------------------------

DEFAULT_OUTPUTS = ["params.yaml", "metrics/eval.json", "metrics/preference.json", "reports/predictions.jsonl",
                   "data/processed/test.jsonl", "data/general", "models/base", "models/adapter"]


def stage_main():
    spec = importlib.util.spec_from_file_location("stage_release", REPO / "stages" / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def copy_default_outputs(origin: Path, root: Path) -> Path:
    for name in DEFAULT_OUTPUTS:
        source, target = origin / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    return root


@pytest.fixture(scope="module")
def released(default_pipeline, tmp_path_factory):
    """The stage run once, as DVC runs it (run_stage in the project folder), on a copy of the default outputs."""
    from langfoundry.core.stage import run_stage

    root = copy_default_outputs(default_pipeline, tmp_path_factory.mktemp("release"))
    printed = io.StringIO()
    argv = sys.argv
    try:
        sys.argv = ["stages/release.py"]
        with contextlib.chdir(root), contextlib.redirect_stdout(printed):
            run_stage(stage_main(), "release")  # a UserError would exit 1 here: the gate failing must not
    finally:
        sys.argv = argv
    return root, printed.getvalue()


@pytest.mark.slow  # the default pipeline, built once
def test_the_default_adapter_fails_on_relative_gain_and_the_stage_still_succeeds(released):
    root, printed = released
    decision = load_decision(root / "metrics" / "release.json")
    assert decision["decision"] == "fail" and "relative_gain" in decision["failed"]
    gain_result = decision["criteria"][0]
    eval_scores = json.loads((root / "metrics" / "eval.json").read_text(encoding="utf-8"))
    tasks = load_params(root / "params.yaml").release.tasks
    means = [sum(eval_scores[f"{model}.{task}.chrf"] for task in tasks) / len(tasks) for model in ("base", "adapter")]
    assert gain_result["value"] == pytest.approx((means[1] - means[0]) / means[0], abs=1e-6)
    assert f"release: FAIL relative_gain {gain_result['value']:+.1%} < +20.0%" in printed
    general = decision["criteria"][1]
    assert general["status"] in ("pass", "fail") and "100 sentences of data/general/id.txt" in general["detail"]
    assert decision["criteria"][3]["status"] == "pending"  # no judgments in the repository yet
    report = (root / "reports" / "release.md").read_text(encoding="utf-8")
    assert "| relative_gain | +20.0% |" in report


@pytest.mark.slow  # the default pipeline, built once
def test_a_missing_general_text_names_the_file_before_loading_a_model(default_pipeline, tmp_path):
    root = copy_default_outputs(default_pipeline, tmp_path)
    (root / "data" / "general" / "id.txt").unlink()
    params = load_params(root / "params.yaml")
    with pytest.raises(UserError, match=r"data/general/id.txt: not found; put 80-120 everyday sentences in language 'id'"):
        stage_main()(params, params.paths.under(root))
    assert not (root / "metrics" / "release.json").exists()


def test_judgments_of_an_earlier_candidate_do_not_count():
    losing = preference_metrics(["reference"] * 30, "adapter", "base", 0.95, predictions_sha256="a" * 64)
    params = ReleaseParams(min_preference=0.7, min_judgments=30)
    decision, results = run_gate(params, inputs(preference=losing, predictions_sha256="b" * 64))
    judged = {result.name: result for result in results}["human_preference"]
    assert judged.status == "pending" and "another candidate" in judged.detail and judged.value is None
    assert decision["decision"] == "pass"
    decision, _ = run_gate(params, inputs(preference=losing, predictions_sha256="a" * 64))
    assert decision["decision"] == "fail" and decision["failed"] == ["human_preference"]
