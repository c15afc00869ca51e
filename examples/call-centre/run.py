"""Walkthrough: a call centre's public speech and text data sets, each routed to the engine it serves (speech to
the ASR and TTS manifests at 16 kHz mono, intents, sentiment and dialect to classification sets, parallel text to
translation), one phase rerun alone, and the text model through shadow traffic, promotion and a rollback.

    python examples/call-centre/run.py [--work DIR]      (make example-call-centre)

Every command runs in DIR (default examples/call-centre/work), a copy of the repository with this folder's
sources.yaml and overrides.yaml laid over it; `rm -r DIR` undoes it. Offline: the Hugging Face data sets are built
by build_data.py and saved locally (acquire reads a save_to_disk folder as it would read the hub), and a tiny
Whisper is built from its config.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parent
sys.path[:0] = [str(EXAMPLE.parent)]  # examples/workspace.py

from workspace import Workspace, free_port, set_params, sibling  # noqa: E402

build_data = sibling(EXAMPLE, "build_data")

# The walkthrough's copy has no .venv of its own: -o tells make not to build one (this interpreter's venv is on PATH).
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed"]
SPLITS = ("train", "val", "test")
# Callers' questions sent through the server while v0.0.2 runs in the shadows (one request per user).
CALLERS = {
    "pelanggan-01": 'Apa arti kata bahasa Banyumasan "inyong" dalam bahasa Indonesia?',
    "pelanggan-02": "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\nsinyale ilang maning",
    "pelanggan-03": 'Apa arti kata bahasa Banyumasan "kepriwe" dalam bahasa Indonesia?',
    "pelanggan-04": "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\ntagihane larang banget",
    "pelanggan-05": 'Apa arti kata bahasa Banyumasan "ora" dalam bahasa Indonesia?',
    "pelanggan-06": "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\ninyong arep mbayar",
}
# The phase run alone: a format parameter (the agents read Indonesian, so the text model no longer learns the
# other direction). It changes format's outputs only; the data stages before it have nothing to redo.
FORMAT_CHANGE = {"format.task_weights": {"translate_from_pivot": 0.0}}


def section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)



def read_json(ws: Workspace, name: str) -> dict:
    return json.loads(ws.path(name).read_text(encoding="utf-8"))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def stages_run(output: str) -> list[str]:
    """The stages a `dvc repro` ran (or would run, with --dry), in order."""
    return re.findall(r"Running stage '([^']+)'", output)


def stages_skipped(output: str) -> list[str]:
    return re.findall(r"Stage '([^']+)' didn't change, skipping", output)


def dry_run(ws: Workspace) -> list[str]:
    """`dvc repro --dry`: the stages a whole run would run now, one line each (DVC prints each command too)."""
    print("\n$ dvc repro --dry", flush=True)
    result = ws.run(["dvc", "repro", "--dry"], show=False)
    planned = stages_run(result.stdout + result.stderr)
    for stage in planned:
        print(f"Running stage '{stage}':")
    print(f"(the stages whose own dependencies changed: {len(planned)}; those after format follow only if its "
          "outputs change; command lines left out)")
    return planned


def speech_outputs(ws: Workspace) -> dict:
    """The ASR and TTS manifests, each WAV they name opened with soundfile: its rate and channels."""
    import pyarrow.parquet as pq
    import soundfile

    acquired = pq.read_table(ws.path("data/raw/acquired/cv-id/data.parquet"), columns=["audio"]).column("audio")
    sources = sorted({(info.samplerate, info.channels, info.format) for cell in acquired.to_pylist()
                      for info in [soundfile.info(io.BytesIO(cell["bytes"]))]})
    print("the data set's audio (data/raw/acquired/cv-id/data.parquet): " + ", ".join(
        f"{rate} Hz, {channels} channel(s), {fmt}" for rate, channels, fmt in sources))
    out: dict = {"source_formats": [list(item) for item in sources]}
    for engine in ("asr", "tts"):
        folder = ws.path(f"data/speech/{engine}")
        rows = {split: jsonl(folder / f"{split}.jsonl") for split in SPLITS}
        formats = sorted({(info.samplerate, info.channels, info.subtype) for split_rows in rows.values()
                          for info in (soundfile.info(folder / row["audio_filepath"]) for row in split_rows)})
        out[engine] = {"rows": {split: len(split_rows) for split, split_rows in rows.items()},
                       "texts": sorted(row["text"] for split_rows in rows.values() for row in split_rows),
                       "speakers": sorted({row.get("speaker") for split_rows in rows.values() for row in split_rows},
                                          key=str),
                       "formats": [list(item) for item in formats]}
        total = sum(out[engine]["rows"].values())
        print(f"data/speech/{engine}: {out[engine]['rows']} ({total} clips), speakers {out[engine]['speakers']}, "
              f"WAVs read back with soundfile: " + ", ".join(f"{rate} Hz, {channels} channel(s), {subtype}"
                                                            for rate, channels, subtype in formats))
    first = jsonl(ws.path("data/speech/asr/train.jsonl"))[0]
    print(f"  e.g. {json.dumps(first, ensure_ascii=False)}")
    left_out = sorted(set(out["asr"]["texts"]) - set(out["tts"]["texts"]))
    print(f"  in ASR, not in TTS: {left_out}")
    out["asr_not_tts"] = left_out
    return out


def classification_outputs(ws: Workspace) -> dict:
    """data/processed/classification/<task>/: each task's labels.json and its files' rows."""
    root = ws.path("data/processed/classification")
    out: dict = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))["labels"]
        rows = {split: jsonl(folder / f"{split}.jsonl") for split in SPLITS}
        out[folder.name] = {"labels": labels, "rows": {split: len(split_rows) for split, split_rows in rows.items()},
                            "example": rows["train"][0] if rows["train"] else None}
        print(f"{folder.relative_to(ws.root)}/: " + ", ".join(f"{split} {len(rows[split])}" for split in SPLITS))
        for label, counts in labels.items():
            print(f"  {label:<20} " + "  ".join(f"{split} {counts[split]:>2}" for split in SPLITS))
    for task, found in out.items():
        if found["example"]:
            print(f"  {task}: {json.dumps(found['example'], ensure_ascii=False)}")
    return out


def translation_outputs(ws: Workspace) -> dict:
    fmt = read_json(ws, "metrics/format.json")
    tasks = {key.removeprefix("total.by_task."): value for key, value in fmt.items() if key.startswith("total.by_task.")}
    print("data/processed (the text model's examples) by task: " + ", ".join(f"{task} {n}" for task, n in tasks.items()))
    example = next((row for row in jsonl(ws.path("data/processed/train.jsonl")) if row["task"] == "translate_to_pivot"), None)
    if example:
        print(f"  e.g. {json.dumps(example['messages'], ensure_ascii=False)}")
    return {"by_task": tasks, "train": fmt.get("train.examples"), "example": example}


def digest(folder: Path) -> str:
    """One hash of every file under a folder (names and bytes)."""
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def registry(ws: Workspace, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return ws.run([*MAKE, *args], check=check)


def resolve(ws: Workspace, stage: str) -> str:
    """The version a registry stage holds, as the server resolves it."""
    from langfoundry.release.registry import resolve as resolve_stage

    return resolve_stage(stage, root=ws.root).version


def prod_history(ws: Workspace) -> list[str]:
    """The prod tags of the served model, in the registry's order, each with the message that records why."""
    print("\n$ git tag -l 'merged#prod*' --format='%(refname:short)  %(contents:subject)'", flush=True)
    listed = ws.run(["git", "tag", "-l", "merged#prod*", "--format=%(refname:short)  %(contents:subject)"], show=False)
    lines = sorted(listed.stdout.splitlines(), key=lambda line: int(re.search(r"#(\d+)\s", line).group(1)))
    print("\n".join(lines))
    return lines


