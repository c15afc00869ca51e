"""Walkthrough: a domain assistant for a savings-and-loan cooperative, from a few hundred questions and answers
to an A/B test and a second training cycle fed by its users' corrections.

    python examples/domain-assistant/run.py [--work DIR]      (make example-domain-assistant)

Every command runs in DIR (default examples/domain-assistant/work), a copy of the repository with this
folder's sources.yaml and overrides.yaml laid over it; `rm -r DIR` undoes it. Offline: the hosted model that
writes the variations is replaced by a local stand-in server (stand_in.py) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parent
sys.path[:0] = [str(EXAMPLE.parent)]  # examples/workspace.py

from workspace import Workspace, free_port, sibling  # noqa: E402

stand_in = sibling(EXAMPLE, "stand_in")

USERS = 10_000  # user ids the routing is measured over
SERVED_USERS = 40  # users who send one request each to the running server
# Questions the data did not answer well, and the answers the cooperative's staff typed in as corrections.
CORRECTIONS = {
    "Apakah koperasi buka pada hari libur nasional?": "Tidak, semua kantor cabang tutup pada hari libur nasional.",
    "Bisakah angsuran dibayar lewat transfer bank?": "Bisa, transfer ke rekening BRI 0123-01-004455-50-1 atas nama koperasi.",
    "Berapa denda keterlambatan angsuran?": "Denda keterlambatan 0,1% dari angsuran per hari, paling banyak 5%.",
    "Apakah pensiunan boleh menjadi anggota?": "Boleh, pensiunan mendaftar dengan KTP dan kartu pensiun.",
    "Bagaimana jika buku anggota hilang?":
        "Lapor ke kantor cabang dengan KTP; buku baru jadi dalam 2 hari kerja, biaya Rp10.000.",
    "Apakah ada layanan antar jemput setoran untuk pedagang pasar?":
        "Ada, petugas keliling datang ke pasar setiap pagi pukul 07.00.",
}
LOW_RATED = "Apakah koperasi menerima setoran emas?"  # rated 1 with no correction: the review queue




def read_json(ws: Workspace, name: str) -> dict:
    return json.loads(ws.path(name).read_text(encoding="utf-8"))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def show(title: str, values: dict) -> None:
    print(f"\n# {title}")
    for key, value in values.items():
        print(f"  {key}: {value}")


def overrides(endpoint: str) -> dict[str, object]:
    values = yaml.safe_load((EXAMPLE / "overrides.yaml").read_text(encoding="utf-8"))
    return {**values, "synthesize.endpoint": endpoint}


def review(ws: Workspace) -> dict[str, int]:
    """The reviewer's pass: every variation is read; the ones in Jakarta slang are rejected, the rest accepted."""
    ws.run(["langfoundry", "review-data", "list", "--limit", "3"])
    rows = [row for path in sorted(ws.path("data/interim/media/synthesize").glob("*.jsonl")) for row in jsonl(path)]
    slang = sorted(row["meta"]["variation"] for row in rows if "gue" in row["variation_text"].lower().split())
    ws.run(["langfoundry", "review-data", "reject", *[vid[:8] for vid in slang]])
    ws.run(["langfoundry", "review-data", "accept", "--all"])  # every variation still pending
    ws.commit("review of the synthetic variations")
    return {"variations": len(rows), "accepted": len(rows) - len(slang), "rejected": len(slang)}


