"""The release gate: one small object per criterion, and CRITERIA, the order they are reported in.

A candidate (the adapter) ships only when no criterion fails. Each criterion reads what the earlier
stages measured (GateInputs) and returns a CriterionResult: pass, fail, or pending (not enough
evidence yet). A pending criterion blocks the release unless it says otherwise: human preference
waits for `release.min_judgments` judgments and does not block until then.

To add a criterion: add its parameters to ReleaseParams (core/config.py), write a frozen dataclass here
whose fields are named like those parameters (configured() fills them in), with a `name` and a `check`,
and put it in CRITERIA. This module imports no model code: the registry and the export stage read
decisions through load_decision without pulling in torch.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, get_args

import regex

from langfoundry.core.config import ReleaseParams, TaskName
from langfoundry.core.errors import UserError
from langfoundry.release.preference import wilson_interval

CANDIDATE, REFERENCE = "adapter", "base"
Status = Literal["pass", "fail", "pending"]
METRIC_NAMES = {"chrf": "chrF", "chrf_pp": "chrF++", "bleu": "BLEU", "exact_match": "exact match"}
EXAMPLES_SHOWN = 3  # offending example ids named in a detail
# A ratio computed from rounded scores can land a hair off its threshold (1.2/1.0 - 1 = 0.19999999999999996).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class GeneralPerplexity:
    """Perplexity of the reference and of the candidate on held-out general text in one pivot language."""

    pivot: str
    base: float
    adapter: float
    sentences: int
    source: str  # the file the sentences came from, for the detail


@dataclass(frozen=True)
class GateInputs:
    scores: Mapping[str, Any]  # metrics/eval.json, flat keys such as "adapter.translate_to_pivot.chrf"
    outputs: Sequence[Mapping[str, Any]]  # the candidate's rows of reports/predictions.jsonl
    general: Sequence[GeneralPerplexity]
    preference: Mapping[str, Any] | None  # metrics/preference.json; None when no judgment was ever recorded
    scores_path: str = "metrics/eval.json"
    preference_path: str = "metrics/preference.json"
    predictions_sha256: str | None = None  # of the reports/predictions.jsonl the gate judges


@dataclass(frozen=True)
class CriterionResult:
    name: str
    metric: str
    threshold: float
    value: float | None
    status: Status
    detail: str
    shortfall: str = ""  # when it fails: by how much, for the one-line console summary
    blocks_when_pending: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)  # criterion-specific counts, kept in release.json

    def as_dict(self) -> dict[str, Any]:
        value = round(self.value, 6) if isinstance(self.value, float) else self.value
        return {"name": self.name, "metric": self.metric, "threshold": self.threshold, "value": value,
                "status": self.status, "detail": self.detail, **self.extra}


class Criterion(Protocol):
    name: ClassVar[str]

    def check(self, inputs: GateInputs) -> CriterionResult:
        """This criterion judged on what the earlier stages measured."""


def _at_least(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


def _task_means(scores: Mapping[str, Any], metric: str, tasks: Sequence[str]) -> tuple[list[str], float, float] | None:
    """(tasks scored for both models, mean base score, mean adapter score) over the tasks that have the metric."""
    found = [task for task in tasks if isinstance(scores.get(f"{REFERENCE}.{task}.{metric}"), int | float)
             and isinstance(scores.get(f"{CANDIDATE}.{task}.{metric}"), int | float)]
    if not found:
        return None
    base = sum(scores[f"{REFERENCE}.{task}.{metric}"] for task in found) / len(found)
    adapter = sum(scores[f"{CANDIDATE}.{task}.{metric}"] for task in found) / len(found)
    return found, base, adapter


@dataclass(frozen=True)
class RelativeGain:
    """The adapter beats the base by at least min_relative_gain on `metric`, averaged over `tasks`."""

    name: ClassVar[str] = "relative_gain"
    metric: str
    tasks: list[str]
    min_relative_gain: float

    def check(self, inputs: GateInputs) -> CriterionResult:
        label = METRIC_NAMES.get(self.metric, self.metric)
        means = _task_means(inputs.scores, self.metric, self.tasks)
        if means is not None:
            found, base, adapter = means
            missing = [task for task in self.tasks if task not in found]
            scope = f"mean over {', '.join(found)}"
            note = f"; {', '.join(missing)} has no {label} score in {inputs.scores_path}, left out" if missing else ""
        elif all(isinstance(inputs.scores.get(f"{model}.{self.metric}"), int | float) for model in (REFERENCE, CANDIDATE)):
            base, adapter = inputs.scores[f"{REFERENCE}.{self.metric}"], inputs.scores[f"{CANDIDATE}.{self.metric}"]
            scope, note = "all tasks", f"; none of {', '.join(self.tasks)} has a {label} score in {inputs.scores_path}"
        else:
            scored = [task for task in get_args(TaskName) if f"{CANDIDATE}.{task}.{self.metric}" in inputs.scores]
            raise UserError(f"{inputs.scores_path}: no base and adapter {label} scores for release.tasks "
                            f"({', '.join(self.tasks)}); set release.tasks in params.yaml to tasks that have them "
                            f"({', '.join(scored) or 'none'}) or rerun the evaluate stage (dvc repro evaluate)")
        compared = f"adapter {label} {adapter:.2f} vs base {base:.2f} ({scope})"
        needs = f"needs {self.min_relative_gain:+.1%}"
        if base <= 0:  # no relative gain exists over nothing: any positive score is an unbounded gain
            gain = None if adapter > 0 else 0.0
            passed = adapter > 0 or _at_least(0.0, self.min_relative_gain)
            detail = f"{compared}: base scores 0, so {'any positive score passes' if adapter > 0 else 'no gain'} ({needs})"
            shortfall = f"base and adapter both score 0 < {self.min_relative_gain:+.1%}"
        else:
            gain = (adapter - base) / base
            passed = _at_least(gain, self.min_relative_gain)
            detail = f"{compared}: {gain:+.1%} ({needs})"
            shortfall = f"{gain:+.1%} < {self.min_relative_gain:+.1%}"
        return CriterionResult(self.name, self.metric, self.min_relative_gain, gain, "pass" if passed else "fail",
                               detail + note, shortfall)


@dataclass(frozen=True)
class GeneralRegression:
    """Perplexity on held-out general pivot-language text rises by at most max_general_regression (each pivot)."""

    name: ClassVar[str] = "general_regression"
    general_metric: str
    max_general_regression: float

    def check(self, inputs: GateInputs) -> CriterionResult:
        if not inputs.general:
            return CriterionResult(self.name, self.general_metric, self.max_general_regression, None, "fail",
                                   "no general text was measured", "no general text measured")
        rises = {score.pivot: (score.adapter - score.base) / score.base for score in inputs.general}
        worst = max(rises.values())
        parts = [f"{score.pivot}: {self.general_metric} {score.base:.2f} -> {score.adapter:.2f} "
                 f"({rises[score.pivot]:+.1%}) on {score.sentences} sentences of {score.source}" for score in inputs.general]
        over = [pivot for pivot, rise in rises.items() if rise > self.max_general_regression + TOLERANCE]
        detail = "; ".join(parts) + f" (max rise {self.max_general_regression:+.1%})"
        shortfall = ", ".join(f"{pivot} {rises[pivot]:+.1%} > {self.max_general_regression:+.1%}" for pivot in over)
        return CriterionResult(self.name, self.general_metric, self.max_general_regression, worst,
                               "fail" if over else "pass", detail, shortfall)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


# Scripts written without spaces between words: a term there matches anywhere, since word edges are not marked.
UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")


def _bounded(char: str) -> bool:
    """Whether a term edge ending in char must sit at a word edge: a word character of a spaced script."""
    return bool(regex.match(r"\w", char)) and not unicodedata.name(char, "").startswith(UNSPACED_SCRIPTS)


def term_pattern(term: str) -> regex.Pattern:
    """A case-insensitive pattern for one blocklist term: whole words where the script spaces its words
    (so "ass" does not match "class"), any run of spaces between the term's words."""
    folded = _fold(term).strip()
    if not folded:
        raise UserError("params.yaml: release.blocklist has an empty term; remove it")
    body = r"\s+".join(regex.escape(word) for word in folded.split())
    left = r"(?<!\w)" if _bounded(folded[0]) else ""
    right = r"(?!\w)" if _bounded(folded[-1]) else ""
    return regex.compile(left + body + right)


