"""Compare two runs of the pipeline: the dvc.lock hash of every output, and every metric, side by side.

Timings (metrics/timings/, see timings.py) are reported apart: they measure the machine, not the pipeline,
and differ between any two runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from langfoundry.core.timings import TIMINGS


@dataclass
class Comparison:
    inputs_differ: list[str] = field(default_factory=list)  # deps whose hashes differ: then nothing else is comparable
    outputs: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)  # (stage, path, hash a, hash b)
    timings: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # (path, hash a, hash b)
    metrics_differ: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # (file, key, a, b)
    metrics_compared: int = 0

    @property
    def outputs_differ(self) -> list[tuple[str, str, str | None, str | None]]:
        return [row for row in self.outputs if row[2] != row[3]]

    @property
    def identical(self) -> bool:
        return not self.inputs_differ and not self.outputs_differ and not self.metrics_differ


def _hash(entry: dict[str, Any]) -> str | None:
    return entry.get("md5") or entry.get("etag") or entry.get("checksum")


def lock_entries(repo: Path, kind: str) -> dict[tuple[str, str], str | None]:
    """{(stage, path): hash} for the deps or outs of every stage in dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))
    return {(stage, entry["path"]): _hash(entry) for stage, body in lock["stages"].items() for entry in body.get(kind, [])}


@dataclass(frozen=True)
class DeclaredOutput:
    stage: str
    path: str
    cached: bool
    metric: bool


def resolved_stages(repo: Path) -> dict[str, dict[str, Any]]:
    """dvc.yaml's stages with ${paths.*} and the other templating resolved by DVC itself (dvc.lock unread)."""
    from dvc.dvcfile import load_file
    from dvc.repo import Repo

    with Repo(str(repo), uninitialized=True) as dvc:
        return load_file(dvc, "dvc.yaml").resolver.resolve()["stages"]


def declared_outputs(repo: Path) -> list[DeclaredOutput]:
    """Every output dvc.yaml declares (outs, metrics and plots), with its cache flag."""
    found = []
    for name, stage in resolved_stages(repo).items():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
                found.append(DeclaredOutput(name, path, (options or {}).get("cache", True), kind == "metrics"))
    return found


def metrics_files(repo: Path) -> list[str]:
    return sorted({out.path for out in declared_outputs(repo) if out.metric})


def _flat(repo: Path, path: str) -> dict[str, Any]:
    file = repo / path
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}


def is_timing_path(path: str) -> bool:
    return Path(path).parent.name == TIMINGS


def compare_runs(repo_a: Path, repo_b: Path) -> Comparison:
    result = Comparison()
    deps_a, deps_b = lock_entries(repo_a, "deps"), lock_entries(repo_b, "deps")
    result.inputs_differ = sorted({path for (stage, path) in deps_a.keys() | deps_b.keys()
                                   if deps_a.get((stage, path)) != deps_b.get((stage, path))})
    outs_a, outs_b = lock_entries(repo_a, "outs"), lock_entries(repo_b, "outs")
    for stage, path in list(outs_a) + [key for key in outs_b if key not in outs_a]:  # in pipeline order
        row = (stage, path, outs_a.get((stage, path)), outs_b.get((stage, path)))
        if is_timing_path(path):
            result.timings.append(row[1:])
        else:
            result.outputs.append(row)
    for path in metrics_files(repo_a):
        a, b = _flat(repo_a, path), _flat(repo_b, path)
        for key in sorted(set(a) | set(b)):
            result.metrics_compared += 1
            if a.get(key) != b.get(key):
                result.metrics_differ.append((path, key, a.get(key), b.get(key)))
    return result


def format_comparison(result: Comparison, label_a: str = "run 1", label_b: str = "run 2") -> str:
    lines = [f"| stage | output | {label_a} | {label_b} | same |", "|---|---|---|---|---|"]
    lines += [f"| {stage} | {path} | {(a or '–')[:12]} | {(b or '–')[:12]} | {'yes' if a == b else '**no**'} |"
              for stage, path, a, b in result.outputs]
    same = len(result.outputs) - len(result.outputs_differ)
    lines += ["", f"outputs: {same} of {len(result.outputs)} identical in dvc.lock",
              f"metrics: {result.metrics_compared - len(result.metrics_differ)} of {result.metrics_compared} values identical"]
    for path, key, a, b in result.metrics_differ:
        lines.append(f"  differs: {path} {key}: {a} vs {b}")
    if result.inputs_differ:
        lines.append(f"inputs differ, so the runs are not comparable: {', '.join(result.inputs_differ)}")
    lines.append("timings (machine-dependent, expected to differ, not compared): "
                 + ", ".join(f"{path} ({'same' if a == b else 'differs'})" for path, a, b in result.timings))
    if result.inputs_differ:
        lines.append("NOT COMPARABLE")
    else:
        lines.append("REPRODUCIBLE" if result.identical else "NOT REPRODUCIBLE")
    return "\n".join(lines)
