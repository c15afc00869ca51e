"""The pull-request report: what a change did to every metric, parameter, language and training curve.

Usage (from the repository root, after `dvc repro`): python -m langfoundry.reports.pr_report --base origin/main
Writes reports/pr.md: `dvc metrics diff --md` and `dvc params diff --md` against the base ref, the change in
each language's counts (metrics/coverage.json when the pipeline has it, and the split and format counts), and
the training curves whose data changed, with their last values; `dvc plots diff` renders those into
reports/pr_plots/ for people who want the pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

from langfoundry.core.errors import UserError, stage_entry

# The first line of the report: the pull-request workflow finds its earlier comment by it and updates that one.
MARKER = "<!-- langfoundry-pr-report -->"
# Flat metrics files with per-language figures. coverage.json comes from the coverage stage, when there is one.
LANGUAGE_FILES = ("metrics/coverage.json", "metrics/split.json", "metrics/format.json")
# Key parts after which a language tag follows: lang.<tag>.train, train.by_lang.<tag>. (Matching any part against
# the inventory's tags would also catch parts such as "min", which is both a key and Minangkabau's tag.)
LANGUAGE_KEY_PARTS = ("lang", "by_lang")
FOLD_ROWS = 25  # longer tables are folded into a <details> block


# --- reading the two revisions ---------------------------------------------------------------------------


def run_dvc(args: list[str], cwd: Path) -> str:
    """stdout of a dvc command run with this interpreter's dvc; a failure is a UserError with dvc's error line."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr + result.stdout).strip().splitlines() or ["no output"]
        error = next((line for line in lines if line.startswith("ERROR")), lines[-1])
        raise UserError(f"dvc {' '.join(args)} failed: {error}")
    return result.stdout


def check_ref(ref: str, cwd: Path) -> None:
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=cwd,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"base ref {ref!r} is not a commit in this repository; fetch it (git fetch origin) or pass another BASE")


def json_at(ref: str, path: str, cwd: Path) -> dict[str, Any] | None:
    """A JSON file as committed at ref (None if it is not there)."""
    result = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        return None


def json_now(path: str, cwd: Path) -> dict[str, Any] | None:
    file = cwd / path
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


# --- languages -------------------------------------------------------------------------------------------


def language_of(key: str) -> tuple[str, str] | None:
    """(tag, the key with the tag replaced by *) for a flat metrics key that names a language, else None."""
    parts = key.split(".")  # tags hold letters, digits and hyphens, never dots: a tag is one whole part
    for index in range(1, len(parts)):
        if parts[index - 1] in LANGUAGE_KEY_PARTS:
            return parts[index], ".".join(parts[:index] + ["*"] + parts[index + 1:])
    return None


def language_rows(base: dict[str, dict[str, Any] | None], head: dict[str, dict[str, Any] | None]) -> list[tuple[str, str, Any, Any, Any]]:
    """(language, figure, base value, head value, change) for every per-language number that differs.

    base and head map a metrics file name to its flat contents (None when the file is missing at that revision).
    """
    rows = []
    for name in sorted(set(base) | set(head)):
        before, after = base.get(name) or {}, head.get(name) or {}
        for key in sorted(set(before) | set(after)):
            found = language_of(key)
            if found is None:
                continue
            old, new = before.get(key), after.get(key)
            if old == new or not all(isinstance(v, (int, float)) or v is None for v in (old, new)):
                continue
            change = new - old if old is not None and new is not None else None
            rows.append((found[0], f"{Path(name).stem}: {found[1]}", old, new, change))
    return sorted(rows, key=lambda row: (row[0], row[1]))


# --- plots -------------------------------------------------------------------------------------------------


def _points(values: Iterable[dict[str, Any]], rev: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in point.items() if k != "rev"} for point in values if point.get("rev") == rev]


def _image_bytes(renders: list[dict[str, Any]], rev: str) -> bytes | None:
    for render in renders:
        url = render.get("url")
        if render.get("type") == "image" and rev in render.get("revisions", []) and url and Path(url).exists():
            return Path(url).read_bytes()
    return None


def changed_plots(plots: dict[str, Any], base_rev: str, head_rev: str = "workspace") -> list[dict[str, Any]]:
    """The plots (from `dvc plots diff --json`) whose data differs between the revisions.

    Data plots come with their last point at each revision; image plots (read from the files dvc wrote) with
    "image" where the revision has one.
    """
    changed = []
    for name, renders in sorted((plots.get("data") or {}).items()):
        if any(render.get("type") == "image" for render in renders):
            before_image, after_image = _image_bytes(renders, base_rev), _image_bytes(renders, head_rev)
            if before_image != after_image:
                changed.append({"plot": name, "base_last": before_image and "image", "head_last": after_image and "image"})
            continue
        values = [point for render in renders for point in ((render.get("content") or {}).get("data") or {}).get("values", [])]
        before, after = _points(values, base_rev), _points(values, head_rev)
        if before == after:
            continue
        changed.append({"plot": name, "base_last": before[-1] if before else None, "head_last": after[-1] if after else None})
    return changed


