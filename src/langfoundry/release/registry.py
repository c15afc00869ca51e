"""The model registry: versions and stages of the exported models, kept as GTO git tags.

`register` tags the committed export (`merged@v0.0.2`, and the same version of `adapter` and `gguf`), with
the release decision and the data version in the tag message. `promote` assigns a stage (`merged#prod#5`)
and refuses a version whose release gate failed at its own commit, unless forced. `rollback` gives the
stage back to the version that held it before. `resolve` turns a stage into the folder of its merged model.

GTO orders an artifact's events by the tag's time in whole seconds, and `dvc artifacts get --stage` takes
the newest stage tag: a stage tag therefore waits for a second of its own, and a promotion first unassigns
the stage's old version, then assigns the new one, so one version holds a stage and every tool agrees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from gto.base import Artifact, BaseRegistryState, Version
from gto.exceptions import GTOException
from gto.registry import GitRegistry
from gto.tag import parse_name
from gto.versions import SemVer

from langfoundry.core.config import PathsParams, load_params
from langfoundry.core.errors import UserError, stage_entry

ARTIFACTS = ("merged", "adapter", "gguf")  # registered together: one version number names one release
SERVED = "merged"  # what `resolve` returns: the Hugging Face folder the server loads
STAGES = ("staging", "prod")
ROLLBACK = "rollback:"  # starts a rollback's assignment message, so a second rollback goes one further back
FIRST = {"patch": "v0.0.1", "minor": "v0.1.0", "major": "v1.0.0"}  # the first version a bump gives
CACHE_DIR = Path("models/.registry")  # versions materialised from the DVC cache (models/ is ignored by git)


@dataclass(frozen=True)
class ResolvedModel:
    version: str
    commit: str | None  # None for a folder given directly
    path: Path


@dataclass(frozen=True)
class Gate:
    decision: str  # pass | fail | missing
    failed: str  # the failed criteria with their values, or why there is no decision
    pending: str  # the criteria still waiting for evidence

    @property
    def summary(self) -> str:
        return "; ".join(filter(None, [self.failed, self.pending and f"pending: {self.pending}"]))

    @property
    def verdict(self) -> str:  # what stops a promotion
        return f"has {self.failed}" if self.decision == "missing" else f"failed its release gate: {self.summary}"


class Project:
    """A checkout: its git history, dvc.yaml's artifact paths, dvc.lock's output hashes, metrics at a commit."""

    def __init__(self, root: str | Path = "."):
        self.root = Path(root).resolve()
        params_file = self.root / "params.yaml"
        self.paths = load_params(params_file).paths if params_file.exists() else PathsParams()

    def git(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True)

    def head(self) -> str:
        result = self.git("rev-parse", "--verify", "HEAD")
        if result.returncode:
            raise UserError(f"{self.root}: not a git repository with a commit; commit the export first")
        return result.stdout.strip()

    def read(self, commit: str | None, path: Path | str) -> str | None:
        """A file's text at a commit (None: the working tree), or None where it does not exist."""
        if commit is None:
            return (self.root / path).read_text(encoding="utf-8") if (self.root / path).is_file() else None
        result = self.git("show", f"{commit}:{Path(path).as_posix()}")
        return result.stdout if result.returncode == 0 else None

    def artifact_path(self, name: str) -> str:
        spec = (yaml.safe_load(self.read(None, "dvc.yaml") or "{}") or {}).get("artifacts", {}).get(name)
        if not spec or "path" not in spec:
            raise UserError(f"dvc.yaml: no artifact '{name}' with a path; declare it under artifacts: (type: model)")
        return str(spec["path"])

    def lock_hashes(self, commit: str | None) -> dict[str, str]:
        """dvc.lock's output hashes by path, at a commit or in the working tree."""
        lock = yaml.safe_load(self.read(commit, "dvc.lock") or "{}") or {}
        return {out["path"]: out.get("md5") or out.get("hash", "") for stage in lock.get("stages", {}).values()
                for out in stage.get("outs", [])}

    def metric(self, commit: str, name: str) -> dict | None:
        path, text = self.paths.metric(name), self.read(commit, self.paths.metric(name))
        try:
            found = None if text is None else json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path} at commit {commit[:7]}: not valid JSON ({err})") from err
        if found is not None and not isinstance(found, dict):
            raise UserError(f"{path} at commit {commit[:7]}: not a JSON object; rerun its stage and commit")
        return found

    def gate(self, commit: str) -> Gate:
        """The release decision recorded at a commit (metrics/release.json there, not the working tree's)."""
        decision = self.metric(commit, "release")
        if decision is None:
            return Gate("missing", f"no release decision ({self.paths.metric('release')} is not in commit {commit[:7]})", "")
        if decision.get("decision") not in ("pass", "fail"):
            raise UserError(f"{self.paths.metric('release')} at commit {commit[:7]}: no decision pass|fail; "
                            "rerun the release stage (dvc repro release) and commit")
        criteria = decision.get("criteria", [])
        return Gate(decision["decision"],
                    ", ".join(f"{c.get('name')} {_number(c.get('value'))} (threshold {_number(c.get('threshold'))})"
                              for c in criteria if c.get("status") == "fail"),
                    ", ".join(str(c.get("name")) for c in criteria if c.get("status") == "pending"))


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@contextmanager
def _registry(project: Project) -> Iterator[GitRegistry]:
    try:
        with GitRegistry.from_url(str(project.root)) as registry:
            yield registry
    except GTOException as err:
        raise UserError(f"registry (git tags in {project.root}): {err.msg}") from err


