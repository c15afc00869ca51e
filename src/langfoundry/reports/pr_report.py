"""The pull-request report: what a change did to every metric, parameter, language and training curve.

Usage (from the repository root, after `dvc repro`): python -m langfoundry.reports.pr_report --base origin/main
Writes reports/pr.md: the metrics that differ from the base ref (`dvc metrics diff --json`), each with a
verdict against the run-to-run noise band of benchmarks/noise_band.json (benchmarks/bench_noise.py measures it
across seeds), `dvc params diff --md`, the change in each language's counts (metrics/coverage.json when the
pipeline has it, and the split and format counts), and the training curves whose data changed, with their last
values; `dvc plots diff` renders those into reports/pr_plots/ for people who want the pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.errors import UserError, stage_entry

# The first line of the report: the pull-request workflow finds its earlier comment by it and updates that one.
MARKER = "<!-- langfoundry-pr-report -->"
# Flat metrics files with per-language figures. coverage.json comes from the coverage stage, when there is one.
LANGUAGE_FILES = ("metrics/coverage.json", "metrics/split.json", "metrics/format.json")
# Key parts after which a language tag follows: lang.<tag>.train, train.by_lang.<tag>. (Matching any part against
# the inventory's tags would also catch parts such as "min", which is both a key and Minangkabau's tag.)
LANGUAGE_KEY_PARTS = ("lang", "by_lang")
FOLD_ROWS = 25  # longer tables are folded into a <details> block
# The run-to-run spread of the model metrics across seeds; a change within it is not presented as a change.
NOISE_BAND_FILE = "benchmarks/noise_band.json"
MetricRow = tuple[str, str, Any, Any, Any, str]  # path, metric, base value, head value, change, verdict


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


def language_rows(base: dict[str, dict[str, Any] | None],
                  head: dict[str, dict[str, Any] | None]) -> list[tuple[str, str, Any, Any, Any]]:
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


# --- metrics against the noise band ----------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseBand:
    """How far a model metric moves between runs that differ only in their seed (benchmarks/bench_noise.py)."""

    source: str  # the file, as the report names it
    seeds: list[int]
    rule: str  # how the band was computed, e.g. "max - min: ..."
    bands: dict[tuple[str, str], float]  # (metrics file, flat key) -> band


def load_noise_band(path: Path, name: str = NOISE_BAND_FILE) -> NoiseBand | None:
    """The noise band in path (None when there is no such file); name is how the report refers to it."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        bands = {(file, key): float(figures["band"]) for file, keys in data["metrics"].items()
                 for key, figures in keys.items()}
        return NoiseBand(name, [int(seed) for seed in data["seeds"]], str(data.get("band", "")), bands)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(f"{name}: not a noise band ({type(error).__name__}: {error}); "
                        "python benchmarks/bench_noise.py writes it") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def verdict(old: Any, new: Any, band: float | None) -> tuple[Any, str]:
    """(change, verdict) of one metric: new/removed, within noise (|change| <= band) or change."""
    if old is None:
        return None, "new"
    if new is None:
        return None, "removed"
    if not (_is_number(old) and _is_number(new)):
        return None, "change"
    change = new - old
    if not band:  # no band (a deterministic metric) or one identical across seeds: any change is a change
        return change, "change"
    # the files hold 6 decimals: a difference equal to the band may come out a rounding error above it
    if abs(change) <= band * (1 + 1e-9) + 1e-12:
        return change, f"within noise (±{_number(band)})"
    return change, f"change (beyond ±{_number(band)})"


def metric_rows(diff: dict[str, dict[str, dict[str, Any]]], noise: NoiseBand | None) -> list[MetricRow]:
    """(path, metric, base, head, change, verdict) for every metric in `dvc metrics diff --json` output."""
    bands = noise.bands if noise else {}
    rows = []
    for path in sorted(diff):
        for key, entry in sorted((diff[path] or {}).items()):
            old, new = entry.get("old"), entry.get("new")
            rows.append((path, key, old, new, *verdict(old, new, bands.get((path, key)))))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    text = str(value) if isinstance(value, (bool, int, str)) else _number(value)
    return text.replace("|", "\\|")


