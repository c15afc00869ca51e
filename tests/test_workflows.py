"""The GitHub workflows: valid against the workflow schema (offline), shell steps parse, the PR report is wired up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from langfoundry.reports.pr_report import MARKER, build_report

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PR_WORKFLOW = REPO / ".github" / "workflows" / "pr.yml"


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(path: Path) -> list[dict]:
    return [step for job in load(path)["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    # check-jsonschema ships the GitHub workflow schema, so this needs no network
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(workflow)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(PR_WORKFLOW.read_text(encoding="utf-8").replace("runs-on:", "run-on:"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(broken)], capture_output=True, text=True)
    assert result.returncode != 0


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_shell_step_parses(workflow: Path) -> None:
    for step in steps(workflow):
        if "run" not in step:
            continue
        script = re.sub(r"\$\{\{.*?\}\}", "x", step["run"])  # expressions are filled in before the shell sees them
        result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert result.returncode == 0, (step.get("name"), result.stderr)


def test_pr_workflow_runs_the_pipeline_and_posts_one_comment() -> None:
    workflow = load(PR_WORKFLOW)
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"]["pull-requests"] == "write"
    all_steps = steps(PR_WORKFLOW)
    checkout = next(step for step in all_steps if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, "the base branch's metrics must be in the clone"
    python = next(step for step in all_steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    scripts = "\n".join(step.get("run", "") for step in all_steps)
    for command in ("make venv", "dvc repro --pull --allow-missing", "dvc repro\n", "make pr-report"):
        assert command in scripts, command
    comment = next(step for step in all_steps if step.get("uses", "").startswith("actions/github-script@"))
    script = comment["with"]["script"]
    assert "updateComment" in script and "createComment" in script
    # the script finds its earlier comment by the report's first line
    assert "body.split('\\n')[0]" in script and build_report("main", "", "", [], [], None).splitlines()[0] == MARKER


def test_make_pr_report_target_passes_the_base() -> None:
    dry = subprocess.run(["make", "-n", "pr-report", "BASE=origin/dev", "PYTHON=python3"], cwd=REPO,
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "langfoundry.reports.pr_report --base origin/dev" in dry.stdout


def test_pr_workflow_lints_and_runs_the_fast_tests_before_the_pipeline() -> None:
    runs = [step.get("run", "") for step in steps(PR_WORKFLOW)]
    where = {command: next((index for index, script in enumerate(runs) if command in script), None)
             for command in ("make lint", "make test-fast", "dvc repro", "make pr-report")}
    assert None not in where.values(), where
    assert where["make lint"] <= where["make test-fast"] < where["dvc repro"] < where["make pr-report"], where
    dry = subprocess.run(["make", "-n", "lint", "PYTHON=python3"], cwd=REPO, capture_output=True, text=True)
    assert dry.returncode == 0 and "ruff check" in dry.stdout, dry.stdout + dry.stderr
