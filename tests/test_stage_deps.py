"""Every project module a stage imports, directly or not, is covered by one of the stage's declared deps.

DVC reruns a stage only when a declared dependency changes, so a module missing from `deps` is code
that can change the outputs while `dvc repro` says "didn't change". The closure is computed
statically from the AST: every import statement (at module level or inside a function, since both
run) of `langfoundry` modules, absolute or relative, followed across the package, plus the
`__init__.py` of every package on the way (Python runs those too).
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
from dvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "langfoundry"


def module_file(src: Path, dotted: str) -> Path | None:
    """The file of a dotted module name under src (a module or a package), or None."""
    base = src.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def dotted_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def with_packages(src: Path, dotted: str) -> list[Path]:
    """The module's file and the __init__.py of every package above it."""
    names = dotted.split(".")
    files = [module_file(src, ".".join(names[:i])) for i in range(1, len(names) + 1)]
    return [file for file in files if file is not None]


def imported_modules(src: Path, path: Path) -> set[str]:
    """Dotted names of the project modules one file imports (any import statement, at any depth)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    here = dotted_name(src, path) if path.is_relative_to(src) else ""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here.split(".") if is_package else here.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            # `from package import name`: name may be a submodule
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if module_file(src, f"{base}.{alias.name}") is not None)
    return {name for name in found if module_file(src, name) is not None}


def import_closure(src: Path, entry: Path) -> set[Path]:
    """Every project file that running `entry` imports, directly or not, entry included."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for dotted in imported_modules(src, path):
            todo.extend(file for file in with_packages(src, dotted) if file not in seen)
    return seen


def entry_file(root: Path, src: Path, cmd: str) -> Path | None:
    """The script or module a stage command runs: `python stages/x.py ...` or `python -m pkg.mod ...`."""
    words = shlex.split(cmd)
    if not words or Path(words[0]).name not in {"python", "python3"} or len(words) < 2:
        return None
    if words[1] == "-m":
        return module_file(src, words[2])
    return root / words[1]


def missing_deps(root: Path, src: Path, cmd: str, deps: list[str]) -> list[str]:
    """Project files in the command's import closure that no declared dep (a file or a folder above it) covers."""
    entry = entry_file(root, src, cmd)
    if entry is None:
        return []
    declared = [(root / dep).resolve() for dep in deps]
    missing = []
    for file in sorted(import_closure(src, entry)):
        if not any(file == dep or dep in file.parents for dep in declared):
            missing.append(file.relative_to(root).as_posix())
    return missing


def stage_declarations(root: Path) -> dict[str, tuple[str, list[str]]]:
    """Each stage's command and declared deps, as DVC resolves them (templating included)."""
    with Repo(str(root)) as repo:
        return {stage.name: (stage.cmd, [dep.def_path for dep in stage.deps]) for stage in repo.index.stages}


def test_every_stage_declares_its_whole_import_closure():
    src = ROOT / "src"
    problems = [f"stage {name}: {path} is imported but not declared in deps (dvc.yaml)"
                for name, (cmd, deps) in stage_declarations(ROOT).items()
                for path in missing_deps(ROOT, src, cmd, deps)]
    assert not problems, "\n".join(problems)


def test_the_check_reaches_modules_imported_inside_functions_and_through_packages():
    src = ROOT / "src"
    closure = {path.relative_to(ROOT).as_posix() for path in import_closure(src, ROOT / "stages" / "clean.py")}
    # stages/clean.py -> clean.driver/filters -> core.streaming (module level) -> core.storage
    assert "src/langfoundry/core/storage.py" in closure
    assert "src/langfoundry/__init__.py" in closure
    assert "src/langfoundry/core/__init__.py" in closure
    assert not any(path.startswith("src/langfoundry/model/") for path in closure), "a data stage reaches model code"


def _toy_project(tmp_path: Path, extra_import: str = "") -> Path:
    src = tmp_path / "src" / PACKAGE
    (src / "core").mkdir(parents=True)
    (src / "model").mkdir()
    for folder in (src, src / "core", src / "model"):
        (folder / "__init__.py").write_text("")
    (src / "core" / "io.py").write_text("from ..core import paths\n")
    (src / "core" / "paths.py").write_text("ROOT = '.'\n")
    (src / "model" / "train.py").write_text("X = 1\n")
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "step.py").write_text(
        f"from {PACKAGE}.core import io\n\ndef main():\n    {extra_import or 'pass'}\n")
    return tmp_path


def test_a_new_import_without_a_dependency_fails_and_names_the_module(tmp_path):
    deps = ["stages/step.py", "src/langfoundry/__init__.py", "src/langfoundry/core"]
    clean_root = _toy_project(tmp_path / "before")
    assert missing_deps(clean_root, clean_root / "src", "python stages/step.py", deps) == []

    grown = _toy_project(tmp_path / "after", extra_import=f"from {PACKAGE}.model.train import X")
    assert missing_deps(grown, grown / "src", "python stages/step.py", deps) == [
        "src/langfoundry/model/__init__.py", "src/langfoundry/model/train.py"]
    # declaring the folder (or the files) makes it pass again
    assert missing_deps(grown, grown / "src", "python stages/step.py", [*deps, "src/langfoundry/model"]) == []


def test_dropping_a_declared_folder_from_the_real_dvc_yaml_fails():
    name, (cmd, deps) = next((name, value) for name, value in stage_declarations(ROOT).items()
                             if "src/langfoundry/clean" in value[1])
    without_clean = [dep for dep in deps if dep != "src/langfoundry/clean"]
    missing = missing_deps(ROOT, ROOT / "src", cmd, without_clean)
    assert missing and all(path.startswith("src/langfoundry/clean/") for path in missing), (name, missing)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])


@pytest.mark.parametrize("with_project_dvcignore", [True, False])
def test_bytecode_written_beside_a_dependency_does_not_make_its_stage_stale(tmp_path, monkeypatch,
                                                                           with_project_dvcignore):
    """Python writes __pycache__/*.pyc beside the modules it imports (unless PYTHONDONTWRITEBYTECODE):
    with the project's .dvcignore, DVC does not count them, so a run does not leave its stages changed."""
    (tmp_path / "src/pkg").mkdir(parents=True)
    (tmp_path / "src/pkg/mod.py").write_text("VALUE = 1\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  use:\n    cmd: echo used > out.txt\n    deps: [src/pkg]\n"
                                       "    outs: [out.txt]\n")
    monkeypatch.chdir(tmp_path)  # DVC reads the stages of the working directory
    repo = Repo.init(tmp_path, no_scm=True)
    if with_project_dvcignore:
        (tmp_path / ".dvcignore").write_text((ROOT / ".dvcignore").read_text())
    repo.reproduce()
    (tmp_path / "src/pkg/__pycache__").mkdir()
    (tmp_path / "src/pkg/__pycache__/mod.cpython-311.pyc").write_bytes(b"\x00bytecode")
    stale = Repo(tmp_path).status()
    assert stale == ({} if with_project_dvcignore else {"use": [{"changed deps": {"src/pkg": "modified"}}]})
