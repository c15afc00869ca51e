"""A throw-away copy of the repository (what git would see) for pipeline tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

GIT_ENV = {
    "GIT_AUTHOR_NAME": "pipeline test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "pipeline test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}


def env() -> dict[str, str]:
    """The environment stages run in: the venv first on PATH, offline hubs, no telemetry."""
    out = dict(os.environ)
    out.update(GIT_ENV)
    out["PATH"] = f"{VENV_BIN}{os.pathsep}{out.get('PATH', '')}"
    # The venv's editable install points at this checkout's src/; a relative "src" first makes each stage
    # (run from its repository's root) import the copy's own code, which is what its dvc.lock hashes.
    out["PYTHONPATH"] = os.pathsep.join(filter(None, ["src", out.get("PYTHONPATH")]))
    out.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"})
    # Pipeline tests compare runs on this one machine, which agree under the native kernels too, and run
    # two to three times faster; tests/test_determinism.py checks the pinned kernels across capability levels.
    out.setdefault("LANGFOUNDRY_NATIVE_KERNELS", "1")
    return out


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def copy_repo(dst: Path) -> Path:
    """Copy the tracked and untracked-but-not-ignored files, then make it a git repo with one commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if not src.is_file():
            continue
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    run(["git", "init", "-q"], dst)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "copy"], dst)
    return dst


def override_params(repo: Path, overrides: dict[str, object]) -> None:
    """Set dotted keys (e.g. "train.max_steps") in the copy's params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        if last not in node:
            raise KeyError(f"params.yaml has no key {dotted}")
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")


# Small enough that the whole pipeline runs in about a minute on 2 cores.
TINY_PARAMS: dict[str, object] = {
    "base.scratch.steps": 30,
    "base.scratch.hidden_size": 32,
    "base.scratch.intermediate_size": 64,
    "train.max_steps": 12,
    "train.eval_steps": 6,
    "evaluate.max_examples": 24,
    "evaluate.max_new_tokens": 8,
}

# TINY_PARAMS with a 2% validation split: the evaluations during training then take a second, not ten.
FAST_PARAMS: dict[str, object] = {**TINY_PARAMS, "split.val_fraction": 0.02}


def clone_built(src: Path, dst: Path) -> Path:
    """A copy of a repository whose pipeline has run (git history, DVC cache and outputs), to change freely."""
    shutil.copytree(src, dst, symlinks=True, ignore=lambda folder, names: ["tmp"] if folder.endswith(".dvc") else [])
    return dst
