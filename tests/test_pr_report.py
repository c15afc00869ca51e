"""The pull-request report: metric, parameter, language and curve changes between a base commit and the workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import env

from langfoundry.core.errors import UserError
from langfoundry.reports.pr_report import (
    MARKER,
    build_report,
    changed_plots,
    language_of,
    language_rows,
    load_noise_band,
    make_report,
    metric_rows,
    metrics_note,
    metrics_table,
)

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


# --- metrics against the noise band ------------------------------------------------------------------------

NOISE_BAND = {
    "seeds": [13, 14, 15],
    "band": "max - min: the largest difference between two runs that differ only in their seed",
    "metrics": {"metrics/eval.json": {"adapter.chrf": {"min": 8.0, "max": 8.5, "band": 0.5},
                                      "adapter.bleu": {"min": 1.0, "max": 1.3, "band": 0.3},
                                      "adapter.exact": {"min": 0.1, "max": 0.1, "band": 0.0}},
                "metrics/train.json": {"val_loss": {"min": 4.0, "max": 4.6, "band": 0.6}}},
}
# `dvc metrics diff --json` output: a change inside a band, one outside, one exactly on it, one on a key whose
# band is 0, a data metric without a band, a string, a new and a removed key.
METRICS_DIFF = {
    "metrics/eval.json": {"adapter.chrf": {"old": 8.2116, "new": 8.2075, "diff": -0.0041},
                          "adapter.bleu": {"old": 1.0, "new": 1.3, "diff": 0.3},
                          "adapter.exact": {"old": 0.1, "new": 0.1001, "diff": 0.0001},
                          "adapter.perplexity": {"old": None, "new": 5089.1},
                          "baseline.chrf": {"old": 15.0, "new": None}},
    "metrics/train.json": {"val_loss": {"old": 4.1, "new": 3.2, "diff": -0.9},
                           "data_version.clean_sha256": {"old": "abc", "new": "abd"}},
    "metrics/split.json": {"rows.train": {"old": 100, "new": 120, "diff": 20}},
}


def write_band(path: Path, band: dict = NOISE_BAND) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(band), encoding="utf-8")
    return path


def test_each_metric_gets_a_verdict_against_its_noise_band(tmp_path: Path) -> None:
    noise = load_noise_band(write_band(tmp_path / "band.json"), "benchmarks/noise_band.json")
    verdicts = {(path, key): (change, verdict) for path, key, _, _, change, verdict in metric_rows(METRICS_DIFF, noise)}
    assert verdicts[("metrics/eval.json", "adapter.chrf")] == (pytest.approx(-0.0041), "within noise (±0.5)")
    assert verdicts[("metrics/eval.json", "adapter.bleu")][1] == "within noise (±0.3)", "a change equal to the band is noise"
    assert verdicts[("metrics/train.json", "val_loss")] == (pytest.approx(-0.9), "change (beyond ±0.6)")
    assert verdicts[("metrics/eval.json", "adapter.exact")][1] == "change", "identical across seeds: any change counts"
    assert verdicts[("metrics/split.json", "rows.train")] == (20, "change"), "no band: the change as measured"
    assert verdicts[("metrics/train.json", "data_version.clean_sha256")] == (None, "change")
    assert verdicts[("metrics/eval.json", "adapter.perplexity")] == (None, "new")
    assert verdicts[("metrics/eval.json", "baseline.chrf")] == (None, "removed")


def test_the_metrics_table_names_the_band_and_its_seeds(tmp_path: Path) -> None:
    noise = load_noise_band(write_band(tmp_path / "band.json"), "benchmarks/noise_band.json")
    rows = metric_rows(METRICS_DIFF, noise)
    report = build_report("main", metrics_table(rows), "", [], [], None, metrics_intro=metrics_note(rows, noise))
    metrics = report.split("### Metrics")[1].split("###")[0]
    assert metrics.index("`benchmarks/noise_band.json`: seeds 13, 14, 15, band = max - min") < metrics.index("| path |")
    assert "8 metrics differ from the base: 4 changes, 2 within noise, 1 new, 1 removed." in metrics
    assert "| metrics/eval.json | adapter.chrf | 8.2116 | 8.2075 | -0.0041 | within noise (±0.5) |" in metrics
    assert "| metrics/train.json | val_loss | 4.1 | 3.2 | -0.9 | change (beyond ±0.6) |" in metrics
    assert "| metrics/split.json | rows.train | 100 | 120 | +20 | change |" in metrics
    assert "| metrics/eval.json | adapter.perplexity | – | 5089.1 | – | new |" in metrics
    assert "| metrics/eval.json | baseline.chrf | 15 | – | – | removed |" in metrics
    assert report.splitlines()[0] == MARKER


def test_without_a_band_file_every_difference_is_shown_as_measured(tmp_path: Path) -> None:
    assert load_noise_band(tmp_path / "missing.json") is None
    rows = metric_rows(METRICS_DIFF, None)
    assert {verdict for *_, verdict in rows} == {"change", "new", "removed"}
    assert metrics_note(rows, None).startswith("No noise band (`benchmarks/noise_band.json` is missing")


def test_a_malformed_band_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="band.json: not a noise band .*bench_noise.py writes it"):
        load_noise_band(write_band(tmp_path / "band.json", {"seeds": [13]}), "band.json")


def test_the_report_reads_the_band_file_against_the_real_metrics_diff(two_commits: Path) -> None:
    band = {**NOISE_BAND, "metrics": {"metrics/train.json": {"val_loss": {"band": 0.5}}}}
    write_band(two_commits / "bands/noise.json", band)  # untracked: the other tests' reports do not see it
    report = make_report("base", two_commits, two_commits / "reports/band.md", plots_dir=None, plots_link=None,
                         noise_band=Path("bands/noise.json"))
    metrics = report.split("### Metrics")[1].split("###")[0]
    assert "Noise band from `bands/noise.json`: seeds 13, 14, 15" in metrics
    assert "| metrics/train.json | val_loss | 4.5 | 4.1 | -0.4 | within noise (±0.5) |" in metrics
    assert "| metrics/split.json | lang.min.train | – | 12 | – | new |" in metrics
    assert "| metrics/split.json | lang.jv.train | 50 | 80 | +30 | change |" in metrics, "no band: a plain change"


def test_the_band_the_benchmark_writes_is_the_band_the_report_reads(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_noise

    runs = {seed: {"metrics/eval.json": bench_noise.flatten({"adapter": {"chrf": chrf, "source": "scratch"}, "steps": 150})}
            for seed, chrf in ((13, 8.2116), (14, 8.2075), (15, 8.30))}
    table = bench_noise.band_table(runs)
    assert table["metrics/eval.json"]["adapter.chrf"] == {"min": 8.2075, "max": 8.3, "mean": pytest.approx(8.2397, abs=1e-4),
                                                          "std": pytest.approx(0.052262, abs=1e-6), "band": 0.0925}
    assert table["metrics/eval.json"]["steps"]["band"] == 0 and "adapter.source" not in table["metrics/eval.json"]
    band = {"seeds": sorted(runs), "band": bench_noise.BAND_RULE, "metrics": table}
    (tmp_path / "band.json").write_text(bench_noise.dump_band(band), encoding="utf-8")
    noise = load_noise_band(tmp_path / "band.json")
    assert noise.seeds == [13, 14, 15] and noise.bands[("metrics/eval.json", "adapter.chrf")] == 0.0925