def blocked_terms(text: str, patterns: Mapping[str, regex.Pattern]) -> list[str]:
    """The blocklist terms (keys of patterns, from term_pattern) that text contains."""
    folded = _fold(text)
    return [term for term, pattern in patterns.items() if pattern.search(folded)]


@dataclass(frozen=True)
class CriticalErrors:
    """No candidate output contains a blocklisted term, and at most max_empty_share of them are empty."""

    name: ClassVar[str] = "critical_errors"
    blocklist: list[str]
    max_empty_share: float

    def check(self, inputs: GateInputs) -> CriterionResult:
        if not inputs.outputs:
            raise UserError(f"the predictions hold no rows of model {CANDIDATE!r}; rerun the evaluate stage (dvc repro evaluate)")
        patterns = {term: term_pattern(term) for term in self.blocklist}
        hits = [(row["id"], terms) for row in inputs.outputs if (terms := blocked_terms(row.get("hypothesis") or "", patterns))]
        empty = [row["id"] for row in inputs.outputs if not (row.get("hypothesis") or "").strip()]
        total = len(inputs.outputs)
        share = len(empty) / total
        blocked = f"{len(hits)} contain a blocklisted term" if self.blocklist else "blocklist empty"
        if hits:
            blocked += f" (first: {', '.join(f'{id_} {terms[0]!r}' for id_, terms in hits[:EXAMPLES_SHOWN])})"
        emptied = f"{len(empty)} empty ({share:.1%}, max {self.max_empty_share:.1%})"
        if empty:
            emptied += f" (first: {', '.join(empty[:EXAMPLES_SHOWN])})"
        problems = [f"{len(hits)} outputs with blocklisted terms"] if hits else []
        if share > self.max_empty_share + TOLERANCE:
            problems.append(f"empty {share:.1%} > {self.max_empty_share:.1%}")
        return CriterionResult(self.name, "empty_share", self.max_empty_share, share,
                               "fail" if problems else "pass", f"{total} adapter outputs: {blocked}; {emptied}",
                               "; ".join(problems),
                               extra={"outputs": total, "blocklist_hits": len(hits), "empty": len(empty)})


