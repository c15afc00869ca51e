"""A bounded load test: 8 concurrent clients for a few seconds against a real server in A/B and in shadow mode.

No request may fail with a 5xx, and every answered request must be in the database once the server has
stopped (in shadow mode, its shadow copy too): under concurrent writes no log row is lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from local_server import serving
from test_serve import settings
from tiny_models import build_tiny_base, write_examples

from langfoundry.serve.app import create_app
from langfoundry.serve.generation import ResolvedModel, ServedModel, folder_version
from langfoundry.serve.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import FALLBACK_PROMPTS, run_load  # noqa: E402

CLIENTS = 8
SECONDS = 8.0


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, ServedModel]:
    root = tmp_path_factory.mktemp("load-models")
    train, _ = write_examples(root)
    for seed, role in ((13, "champion"), (14, "challenger")):
        build_tiny_base(root / role, train, seed=seed, steps=2)
    return {role: ServedModel.load(ResolvedModel(folder_version(root / role), root / role), f"serve.{role}")
            for role in ("champion", "challenger")}


@pytest.mark.parametrize("mode", ["ab", "shadow"])
def test_concurrent_clients_get_no_5xx_and_every_answer_is_logged(models, tmp_path, mode: str) -> None:
    store = Store(f"sqlite:///{tmp_path / 'load.db'}")
    # a queue longer than the run can fill: this test counts lost rows, not deliberately dropped copies
    app = create_app(models, store, settings(mode, shadow_queue=100_000))
    try:
        with serving(app) as url:
            result = run_load(url, CLIENTS, SECONDS, FALLBACK_PROMPTS, max_tokens=8, users=200)
        # the server has stopped: its shutdown generated and logged every queued shadow answer
        shadow = app.state.service.shadow.status()
        assert result.server_errors == 0, result.statuses
        assert set(result.statuses) == {200}, result.statuses
        assert result.answered >= CLIENTS
        assert store.count_responses(shadow=False) == result.answered
        if mode == "ab":  # half the users meet the challenger
            assert set(result.models) == {models["champion"].version, models["challenger"].version}
            assert store.count_responses(shadow=True) == 0
        else:
            assert set(result.models) == {models["champion"].version}
            assert (shadow["dropped"], shadow["failed"], shadow["pending"]) == (0, 0, 0)
            assert store.count_responses(shadow=True) == result.answered
        print(f"{mode}: {result.answered} answered in {result.seconds:.1f} s, p50 {result.percentile(0.5):.0f} ms, "
              f"p95 {result.percentile(0.95):.0f} ms")
    finally:
        store.close()