def _artifact(state: BaseRegistryState, name: str) -> Artifact | None:
    return state.get_artifacts().get(name)


def _versions(state: BaseRegistryState, name: str) -> list[Version]:
    artifact = _artifact(state, name)
    return artifact.get_versions() if artifact else []  # registered and active, the greatest first


def holder(state: BaseRegistryState, name: str, stage: str) -> Version | None:
    """The version of an artifact that holds a stage now (GTO's answer, as `gto show` gives it), or None."""
    artifact = _artifact(state, name)
    held = artifact.get_vstages().get(stage) if artifact else None
    return artifact.find_version(name=held[0].version) if held else None


def _next_second(state: BaseRegistryState, names: Sequence[str], stage: str, just_tagged: bool) -> None:
    """Wait, if need be, until the clock has left the second of the newest tag of this stage of these artifacts."""
    times = [event.created_at.timestamp() for name in names if _artifact(state, name)
             for version in _artifact(state, name).versions if stage in version.stages
             for event in version.stages[stage].get_events()]
    newest = max(int(max(times, default=0)), int(time.time()) if just_tagged else 0)
    time.sleep(max(0.0, newest + 1 - time.time()))


def register(root: str | Path = ".", artifacts: Sequence[str] = ARTIFACTS, bump: str = "patch") -> str:
    """Register HEAD's export as one new version of each artifact; returns the version."""
    project = Project(root)
    head = project.head()
    committed, working = project.lock_hashes(head), project.lock_hashes(None)
    for name in artifacts:
        path = project.artifact_path(name)
        if path not in committed:
            raise UserError(f"dvc.lock at HEAD has no output {path} ({name}); run `dvc repro export` and commit dvc.lock")
        if working.get(path) != committed[path]:
            raise UserError(f"dvc.lock has uncommitted changes to {path} ({name}); commit them first "
                            f"(git add dvc.lock && git commit), then register")
    gate, data = project.gate(head), project.metric(head, "train") or {}
    data_version = " ".join(f"{key.removeprefix('data_version.')}={str(value)[:12]}"
                            for key, value in sorted(data.items()) if key.startswith("data_version."))
    with _registry(project) as registry:
        state = registry.get_state()
        for name in artifacts:
            at_head = [v.version for v in _versions(state, name) if v.commit_hexsha == head]
            if at_head:
                raise UserError(f"{name} is already registered at HEAD ({head[:7]}) as {at_head[0]}; "
                                f"commit a new export first, or promote {at_head[0]}")
        latest = [SemVer(versions[0].version) for versions in (_versions(state, n) for n in ARTIFACTS) if versions]
        version = getattr(max(latest), f"bump_{bump}")().version if latest else FIRST[bump]
        message = "\n".join([f"register {version} at {head[:7]}",
                             f"release gate: {gate.decision}" + (f" ({gate.summary})" if gate.summary else ""),
                             f"data: {data_version or 'unknown (no data_version in metrics/train.json)'}"])
        for name in artifacts:
            registry.register(name, head, version=version, message=message, simple=True)
            print(f"registered {name} {version} at {head[:7]} (release gate: {gate.decision})")
    return version


