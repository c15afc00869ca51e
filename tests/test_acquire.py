"""Acquire: packaged resources, Hugging Face datasets (offline, local), URLs with pinned hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from langfoundry.core.config import ACQUIRED_DIR as ACQUIRED_ROOT
from langfoundry.core.config import load_sources
from langfoundry.core.errors import UserError
from langfoundry.data.acquire import acquire_sources

REPO = Path(__file__).resolve().parents[1]
PACKAGE = {"name": "banyumasan-corpus", "version": "0.1.0", "resource": "banyumasan_corpus/data/corpus.json"}


def make_repo(root: Path, monkeypatch, sources: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data" / "inventory").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", root / "data" / "inventory" / "languages.csv")
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    (root / "params.yaml").write_text("{}\n", encoding="utf-8")
    shutil.copytree(REPO / "expectations", root / "expectations", dirs_exist_ok=True)  # the ingest stage's quality gate
    monkeypatch.chdir(root)
    return root


def acquire() -> None:
    acquire_sources(load_sources().sources)


def packaged(source_id: str = "kamus", **package) -> dict:
    return {"id": source_id, "kind": "dictionary", "lang": "jv-x-banyumas", "pivot_lang": "id", "format": "json",
            "records_key": "entries", "columns": {"headword": "ngapak", "gloss": "indonesia"},
            "acquire": {"package": dict(PACKAGE, **package)}}


def tree(directory: Path) -> dict[str, bytes]:
    return {path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


# --- package -------------------------------------------------------------------------------------


def test_package_resource_is_copied_with_its_provenance(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [packaged()])
    acquire()
    shipped = (resources.files("banyumasan_corpus") / "data" / "corpus.json").read_bytes()
    target = ACQUIRED_ROOT / "kamus"
    assert sorted(path.name for path in target.iterdir()) == ["ACQUIRED.json", "corpus.json"]
    assert (target / "corpus.json").read_bytes() == shipped
    provenance = json.loads((target / "ACQUIRED.json").read_text())
    assert provenance["files"] == {"corpus.json": {"bytes": len(shipped), "sha256": hashlib.sha256(shipped).hexdigest()}}
    assert provenance["acquire"] == {"package": PACKAGE}


def test_reruns_are_byte_identical(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [packaged()])
    acquire()
    first = tree(ACQUIRED_ROOT)
    acquire()
    assert tree(ACQUIRED_ROOT) == first
    shutil.rmtree(ACQUIRED_ROOT)
    acquire()
    assert tree(ACQUIRED_ROOT) == first


def test_wrong_installed_version_says_how_to_install(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [packaged(version="9.9.9")])
    with pytest.raises(UserError, match=r"pins banyumasan-corpus==9\.9\.9 but 0\.1\.0 is installed; "
                                        r"run: pip install 'banyumasan-corpus==9\.9\.9'"):
        acquire()
    assert not (ACQUIRED_ROOT / "kamus").exists()


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [packaged(name="no-such-corpus-package")])
    with pytest.raises(UserError, match="not installed; run: pip install 'no-such-corpus-package==0.1.0'"):
        acquire()


def test_missing_resource_suggests_the_shipped_file(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [packaged(resource="banyumasan_corpus/data/corpus.jsn")])
    with pytest.raises(UserError, match="did you mean 'banyumasan_corpus/data/corpus.json'"):
        acquire()


def test_stale_entries_are_removed(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [packaged()])
    (ACQUIRED_ROOT / "dropped-source").mkdir(parents=True)
    (ACQUIRED_ROOT / "dropped-source" / "old.csv").write_text("x\n")
    (ACQUIRED_ROOT / ".kamus.partial").mkdir()
    (ACQUIRED_ROOT / "stray.txt").write_text("x\n")
    acquire()
    assert sorted(path.name for path in ACQUIRED_ROOT.iterdir()) == ["kamus"]
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": []}))
    acquire()
    assert list(ACQUIRED_ROOT.iterdir()) == []


# --- URL -----------------------------------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """A file server on the loopback interface only: (folder it serves, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def url_source(url: str, sha256: str) -> dict:
    return {"id": "web", "kind": "monolingual", "lang": "jv", "acquire": {"url": {"url": url, "sha256": sha256}}}


def test_url_download_is_verified_and_kept(tmp_path, monkeypatch, http_server):
    served, base = http_server
    payload = b"Aku mangan.\nDheweke turu.\n"
    (served / "teks jawa.txt").write_bytes(payload)
    make_repo(tmp_path / "repo", monkeypatch, [url_source(f"{base}/teks%20jawa.txt", hashlib.sha256(payload).hexdigest())])
    acquire()
    assert (ACQUIRED_ROOT / "web" / "teks jawa.txt").read_bytes() == payload
    provenance = json.loads((ACQUIRED_ROOT / "web" / "ACQUIRED.json").read_text())
    assert provenance["files"]["teks jawa.txt"]["sha256"] == hashlib.sha256(payload).hexdigest()


def test_url_hash_mismatch_writes_nothing_and_names_both_hashes(tmp_path, monkeypatch, http_server):
    served, base = http_server
    (served / "teks.txt").write_bytes(b"changed upstream\n")
    pinned = "0" * 64
    make_repo(tmp_path / "repo", monkeypatch, [url_source(f"{base}/teks.txt", pinned)])
    with pytest.raises(UserError) as caught:
        acquire()
    message = str(caught.value)
    assert "'web'" in message and pinned in message and hashlib.sha256(b"changed upstream\n").hexdigest() in message
    assert list(ACQUIRED_ROOT.iterdir()) == []


def test_a_failed_fetch_keeps_the_previous_copy(tmp_path, monkeypatch, http_server):
    served, base = http_server
    (served / "teks.txt").write_bytes(b"siji\n")
    make_repo(tmp_path / "repo", monkeypatch, [url_source(f"{base}/teks.txt", hashlib.sha256(b"siji\n").hexdigest())])
    acquire()
    before = tree(ACQUIRED_ROOT)
    (tmp_path / "repo" / "sources.yaml").write_text(yaml.safe_dump({"sources": [url_source(f"{base}/teks.txt", "1" * 64)]}))
    with pytest.raises(UserError, match="nothing was written"):
        acquire()
    assert tree(ACQUIRED_ROOT) == before


def test_url_errors_are_one_line(tmp_path, monkeypatch, http_server):
    _, base = http_server
    make_repo(tmp_path / "repo", monkeypatch, [url_source(f"{base}/missing.txt", "0" * 64)])
    with pytest.raises(UserError, match="answered HTTP 404"):
        acquire()
    make_repo(tmp_path / "repo", monkeypatch, [url_source("file:///etc/hostname", "0" * 64)])
    with pytest.raises(UserError, match="not an http"):
        acquire()


# --- Hugging Face --------------------------------------------------------------------------------

ROWS = {"text": ["siji", "loro", "telu"], "pivot_text": ["satu", "dua", "tiga"]}


def hf_source(source_id: str, dataset: str, **spec) -> dict:
    return {"id": source_id, "kind": "parallel", "lang": "jv", "pivot_lang": "id",
            "acquire": {"huggingface": {"dataset": dataset, **spec}}}


def test_huggingface_local_datasets_offline(tmp_path, monkeypatch):
    import datasets

    repo = make_repo(tmp_path / "repo", monkeypatch, [
        hf_source("saved", "local/saved"),
        hf_source("saved-dict", "local/saved-dict", split="test"),
        hf_source("parquet-files", "local/parquet"),
        hf_source("jsonl-files", "local/jsonl"),
    ])
    table = datasets.Dataset.from_dict(ROWS)
    table.save_to_disk("local/saved")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["x"], "pivot_text": ["y"]}),
                          "test": table}).save_to_disk("local/saved-dict")
    Path("local/parquet").mkdir(parents=True)
    table.to_parquet("local/parquet/part-0.parquet")
    Path("local/jsonl").mkdir(parents=True)
    table.to_json("local/jsonl/part-0.jsonl")
    # A fresh process, so the offline switch holds from the first import of the hub client.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    command = [sys.executable, str(REPO / "stages" / "acquire.py")]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for source_id in ("saved", "saved-dict", "parquet-files", "jsonl-files"):
        assert pq.read_table(ACQUIRED_ROOT / source_id / "data.parquet").select(list(ROWS)).to_pydict() == ROWS
    first = tree(ACQUIRED_ROOT)
    assert subprocess.run(command, cwd=repo, env=env, capture_output=True).returncode == 0
    assert tree(ACQUIRED_ROOT) == first
    done = subprocess.run([sys.executable, str(REPO / "stages" / "ingest.py")], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((repo / "metrics" / "ingest.json").read_text())
    assert metrics["rows_read"] == metrics["kept"] == 12


def test_huggingface_missing_split_is_a_user_error(tmp_path, monkeypatch):
    import datasets

    make_repo(tmp_path, monkeypatch, [hf_source("saved-dict", "local/saved-dict", split="validation")])
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS)}).save_to_disk("local/saved-dict")
    with pytest.raises(UserError, match="no split 'validation' \\(splits: train\\)"):
        acquire()


def test_huggingface_hub_id_needs_a_pinned_revision(tmp_path, monkeypatch):
    make_repo(tmp_path, monkeypatch, [hf_source("hub", "some-org/some-dataset")])
    with pytest.raises(UserError, match="needs a pinned revision"):
        acquire()