def ab_test(ws: Workspace) -> dict:
    """The routing over many user ids, then real requests through `langfoundry serve` and the users' feedback."""
    import httpx

    from langfoundry.serve.routing import CHALLENGER, route

    params = yaml.safe_load(ws.path("params.yaml").read_text(encoding="utf-8"))
    share, salt = params["serve"]["challenger_share"], str(params["seed"])
    routed = sum(route("ab", f"anggota-{n}", share, salt).answer == CHALLENGER for n in range(USERS)) / USERS
    print(f"\nrouting: {routed:.2%} of {USERS:,} user ids go to the challenger (serve.challenger_share {share})")

    port = free_port()
    server = ws.start_server(["langfoundry", "serve", "--champion", "models/base", "--challenger", "models/merged",
                              "--mode", "ab", "--port", str(port)], port)
    questions = list(CORRECTIONS) + [LOW_RATED]
    answered: dict[str, int] = {}
    feedback = {"corrections": 0, "low_rated": 0}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=60) as client:
            models = {item["role"]: item["id"] for item in client.get("/models").json()["data"]}
            for number in range(SERVED_USERS):
                user = f"anggota-{number}"
                question = questions[number % len(questions)]
                asked = client.post("/chat/completions", json={"model": "auto", "user": user, "max_tokens": 8,
                                                               "messages": [{"role": "user", "content": question}]})
                asked.raise_for_status()
                reply = asked.json()
                role = next(role for role, version in models.items() if version == reply["model"])
                answered[role] = answered.get(role, 0) + 1
                if number < len(questions):  # the first users of each question rate their answer
                    correction = CORRECTIONS.get(question)
                    rated = client.post("/feedback", headers={"X-User-Id": user}, json={
                        "response_id": reply["id"], "rating": 2 if correction else 1, "correction": correction})
                    rated.raise_for_status()
                    feedback["corrections" if correction else "low_rated"] += 1
                if number == 0:
                    print(f"  {user} asked {question!r}: {reply['model']} answered {reply['choices'][0]['message']['content']!r}")
    finally:
        server.terminate()
        log = server.communicate(timeout=60)[0]
    print("\n".join(line for line in log.splitlines() if line.startswith("serve:")))
    served_share = answered.get("challenger", 0) / SERVED_USERS
    print(f"served: {SERVED_USERS} users, {answered.get('challenger', 0)} answered by the challenger "
          f"({served_share:.0%}), {answered.get('champion', 0)} by the champion; "
          f"{feedback['corrections']} corrections and {feedback['low_rated']} low rating without one sent")
    return {"routing_share": routed, "users": USERS, "served_users": SERVED_USERS, "served": answered,
            "served_share": served_share, "models": models, **feedback}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=EXAMPLE / "work", help="the walkthrough's project folder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    summary: dict = {}
    calls: list[dict] = []

    print("== 1. The cooperative's project: the repository, its sources.yaml and overrides.yaml, its data")
    with stand_in.serving(calls) as endpoint:
        print(f"stand-in for the hosted model at {endpoint} (answers /v1/chat/completions with register rewrites)")
        ws = Workspace.create(EXAMPLE, root=args.work, overrides=overrides(endpoint))
        ws.run([sys.executable, str(EXAMPLE / "build_data.py"), "."])
        ws.run(["langfoundry", "check", "--kind", "instruction", "--lang", "id", "data/raw/koperasi/qa.json"])
        ws.commit("the cooperative's questions and answers, and the general-language words")

        print("\n== 2. Variations per register, from the endpoint, pending review")
        ws.run(["dvc", "repro", "synthesize"])
    summary["synthesize"] = read_json(ws, "metrics/synthesize.json")
    summary["review"] = review(ws)

    print("\n== 3. The pipeline: mix 80/20, a preset by data size, base against adapter, the release gate, export")
    ws.run(["dvc", "repro"])
    ws.commit("cycle 1: the first candidate")
    fmt, train, evaluation, release = (read_json(ws, f"metrics/{name}.json") for name in ("format", "train", "eval", "release"))
    show("metrics/format.json (mix and synthetic)", {key: value for key, value in fmt.items()
                                                     if key.startswith(("mix.", "synthetic.")) or key == "train.examples"})
    show("metrics/train.json (the preset in force)", {key: value for key, value in train.items() if key.startswith("effective.")})
    keys = ("perplexity", "instruction.bleu", "instruction.chrf", "vocabulary.exact_match", "bleu", "chrf")
    show("metrics/eval.json (base against adapter)",
         {f"{model}.{key}": evaluation.get(f"{model}.{key}") for key in keys for model in ("base", "adapter")})
    print()
    print(ws.path("reports/release.md").read_text(encoding="utf-8").strip())
    summary.update({"format": fmt, "train": train, "eval": evaluation, "release": release})

    print("\n== 4. A/B: 20% of users to the candidate, their feedback logged")
    summary["ab"] = ab_test(ws)

    print("\n== 5. The next cycle: the corrections become training examples")
    sources_file = ws.path("sources.yaml")
    sources = yaml.safe_load(sources_file.read_text(encoding="utf-8"))
    for source in sources["sources"]:
        if source["id"] == "user-corrections":
            source["planned"] = False
    sources_file.write_text(yaml.safe_dump(sources, sort_keys=False, allow_unicode=True), encoding="utf-8")
    ws.commit("read the users' corrections")
    ws.run(["dvc", "repro", "release"])
    ws.commit("cycle 2: trained on the users' corrections")
    processed = {split: jsonl(ws.path(f"data/processed/{split}.jsonl")) for split in ("train", "val", "test")}
    corrected = {split: [example for example in examples if example["task"] == "conversation"]
                 for split, examples in processed.items()}
    for split, examples in corrected.items():
        for example in examples[:2]:
            print(f"  {split}: {example['messages'][0]['content']!r} -> {example['messages'][-1]['content']!r}")
    second = {name: read_json(ws, f"metrics/{name}.json") for name in ("format", "train", "release")}
    queue = jsonl(ws.path("reports/review_queue.jsonl")) if ws.path("reports/review_queue.jsonl").exists() else []
    print(f"cycle 2: {second['train'].get('data_version.feedback_rows')} feedback rows in the data version; "
          f"conversation examples: " + ", ".join(f"{split} {len(examples)}" for split, examples in corrected.items())
          + f"; {len(queue)} answer(s) in reports/review_queue.jsonl; release decision {second['release'].get('decision')}")
    summary["cycle2"] = {"conversation_examples": {split: len(examples) for split, examples in corrected.items()},
                         "answers": sorted(example["messages"][-1]["content"]
                                           for examples in corrected.values() for example in examples),
                         "train_conversations": sum(example["task"] == "conversation" for example in processed["train"]),
                         "review_queue": len(queue), **second}
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["stand_in_requests"] = len(calls)
    ws.path("walkthrough.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    print(f"\nwalkthrough: {summary['seconds']} s; summary in {ws.path('walkthrough.json')}")
    return summary


if __name__ == "__main__":
    main()