@dataclass(frozen=True)
class HumanPreference:
    """In blind comparisons the candidate's win rate (ties half) is at least min_preference, once there are
    min_judgments judgments; until then it is pending and does not block."""

    name: ClassVar[str] = "human_preference"
    min_preference: float
    min_judgments: int
    confidence: float

    def check(self, inputs: GateInputs) -> CriterionResult:
        counts = inputs.preference or {}
        judgments = counts.get("judgments", 0)
        wins, losses, ties = (counts.get(key, 0) for key in ("candidate_wins", "reference_wins", "ties"))
        compared = wins + losses + ties
        # recomputed from the counts at release.confidence: the file may have been written at another one
        win_rate = (wins + 0.5 * ties) / compared if compared else None
        rule = f"rule: pass when the win rate (ties half, 'both bad' left out) >= {self.min_preference:.2f}"
        result = {"name": self.name, "metric": "win_rate", "threshold": self.min_preference, "value": win_rate}
        judged = counts.get("predictions_sha256")
        if judged and inputs.predictions_sha256 and judged != inputs.predictions_sha256:
            return CriterionResult(**{**result, "value": None}, status="pending", blocks_when_pending=False,
                                   detail=f"the {judgments} judgments in {inputs.preference_path} are of another candidate's "
                                          f"answers (reports/predictions.jsonl changed since); run `langfoundry review` "
                                          f"to judge the new answers, or `langfoundry review --export` to recount",
                                   extra={"judgments": judgments, "interval": None, "stale": True})
        if judgments < self.min_judgments:
            where = "" if inputs.preference is not None else f" ({inputs.preference_path} not found)"
            return CriterionResult(**result, status="pending", blocks_when_pending=False,
                                   detail=f"{judgments} of {self.min_judgments} judgments needed{where}; pending, "
                                          f"not blocking until then ({rule})",
                                   extra={"judgments": judgments, "interval": None})
        if win_rate is None:
            return CriterionResult(**result, status="fail", shortfall=f"all {judgments} judgments say both are bad",
                                   detail=f"{judgments} judgments, every one 'both bad': no preference for the candidate",
                                   extra={"judgments": judgments, "interval": None})
        low, high = wilson_interval(wins + 0.5 * ties, compared, self.confidence)
        passed = _at_least(win_rate, self.min_preference)
        detail = (f"{judgments} judgments: candidate {wins}, reference {losses}, ties {ties}, both bad "
                  f"{counts.get('both_bad', 0)}; win rate {win_rate:.2f} ({self.confidence:.0%} Wilson interval "
                  f"{low:.2f}-{high:.2f}); {rule}")
        return CriterionResult(**result, status="pass" if passed else "fail", detail=detail,
                               shortfall=f"win rate {win_rate:.2f} < {self.min_preference:.2f}",
                               extra={"judgments": judgments, "interval": [round(low, 6), round(high, 6)]})


