"""A linguist's archive, end to end: a dictionary spreadsheet, scanned pages, recordings and a translated story
that is not sentence-aligned become training data, a data-statistics report, a tokenizer verdict, a trained and
evaluated adapter, GGUF files, and a server that answers a question (and shows a chat page at /demo).

    python examples/linguist-archive/run.py [--work DIR]      # or: make example-linguist-archive

Everything runs in DIR (default examples/linguist-archive/work/), a copy of the repository with this folder's
sources.yaml and small-model parameters; `rm -r` it to undo.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

EXAMPLE = Path(__file__).resolve().parent
sys.path[:0] = [str(EXAMPLE.parent)]  # examples/workspace.py

from workspace import Workspace, free_port, sibling  # noqa: E402

build_data = sibling(EXAMPLE, "build_data")

# A model small enough for a laptop CPU in a few minutes (tests/repo_copy.py's TINY_PARAMS, pretrained twice as
# long at a higher rate: with 30 steps it answers nothing at all), a tiny Whisper built from its config (no
# download), and the OCR check on the one language the scans are in.
OVERRIDES: dict[str, object] = {
    "base.scratch.steps": 60,
    "base.scratch.learning_rate": 0.01,
    "base.scratch.hidden_size": 32,
    "base.scratch.intermediate_size": 64,
    "train.max_steps": 12,
    "train.eval_steps": 6,
    "evaluate.max_examples": 24,
    "evaluate.max_new_tokens": 8,
    "media.asr.model": str(build_data.WHISPER),
    "media.asr.revision": None,
    "media.asr.min_avg_logprob": -1000.0,  # the tiny Whisper is never sure; keep its segments to show the path
    "quality.max_reject_rate_by_source": {"rekaman": 1.0},  # clean rejects most of its noise; the gate lets it
    "media.ocr.check_languages": ["jv-x-banyumas"],
    "media.align.check_documents": 2,
}
# The walkthrough's copy has no .venv of its own: -o tells make not to build one (this interpreter's venv is on PATH).
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed"]
QUESTION = 'Apa arti kata bahasa Banyumasan "inyong" dalam bahasa Indonesia?'


def section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)




def show_tokenizer(ws: Workspace) -> dict:
    """The per-language table of reports/tokenizer.md and the verdict line of each language with a pivot."""
    figures = json.loads(ws.path("metrics/tokenizer.json").read_text(encoding="utf-8"))
    table = [line for line in ws.path("reports/tokenizer.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("|")]
    print("\n".join(table[:4]))
    for key, verdict in figures.items():
        if key.endswith(".verdict"):
            lang = key.split(".")[1]
            print(f"verdict for {lang}: {verdict} (fertility {figures[f'languages.{lang}.fertility']:.2f}, "
                  f"{figures[f'languages.{lang}.fertility_ratio']:.2f} times its pivot's)")
    return figures


def show_eval_samples(ws: Workspace, count: int = 3) -> list[str]:
    """reports/eval.md's main chrF rows and its first sample generations (source, reference, base, adapter)."""
    lines = ws.path("reports/eval.md").read_text(encoding="utf-8").splitlines()
    print("\n".join(line for line in lines if line.startswith(("| metric", "| chrF,"))))
    start = next(index for index, line in enumerate(lines) if line.startswith("## Sample generations"))
    blocks: list[list[str]] = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("### "):
            blocks.append([line])
        elif blocks and line.strip():
            blocks[-1].append(line)
    samples = ["\n".join(block) for block in blocks[:count]]
    print(f"\n{lines[start]}, the first {len(samples)}:\n" + "\n\n".join(samples))
    return samples


def list_gguf(ws: Workspace) -> dict[str, int]:
    files = {path.name: path.stat().st_size for path in sorted(ws.path("models/gguf").glob("*.gguf"))}
    for name, size in files.items():
        print(f"models/gguf/{name}: {size:,} bytes")
    return files


