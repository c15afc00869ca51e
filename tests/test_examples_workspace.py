"""The walkthroughs run in one test session: each run.py must get its own build_data.py and stand_in.py, not the
module of the same name another walkthrough loaded first."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_run(name: str):
    spec = importlib.util.spec_from_file_location(f"walkthrough_{name.replace('-', '_')}_run", EXAMPLES / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_each_walkthrough_loads_its_own_helper_modules() -> None:
    loaded = {name: load_run(name) for name in ("domain-assistant", "lesson-videos", "linguist-archive")}
    assert Path(loaded["domain-assistant"].stand_in.__file__) == EXAMPLES / "domain-assistant/stand_in.py"
    assert Path(loaded["lesson-videos"].stand_in.__file__) == EXAMPLES / "lesson-videos/stand_in.py"
    assert Path(loaded["lesson-videos"].build_data.__file__) == EXAMPLES / "lesson-videos/build_data.py"
    assert Path(loaded["linguist-archive"].build_data.__file__) == EXAMPLES / "linguist-archive/build_data.py"


def test_every_walkthrough_has_the_files_make_example_runs() -> None:
    for folder in sorted(path for path in EXAMPLES.iterdir() if path.is_dir() and (path / "run.py").exists()):
        for name in ("README.md", "sources.yaml", "build_data.py"):
            assert (folder / name).is_file(), f"{folder.name}: no {name}"
