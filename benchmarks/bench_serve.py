"""Serving under load: concurrent clients against `langfoundry serve`, in A/B and in shadow mode.

Usage:
    .venv/bin/python benchmarks/bench_serve.py                      # 16 clients for 30 s per mode
    .venv/bin/python benchmarks/bench_serve.py --clients 4 --seconds 5 --modes ab

The server is the real command (`python -m langfoundry.serve.cli`) in its own process, logging into a
throw-away SQLite file; each client is a thread with its own httpx connection that sends the test set's
prompts (data/processed/test.jsonl) one after another as a random one of 1,000 users. The champion is
models/base and the challenger models/merged (made by the export stage; without it, the adapter merged
into the base in a temporary folder). Prints, per mode, requests/s, p50 and p95 latency, the 5xx count,
and whether every answer was logged (returned rows = answered requests; shadow rows too in shadow mode).
Exits 1 on any 5xx, failed request or missing log row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
FALLBACK_PROMPTS = ["Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\ninyong", "Apa arti kata \"mangan\"?"]


@dataclass
class LoadResult:
    seconds: float
    statuses: Counter = field(default_factory=Counter)  # HTTP status -> requests; 0: no answer at all
    models: Counter = field(default_factory=Counter)  # model version -> answered requests
    latencies_ms: list[float] = field(default_factory=list)  # of the answered requests

    @property
    def answered(self) -> int:
        return self.statuses[200]

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def percentile(self, share: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[round(share * 100) - 1]


def run_load(base_url: str, clients: int, seconds: float, prompts: list[str], max_tokens: int = 16,
             users: int = 1000, seed: int = 0) -> LoadResult:
    """`clients` threads sending chat completions back to back for `seconds`; every outcome counted."""
    result = LoadResult(seconds=seconds)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=base_url, timeout=120.0) as http:
            while time.perf_counter() < deadline:
                body = {"messages": [{"role": "user", "content": rng.choice(prompts)}], "max_tokens": max_tokens,
                        "user": f"user-{rng.randrange(users)}"}
                started = time.perf_counter()
                try:
                    response = http.post("/v1/chat/completions", json=body)
                    status, model = response.status_code, response.json().get("model") if response.is_success else None
                except httpx.HTTPError:
                    status, model = 0, None
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    result.statuses[status] += 1
                    if status == 200:
                        result.models[model] += 1
                        result.latencies_ms.append(elapsed)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started  # the last requests finish after the deadline
    return result


def load_prompts(limit: int = 200) -> list[str]:
    path = REPO / "data" / "processed" / "test.jsonl"
    if not path.exists():
        return FALLBACK_PROMPTS
    with path.open(encoding="utf-8") as lines:
        prompts = [json.loads(line)["messages"][-2]["content"] for _, line in zip(range(limit), lines)]
    return prompts or FALLBACK_PROMPTS


def challenger_folder(workdir: Path) -> Path:
    """models/merged, or the adapter merged into the base under workdir."""
    merged = REPO / "models" / "merged"
    if (merged / "config.json").exists():
        return merged
    from langfoundry.model.evaluation import attach_adapter, load_base, load_tokenizer

    out = workdir / "merged"
    attach_adapter(load_base(REPO / "models" / "base"), REPO / "models" / "adapter").merge_and_unload().save_pretrained(out)
    load_tokenizer(REPO / "models" / "base").save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(champion: Path, challenger: Path, mode: str, database: str, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "langfoundry.serve.cli", "--params", str(REPO / "params.yaml"), "--port", str(port),
               "--champion", str(champion), "--challenger", str(challenger), "--mode", mode, "--database", database]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{server.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not answer {url}/health within {timeout:.0f} s")


def logged_rows(database: str) -> tuple[int, int]:
    """(returned, shadow) answers in the database."""
    from langfoundry.serve.store import Store

    store = Store(database)
    try:
        return store.count_responses(shadow=False), store.count_responses(shadow=True)
    finally:
        store.close()


def bench_mode(mode: str, champion: Path, challenger: Path, workdir: Path, args: argparse.Namespace) -> tuple[list[str], bool]:
    database = f"sqlite:///{workdir / f'{mode}.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(champion, challenger, mode, database, port)
    try:
        wait_until_up(url, server)
        result = run_load(url, args.clients, args.seconds, load_prompts(), args.max_tokens)
    finally:
        server.send_signal(signal.SIGINT)  # a clean shutdown: queued shadow answers are generated and logged first
        server.wait(timeout=600)
    returned, shadow = logged_rows(database)
    shadow_expected = result.answered if mode == "shadow" else 0
    complete = returned == result.answered and shadow == shadow_expected
    failed = sum(count for status, count in result.statuses.items() if status != 200)
    row = [mode, f"{result.answered:,}", f"{result.answered / result.seconds:.1f}", f"{result.percentile(0.50):.0f}",
           f"{result.percentile(0.95):.0f}", str(result.server_errors), str(failed),
           f"{returned:,} + {shadow:,} shadow", "yes" if complete else "NO",
           ", ".join(f"{model} {count}" for model, count in sorted(result.models.items()))]
    return row, result.server_errors == 0 and failed == 0 and complete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--modes", default="ab,shadow", help="comma-separated: ab, shadow, champion_only")
    parser.add_argument("--champion", type=Path, default=REPO / "models" / "base")
    parser.add_argument("--challenger", type=Path, help="default: models/merged, else the adapter merged into the base")
    args = parser.parse_args()
    if not (args.champion / "config.json").exists():
        print(f"error: {args.champion} has no model; run the pipeline first (make repro)", file=sys.stderr)
        return 2
    header = ["mode", "answered", "requests/s", "p50 ms", "p95 ms", "5xx", "failed", "logged rows", "all logged",
              "answers by model"]
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        challenger = args.challenger or challenger_folder(Path(tmp))
        for mode in args.modes.split(","):
            print(f"{mode}: {args.clients} clients for {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
            row, mode_ok = bench_mode(mode, args.champion, challenger, Path(tmp), args)
            rows.append(row)
            ok = ok and mode_ok
    print(f"{args.clients} concurrent clients, {args.seconds:.0f} s per mode, max_tokens {args.max_tokens}, "
          f"{os.cpu_count()} CPUs; champion {args.champion.name}, challenger {challenger.name}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