def _point_text(point: dict[str, Any] | str | None) -> str:
    if point is None:
        return "–"
    if isinstance(point, str):
        return point
    return ", ".join(f"{key} {_number(value)}" for key, value in point.items())


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.6g}"


# --- the report --------------------------------------------------------------------------------------------


def table_or_nothing(markdown: str, what: str) -> str:
    """A markdown table as dvc printed it, or "" when it has a header and no rows (dvc's way of saying no change).

    A long table is folded (a pull-request comment stays readable); the summary line says how many rows it holds.
    """
    lines = [line for line in markdown.strip().splitlines() if line.strip()]
    if len(lines) <= 2:
        return ""
    table = "\n".join(lines)
    if len(lines) - 2 > FOLD_ROWS:
        return f"<details><summary>{len(lines) - 2} {what} changed</summary>\n\n{table}\n\n</details>"
    return table


def _signed(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:+.6g}" if isinstance(value, float) else f"{value:+d}"


def build_report(base_ref: str, metrics_md: str, params_md: str, languages: list[tuple[str, str, Any, Any, Any]],
                 plots: list[dict[str, Any]], plots_link: str | None, plot_errors: dict[str, str] | None = None) -> str:
    """The markdown of reports/pr.md."""
    lines = [MARKER, f"## Pipeline changes against `{base_ref}`", ""]
    lines += ["### Metrics", "", table_or_nothing(metrics_md, "metrics") or "No metric changed.", ""]
    lines += ["### Parameters", "", table_or_nothing(params_md, "parameters") or "No parameter changed.", ""]
    lines += ["### Languages", ""]
    if languages:
        lines += ["| language | figure | base | this branch | change |", "|---|---|---|---|---|"]
        lines += [f"| {tag} | {figure} | {'–' if old is None else old} | {'–' if new is None else new} | {_signed(change)} |"
                  for tag, figure, old, new, change in languages]
    else:
        lines.append("No per-language count changed.")
    lines += ["", "### Training curves", ""]
    if plot_errors:
        lines.append("The curves could not be compared: " + "; ".join(f"{rev}: {msg}" for rev, msg in sorted(plot_errors.items()))
                     + ". Their data is a DVC output; with a DVC remote holding it, `dvc repro --pull` brings it.")
    elif plots:
        where = f" ([all curves, base against this branch]({plots_link}))" if plots_link else ""
        lines.append(f"Changed curves{where}:")
        lines.append("")
        lines += ["| curve | last point, base | last point, this branch |", "|---|---|---|"]
        lines += [f"| {plot['plot']} | {_point_text(plot['base_last'])} | {_point_text(plot['head_last'])} |" for plot in plots]
    else:
        lines.append("No training curve changed.")
    return "\n".join(lines) + "\n"


def make_report(base_ref: str, repo: Path, out: Path, plots_dir: Path | None, plots_link: str | None) -> str:
    check_ref(base_ref, repo)
    metrics_md = run_dvc(["metrics", "diff", "--md", base_ref], repo)
    params_md = run_dvc(["params", "diff", "--md", base_ref], repo)
    languages = language_rows({name: json_at(base_ref, name, repo) for name in LANGUAGE_FILES},
                              {name: json_now(name, repo) for name in LANGUAGE_FILES})
    with tempfile.TemporaryDirectory() as scratch:  # where dvc writes image plots; without -o it writes into the repo
        plots_json = json.loads(run_dvc(["plots", "diff", "--json", "--out", scratch, base_ref], repo) or "{}")
        plot_errors = {error.get("rev", "?"): error.get("msg", "") for error in plots_json.get("errors") or []}
        plots = [] if plot_errors else changed_plots(plots_json, base_ref)
    if plots and plots_dir is not None:
        plots_dir.parent.mkdir(parents=True, exist_ok=True)  # dvc makes the directory, not its parents
        run_dvc(["plots", "diff", base_ref, "--out", str(plots_dir)], repo)
        plots_link = plots_link or os.path.relpath(Path(plots_dir, "index.html"), out.parent)
    report = build_report(base_ref, metrics_md, params_md, languages, plots, plots_link, plot_errors)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    return report


def main(args: argparse.Namespace) -> None:
    make_report(args.base, Path.cwd(), Path(args.out), None if args.no_plots else Path(args.plots_dir), args.plots_link)
    print(f"pr-report: {args.out} against {args.base}")


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")
    commands.add_argument("--out", default="reports/pr.md")
    commands.add_argument("--plots-dir", default="reports/pr_plots", help="where `dvc plots diff` renders the curves")
    commands.add_argument("--plots-link", help="link for the rendered curves (e.g. the CI artifact's URL)")
    commands.add_argument("--no-plots", action="store_true", help="do not render the curves")
    return commands


if __name__ == "__main__":
    stage_entry(main, parser())