def shadow_traffic(ws: Workspace) -> dict:
    """Callers ask through the server; every answer comes from prod, and staging answers a logged copy."""
    import httpx

    database = ws.path("data/serve/langfoundry.db")
    port = free_port()
    server = ws.start_server(["langfoundry", "serve", "--port", str(port)], port,
                             "      (serve: in params.yaml: champion prod, challenger staging, mode shadow)")
    answered: dict[str, str] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=60) as client:
            models = {item["role"]: item["id"] for item in client.get("/models").json()["data"]}
            for user, question in CALLERS.items():
                reply = client.post("/chat/completions", json={"model": "auto", "user": user, "max_tokens": 8,
                                                               "messages": [{"role": "user", "content": question}]})
                reply.raise_for_status()
                body = reply.json()
                answered[user] = body["model"]
                if user == "pelanggan-01":
                    print(f"  {user} asked {question!r}: {body['model']} answered "
                          f"{body['choices'][0]['message']['content']!r}")
    finally:
        server.terminate()  # the server answers the shadow copies still queued, logs them, then stops
        log = server.communicate(timeout=120)[0]
    print("\n".join(line for line in log.splitlines() if line.startswith("serve:")))
    with sqlite3.connect(database) as db:
        logged = db.execute("SELECT model_version, role, shadow, COUNT(*) FROM responses "
                            "GROUP BY model_version, role, shadow ORDER BY shadow").fetchall()
    rows = [{"model_version": version, "role": role, "shadow": bool(shadow), "count": count}
            for version, role, shadow, count in logged]
    print(f"answered: {len(answered)} callers, by {sorted(set(answered.values()))}")
    print("data/serve/langfoundry.db, responses: " + "; ".join(
        f"{row['model_version']} ({row['role']}, {'shadow copy, never returned' if row['shadow'] else 'returned'}): "
        f"{row['count']}" for row in rows))
    return {"models": models, "answered": answered, "logged": rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="the walkthrough's project folder (default: examples/call-centre/work)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    overrides = yaml.safe_load((EXAMPLE / "overrides.yaml").read_text(encoding="utf-8"))
    summary: dict = {}

    section("1. A copy of the project with the call centre's sources.yaml and a small model")
    ws = Workspace.create(EXAMPLE, root=args.work, overrides=overrides)
    print(f"project: {ws.root}")

    section("2. The public data sets, built offline and saved with save_to_disk (what `datasets` would download)")
    for kind, files in build_data.build(ws.root).items():
        print(f"{kind}: {', '.join(str(path.relative_to(ws.root)) for path in files)}")
    ws.commit("the call centre's data sets, saved locally")
    ws.run(["langfoundry", "validate"])

    section("3. The whole pipeline: acquire, asr, ingest ... split (stratified by label), format, train, release, export")
    first = ws.run(["dvc", "repro"])
    summary["first_run"] = stages_run(first.stdout + first.stderr)
    ws.commit("cycle 1: every data set routed, the first text model")

    section("4. Where each data set went")
    print("-- speech: ASR manifests (16 kHz mono) and, for the one clean voice, the TTS manifest")
    summary["asr"] = read_json(ws, "metrics/asr.json")
    summary["speech"] = speech_outputs(ws)
    print("\n-- labelled text: one classification set per task, stratified by label, counts per label gated")
    summary["classification"] = classification_outputs(ws)
    gate = read_json(ws, "metrics/quality/classification.json")
    print(f"classification gate (metrics/quality/classification.json): {gate['expectations.passed']} of "
          f"{gate['expectations.evaluated']} expectations passed on {gate['rows']} task-label rows; every label needs "
          f"{overrides['quality.min_examples_per_label']} training rows (quality.min_examples_per_label) and a test row")
    summary["classification_gate"] = gate
    fmt = read_json(ws, "metrics/format.json")
    summary["format"] = fmt
    print("metrics/format.json: " + ", ".join(f"{key} {value}" for key, value in fmt.items()
                                               if key.startswith("classification.")))
    print("\n-- parallel text: translation examples for the text model")
    summary["translation"] = translation_outputs(ws)

    section("5. The registry: the first text model becomes v0.0.1 and goes to prod")
    registry(ws, "register")
    refused = registry(ws, "promote", "STAGE=prod", check=False)
    summary["promote_refused"] = refused.returncode != 0
    registry(ws, "promote", "STAGE=prod", "FORCE=1")
    summary["v1"] = resolve(ws, "prod")

    section("6. One phase alone: a format parameter changes; `dvc repro --dry` says what is out of date, "
            "`dvc repro format` runs format alone")
    classification_before = digest(ws.path("data/processed/classification"))
    set_params(ws.path("params.yaml"), FORMAT_CHANGE)
    print(f"params.yaml: {', '.join(f'{key}: {value}' for key, value in FORMAT_CHANGE.items())}")
    summary["dry"] = dry_run(ws)
    alone = ws.run(["dvc", "repro", "format"])
    output = alone.stdout + alone.stderr
    unchanged = digest(ws.path("data/processed/classification")) == classification_before
    summary["format_alone"] = {"ran": stages_run(output), "skipped": stages_skipped(output),
                               "classification_unchanged": unchanged}
    print(f"\nran: {summary['format_alone']['ran']}; unchanged, skipped: {summary['format_alone']['skipped']}; "
          f"classification sets byte for byte the same: {summary['format_alone']['classification_unchanged']}")
    summary["translation_after"] = translation_outputs(ws)

    section("7. The second text model, trained on it: v0.0.2, assigned staging")
    second = ws.run(["dvc", "repro"])
    summary["second_run"] = stages_run(second.stdout + second.stderr)
    ws.commit("cycle 2: Banyumasan -> Indonesian only")
    registry(ws, "register")
    registry(ws, "promote", "STAGE=staging", "FORCE=1")
    summary["v2"] = resolve(ws, "staging")
    registry(ws, "registry")

    section("8. Shadow traffic: prod answers every caller, staging answers a logged copy")
    summary["shadow"] = shadow_traffic(ws)

    section("9. v0.0.2 promoted to prod, then rolled back")
    registry(ws, "promote", "STAGE=prod", f"VERSION={summary['v2']}", "FORCE=1")
    summary["prod_after_promote"] = resolve(ws, "prod")
    print(f"prod resolves to {summary['prod_after_promote']}")
    registry(ws, "rollback")
    summary["prod_after_rollback"] = resolve(ws, "prod")
    print(f"prod resolves to {summary['prod_after_rollback']}")
    registry(ws, "registry")
    summary["prod_history"] = prod_history(ws)

    summary["seconds"] = round(time.monotonic() - started, 1)
    ws.path("walkthrough.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=str) + "\n",
                                           encoding="utf-8")
    print(f"\nwalkthrough done in {summary['seconds']:.0f} s; everything is in {ws.root} (summary: walkthrough.json)")
    summary["root"] = ws.root
    return summary


if __name__ == "__main__":
    main()