def serve_and_ask(ws: Workspace, question: str = QUESTION, timeout: float = 120) -> dict:
    """`make serve` on a free port, one question over HTTP as any OpenAI client would ask it, the chat page
    fetched once, then the server stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = ws.path("serve.log")
    command = [*MAKE, "serve", f"PORT={port}"]
    print(f"\n$ {' '.join(command)}   (in the background)", flush=True)
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=ws.root, env={**ws.env, "LANGFOUNDRY_DATABASE_URL": "sqlite:///data/serve/walkthrough.db"},
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server stopped (exit {server.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        body = {"model": "auto", "user": "linguist", "max_tokens": 16,
                "messages": [{"role": "user", "content": question}]}
        print(f"$ curl {url}/v1/chat/completions -d '{json.dumps(body, ensure_ascii=False)}'")
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
        answer = reply["choices"][0]["message"]["content"]
        print(f"answer from {reply['model']} ({reply['usage']['completion_tokens']} tokens): {answer!r}")
        page = httpx.get(f"{url}/demo", timeout=10)
        print(f"GET {url}/demo: {page.status_code}, {len(page.content):,} bytes of chat page ({page.headers['content-type']})")
        return {"answer": answer, "model": reply["model"], "id": reply["id"], "demo_status": page.status_code,
                "demo_html": page.text}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make and the server it started, one process group
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        print("server stopped; its log: serve.log", flush=True)


def records_by_source(ws: Workspace) -> dict[str, dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(ws.path("data/interim/ingested.parquet"), columns=["source", "origin"]).to_pylist()
    out: dict[str, dict] = {}
    for row in table:
        entry = out.setdefault(row["source"], {"records": 0, "origin": row["origin"]})
        entry["records"] += 1
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="the walkthrough's project folder (default: examples/linguist-archive/work)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    section("1. A copy of the project with the linguist's sources.yaml and a small model")
    ws = Workspace.create(EXAMPLE, root=args.work, overrides=OVERRIDES)
    print(f"project: {ws.root}")

    section("2. Her material, built offline (what she would copy into data/raw/)")
    for kind, files in build_data.build(ws.root).items():
        print(f"{kind}: {', '.join(str(path.relative_to(ws.root)) for path in files)}")
    ws.commit("the linguist's archive")
    ws.run(["langfoundry", "validate"])
    ws.run(["langfoundry", "check", "data/raw/linguist/kamus.xlsx", "--kind", "dictionary", "--lang", "jv-x-banyumas",
            "--pivot-lang", "id", "--sheet", "Kamus", "--map", "Kata (Banyumasan)=headword", "--map", "Arti (Indonesia)=gloss"])

    section("3. The pipeline: OCR, transcription, alignment, ingest ... format, base, tokenizer, train, evaluate, export")
    ws.run(["dvc", "repro"])
    sources = records_by_source(ws)
    print("\ningested records per source (data/interim/ingested.parquet):")
    for source, entry in sources.items():
        print(f"  {source}: {entry['records']} records, e.g. origin {entry['origin']}")

    section("4. Data statistics: examples per task and language, length plots, random samples")
    ws.run([*MAKE, "data-stats"])
    stats = json.loads(ws.path("metrics/data_stats.json").read_text(encoding="utf-8"))

    section("5. Tokenizer analysis and its verdict (reports/tokenizer.md)")
    tokenizer = show_tokenizer(ws)

    section("6. Evaluation with sample generations (reports/eval.md)")
    evaluation = json.loads(ws.path("metrics/eval.json").read_text(encoding="utf-8"))
    samples = show_eval_samples(ws)

    section("7. GGUF files for llama.cpp and Ollama")
    gguf = list_gguf(ws)

    section("8. make serve, one question over HTTP, and the chat page of make demo")
    served = serve_and_ask(ws)

    print(f"\nwalkthrough done in {time.monotonic() - started:.0f} s; everything is in {ws.root}")
    return {"root": ws.root, "sources": sources, "data_stats": stats, "tokenizer": tokenizer, "eval": evaluation,
            "eval_samples": samples, "gguf": gguf, "served": served}


if __name__ == "__main__":
    main()