def promote(stage: str, root: str | Path = ".", version: str | None = None, force: bool = False,
            artifacts: Sequence[str] = ARTIFACTS) -> str:
    """Assign a stage to a version (default: the latest), refusing one whose release gate failed unless forced."""
    project = Project(root)
    with _registry(project) as registry:
        state = registry.get_state()
        first = _versions(state, artifacts[0])
        if not first:
            raise UserError(f"no version of {artifacts[0]} is registered; run `make register` first")
        version = version or first[0].version
        chosen = {}
        for name in artifacts:
            found = [v for v in _versions(state, name) if v.version == version]
            if not found:
                known = ", ".join(v.version for v in _versions(state, name)) or "none"
                raise UserError(f"{name} has no version {version} (registered: {known}); "
                                f"pass --artifact to promote the others alone")
            chosen[name] = found[0]
        gates = {v.commit_hexsha: project.gate(v.commit_hexsha) for v in chosen.values()}
        refused = [gate for gate in gates.values() if gate.decision != "pass"]
        if refused and not force:
            raise UserError(f"{version} {refused[0].verdict}; "
                            f"to promote it anyway: make promote STAGE={stage} VERSION={version} FORCE=1")
        why = "release gate pass" if not refused else "forced: " + (
            refused[0].failed if refused[0].decision == "missing" else f"release gate failed: {refused[0].summary}")
        moves = []
        for name in artifacts:
            current = holder(state, name, stage)
            if current and current.version == version:
                print(f"{name} {version} is already in {stage}")
            else:
                moves.append(Move(name, chosen[name], current, f"promote {version} to {stage}: {why}"))
        _move(registry, state, stage, moves)
        for move in moves:
            print(f"promoted {move.name} {version} ({move.target.commit_hexsha[:7]}) to {stage}: {why}")
    return version


@dataclass(frozen=True)
class Move:
    name: str  # the artifact
    target: Version  # gets the stage
    current: Version | None  # holds it now
    message: str  # of the assignment tag; the unassignment says what replaced it


def _move(registry: GitRegistry, state: BaseRegistryState, stage: str, moves: Sequence[Move]) -> None:
    """Unassign the stage from its current holders, then, in a later second, assign it to the targets.

    An unassignment may share its second with the assignment it cancels (GTO puts the unassignment after it
    on a tie), but an assignment may not share one with an earlier unassignment of the same version.
    """
    leaving = [move for move in moves if move.current]
    for move in leaving:
        registry.unassign(move.name, stage, version=move.current.version,
                          message=f"{move.current.version} leaves {stage}: {move.message}")
    if moves:
        _next_second(state, [move.name for move in moves], stage, just_tagged=bool(leaving))
    for move in moves:
        registry.assign(move.name, stage, version=move.target.version, message=move.message, simple=False)


def stage_history(artifact: Artifact, stage: str) -> list[str]:
    """The versions that held a stage, oldest first, as a stack: a promotion pushes, a rollback pops."""
    events = [event for version in artifact.versions if stage in version.stages
              for event in version.stages[stage].assignments]
    stack: list[str] = []
    for event in sorted(events, key=lambda e: parse_name(e.tag).get("counter", 0)):
        if event.message.startswith(ROLLBACK):
            while stack and stack[-1] != event.version:
                stack.pop()
        if not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack


def rollback(stage: str = "prod", root: str | Path = ".", artifacts: Sequence[str] = ARTIFACTS) -> dict[str, str]:
    """Give a stage back to the version that held it before; returns {artifact: the version it now holds}."""
    project = Project(root)
    with _registry(project) as registry:
        state = registry.get_state()
        moves = []
        for name in artifacts:
            artifact = _artifact(state, name)
            current = holder(state, name, stage)
            active = {v.version: v for v in _versions(state, name)}
            earlier = [v for v in stage_history(artifact, stage) if v in active] if artifact else []
            while earlier and current and earlier[-1] == current.version:
                earlier.pop()
            if not earlier:
                held = current.version if current else "nothing"
                raise UserError(f"{name} has no earlier version in {stage} to roll back to ({stage} holds {held})")
            target, was = active[earlier[-1]], current.version if current else "nothing"
            moves.append(Move(name, target, current, f"{ROLLBACK} {stage} back to {target.version} from {was}"))
        _move(registry, state, stage, moves)
        for move in moves:
            print(f"rollback: {move.name} {stage} moved from {move.message.rsplit(' ', 1)[-1]} back to "
                  f"{move.target.version} ({move.target.commit_hexsha[:7]})")
    return {move.name: move.target.version for move in moves}