def metrics_table(rows: list[MetricRow]) -> str:
    """The rows as a markdown table ("" when there are none)."""
    if not rows:
        return ""
    lines = ["| path | metric | base | this branch | change | verdict |", "|---|---|---|---|---|---|"]
    lines += [f"| {path} | {_cell(key)} | {_cell(old)} | {_cell(new)} | {_signed(change)} | {what} |"
              for path, key, old, new, change, what in rows]
    return "\n".join(lines)


def metrics_note(rows: list[MetricRow], noise: NoiseBand | None, name: str = NOISE_BAND_FILE) -> str:
    """Where the noise band comes from and how many metrics fall in each verdict."""
    if noise is None:
        source = (f"No noise band (`{name}` is missing; `python benchmarks/bench_noise.py` writes it): "
                  "every difference is shown as measured.")
    else:
        source = (f"Noise band from `{noise.source}`: seeds {', '.join(map(str, noise.seeds))}, band = {noise.rule}. "
                  "A change no larger than its metric's band is marked within noise; metrics without a band "
                  "(the data stages', which are deterministic) show the change as measured.")
    counts: dict[str, int] = {}
    for *_, what in rows:
        kind = what.split(" (")[0]
        counts[kind] = counts.get(kind, 0) + 1
    labels = {"change": "changes", "within noise": "within noise", "new": "new", "removed": "removed"}
    tally = ", ".join(f"{counts[kind]} {label}" for kind, label in labels.items() if kind in counts)
    return f"{source}\n\n{len(rows)} metrics differ from the base: {tally}." if rows else source


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
                 plots: list[dict[str, Any]], plots_link: str | None, plot_errors: dict[str, str] | None = None,
                 metrics_intro: str = "") -> str:
    """The markdown of reports/pr.md; metrics_intro (metrics_note) goes above a metrics table that has rows."""
    lines = [MARKER, f"## Pipeline changes against `{base_ref}`", ""]
    metrics = table_or_nothing(metrics_md, "metrics")
    lines += ["### Metrics", ""] + ([metrics_intro, ""] if metrics and metrics_intro else [])
    lines += [metrics or "No metric changed.", ""]
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


def make_report(base_ref: str, repo: Path, out: Path, plots_dir: Path | None, plots_link: str | None,
                noise_band: Path | None = None) -> str:
    """Write reports/pr.md; noise_band (relative to repo) defaults to benchmarks/noise_band.json."""
    check_ref(base_ref, repo)
    band_name = str(noise_band or NOISE_BAND_FILE)
    noise = load_noise_band(repo / band_name, band_name)
    rows = metric_rows(json.loads(run_dvc(["metrics", "diff", "--json", base_ref], repo) or "{}"), noise)
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
    report = build_report(base_ref, metrics_table(rows), params_md, languages, plots, plots_link, plot_errors,
                          metrics_note(rows, noise, band_name))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    return report


def main(args: argparse.Namespace) -> None:
    make_report(args.base, Path.cwd(), Path(args.out), None if args.no_plots else Path(args.plots_dir), args.plots_link,
                Path(args.noise_band))
    print(f"pr-report: {args.out} against {args.base}")


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")
    commands.add_argument("--out", default="reports/pr.md")
    commands.add_argument("--plots-dir", default="reports/pr_plots", help="where `dvc plots diff` renders the curves")
    commands.add_argument("--plots-link", help="link for the rendered curves (e.g. the CI artifact's URL)")
    commands.add_argument("--no-plots", action="store_true", help="do not render the curves")
    commands.add_argument("--noise-band", default=NOISE_BAND_FILE,
                          help="run-to-run spread of the model metrics (benchmarks/bench_noise.py writes it)")
    return commands


if __name__ == "__main__":
    stage_entry(main, parser())
