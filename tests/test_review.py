"""langfoundry review through FastAPI's TestClient: blinding, un-blinding, metrics/preference.json and bad posts."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from langfoundry.core.config import Params, PathsParams, ReleaseParams
from langfoundry.core.errors import UserError
from langfoundry.release.preference import wilson_interval
from langfoundry.reports.retrain import file_sha256
from langfoundry.serve.judgments import judgment_rows
from langfoundry.serve.review import create_app, main
from langfoundry.serve.store import Store

PAIRS = 40


def prompt(index: int) -> list[dict]:
    return [{"role": "user", "content": f"Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\nkata-{index}"}]


def write_project(root: Path, pairs: int = PAIRS, adapter_suffix: str = "") -> Params:
    """A test set and predictions where example i has adapter answer 'cand-i', base answer 'ref-i', plus an
    example both models answer alike and one only the adapter answered."""
    paths = PathsParams().under(root)
    paths.processed.mkdir(parents=True, exist_ok=True)
    paths.reports.mkdir(parents=True, exist_ok=True)
    test_rows, predictions = [], []
    for index in range(pairs):
        key = f"ex{index:03d}"
        test_rows.append({"id": key, "messages": [*prompt(index), {"role": "assistant", "content": f"gold-{index}"}]})
        predictions += [{"id": key, "model": "adapter", "hypothesis": f"cand-{index}{adapter_suffix}", "source": f"kata-{index}"},
                        {"id": key, "model": "base", "hypothesis": f"ref-{index}", "source": f"kata-{index}"},
                        {"id": key, "model": "baseline", "hypothesis": f"kata-{index}", "source": f"kata-{index}"}]
    predictions += [{"id": "same", "model": "adapter", "hypothesis": "sama", "source": "padha"},
                    {"id": "same", "model": "base", "hypothesis": "sama ", "source": "padha"},
                    {"id": "lonely", "model": "adapter", "hypothesis": "sendiri", "source": "dhewek"}]
    (paths.processed / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in test_rows), encoding="utf-8")
    (paths.reports / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in predictions), encoding="utf-8")
    return Params().model_copy(update={"paths": paths})


@pytest.fixture
def project(tmp_path: Path) -> tuple[Params, str]:
    return write_project(tmp_path), f"sqlite:///{tmp_path / 'serve.db'}"


def client(project: tuple[Params, str], reviewer: str = "ana", pairs: str = "predictions") -> TestClient:
    params, database = project
    return TestClient(create_app(params, database=database, pairs=pairs, reviewer=reviewer))


def shown(page: str) -> dict:
    """What the page shows: the pair key, the two answers by label, the progress counts."""
    answers = {label: html.unescape(text) for label, text in
               re.findall(r'id="answer-([AB])".*?<div class="text[^"]*">(.*?)</div>', page, re.S)}
    key = re.search(r'name="pair" value="([^"]+)"', page)
    judged, total = map(int, re.search(r"(\d+) of (\d+) judged", page).groups())
    return {"key": key and key.group(1), "answers": answers, "judged": judged, "total": total}


def label_of(answers: dict, prefix: str) -> str:
    return next(label for label, text in answers.items() if text.startswith(prefix))


def judge(browser: TestClient, choice_for: Callable[[dict], str], correction: str = "") -> tuple[dict, str]:
    """Judge the pair on the page; choice_for maps what is shown to a form choice. Returns what was shown and posted."""
    page = shown(browser.get("/").text)
    choice = choice_for(page["answers"])
    response = browser.post("/judge", data={"pair": page["key"], "choice": choice, "correction": correction},
                            follow_redirects=False)
    assert response.status_code == 303, response.text
    return page, choice


def test_sides_are_random_across_pairs_but_stable_per_pair_and_reviewer(project) -> None:
    ana = client(project)
    first = ana.get("/").text
    assert first == ana.get("/").text, "a reload must show the same pair in the same order"
    candidate_first = []
    for _ in range(PAIRS):
        page, _ = judge(ana, lambda answers: "tie")
        candidate_first.append(page["answers"]["A"].startswith("cand-"))
    assert 5 < sum(candidate_first) < PAIRS - 5, f"the candidate was shown first on {sum(candidate_first)} of {PAIRS} pairs"
    assert shown(client(project).get("/").text)["key"] is None  # a restarted server: everything judged

    # a fresh server for the same reviewer shows the same sides; another reviewer sees other sides on some pairs
    keys = [row["pair_key"] for row in judgment_rows(ana.app.state.review.engine, "ana")]
    again, other = client(project).app.state.review, client(project, reviewer="ben").app.state.review
    assert [again.candidate_position(key) == "A" for key in keys] == candidate_first
    assert [other.candidate_position(key) == "A" for key in keys] != candidate_first


def test_the_stored_choice_names_the_model_whose_answer_was_picked(project) -> None:
    ana = client(project)
    picked = [judge(ana, lambda answers: label_of(answers, "cand-"))[0],
              judge(ana, lambda answers: label_of(answers, "ref-"), correction="  arti: nasi, tulis ke ana@example.org  ")[0],
              judge(ana, lambda answers: "both_bad")[0]]
    rows = judgment_rows(ana.app.state.review.engine, "ana")
    assert [row["choice"] for row in rows] == ["candidate", "reference", "both_bad"]
    for page, row in zip(picked, rows):
        assert row["pair_key"] == page["key"]
        assert page["answers"][row["candidate_position"]].startswith("cand-")  # the side the candidate was shown on
        assert (row["candidate"], row["reference"], row["reviewer"]) == ("adapter", "base", "ana")
        index = int(page["answers"]["A"].split("-")[1])
        assert json.loads(row["prompt"]) == prompt(index)  # the prompt from the test set, without the gold answer
    assert rows[1]["correction"] == "arti: nasi, tulis ke <EMAIL>"  # trimmed and scrubbed like logged answers
    assert rows[0]["correction"] is None


def test_the_page_never_names_the_models_and_shows_answers_as_text(tmp_path: Path) -> None:
    params = write_project(tmp_path, pairs=1, adapter_suffix="<script>alert(1)</script>")
    page = client((params, f"sqlite:///{tmp_path / 'db'}")).get("/")
    assert page.status_code == 200
    assert "adapter" not in page.text.lower() and "candidate" not in page.text.lower()
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "1 pair with identical answers left out" in page.text


def test_preference_json_counts_every_reviewers_current_judgments(project) -> None:
    params, _ = project
    ana, ben = client(project), client(project, reviewer="ben")
    for choose in ["cand-", "cand-", "cand-", "ref-"]:
        judge(ana, lambda answers, prefix=choose: label_of(answers, prefix))
    judge(ana, lambda answers: "tie")
    judge(ben, lambda answers: "both_bad")
    preference = json.loads(params.paths.metric("preference").read_text(encoding="utf-8"))
    compared, wins = 5, 3.5  # both bad counts as a judgment, not as a comparison; a tie is half a win
    assert preference == {"judgments": 6, "candidate_wins": 3, "reference_wins": 1, "ties": 1, "both_bad": 1,
                          "win_rate": pytest.approx(wins / compared),
                          "interval": pytest.approx(list(wilson_interval(wins, compared, 0.95)), abs=1e-6),
                          "confidence": 0.95, "candidate": "adapter", "reference": "base",
                          "predictions_sha256": file_sha256(params.paths.reports / "predictions.jsonl")}

    # ben posts his pair again (a browser's back button): the judgment is replaced, not counted twice
    key = judgment_rows(ben.app.state.review.engine, "ben")[0]["pair_key"]
    assert ben.post("/judge", data={"pair": key, "choice": "tie"}, follow_redirects=False).status_code == 303
    preference = json.loads(params.paths.metric("preference").read_text(encoding="utf-8"))
    assert (preference["judgments"], preference["ties"], preference["both_bad"]) == (6, 2, 0)
    assert shown(ben.get("/").text)["judged"] == 1

    # a retrained adapter answers differently: judgments of the old answers no longer count
    write_project(params.paths.reports.parent, adapter_suffix=" (v2)")
    assert main(["--export", "--params", str(write_params(params)), "--database", project[1]]) == 0
    preference = json.loads(params.paths.metric("preference").read_text(encoding="utf-8"))
    assert preference["judgments"] == 0 and preference["win_rate"] is None


def write_params(params: Params) -> Path:
    """A params.yaml whose paths point at the test project (the CLI loads a file)."""
    path = params.paths.reports.parent / "params.yaml"
    layout = "".join(f"  {name}: {value}\n" for name, value in params.paths if name not in ("acquired", "media"))
    path.write_text(f"paths:\n{layout}", encoding="utf-8")
    return path


@pytest.mark.parametrize("form, status, message", [
    ({"pair": "0" * 24, "choice": "A"}, 404, "not among the pairs"),
    ({"choice": "A"}, 400, "names no pair"),
    ({"pair": "{key}", "choice": "C"}, 400, "not one of A, B, tie, both_bad"),
    ({"pair": "{key}"}, 400, "not one of A, B, tie, both_bad"),
    ({"pair": "{key}", "choice": "candidate"}, 400, "not one of"),  # the stored names are not form choices
    ({"pair": "{key}", "choice": "B", "correction": "x" * 10_001}, 400, "at most 10000 characters"),
])
def test_bad_posts_are_4xx_with_a_reason_and_store_nothing(project, form, status, message) -> None:
    ana = client(project)
    key = shown(ana.get("/").text)["key"]
    response = ana.post("/judge", data={name: value.format(key=key) for name, value in form.items()})
    assert response.status_code == status and message in response.json()["error"]
    assert judgment_rows(ana.app.state.review.engine) == []
    assert not project[0].paths.metric("preference").exists()


def test_malformed_requests_are_4xx_never_500(project) -> None:
    ana = client(project)
    assert ana.post("/judge", json={"pair": "x", "choice": "A"}).status_code == 400  # not a form
    assert ana.post("/judge", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}
                    ).status_code == 400
    assert ana.get("/judge").status_code == 405 and "error" in ana.get("/judge").json()
    assert ana.get("/nowhere").status_code == 404
    key = shown(ana.get("/").text)["key"]
    forged = ana.post("/judge", data={"pair": key, "choice": "A"}, headers={"origin": "http://elsewhere.example"})
    assert forged.status_code == 403 and judgment_rows(ana.app.state.review.engine) == []
    page = ana.post("/judge", data={"pair": "nope", "choice": "A"}, headers={"accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html") and "Back to the review" in page.text


def test_pairs_from_shadow_logs_compare_the_latest_challenger_with_its_champion(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    store = Store(database)  # the serving log as langfoundry serve writes it
    for request, at, version, role, shadow, answer in [
            ("r1", 1.0, "old-champ", "champion", False, "lama"), ("r1", 1.0, "old-chall", "challenger", True, "lama baru"),
            ("r2", 2.0, "champ-7f3a", "champion", False, "rumah"), ("r2", 2.0, "chall-1c2d", "challenger", True, "omah"),
            ("r3", 3.0, "champ-7f3a", "champion", False, "sama"), ("r3", 3.0, "chall-1c2d", "challenger", True, "sama"),
            ("r4", 4.0, "chall-1c2d", "challenger", False, "A/B traffic: no pair")]:
        store.log_response(request_id=request, user_id="u1", model_version=version, role=role, shadow=shadow,
                           prompt=[{"role": "user", "content": f"question {request}"}], answer=answer, created_at=at)
    params = Params().model_copy(update={"paths": PathsParams().under(tmp_path)})
    browser = client((params, database), pairs="logs")
    page = browser.get("/").text
    assert "question r2" in page and shown(page)["total"] == 1 and "1 pair with identical answers left out" in page
    assert "chall-1c2d" not in page and "champ-7f3a" not in page
    judge(browser, lambda answers: label_of(answers, "omah"))
    assert [(row["choice"], row["candidate"], row["reference"]) for row in judgment_rows(store.engine)] == [
        ("candidate", "chall-1c2d", "champ-7f3a")]
    preference = json.loads(params.paths.metric("preference").read_text(encoding="utf-8"))
    assert (preference["candidate"], preference["reference"], preference["win_rate"]) == ("chall-1c2d", "champ-7f3a", 1.0)


def test_missing_inputs_stop_with_one_line_and_empty_logs_say_how_to_collect_pairs(tmp_path: Path) -> None:
    params = Params().model_copy(update={"paths": PathsParams().under(tmp_path)})
    empty_logs = client((params, f"sqlite:///{tmp_path / 'db'}"), pairs="logs")
    assert "Nothing to review" in empty_logs.get("/").text and "mode: shadow" in empty_logs.get("/").text
    with pytest.raises(UserError, match="no pairs to judge"):
        empty_logs.app.state.review.export(empty_logs.app.state.review.load())
    with pytest.raises(UserError, match=r"predictions\.jsonl: not found; run `dvc repro evaluate`"):
        create_app(params, database=f"sqlite:///{tmp_path / 'db'}", reviewer="ana")
    served = client((write_project(tmp_path), f"sqlite:///{tmp_path / 'db'}"))
    (tmp_path / "reports" / "predictions.jsonl").unlink()  # deleted while the server runs
    response = served.get("/")
    assert response.status_code == 503 and "predictions.jsonl: not found" in response.json()["error"]
    with pytest.raises(UserError, match="not a database URL"):
        create_app(write_project(tmp_path), database="no-such-scheme", reviewer="ana")
    (tmp_path / "reports" / "predictions.jsonl").write_text('{"id": "a", "model": "base"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"predictions\.jsonl:1: no 'hypothesis' key"):
        create_app(params, database=f"sqlite:///{tmp_path / 'db'}", reviewer="ana")


def test_export_writes_preference_json_and_says_what_it_counted(project, capsys, monkeypatch) -> None:
    params, database = project
    judge(client(project), lambda answers: label_of(answers, "cand-"))
    params.paths.metric("preference").unlink()
    monkeypatch.setenv("LANGFOUNDRY_DATABASE_URL", database)  # the environment names the database
    assert main(["--export", "--params", str(write_params(params))]) == 0
    assert "adapter vs base: 1 judgment(s), 1 won, 0 lost" in capsys.readouterr().out
    assert json.loads(params.paths.metric("preference").read_text(encoding="utf-8"))["candidate_wins"] == 1
    assert ReleaseParams().confidence == json.loads(params.paths.metric("preference").read_text())["confidence"]
    params.paths.split_file("test").unlink()
    (params.paths.reports / "predictions.jsonl").unlink()
    assert main(["--export", "--params", str(write_params(params))]) == 2
    assert capsys.readouterr().err.count("\n") == 1