def show(root: str | Path = ".") -> str:
    """The registry as a table: every active version, its commit, date, release decision and stages."""
    project = Project(root)
    with _registry(project) as registry:
        state = registry.get_state()
    rows = [("artifact", "version", "commit", "registered (UTC)", "gate", "stages")]
    gates: dict[str, Gate] = {}
    for name in [*ARTIFACTS, *sorted(set(state.get_artifacts()) - set(ARTIFACTS))]:
        for version in _versions(state, name):
            commit = version.commit_hexsha
            gate = gates.setdefault(commit, project.gate(commit))
            stages = ", ".join(s.stage for s in version.get_vstages()
                               if (h := holder(state, name, s.stage)) and h.version == version.version)
            rows.append((name, version.version, commit[:7], version.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                         gate.decision, stages or "-"))
    if len(rows) == 1:
        return "the registry is empty: `make register` registers the committed export"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _folder_version(folder: Path) -> str:
    """A folder given instead of a stage: its name and a short hash of its config (or of its file list)."""
    config = folder / "config.json"
    content = config.read_bytes() if config.is_file() else "\n".join(
        f"{p.relative_to(folder)} {p.stat().st_size}" for p in sorted(folder.rglob("*")) if p.is_file()).encode()
    return f"{folder.name}-{hashlib.sha256(content).hexdigest()[:8]}"


def resolve(stage: str, root: str | Path = ".", artifact: str = SERVED) -> ResolvedModel:
    """The local folder of the model a stage holds; a folder path given instead resolves to itself."""
    project = Project(root)
    folder = Path(stage) if Path(stage).is_absolute() else project.root / stage
    if stage not in STAGES and folder.is_dir():
        return ResolvedModel(_folder_version(folder), None, folder)
    if "/" in stage or os.sep in stage or stage.startswith("."):
        raise UserError(f"model folder {stage} does not exist; give a model folder or a registry stage ({', '.join(STAGES)})")
    with _registry(project) as registry:
        version = holder(registry.get_state(), artifact, stage)
    if version is None:
        nor = "" if stage in STAGES else f" (nor is {stage} a model folder)"
        raise UserError(f"no version of {artifact} is in stage '{stage}'{nor}; promote one first: make promote STAGE={stage}")
    commit, path = version.commit_hexsha, project.artifact_path(artifact)
    workspace = project.root / path
    committed = project.lock_hashes(commit).get(path)
    if committed and workspace.is_dir() and committed == project.lock_hashes(None).get(path):
        return ResolvedModel(version.version, commit, workspace)
    return ResolvedModel(version.version, commit, _materialise(project, artifact, version.version, commit))


def _materialise(project: Project, artifact: str, version: str, commit: str) -> Path:
    """models/.registry/<version>/ from the DVC cache (or remote) at the version's commit; built aside, then renamed."""
    target = project.root / CACHE_DIR / version
    if target.is_dir():
        return target
    partial = target.with_name(f".{version}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    from dvc.repo import Repo  # only here: importing DVC takes a second

    try:
        with Repo(str(project.root)) as repo:
            repo.artifacts.download(artifact, version=version, out=str(partial), force=True)
    except Exception as err:  # DVC raises several unrelated types for a missing object
        shutil.rmtree(partial, ignore_errors=True)
        raise UserError(f"{artifact} {version} (commit {commit[:7]}) could not be read from the DVC cache ({err}); "
                        "fetch it with `dvc fetch --all-tags` (the registry's versions are git tags)") from err
    os.replace(partial, target)
    return target


def _main(args: argparse.Namespace) -> None:
    artifacts = tuple(getattr(args, "artifact", None) or ARTIFACTS)
    {"register": lambda: register(args.root, artifacts, args.bump),
     "promote": lambda: promote(args.stage, args.root, args.version, args.force, artifacts),
     "rollback": lambda: rollback(args.stage, args.root, artifacts),
     "show": lambda: print(show(args.root))}[args.command]()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m langfoundry.release.registry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the project's git checkout (default: .)")
    commands = parser.add_subparsers(dest="command", required=True)
    chosen = argparse.ArgumentParser(add_help=False)
    chosen.add_argument("--artifact", action="append", choices=ARTIFACTS,
                        help="only this artifact (repeatable; default: merged, adapter and gguf together)")
    one = commands.add_parser("register", parents=[chosen], help="register HEAD's export as a new version")
    one.add_argument("--bump", choices=("patch", "minor", "major"), default="patch")
    one = commands.add_parser("promote", parents=[chosen], help="assign a stage to a version that passed its gate")
    one.add_argument("--stage", required=True, choices=STAGES)
    one.add_argument("--version", help="e.g. v0.0.2 (default: the latest)")
    one.add_argument("--force", action="store_true", help="promote even though its release gate failed (recorded)")
    one = commands.add_parser("rollback", parents=[chosen], help="give a stage back to its previous version")
    one.add_argument("--stage", default="prod", choices=STAGES)
    commands.add_parser("show", help="versions, release decisions and stages")
    return parser


if __name__ == "__main__":
    stage_entry(_main, build_parser())
