"""Security: YAML is data, nothing is unpickled, remote code stays off, and secrets never reach an output.

The fast tests read the source code (ast) and the parameter models; the slow one runs the whole pipeline
with fake credentials planted in the environment and in DVC's local config, then looks for them in every
file the run leaves and in its logs.
"""

from __future__ import annotations

import ast
import re
import secrets
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from repo_copy import FAST_PARAMS, copy_repo, override_params, run

from langfoundry.core.config import Params, Sources, load_params, load_sources
from langfoundry.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("src", "stages", "benchmarks")


def python_files() -> list[Path]:
    files = [path for folder in CODE_DIRS for path in sorted((REPO / folder).rglob("*.py"))]
    assert len(files) > 20, "the code folders were not found"
    return files


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def dotted(node: ast.AST) -> str:
    """`a.b.c` for an attribute chain, '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def keyword(call: ast.Call, name: str):
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


# --- YAML -------------------------------------------------------------------------------------------

UNSAFE_YAML = {"yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
               "yaml.full_load_all"}


def test_yaml_is_only_loaded_safely():
    offenders = []
    for path in python_files():
        for call in calls(ast.parse(path.read_text(encoding="utf-8"))):
            name = dotted(call.func)
            loader = keyword(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
            if name in UNSAFE_YAML and not (loader is not None and dotted(loader).endswith(("SafeLoader", "CSafeLoader"))):
                offenders.append(f"{path.relative_to(REPO)}:{call.lineno}: {name}")
    assert offenders == []


@pytest.mark.parametrize("loader", [load_params, load_sources])
def test_a_python_object_tag_in_yaml_is_an_error_not_code(tmp_path, loader):
    marker = tmp_path / "ran"
    path = tmp_path / "file.yaml"
    path.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid YAML"):
        loader(path)
    assert not marker.exists()


# --- pickles ----------------------------------------------------------------------------------------

PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}
PICKLE_CALLS = {"torch.load", "pandas.read_pickle", "pd.read_pickle", "numpy.load", "np.load"}


def test_nothing_is_unpickled():
    offenders = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(REPO))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [f"{where}:{node.lineno}: import {a.name}" for a in node.names
                              if a.name.split(".")[0] in PICKLE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                offenders.append(f"{where}:{node.lineno}: from {node.module}")
        for call in calls(tree):
            name = dotted(call.func)
            if name in PICKLE_CALLS or is_true(keyword(call, "allow_pickle")):
                offenders.append(f"{where}:{call.lineno}: {name or 'allow_pickle=True'}")
    assert offenders == []


def _safe_option_dicts(function: ast.AST) -> set[str]:
    """Names a function binds to a dict literal with "use_safetensors": True (passed on as **name)."""
    names = set()
    for node in ast.walk(function):
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if isinstance(value, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "use_safetensors" and is_true(v)
                for k, v in zip(value.keys, value.values)):
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def test_models_are_loaded_from_safetensors_only():
    loads = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            safe_options = _safe_option_dicts(function)
            for call in calls(function):
                name = dotted(call.func)
                if not (name.endswith(".from_pretrained") and name.split(".")[-2].startswith("AutoModel")):
                    continue
                spread = {dotted(kw.value) for kw in call.keywords if kw.arg is None}
                # a GGUF file holds tensors and metadata only (no pickle), like safetensors
                gguf = keyword(call, "gguf_file") is not None
                safe = is_true(keyword(call, "use_safetensors")) or gguf or bool(spread & safe_options)
                loads.append((f"{path.relative_to(REPO)}:{call.lineno}", safe))
    assert loads, "no model loads found: the check looks in the wrong place"
    assert [where for where, safe in set(loads) if not safe] == []


def test_an_adapter_without_safetensors_weights_is_refused(tmp_path):
    from langfoundry.model.evaluation import attach_adapter

    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04 a pickle")
    with pytest.raises(UserError, match="adapter_model.safetensors"):
        attach_adapter(None, tmp_path)


# --- remote code and secrets in parameters ------------------------------------------------------------


def test_remote_code_is_off_by_default_and_never_forced_on():
    assert Params().base.trust_remote_code is False
    assert load_params(REPO / "params.yaml").base.trust_remote_code is False
    forced = [f"{path.relative_to(REPO)}:{call.lineno}" for path in python_files()
              for call in calls(ast.parse(path.read_text(encoding="utf-8")))
              if is_true(keyword(call, "trust_remote_code"))]
    assert forced == []


# "token" alone or as a suffix (hf_token, auth_token), not counts of tokens (max_new_tokens)
SECRET_NAME = re.compile(r"(^|_)token$|secret|password|passwd|api_?key|access_?key|credential", re.IGNORECASE)


def _field_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        names.append(prefix + name)
        for candidate in (info.annotation, *getattr(info.annotation, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    names += _field_names(inner, f"{prefix}{name}.")
    return names


def test_params_and_sources_have_no_place_for_a_secret():
    """Tokens and keys come from the environment (or DVC's local config), so no parameter may hold one."""
    names = _field_names(Params) + _field_names(Sources)
    assert "base.trust_remote_code" in names and "sources.acquire.huggingface.revision" in names
    assert [name for name in names if SECRET_NAME.search(name.rsplit(".", 1)[-1])] == []
    assert SECRET_NAME.search("hf_token") and SECRET_NAME.search("aws_secret_access_key")
    assert not SECRET_NAME.search("max_new_tokens")


# --- the whole pipeline with planted secrets ----------------------------------------------------------


def scan(root: Path, needles: list[str], skip: set[Path]) -> list[str]:
    """Files under root (not .git) whose bytes contain a needle."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or ".git" in path.relative_to(root).parts[:1] or path in skip:
            continue
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {needle[:12]}..." for needle in needles if needle.encode() in data]
    return found


@pytest.mark.slow
def test_planted_secrets_reach_no_output_log_or_lock_file(tmp_path, monkeypatch):
    fake = secrets.token_hex(12)
    planted = {"HF_TOKEN": f"hf_FAKE{fake}", "HUGGING_FACE_HUB_TOKEN": f"hf_FAKEHUB{fake}",
               "AWS_ACCESS_KEY_ID": f"AKIAFAKE{fake[:12].upper()}", "AWS_SECRET_ACCESS_KEY": f"FAKEsecret/{fake}+x"}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    remote_secret = f"FAKEremote{fake}"
    repo = copy_repo(tmp_path / "repo")
    override_params(repo, FAST_PARAMS)
    run(["git", "commit", "-qam", "fast parameters"], repo)
    run(["dvc", "remote", "add", "--local", "-d", "store", "s3://fake-bucket/langfoundry"], repo)
    run(["dvc", "remote", "modify", "--local", "store", "secret_access_key", remote_secret], repo)
    # control: the stages' environment does carry the planted token, so finding none below means something
    echoed = run(["python", "-c", "import os; print(os.environ['HF_TOKEN'])"], repo).stdout
    assert planted["HF_TOKEN"] in echoed

    result = run(["dvc", "repro"], repo)
    run(["dvc", "metrics", "show"], repo)
    logs = result.stdout + result.stderr
    needles = [*planted.values(), remote_secret, fake]
    outputs = [repo / name for name in ("data/interim", "data/processed", "models", "metrics", "reports", "dvclive",
                                        "dvc.lock")]
    assert all(path.exists() for path in outputs), [str(p) for p in outputs if not p.exists()]
    assert "Running stage 'evaluate'" in logs
    assert [needle[:12] for needle in needles if needle in logs] == []
    assert scan(repo, needles, skip={repo / ".dvc" / "config.local"}) == []
    assert remote_secret.encode() in (repo / ".dvc" / "config.local").read_bytes()  # the scan would have seen it
    assert planted["HF_TOKEN"] not in yaml.safe_dump(yaml.safe_load((repo / "params.yaml").read_text()))
