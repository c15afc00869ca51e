"""reports/coverage.md and reports/coverage.png: coverage tables and a bar chart for people."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langfoundry.reports.coverage import LEVELS, SPLITS, Coverage

STATUS_ORDER = {"core": 0, "priority": 1, "expansion": 2}


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _int(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "∅"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _input_state(row: dict[str, Any]) -> str:
    state = "**missing**" if row["missing"] else "present"
    return f"planned, {state}" if row["planned"] else state


def ordered_languages(coverage: Coverage) -> list[dict[str, Any]]:
    """By region, then tier, then name: the order of the tables and the chart."""
    return sorted(coverage.language_rows(),
                  key=lambda row: (row["region"], STATUS_ORDER.get(row["status"], 9), row["language"], row["tag"]))


def render_report(coverage: Coverage, report_rows: int) -> str:
    """reports/coverage.md: summary, counts per level, region, language and dataset, checks, flagged rows."""
    metrics = coverage.metrics()
    lines = _summary(coverage, metrics) + _count_tables(coverage, metrics) + _missing_inputs(coverage)
    lines += _language_checks(coverage, metrics) + _flagged_rows(coverage, report_rows)
    lines += ["", "![records per language against target](coverage.png)"]
    return "\n".join(lines).rstrip() + "\n"


def _summary(coverage: Coverage, metrics: dict[str, Any]) -> list[str]:
    level = coverage.params.count_level
    lines = ["# Coverage", "",
             f"**{metrics['total']:,} records at level `{level}` toward the goal of {metrics['goal']:,} "
             f"({_percent(metrics['goal_progress'])}).** {metrics['languages.with_data']} of "
             f"{metrics['languages.inventory']} inventory languages have data; {metrics['languages.at_target']} "
             f"have reached their target. Targets count records (a dictionary entry, a sentence pair) at level "
             f"`{level}` (`coverage.count_level`); raw is every row ingest read, kept or rejected.", ""]

    return lines


def _count_tables(coverage: Coverage, metrics: dict[str, Any]) -> list[str]:
    level = coverage.params.count_level
    lines: list[str] = []
    lines += ["## Pipeline levels", ""]
    lines += _table(["level", "records"], [[name, _int(metrics[f"rows.{name}"])] for name in LEVELS])
    lines += ["", "Chat examples written by format: "
              + ", ".join(f"{name} {_int(metrics[f'examples.{name}'])}" for name in SPLITS) + ".", ""]

    lines += ["## By region", ""]
    lines += _table(["region", "languages", "with data", f"records ({level})", "target", "progress"],
                    [[_cell(row["region"]), str(row["languages"]), str(row["with_data"]), _int(row["count"]),
                      _int(row["target"]), _percent(row["progress"])] for row in coverage.region_rows()])

    lines += ["", "## By language", ""]
    lines += _table(["language", "tag", "region", "tier"] + list(LEVELS) + ["target", "progress"],
                    [[_cell(row["language"]), f"`{row['tag']}`", _cell(row["region"]), row["status"] or "–"]
                     + [_int(row[name]) for name in LEVELS] + [_int(row["target"]), _percent(row["progress"])]
                     for row in ordered_languages(coverage)])

    lines += ["", "## By dataset", ""]
    lines += _table(["dataset", "kind", "language", "category", "region", "priority", "licence"] + list(LEVELS)
                    + ["target", "progress", "input"],
                    [[f"`{row['id']}`", row["kind"],
                      f"`{row['lang']}`" + (f" → `{row['pivot_lang']}`" if row["pivot_lang"] else ""),
                      _cell(row["category"] or "–"), _cell(row["region"] or "–"), row["priority"] or "–",
                      _cell(row["license"] or "–")] + [_int(row[name]) for name in LEVELS]
                     + [_int(row["target"]), _percent(row["progress"]), _input_state(row)]
                     for row in coverage.source_rows()])

    return lines


def _missing_inputs(coverage: Coverage) -> list[str]:
    lines: list[str] = []
    lines += ["", "## Missing inputs", ""]
    if coverage.missing:
        planned = {source.id for source in coverage.sources if source.planned}
        lines += [f"- `{source_id}`: `{path}` does not exist" + (" (planned: the pipeline skips it until it arrives and "
                  "`planned` is removed)" if source_id in planned else "") for source_id, path in coverage.missing]
    else:
        lines.append("Every file and acquired folder that sources.yaml declares is present.")

    return lines


def _language_checks(coverage: Coverage, metrics: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += ["", "## Is each row in the language it declares?", "",
              f"**Script.** {coverage.scripts.checked:,} raw texts (both sides of pairs) checked against their "
              f"language's script in the inventory; {metrics['check.script.flagged']:,} are mostly in another script."]
    if coverage.scripts.flagged:
        lines += [""] + _table(["declared", "expected script", "observed script", "rows"],
                               [[f"`{lang}`", coverage.inventory[lang].script if lang in coverage.inventory else "–",
                                 observed, _int(count)] for (lang, observed), count in sorted(coverage.scripts.flagged.items())])
    lines += ["", f"**Identifiers.** {coverage.samples:,} distinct clean texts (at most "
              f"{coverage.params.sample_per_lang:,} per language, hash-chosen). Accuracy is agreement with the declared "
              f"language on texts of languages the identifier knows, each predicted by a model that never saw it "
              f"({coverage.params.folds}-fold for `ngram`; `py3langid` ships its model). A disagreement with confidence "
              f"≥ {coverage.params.min_confidence} is flagged.", ""]
    if coverage.identifiers:
        lines += _table(["identifier", "labels", "texts checked", "held-out accuracy", "flagged"],
                        [[f"`{report.name}`", _cell(", ".join(report.labels) or "–"), _int(report.checked),
                          _percent(report.accuracy), _int(len(report.flags))] for report in coverage.identifiers])
        per_lang = sorted({lang for report in coverage.identifiers for lang in report.per_lang})
        if per_lang:
            lines += ["", "Accuracy per declared language:", ""]
            lines += _table(["language"] + [f"`{report.name}`" for report in coverage.identifiers],
                            [[f"`{lang}`"] + [_percent(report.per_lang[lang][1] / report.per_lang[lang][0])
                                              if lang in report.per_lang else "not covered" for report in coverage.identifiers]
                             for lang in per_lang])
        confusions = [(report.name, declared, predicted, count) for report in coverage.identifiers
                      for (declared, predicted), count in report.confusion.items()]
        if confusions:
            lines += ["", "Disagreements (declared → predicted):", ""]
            lines += _table(["identifier", "declared", "predicted", "texts"],
                            [[f"`{name}`", f"`{declared}`", f"`{predicted}`", _int(count)]
                             for name, declared, predicted, count in confusions])
    else:
        lines.append("No identifier ran (`coverage.identifiers` is empty or there is no clean text).")

    return lines


def _flagged_rows(coverage: Coverage, report_rows: int) -> list[str]:
    lines: list[str] = []
    flags = coverage.flags()
    lines += ["", f"## Flagged rows ({len(flags):,}; all in {Path('reports/coverage_flags.jsonl')})", ""]
    if flags and report_rows:
        lines += _table(["check", "declared", "observed", "origin", "text"],
                        [[row["check"], f"`{row['lang']}`", str(row["observed"]), f"`{row['origin']}`", _cell(row["text"][:80])]
                         for row in flags[:report_rows]])
    elif not flags:
        lines.append("None.")
    return lines


def render_chart(coverage: Coverage, path: Path) -> None:
    """Horizontal bars: each inventory language's records against its target (a PNG with no timestamp)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; the same pixels on every machine with the same fonts
    import matplotlib.pyplot as plt

    rows = list(reversed(ordered_languages(coverage)))  # top of the chart = first row of the table
    labels = [f"{row['language']} ({row['tag']}) · {row['region']}" for row in rows]
    height = max(3.0, 0.24 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(9.5, height), dpi=100)
    positions = range(len(rows))
    axes.barh(positions, [row["target"] for row in rows], color="#d9d9d9", label="target", height=0.8)
    axes.barh(positions, [row["count"] for row in rows], color="#2b7bba", label=f"records ({coverage.params.count_level})",
              height=0.5)
    axes.set_yticks(list(positions), labels, fontsize=7)
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_xlabel("records")
    axes.set_title(f"Records per language against target: {coverage.total():,} of the {coverage.params.goal:,} goal",
                   fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(axis="x", color="#eeeeee")
    axes.set_axisbelow(True)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})  # no version stamp: reruns are byte-identical
    plt.close(figure)
