"""The linguist-archive walkthrough (examples/linguist-archive/run.py) end to end in a temporary folder: records of
every media kind with their origins, the data-statistics report and plots, the tokenizer verdict, evaluation
samples, GGUF files, and an answer from `make serve` (with the chat page of `make demo`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "examples" / "linguist-archive" / "run.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(shutil.which(tool) is None for tool in ("tesseract", "espeak-ng", "git", "make")),
                       reason="needs tesseract, espeak-ng, git and make (make system-deps)"),
]


def load_run():
    spec = importlib.util.spec_from_file_location("linguist_archive_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    root = tmp_path_factory.mktemp("linguist-archive") / "work"
    return load_run().main(["--work", str(root)])


def test_every_media_kind_reaches_ingest_with_its_origin(walkthrough) -> None:
    root = walkthrough["root"]
    rows = pq.read_table(root / "data/interim/ingested.parquet", columns=["source", "origin", "kind"]).to_pylist()
    origins: dict[str, list[str]] = {}
    for row in rows:
        origins.setdefault(row["source"], []).append(row["origin"])
    assert set(origins) == {"kamus-spreadsheet", "kamus-scans", "rekaman", "cerita-slamet"}
    assert len(origins["kamus-spreadsheet"]) == 400
    assert all(origin.startswith("data/raw/linguist/kamus.xlsx") for origin in origins["kamus-spreadsheet"])
    assert len(origins["kamus-scans"]) >= 25  # 40 lines; the ones Tesseract is unsure of go to the review queue
    assert any(origin.startswith("data/raw/linguist/scans/kamus-halaman-2.png#") and "line=" in origin
               for origin in origins["kamus-scans"])
    assert any(origin.startswith("data/raw/linguist/rekaman/pasar.wav#t=") for origin in origins["rekaman"])
    assert origins["cerita-slamet"] and all("slamet.jv.txt#sentences=" in origin for origin in origins["cerita-slamet"])
    assert (root / "data/speech/asr").is_dir()  # the recordings' manifests, with her transcripts


def test_data_stats_report_has_counts_plots_and_samples(walkthrough) -> None:
    root, stats = walkthrough["root"], walkthrough["data_stats"]
    assert stats["examples"] == sum(stats["splits"].values()) > 400
    assert {"vocabulary", "translate_to_pivot", "translate_from_pivot"} <= set(stats["by_task"])
    assert stats["languages"] == ["jv-x-banyumas"]
    report = (root / "reports/data_stats.md").read_text(encoding="utf-8")
    assert "## Examples per task and language" in report and "## Random samples per task" in report
    for plot in ("prompt_lengths.png", "answer_lengths.png"):
        data = (root / "reports/data_stats" / plot).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5_000


def test_tokenizer_verdict_eval_samples_and_gguf(walkthrough) -> None:
    root = walkthrough["root"]
    tokenizer = json.loads((root / "metrics/tokenizer.json").read_text(encoding="utf-8"))
    assert "verdict" in json.dumps(tokenizer)
    assert "jv-x-banyumas" in json.dumps(tokenizer)
    evaluation = (root / "reports/eval.md").read_text(encoding="utf-8")
    assert "chrF" in evaluation and walkthrough["eval_samples"]
    figures = json.loads((root / "metrics/eval.json").read_text(encoding="utf-8"))
    assert figures["adapter.chrf"] == walkthrough["eval"]["adapter.chrf"] >= 0 and "base.chrf" in figures
    assert set(walkthrough["gguf"]) == {"model-f16.gguf", "model-q8_0.gguf"}
    assert all(size > 10_000 for size in walkthrough["gguf"].values())
    assert all((root / "models/gguf" / name).read_bytes()[:4] == b"GGUF" for name in walkthrough["gguf"])


def test_the_served_model_answers_and_the_demo_page_is_there(walkthrough) -> None:
    served = walkthrough["served"]
    assert isinstance(served["answer"], str) and served["id"]
    assert served["model"].startswith("merged")
    assert served["demo_status"] == 200 and '<script src="/static/demo.js">' in served["demo_html"]
