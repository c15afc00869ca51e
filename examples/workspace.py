"""A walkthrough's own project: a copy of this repository (what git tracks) in examples/<name>/work/, with the
walkthrough's sources.yaml and parameter overrides laid over it, where each command runs as a user would type it.

Every walkthrough's run.py uses this module, so a walkthrough never writes into the repository's own data,
models or dvc.lock, and `rm -r examples/<name>/work` undoes it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "walkthrough", "GIT_AUTHOR_EMAIL": "walkthrough@localhost",
                "GIT_COMMITTER_NAME": "walkthrough", "GIT_COMMITTER_EMAIL": "walkthrough@localhost"}


def sibling(example: Path, name: str) -> ModuleType:
    """A walkthrough's own module (build_data.py, stand_in.py) under a name of its own: several walkthroughs
    have a build_data.py, and `import build_data` would hand the second one the first one's module."""
    qualified = f"{Path(example).name.replace('-', '_')}_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, Path(example) / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # before exec: dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The venv first on PATH (stages say `python`), the copy's own src/ first on the import path (what its
    dvc.lock hashes), hubs offline."""
    out = dict(os.environ)
    out.update(GIT_IDENTITY)
    out["PATH"] = f"{VENV_BIN}{os.pathsep}{out.get('PATH', '')}"
    out["PYTHONPATH"] = os.pathsep.join(filter(None, ["src", out.get("PYTHONPATH")]))
    out.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"})
    out.update(extra or {})
    return out


def set_params(params_file: Path, overrides: Mapping[str, object]) -> None:
    """Set dotted keys (format.mix.shares) in a params.yaml; a key the file lacks is an error, not a new key."""
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        if last not in node:
            raise KeyError(f"{params_file}: no key {dotted} to override")
        node[last] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Workspace:
    """A project folder for one walkthrough; `run` shows each command and its output, as on a terminal."""

    def __init__(self, root: Path, extra_env: Mapping[str, str] | None = None):
        self.root = Path(root)
        self.env = environment(extra_env)

    @classmethod
    def create(cls, example: Path, root: Path | None = None, overrides: Mapping[str, object] | None = None,
               extra_env: Mapping[str, str] | None = None) -> Workspace:
        """Copy the repository into root (default: <example>/work, emptied first), lay the example's
        sources.yaml over it, apply overrides (dotted keys) to params.yaml, and commit it all."""
        example = Path(example).resolve()
        root = Path(root) if root is not None else example / "work"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            source = REPO / name
            if source.is_file() and not name.startswith("examples/"):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        if (example / "sources.yaml").exists():
            shutil.copy2(example / "sources.yaml", root / "sources.yaml")
        if overrides:
            set_params(root / "params.yaml", overrides)
        space = cls(root, extra_env)
        space.run(["git", "init", "-q"], show=False)
        space.commit("the walkthrough's starting point")
        return space

    def run(self, cmd: list[str], check: bool = True, show: bool = True) -> subprocess.CompletedProcess:
        """Run a command in the workspace; print it, its output and its time, so a person can follow."""
        if show:
            print(f"\n$ {' '.join(cmd)}", flush=True)
        started = time.monotonic()
        result = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True)
        if show:
            output = (result.stdout + result.stderr).rstrip()
            if output:
                print(output, flush=True)
            print(f"[{time.monotonic() - started:.1f} s, exit {result.returncode}]", flush=True)
        if check and result.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed with exit {result.returncode} in {self.root}")
        return result

    def start_server(self, command: list[str], port: int, note: str = "", timeout: float = 120) -> subprocess.Popen:
        """Start `langfoundry serve` (command) in the background; return once its /health answers."""
        import httpx

        print(f"\n$ {' '.join(command)} &{note}", flush=True)
        process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"langfoundry serve stopped: {process.stdout.read()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return process
            except httpx.HTTPError:
                time.sleep(0.3)
        process.kill()
        raise SystemExit(f"langfoundry serve did not answer within {timeout:.0f} s")

    def commit(self, message: str) -> None:
        self.run(["git", "add", "-A"], show=False)
        self.run(["git", "commit", "-qm", message, "--allow-empty"], show=False)

    def path(self, name: str) -> Path:
        return self.root / name
