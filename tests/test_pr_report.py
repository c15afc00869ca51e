"""The pull-request report: metric, parameter, language and curve changes between a base commit and the workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from langfoundry.core.errors import UserError
from langfoundry.reports.pr_report import MARKER, build_report, changed_plots, language_of, language_rows, make_report
from repo_copy import env

DVC_YAML = {
    "stages": {
        "train": {
            "cmd": "python train.py",
            "params": ["train.lr"],
            "metrics": [{"metrics/train.json": {"cache": False}}, {"metrics/split.json": {"cache": False}}],
            "plots": [{"curves/loss.tsv": {"cache": False, "x": "step"}}, {"curves/coverage.png": {"cache": False}},
                      {"curves/same.png": {"cache": False}}],
        }
    }
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=env(), capture_output=True, text=True, check=True).stdout


def write_state(repo: Path, lr: float, loss: float, per_lang: dict[str, int], curve: list[float], image: bytes) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": lr, "epochs": 2}}), encoding="utf-8")
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/train.json").write_text(json.dumps({"val_loss": loss, "steps": 10}), encoding="utf-8")
    split = {f"lang.{tag}.train": count for tag, count in per_lang.items()}
    split["rows.train"] = sum(per_lang.values())
    (repo / "metrics/split.json").write_text(json.dumps(split), encoding="utf-8")
    (repo / "curves").mkdir(exist_ok=True)
    rows = "".join(f"{step}\t{value}\n" for step, value in enumerate(curve))
    (repo / "curves/loss.tsv").write_text("step\tloss\n" + rows, encoding="utf-8")
    (repo / "curves/coverage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + image)
    (repo / "curves/same.png").write_bytes(b"\x89PNG\r\n\x1a\nunchanged")


@pytest.fixture(scope="module")
def two_commits(tmp_path_factory) -> Path:
    """A DVC repository whose second commit changes a parameter, the metrics, one language's count and a curve."""
    repo = tmp_path_factory.mktemp("pr")
    git(repo, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, env=env(), check=True)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML), encoding="utf-8")
    write_state(repo, lr=0.001, loss=4.5, per_lang={"su": 100, "jv": 50}, curve=[5.0, 4.7, 4.5], image=b"one")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "tag", "base")
    write_state(repo, lr=0.002, loss=4.1, per_lang={"su": 100, "jv": 80, "min": 12}, curve=[5.0, 4.4, 4.1], image=b"two")
    git(repo, "commit", "-qam", "double the learning rate, add data")
    return repo


def test_report_shows_metric_param_language_and_curve_changes(two_commits: Path) -> None:
    out = two_commits / "reports/pr.md"
    report = make_report("base", two_commits, out, plots_dir=two_commits / "reports/pr_plots", plots_link=None)
    assert out.read_text(encoding="utf-8") == report
    assert report.splitlines()[0] == MARKER
    metrics = report.split("### Metrics")[1].split("###")[0]
    assert "val_loss" in metrics and "4.5" in metrics and "4.1" in metrics
    assert "steps" not in metrics, "unchanged metrics stay out of the table"
    params = report.split("### Parameters")[1].split("###")[0]
    assert "train.lr" in params and "0.001" in params and "0.002" in params and "epochs" not in params
    languages = report.split("### Languages")[1].split("###")[0]
    assert "| jv | split: lang.*.train | 50 | 80 | +30 |" in languages
    assert "| min | split: lang.*.train | – | 12 | – |" in languages
    assert "| su |" not in languages, "an unchanged language is not listed"
    curves = report.split("### Training curves")[1]
    assert "curves/loss.tsv" in curves and "loss 4.5" in curves and "loss 4.1" in curves
    assert "| curves/coverage.png | image | image |" in curves and "same.png" not in curves
    assert not (two_commits / "dvc_plots").exists(), "nothing is written into the repository but the report"
    assert (two_commits / "reports/pr_plots/index.html").exists() and "](pr_plots/index.html)" in curves


def test_nothing_changed_says_so(two_commits: Path) -> None:
    report = make_report("HEAD", two_commits, two_commits / "reports/same.md", plots_dir=None, plots_link=None)
    assert "No metric changed." in report and "No parameter changed." in report
    assert "No per-language count changed." in report and "No training curve changed." in report


def test_an_unknown_base_is_one_clear_error(two_commits: Path) -> None:
    with pytest.raises(UserError, match="base ref 'no-such-branch' is not a commit"):
        make_report("no-such-branch", two_commits, two_commits / "reports/x.md", None, None)


def test_language_keys_are_found_after_lang_or_by_lang() -> None:
    assert language_of("lang.jv-x-banyumas.train") == ("jv-x-banyumas", "lang.*.train")
    assert language_of("train.by_lang.su") == ("su", "train.by_lang.*")
    assert language_of("identify.ngram.lang.min.accuracy") == ("min", "identify.ngram.lang.*.accuracy")
    assert language_of("length.min") is None and language_of("languages.with_data") is None
    assert language_of("rows.train") is None and language_of("lang") is None


def test_language_rows_handle_a_file_missing_at_one_revision() -> None:
    head = {"metrics/coverage.json": {"lang.ml.share_of_target": 0.25, "total": 1}, "metrics/split.json": None}
    rows = language_rows({"metrics/coverage.json": None, "metrics/split.json": None}, head)
    assert rows == [("ml", "coverage: lang.*.share_of_target", None, 0.25, None)]
    assert language_rows({"metrics/split.json": None}, {"metrics/split.json": None}) == []


def test_changed_plots_compare_the_points_of_each_revision() -> None:
    def render(points):
        return [{"content": {"data": {"values": points}}}]

    same = [{"step": "0", "loss": "1", "rev": "main"}, {"step": "0", "loss": "1", "rev": "workspace"}]
    moved = [{"step": "0", "loss": "2", "rev": "main"}, {"step": "0", "loss": "1", "rev": "workspace"}]
    found = changed_plots({"data": {"a.tsv": render(same), "b.tsv": render(moved)}}, "main")
    assert found == [{"plot": "b.tsv", "base_last": {"step": "0", "loss": "2"}, "head_last": {"step": "0", "loss": "1"}}]


def test_report_links_the_rendered_curves_when_given_a_link() -> None:
    plots = [{"plot": "loss.tsv", "base_last": None, "head_last": {"step": "3", "loss": "0.5"}}]
    report = build_report("main", "", "", [], plots, "https://example.org/run/1")
    assert "(https://example.org/run/1)" in report and "| loss.tsv | – | step 3, loss 0.5 |" in report


def test_a_long_metrics_table_is_folded() -> None:
    rows = "\n".join(f"| m.json | k{i} | 1 | 2 | 1 |" for i in range(40))
    table = "| Path | Metric | base | workspace | Change |\n|---|---|---|---|---|\n" + rows
    report = build_report("main", table, "", [], [], None)
    assert "<details><summary>40 metrics changed</summary>" in report and "| m.json | k39 |" in report
    short = build_report("main", table.split("| m.json | k3 |")[0], "", [], [], None)
    assert "<details>" not in short and "| m.json | k2 |" in short


def test_curves_missing_from_the_cache_are_named_not_reported_as_changed(two_commits: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(two_commits), str(clone))
    (clone / "curves/loss.tsv").unlink()  # as when a cached output was never pulled
    report = make_report("base", clone, clone / "reports/pr.md", plots_dir=None, plots_link=None)
    curves = report.split("### Training curves")[1]
    assert "could not be compared: workspace:" in curves and "| curves/" not in curves
