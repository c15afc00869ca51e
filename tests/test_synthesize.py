"""The synthesize stage against a stand-in OpenAI-compatible server on 127.0.0.1: provenance, split groups,
review, the response cache, the filters, garbage answers, an endpoint that is down, and the stage when off."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from ingest_run import ingest_into
from local_server import serving

from langfoundry.core.config import IngestParams, Params, load_params, load_sources
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.data import split
from langfoundry.data.synth_client import parse_variations
from langfoundry.data.synthesize import read_seeds, seed_group

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "synthesize.py"
MODEL = "stand-in-1"
REGISTER_WORDS = {"formal": "formal", "bisnis": "business", "santai": "casual"}

SOURCES = """sources:
  - id: tiny-qa
    kind: instruction
    lang: id
    path: data/raw/qa.jsonl
  - id: tiny-dict
    kind: dictionary
    lang: jv-x-banyumas
    pivot_lang: id
    path: data/raw/dict.csv
"""
QA = [{"instruction": "Sebutkan tiga warna pada bendera negara Belanda", "output": "Merah, putih, biru."},
      {"instruction": "Jelaskan mengapa langit terlihat berwarna biru pada siang hari", "output": "Hamburan Rayleigh."},
      {"instruction": "GARBAGE please answer with something unreadable", "output": "Tidak ada."}]
DICT = "headword,gloss\nomah,rumah tempat tinggal keluarga besar\nadem,udara yang terasa dingin dan sejuk\n"


def answer_for(prompt: str) -> str:
    """Five items per prompt: the seed itself, a near copy, an empty one and two real variations; or garbage."""
    seed = prompt.split("Teks:\n", 1)[1].strip()
    if "GARBAGE" in seed:
        return "{this is not json, and not a list either"
    register = next(name for word, name in REGISTER_WORDS.items() if word in prompt)
    tag = hashlib.sha256(seed.encode()).hexdigest()[:6]
    near = seed[:-1] + ("x" if seed[-1] != "x" else "y")
    return json.dumps([seed, near, "  ", f"{register} pertama {tag} sungguh lain", f"{register} kedua {tag} amat beda"])


def stand_in(calls: list[dict]):
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        calls.append(body)
        content = answer_for(body["messages"][0]["content"])
        return {"id": f"c{len(calls)}", "object": "chat.completion", "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}

    return app


@pytest.fixture(scope="module")
def server():
    calls: list[dict] = []
    with serving(stand_in(calls)) as url:
        yield url, calls


def make_project(root: Path, endpoint: str, **synthesize) -> Path:
    """A project folder: two small sources, the repository's templates, params.yaml with synthesize on."""
    (root / "data" / "raw").mkdir(parents=True)
    (root / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    (root / "data" / "raw" / "qa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in QA), encoding="utf-8")
    (root / "data" / "raw" / "dict.csv").write_text(DICT, encoding="utf-8")
    shutil.copytree(REPO / "templates" / "synthesize", root / "templates" / "synthesize")
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", root / "languages.csv")
    params = Params().model_dump(mode="json")
    params["paths"]["inventory"] = "languages.csv"
    params["synthesize"].update({"enabled": True, "sources": ["tiny-qa", "tiny-dict"], "variations": 5,
                                 "endpoint": endpoint, "retries": 0, "timeout_s": 10.0, **synthesize})
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    return root


def run_stage(root: Path, monkeypatch) -> dict:
    monkeypatch.chdir(root)
    sys.path.insert(0, str(STAGE.parent))
    try:
        import synthesize as stage
    finally:
        sys.path.remove(str(STAGE.parent))
    return stage.main(load_params("params.yaml"))


def written(root: Path) -> list[dict]:
    lines = []
    for path in sorted((root / "data/interim/media/synthesize").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines


def review_data(*argv: str) -> int:
    from langfoundry.cli.main import main

    return main(["review-data", "--params", "params.yaml", *argv])


def test_parse_variations_reads_lists_lines_and_refuses_garbage():
    assert parse_variations('["a", "b"]') == ["a", "b"]
    assert parse_variations('```json\n{"variations": ["a"]}\n```') == ["a"]
    assert parse_variations('1. "Satu"\n\n2) Dua\n- Tiga') == ["Satu", "Dua", "Tiga"]
    assert parse_variations("{broken") is None
    assert parse_variations("[1, 2]") is None
    assert parse_variations("   ") is None


def test_variations_provenance_filters_cache_and_review(tmp_path, server, monkeypatch):
    url, calls = server
    root = make_project(tmp_path, f"{url}/v1")
    before = len(calls)
    metrics = run_stage(root, monkeypatch)
    # 3 + 2 seeds x 3 registers; the garbage seed's 3 answers are counted, each other answer keeps 2 of 5
    assert len(calls) - before == 15
    assert (metrics["requests"], metrics["requested"], metrics["returned"], metrics["kept"]) == (15, 75, 60, 24)
    assert metrics["dropped"] == {"unparseable": 3, "empty": 12, "surplus": 0, "same_as_seed": 12, "near_seed": 12,
                                  "repeated": 0}
    assert metrics["review"] == {"accepted": 0, "rejected": 0, "pending": 24}
    assert metrics["cache"] == {"hits": 0, "misses": 15}
    assert all(call["model"] == "auto" and call["seed"] == 13 for call in calls[before:])

    lines = written(root)
    sources = load_sources(root / "sources.yaml").sources
    languages = list(load_inventory(root / "languages.csv"))
    seeds = {record["id"]: record for source in sources for record in read_seeds(source, root, False, languages)}
    for line in lines:
        meta = line["meta"]
        seed = seeds[meta["seed"]]
        assert meta["synthetic"] is True and meta["model"] == MODEL and meta["review"] == "pending"
        assert meta["template"].startswith(f"id/{meta['register']}@") and meta["seed_source"] == seed["source"]
        assert meta["seed"] in line["origin"] and meta["template"] in line["origin"] and MODEL in line["origin"]
        assert meta["group"] == seed_group(seed, Params())  # the seed's own split group
        assert line["variation_text"] not in (line["seed_text"], "")

    # a rerun asks nothing and writes the same bytes
    first = {path.name: path.read_bytes() for path in (root / "data/interim/media/synthesize").iterdir()}
    metrics = run_stage(root, monkeypatch)
    assert len(calls) - before == 15 and metrics["cache"] == {"hits": 15, "misses": 0}
    assert {path.name: path.read_bytes() for path in (root / "data/interim/media/synthesize").iterdir()} == first

    # review: decisions land in the file, and in meta on the next (cached) run
    accepted, rejected = lines[0]["meta"]["variation"], lines[1]["meta"]["variation"]
    assert review_data("accept", accepted) == 0
    assert review_data("reject", rejected[:8]) == 0
    assert review_data("accept", "ffffffffffffffff") == 2
    decisions = [json.loads(line) for line in (root / "data/review/synthetic.jsonl").read_text().splitlines()]
    assert {(entry["id"], entry["decision"]) for entry in decisions} == {(accepted, "accepted"), (rejected, "rejected")}
    assert written(root)[0]["meta"]["review"] == "pending"  # only the stage writes meta
    metrics = run_stage(root, monkeypatch)
    assert len(calls) - before == 15
    states = {line["meta"]["variation"]: line["meta"]["review"] for line in written(root)}
    assert states[accepted] == "accepted" and states[rejected] == "rejected"
    assert metrics["review"] == {"accepted": 1, "rejected": 1, "pending": 22}

    # ingest reads them as sources of their own, provenance and review in meta
    ingested = ingest_into(tmp_path / "out", sources, IngestParams(), load_inventory(root / "languages.csv"), root)
    table = ingested.records
    assert ingested.metrics["sources"]["tiny-qa.synthetic"]["kept"] == 12
    assert ingested.metrics["sources"]["tiny-dict.synthetic"]["kept"] == 12 and ingested.metrics["rejected"] == 0
    synthetic = [row for row in table.to_pylist() if row["source"].endswith(".synthetic")]
    assert len(synthetic) == 24
    metas = [json.loads(row["meta"]) for row in synthetic]
    assert sorted(meta["review"] for meta in metas).count("accepted") == 1
    assert all(meta["synthetic"] and meta["group"] and meta["seed"] in seeds for meta in metas)
    assert {row["kind"] for row in synthetic} == {"instruction", "dictionary"}


def _split_honours_group() -> bool:
    return split.group_key("monolingual", "s", "some text", json.dumps({"group": "text:other"})) == "text:other"


@pytest.mark.xfail(not _split_honours_group(), strict=True,
                   reason="data/split.py does not read meta 'group' yet (the integrator wires it)")
def test_variations_share_their_seed_split(tmp_path, server, monkeypatch):
    url, _ = server
    root = make_project(tmp_path, f"{url}/v1", sources=["tiny-qa"], registers=["casual"])
    run_stage(root, monkeypatch)
    sources = load_sources(root / "sources.yaml").sources
    ingested = ingest_into(tmp_path / "out", sources, IngestParams(), load_inventory(root / "languages.csv"), root)
    # many salts, so some seeds land outside train and the check means something
    for salt in ("a", "b", "c", "d", "e", "f"):
        rows = split.assign_splits(ingested.records, Params().split.model_copy(update={"salt": salt})).to_pylist()
        split_of = {row["id"]: row["split"] for row in rows}
        for row in rows:
            meta = json.loads(row["meta"])
            if meta.get("synthetic"):
                assert row["split"] == split_of[meta["seed"]]


def test_endpoint_down_is_one_line(tmp_path, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    root = make_project(tmp_path, f"http://127.0.0.1:{port}/v1", sources=["tiny-dict"])
    with pytest.raises(UserError) as caught:
        run_stage(root, monkeypatch)
    message = str(caught.value)
    assert "\n" not in message and f"127.0.0.1:{port}/v1/chat/completions" in message
    assert "langfoundry serve" in message and "synthesize.endpoint" in message


def test_off_writes_empty_outputs_and_imports_nothing_heavy(tmp_path):
    root = make_project(tmp_path, "http://127.0.0.1:9/v1", enabled=False)
    probe = ("import runpy, sys\nsys.argv = ['synthesize.py']\nrunpy.run_path(sys.argv_stage, run_name='__main__')\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'httpx'}))")
    probe = probe.replace("sys.argv_stage", repr(str(STAGE)))
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "synthesize: off" in done.stdout
    folder = root / "data/interim/media/synthesize"
    assert [path.name for path in folder.iterdir()] == ["sources.json"]
    metrics = json.loads((root / "metrics/synthesize.json").read_text())
    assert metrics["enabled"] is False and metrics["kept"] == 0 and metrics["cache.misses"] == 0
    assert (root / "data/synthetic_cache").is_dir()


def test_review_data_without_variations_says_what_to_run(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    monkeypatch.chdir(root)
    assert review_data("counts") == 0
    assert "synthesize.enabled: true" in capsys.readouterr().out


def test_ingest_without_synthesized_files_is_unchanged(tmp_path):
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    sources = load_sources(root / "sources.yaml").sources
    ingested = ingest_into(tmp_path / "out", sources, IngestParams(), load_inventory(root / "languages.csv"), root)
    assert set(ingested.metrics["sources"]) == {"tiny-qa", "tiny-dict"}
    assert isinstance(ingested.records, pa.Table)
