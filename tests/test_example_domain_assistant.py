"""examples/domain-assistant: reviewed synthetic variations, the 80/20 mix, a preset by data size, base against
adapter, the release gate, A/B routing of 20% of users, and corrections that train in the next cycle."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from local_server import serving

from langfoundry.serve.routing import CHALLENGER, route

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "domain-assistant"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"domain_assistant_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("domain-assistant") / "work"
    summary = load("run").main(["--work", str(work)])
    return work, summary


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_variations_carry_provenance_and_only_accepted_ones_train(walkthrough):
    work, summary = walkthrough
    synthesized = summary["synthesize"]
    assert synthesized["kept"] > 0 and synthesized["requests"] == summary["stand_in_requests"]
    rows = [row for path in (work / "data/interim/media/synthesize").glob("*.jsonl") for row in lines(path)]
    assert len(rows) == synthesized["kept"]
    for row in rows:
        meta = row["meta"]
        assert meta["synthetic"] is True and meta["seed_source"] == "koperasi-qa" and meta["seed"]
        assert meta["model"] == "stand-in-register-rewriter" and meta["template"].startswith(f"id/{meta['register']}@")
    decisions = lines(work / "data/review/synthetic.jsonl")
    states = {entry["decision"] for entry in decisions}
    assert states == {"accepted", "rejected"}
    rejected = {entry["id"] for entry in decisions if entry["decision"] == "rejected"}
    assert summary["review"]["rejected"] == len(rejected) > 0 and summary["review"]["accepted"] > 0
    assert all("gue" in row["variation_text"].lower().split() for row in rows if row["meta"]["variation"] in rejected)

    fmt = summary["format"]
    assert fmt["synthetic.records.excluded_rejected"] > 0 and fmt.get("synthetic.records.excluded_pending", 0) == 0
    train = lines(work / "data/processed/train.jsonl")
    synthetic_texts = {row["variation_text"]: row["meta"]["review"] for row in rows}
    trained = {text: state for text, state in synthetic_texts.items()
               if any(text in example["messages"][0]["content"] for example in train if example["source"].endswith(".synthetic"))}
    assert trained and set(trained.values()) == {"accepted"}, "only accepted variations train"
    heldout = lines(work / "data/processed/val.jsonl") + lines(work / "data/processed/test.jsonl")
    assert not any(example["source"].endswith(".synthetic") for example in heldout)


def test_the_mix_the_preset_and_base_against_adapter(walkthrough):
    _, summary = walkthrough
    fmt, train, evaluation = summary["format"], summary["train"], summary["eval"]
    assert fmt["mix.obtained.domain"] == pytest.approx(0.8, abs=0.02)
    assert fmt["mix.obtained.general"] == pytest.approx(0.2, abs=0.02)
    assert train["effective.preset"] == "conservative"  # under 1,000 training examples
    assert set(train["effective.from_preset"]) == {"epochs", "batch_size", "gradient_accumulation"} \
        if isinstance(train["effective.from_preset"], list) else train["effective.from_preset"]
    for model in ("base", "adapter"):
        for key in ("perplexity", "bleu", "chrf", "instruction.chrf", "instruction.bleu", "vocabulary.exact_match"):
            assert isinstance(evaluation[f"{model}.{key}"], float), f"{model}.{key}"


def test_the_release_gate_decides(walkthrough):
    _, summary = walkthrough
    release = summary["release"]
    assert release["decision"] in ("pass", "fail")
    assert "instruction" in json.dumps(release) or release["decision"]


def test_a_fifth_of_users_meet_the_candidate(walkthrough):
    _, summary = walkthrough
    ab = summary["ab"]
    assert ab["routing_share"] == pytest.approx(0.2, abs=0.015)
    users = [f"anggota-{n}" for n in range(ab["users"])]
    assert sum(route("ab", user, 0.2, "13").answer == CHALLENGER for user in users) / len(users) == ab["routing_share"]
    assert sum(ab["served"].values()) == ab["served_users"] and ab["served"].get("champion", 0) > 0
    # the same users through the app, with the walkthrough's models, in this process
    import httpx

    from langfoundry.serve.app import ServeSettings, create_app
    from langfoundry.serve.generation import ResolvedModel, ServedModel, folder_version
    from langfoundry.serve.store import Store

    work, _ = walkthrough
    models = {role: ServedModel.load(ResolvedModel(folder_version(work / folder), work / folder), f"serve.{role}")
              for role, folder in (("champion", "models/base"), ("challenger", "models/merged"))}
    store = Store(f"sqlite:///{work / 'data/serve/test-routing.db'}")
    app = create_app(models, store, ServeSettings(mode="ab", challenger_share=0.2, salt="13", max_new_tokens=4))
    expected = {user: route("ab", user, 0.2, "13").answer for user in users[:12]}
    with serving(app) as url:
        for user, role in expected.items():
            reply = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
                "user": user, "max_tokens": 4, "messages": [{"role": "user", "content": "Jam berapa kantor buka?"}]})
            assert reply.status_code == 200, reply.text
            assert reply.json()["model"] == models[role].version
    store.close()


def test_corrections_are_stored_and_train_in_the_next_cycle(walkthrough):
    work, summary = walkthrough
    corrections = load("run").CORRECTIONS
    assert summary["ab"]["corrections"] == len(corrections) and summary["ab"]["low_rated"] == 1
    stored = lines(work / "data/raw/acquired/user-corrections/feedback.jsonl")
    assert sorted(row["messages"][-1]["content"] for row in stored) == sorted(corrections.values())
    cycle = summary["cycle2"]
    # the 80/20 mix repeats the domain's examples, corrections among them: each answer once or more, no other
    assert sorted(set(cycle["answers"])) == sorted(corrections.values()), "every correction, and nothing else, trains"
    assert cycle["train_conversations"] > 0
    assert cycle["train"]["data_version.feedback_rows"] == len(corrections)
    assert cycle["review_queue"] == 1
    assert cycle["format"]["mix.obtained.domain"] == pytest.approx(0.8, abs=0.02)