CRITERIA: tuple[type[Criterion], ...] = (RelativeGain, GeneralRegression, CriticalErrors, HumanPreference)


def configured(params: ReleaseParams) -> list[Criterion]:
    """CRITERIA set up from params: each field of a criterion takes the ReleaseParams value of that name."""
    return [rule(**{item.name: getattr(params, item.name) for item in fields(rule)}) for rule in CRITERIA]


def decide(results: Sequence[CriterionResult]) -> dict[str, Any]:
    """metrics/release.json: pass only when no criterion fails and none that blocks is pending."""
    failed = [result.name for result in results if result.status == "fail"]
    blocked = any(result.status == "pending" and result.blocks_when_pending for result in results)
    return {"decision": "fail" if failed or blocked else "pass", "candidate": CANDIDATE, "reference": REFERENCE,
            "criteria": [result.as_dict() for result in results], "failed": failed}


def run_gate(params: ReleaseParams, inputs: GateInputs) -> tuple[dict[str, Any], list[CriterionResult]]:
    """Every criterion checked: (the decision as release.json holds it, the results)."""
    results = [criterion.check(inputs) for criterion in configured(params)]
    return decide(results), results


def summary_lines(decision: Mapping[str, Any], results: Sequence[CriterionResult]) -> list[str]:
    """One console line per failed criterion (by how much), then the decision."""
    lines = [f"release: FAIL {result.name} {result.shortfall}" for result in results if result.status == "fail"]
    pending = [result.name for result in results if result.status == "pending"]
    waiting = f"; pending: {', '.join(pending)}" if pending else ""
    passed = sum(result.status == "pass" for result in results)
    lines.append(f"release: decision {decision['decision']} ({passed} of {len(results)} criteria passed{waiting})")
    return lines


def load_decision(path: str | Path = "metrics/release.json") -> dict[str, Any]:
    """The parsed metrics/release.json, checked enough that a reader can trust its keys."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the release stage first (dvc repro release)")
    try:
        decision = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err}); rerun the release stage (dvc repro release)") from err
    if not isinstance(decision, dict) or decision.get("decision") not in ("pass", "fail") \
            or not isinstance(decision.get("criteria"), list):
        raise UserError(f"{path}: not a release decision (needs 'decision' pass|fail and a 'criteria' list); "
                        f"rerun the release stage (dvc repro release)")
    return decision


def failed_criteria(decision: Mapping[str, Any]) -> list[str]:
    """Names of the criteria whose status is "fail", in the decision's order."""
    return [criterion["name"] for criterion in decision.get("criteria", []) if criterion.get("status") == "fail"]


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name in ("relative_gain", "general_regression"):
        return f"{value:+.1%}"
    if name == "critical_errors":
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def render_report(decision: Mapping[str, Any]) -> str:
    """reports/release.md: the decision and one table row per criterion."""
    failed = failed_criteria(decision)
    lines = [f"# Release gate: {decision['decision'].upper()}", "",
             f"Candidate `{decision['candidate']}` against reference `{decision['reference']}`. "
             + (f"Failed: {', '.join(failed)}." if failed else "No criterion failed."), "",
             "| criterion | threshold | value | status | detail |", "|---|---|---|---|---|"]
    for criterion in decision["criteria"]:
        name = criterion["name"]
        detail = str(criterion["detail"]).replace("|", "\\|")
        lines.append(f"| {name} | {_shown(name, criterion['threshold'])} | {_shown(name, criterion['value'])} "
                     f"| {criterion['status']} | {detail} |")
    return "\n".join(lines) + "\n"
