"""The data-statistics report (`langfoundry data-stats`): counts per task and language, length figures and plots,
seeded samples, the same bytes twice, streamed, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from langfoundry.cli.main import main as langfoundry
from langfoundry.core.storage import write_jsonl
from langfoundry.reports.data_stats import collect, length_summary, prompt_and_answer, write_report

REPO = Path(__file__).resolve().parents[1]


def chat(task: str, lang: str, prompt: str, answer: str, index: int, system: str | None = None) -> dict:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"id": f"{task}-{index}", "task": task, "lang": lang, "source": "tiny", "messages": messages}


@pytest.fixture
def processed(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "processed"
    folder.mkdir(parents=True)
    train = [chat("vocabulary", "jv-x-banyumas", f"Apa arti kata {i}?", "kata " * (i % 4 + 1), i) for i in range(30)]
    train += [chat("translate_to_pivot", "ml", "Translate:\nകടൽ", "laut", i, system="be brief") for i in range(5)]
    write_jsonl(train, folder / "train.jsonl")
    write_jsonl([chat("vocabulary", "jv-x-banyumas", "Apa arti kata abot?", "berat", 99)], folder / "val.jsonl")
    (folder / "test.jsonl").write_text('{"task": "vocabulary", "lang": "id", "messages": []}\nnot json\n', encoding="utf-8")
    return folder


def test_counts_lengths_and_samples(processed: Path) -> None:
    stats = collect(processed, samples_per_task=3, seed=5)
    metrics = stats.as_metrics()
    assert metrics["examples"] == 37 and metrics["malformed_lines"] == 1
    assert metrics["splits"] == {"train": 35, "val": 1, "test": 1}
    assert metrics["by_task"]["vocabulary"]["jv-x-banyumas"] == {"train": 30, "val": 1, "test": 0}
    assert metrics["by_task"]["translate_to_pivot"] == {"ml": {"train": 5, "val": 0, "test": 0}}
    assert metrics["languages"] == ["id", "jv-x-banyumas", "ml"]
    words = metrics["lengths"]["vocabulary"]["answer_words"]
    assert (words["min"], words["max"]) == (0, 4)  # the test line with no messages has an empty answer
    assert metrics["lengths"]["translate_to_pivot"]["prompt_characters"]["max"] == len("be brief\nTranslate:\nകടൽ")
    assert [len(stats.samples[task]) for task in stats.tasks] == [3, 3]
    again = collect(processed, samples_per_task=3, seed=5)
    assert again.samples == stats.samples  # the same seed, the same samples
    assert collect(processed, samples_per_task=3, seed=6).samples["vocabulary"] != stats.samples["vocabulary"]


def test_prompt_is_everything_before_the_last_answer() -> None:
    example = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
                            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
                            {"role": "assistant", "content": "a2"}]}
    assert prompt_and_answer(example) == ("s\nq1\na1\nq2", "a2")
    assert length_summary({3: 1, 5: 2, 9: 1}) == {"min": 3, "median": 5, "mean": 5.5, "p95": 9, "max": 9}


def test_report_plots_and_metrics_are_the_same_bytes_twice(processed: Path, tmp_path: Path) -> None:
    written = write_report(processed, tmp_path / "reports" / "data_stats.md", tmp_path / "metrics" / "data_stats.json")
    first = {path: path.read_bytes() for path in [written.report, written.metrics, *written.plots]}
    assert [plot.name for plot in written.plots] == ["prompt_lengths.png", "answer_lengths.png"]
    assert all(plot.read_bytes().startswith(b"\x89PNG") and b"Software" not in plot.read_bytes() for plot in written.plots)
    write_report(processed, tmp_path / "reports" / "data_stats.md", tmp_path / "metrics" / "data_stats.json")
    assert {path: path.read_bytes() for path in first} == first
    report = written.report.read_text(encoding="utf-8")
    assert "| vocabulary | jv-x-banyumas | 30 | 1 | 0 | 31 |" in report
    assert "![prompt lengths](data_stats/prompt_lengths.png)" in report and "### translate_to_pivot" in report


def test_the_command_reads_params_paths_and_never_imports_torch(processed: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params_file = tmp_path / "params.yaml"  # its relative paths, from tmp_path: tmp_path/data/processed and so on
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    script = ("import sys; from langfoundry.cli.main import main; code = main(['data-stats', '--params', sys.argv[1], "
              "'--samples', '2']); assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, str(params_file)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "data-stats: 37 examples (train 35, val 1, test 1)" in done.stdout
    metrics = json.loads((tmp_path / "metrics" / "data_stats.json").read_text(encoding="utf-8"))
    assert metrics["samples_per_task"] == 2 and metrics["seed"] == params["seed"]
    assert (tmp_path / "reports" / "data_stats" / "answer_lengths.png").is_file()


def test_no_processed_data_is_one_clear_error(tmp_path: Path, capsys) -> None:
    code = langfoundry(["data-stats", "--params", str(REPO / "params.yaml"), "--processed", str(tmp_path / "none"),
                        "--report", str(tmp_path / "r.md"), "--metrics", str(tmp_path / "m.json")])
    assert code == 2
    assert "run `dvc repro format` first" in capsys.readouterr().err
