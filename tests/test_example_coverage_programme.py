"""The coverage-programme walkthrough end to end (examples/coverage-programme): the coverage report and its chart,
the planned sources listed as missing inputs, per-region scores, and two deliveries of the same size through
`make cycle`: the first passes the 10% growth threshold and retrains, the second does not, each saying why."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("make") is None, reason="needs make")]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "coverage-programme"


def load_walkthrough():
    spec = importlib.util.spec_from_file_location("coverage_programme_run", EXAMPLE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_coverage_programme_walkthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = load_walkthrough().main(["--work", str(tmp_path / "work")])
    root = Path(result["root"])

    report = (root / "reports/coverage.md").read_text(encoding="utf-8")
    assert (root / "reports/coverage.png").read_bytes().startswith(b"\x89PNG")
    assert "## By region" in report and "## By language" in report and "## By dataset" in report
    missing = report.split("## Missing inputs", 1)[1].split("\n## ", 1)[0]
    for source, path in (("bugis-folktales", "data/raw/programme/buginese/folktales.tsv"),
                         ("papuan-malay-radio", "data/raw/programme/papuan-malay/radio.txt")):
        assert f"`{source}`: `{path}` does not exist (planned" in missing
    coverage = json.loads((root / "metrics/coverage.json").read_text(encoding="utf-8"))
    assert coverage["missing_inputs"] == 2 and coverage["sources_planned"] == 2
    assert coverage["languages.with_data"] == 5 and coverage["languages.inventory"] >= 70
    assert coverage["source.bugis-folktales.missing"] is True and coverage["source.bugis-folktales.dedup"] == 0

    scores = json.loads((root / "metrics/eval.json").read_text(encoding="utf-8"))
    for region in ("java", "sumatra", "bali-and-nusa-tenggara"):
        assert coverage[f"region.{region}.count"] > 0
        assert f"adapter.region.{region}.chrf" in scores, sorted(key for key in scores if ".region." in key)
    assert coverage["region.sulawesi.count"] == 0 and coverage["region.sulawesi.target"] > 0
    assert result["regions"]["java"]["records"] == 900

    first, second = result["cycles"]
    assert first["decision"].startswith("retrain: full (the clean data grew 10.7% (full refresh from 10%))")
    assert first["trained"] and "clean records now 1,660, when the adapter was trained 1,500" in first["decision"]
    assert first["retrain_after"]["verdict"] == "none" and first["retrain_after"]["trained_clean_rows"] == 1660
    assert second["decision"].startswith("retrain: none (160 new clean records, 0 new corrections and +9.6% growth: "
                                         "below every threshold")
    assert not second["trained"] and "cycle: no training due; the current adapter stays" in second["output"]
    trained = json.loads((root / "metrics/train.json").read_text(encoding="utf-8"))
    assert trained["data_version.clean_rows"] == 1660, "the adapter is still the one of the first cycle"
    assert coverage["total"] == 1820

    printed = capsys.readouterr().out
    assert "$ dvc repro" in printed and printed.count("$ make --no-print-directory cycle") == 2
