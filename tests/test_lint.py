"""The linter configured in pyproject.toml runs clean over the whole tree (the pull-request workflow runs it too)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing_in_the_tree() -> None:
    result = subprocess.run([*ruff(), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_ruff_is_configured_to_catch_an_unused_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n", encoding="utf-8")
    result = subprocess.run([*ruff(), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(sample)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "F401" in result.stdout
