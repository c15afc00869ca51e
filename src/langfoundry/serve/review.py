"""langfoundry review: blind comparison of two models' answers in the browser -> metrics/preference.json.

A reviewer sees a prompt and two answers labelled A and B. Which model wrote which stays hidden: the
side is drawn from a hash of the seed, the pair and the reviewer, so a reload shows the same order and
another reviewer may see the other one. The server un-blinds the choice before storing it
(serve/judgments.py) and rewrites metrics/preference.json after every judgment; the release gate reads it.

Pairs come from reports/predictions.jsonl (the adapter, the candidate, against the base on the test
set) or, with --pairs logs, from the serving database: requests answered by both the champion and the
challenger (shadow mode), the challenger being the candidate. Pairs whose two answers are the same are
left out: they cannot tell the models apart. A pair's key hashes its prompt and both answers, so once the
predictions change, judgments of the earlier answers no longer count.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from langfoundry.clean.pii import scrub_pii
from langfoundry.core.config import Params, load_params
from langfoundry.core.errors import UserError
from langfoundry.core.storage import atomic_output
from langfoundry.release.preference import preference_metrics, write_preference
from langfoundry.reports.retrain import file_sha256
from langfoundry.serve.judgments import choices_for, judged_keys, open_database, record_judgment
from langfoundry.serve.store import database_url

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html: answers are shown as text, never markup
PREDICTION_MODELS = ("adapter", "base")  # candidate, reference in reports/predictions.jsonl
FORM_CHOICES = {"A", "B", "tie", "both_bad"}
MAX_CORRECTION_CHARS = 10_000
MAX_REVIEWER_CHARS = 100


@dataclass(frozen=True)
class Pair:
    key: str
    messages: list[dict[str, str]] = field(hash=False)  # the chat up to the answer, as the models saw it
    candidate_answer: str
    reference_answer: str


@dataclass
class PairSet:
    candidate: str  # model name or version
    reference: str
    pairs: dict[str, Pair]  # key -> pair, in review order
    identical: int = 0  # pairs left out because both answers are the same


def pair_key(origin: str, candidate: str, reference: str, messages: list, candidate_answer: str, reference_answer: str) -> str:
    content = [origin, candidate, reference, messages, candidate_answer, reference_answer]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:24]


def _collect(candidate: str, reference: str, items: Iterator[tuple[str, list, str, str]]) -> PairSet:
    """A PairSet from (origin, messages, candidate answer, reference answer), leaving out identical answers."""
    found = PairSet(candidate, reference, {})
    for origin, messages, candidate_answer, reference_answer in items:
        if candidate_answer.strip() == reference_answer.strip():
            found.identical += 1
            continue
        key = pair_key(origin, candidate, reference, messages, candidate_answer, reference_answer)
        found.pairs[key] = Pair(key, messages, candidate_answer, reference_answer)
    return found


def _jsonl(path: Path, fix: str) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: not a JSON line ({err.msg}); {fix}") from err
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: a JSON object was expected; {fix}")
            yield number, row


def prediction_pairs(predictions: Path, test: Path) -> PairSet:
    """Adapter against base on each test example of reports/predictions.jsonl, with the prompt from the test set."""
    fix = "rerun `dvc repro evaluate`"
    if not predictions.is_file():
        raise UserError(f"{predictions}: not found; run `dvc repro evaluate` to write the models' answers (or use --pairs logs)")
    prompts: dict[str, list] = {}
    if test.is_file():  # without it each prompt is shown as the bare source text
        for _, row in _jsonl(test, "rerun `dvc repro format`"):
            messages = row.get("messages") or []
            prompts[str(row.get("id"))] = messages[:-1] if messages and messages[-1].get("role") == "assistant" else messages
    answers: dict[str, dict[str, Any]] = {}
    for number, row in _jsonl(predictions, fix):
        missing = [key for key in ("id", "model", "hypothesis") if key not in row]
        if missing:
            raise UserError(f"{predictions}:{number}: no {', '.join(map(repr, missing))} key; {fix}")
        answers.setdefault(str(row["id"]), {"source": row.get("source", "")})[row["model"]] = str(row["hypothesis"])
    candidate, reference = PREDICTION_MODELS
    both = ((key, found) for key, found in answers.items() if candidate in found and reference in found)
    return _collect(candidate, reference, (
        (f"predictions:{key}", prompts.get(key) or [{"role": "user", "content": str(found["source"])}],
         found[candidate], found[reference]) for key, found in both))


RESPONSES = sa.table("responses", *(sa.column(name) for name in
                                     ("request_id", "created_at", "model_version", "role", "prompt", "answer")))


def _messages(prompt: str | None) -> list[dict[str, str]]:
    try:
        messages = json.loads(prompt or "[]")
    except json.JSONDecodeError:
        return [{"role": "user", "content": prompt or ""}]
    if isinstance(messages, list) and all(isinstance(item, dict) for item in messages):
        return [{"role": str(item.get("role", "user")), "content": str(item.get("content", ""))} for item in messages]
    return [{"role": "user", "content": str(messages)}]


def log_pairs(engine: Engine) -> PairSet:
    """Requests the serving database logged from both the champion and the challenger, for the latest such
    pair of model versions; the challenger is the candidate."""
    champion, challenger = RESPONSES.alias("champion"), RESPONSES.alias("challenger")
    query = (sa.select(champion.c.request_id, champion.c.prompt, champion.c.answer, champion.c.model_version,
                       challenger.c.answer.label("challenger_answer"),
                       challenger.c.model_version.label("challenger_version"))
             .join_from(champion, challenger, champion.c.request_id == challenger.c.request_id)
             .where(champion.c.role == "champion", challenger.c.role == "challenger")
             .order_by(champion.c.created_at, champion.c.request_id))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return PairSet("", "", {})
    candidate, reference = rows[-1].challenger_version, rows[-1].model_version
    return _collect(candidate, reference, (
        (f"logs:{row.request_id}", _messages(row.prompt), row.challenger_answer or "", row.answer or "")
        for row in rows if (row.challenger_version, row.model_version) == (candidate, reference)))


class Review:
    """One reviewer's session over a database and a source of pairs."""

    def __init__(self, params: Params, engine: Engine, pairs: str, reviewer: str):
        self.params, self.engine, self.kind, self.reviewer = params, engine, pairs, reviewer
        self.preference_path = params.paths.metric("preference")
        self._cached: tuple[tuple, PairSet] | None = None

    def load(self) -> PairSet:
        """The pairs as they are now: new shadow answers and a re-run evaluate show up without a restart."""
        if self.kind == "logs":
            return log_pairs(self.engine)
        files = (self.params.paths.reports / "predictions.jsonl", self.params.paths.split_file("test"))
        stamp = tuple((path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None for path in files)
        if self._cached is None or self._cached[0] != stamp:  # parse the files again only when they changed
            self._cached = (stamp, prediction_pairs(*files))
        return self._cached[1]

    def candidate_position(self, key: str) -> str:
        """A or B, the same on every reload for this pair and reviewer (a hash, not Python's salted hash())."""
        digest = hashlib.sha256(f"{self.params.seed}\0{key}\0{self.reviewer}".encode()).digest()
        return "AB"[digest[0] & 1]

    def judged(self, pair_set: PairSet) -> set[str]:
        return judged_keys(self.engine, self.reviewer) & pair_set.pairs.keys()

    def export(self, pair_set: PairSet) -> dict[str, Any]:
        """Write metrics/preference.json from every reviewer's judgments of the current pairs."""
        if not pair_set.candidate:
            raise UserError("no pairs to judge: the serving database holds no request answered by both the champion "
                            "and the challenger; run `langfoundry serve` with serve.mode: shadow, or use --pairs predictions")
        choices = choices_for(self.engine, pair_set.candidate, pair_set.reference, pair_set.pairs)
        predictions = self.params.paths.reports / "predictions.jsonl"
        judged_file = file_sha256(predictions) if self.kind == "predictions" and predictions.is_file() else None
        metrics = preference_metrics(choices, candidate=pair_set.candidate, reference=pair_set.reference,
                                     confidence=self.params.release.confidence, predictions_sha256=judged_file)
        with atomic_output(self.preference_path) as partial:  # the release gate never reads half a file
            write_preference(partial, metrics)
        return metrics


def un_blind(form_choice: str, candidate_position: str) -> str:
    """The stored choice for what the reviewer picked on the page."""
    if form_choice in ("A", "B"):
        return "candidate" if form_choice == candidate_position else "reference"
    return form_choice


def error_response(request: Request, status: int, message: str) -> Response:
    """An HTML page for a browser, JSON {"error": ...} for anything else."""
    if "text/html" in request.headers.get("accept", ""):
        return TEMPLATES.TemplateResponse(request, "error.html", {"status": status, "message": message}, status_code=status)
    return JSONResponse({"error": message}, status_code=status)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container: one shared default name
        return "reviewer"


def create_app(params: Params, *, database: str | None = None, pairs: str = "predictions",
               reviewer: str | None = None) -> FastAPI:
    """The review server; reads the pairs once up front so a missing or broken input stops it before it listens."""
    if pairs not in ("predictions", "logs"):
        raise UserError(f"--pairs {pairs!r}: give predictions or logs")
    reviewer = (reviewer or _login_name()).strip()
    if not reviewer or len(reviewer) > MAX_REVIEWER_CHARS:
        raise UserError(f"--reviewer {reviewer!r}: give a name of 1 to {MAX_REVIEWER_CHARS} characters")
    review = Review(params, open_database(database_url(params.serve.database, database)), pairs, reviewer)
    review.load()
    app = FastAPI(title="LangFoundry review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = review
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, "the request is not valid; reload the review page")

    @app.exception_handler(UserError)
    async def input_problem(request: Request, exc: UserError) -> Response:  # an input went missing while serving
        return error_response(request, 503, str(exc))

    @app.exception_handler(SQLAlchemyError)
    async def database_problem(request: Request, exc: SQLAlchemyError) -> Response:
        return error_response(request, 503, f"the database is not available ({type(exc).__name__}); try again")

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        pair_set = review.load()
        judged = review.judged(pair_set)
        pair = next((item for key, item in pair_set.pairs.items() if key not in judged), None)
        answers = []
        if pair is not None:
            first, second = pair.candidate_answer, pair.reference_answer
            if review.candidate_position(pair.key) == "B":
                first, second = second, first
            answers = [("A", first), ("B", second)]
        return TEMPLATES.TemplateResponse(request, "review.html", {
            "pair": pair, "answers": answers, "judged": len(judged), "total": len(pair_set.pairs),
            "identical": pair_set.identical, "reviewer": review.reviewer, "kind": review.kind,
            "saved": request.query_params.get("saved") == "1", "max_correction": MAX_CORRECTION_CHARS})

    @app.post("/judge")
    async def judge(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):  # another site's page posting a form here
            return error_response(request, 403, f"a form from {origin} may not post judgments; use the review page itself")
        form = await request.form()
        key, choice, correction = form.get("pair"), form.get("choice"), form.get("correction") or ""
        if not isinstance(key, str) or not key:
            return error_response(request, 400, "the form names no pair; reload the review page")
        if choice not in FORM_CHOICES:
            return error_response(request, 400, f"choice {choice!r} is not one of A, B, tie, both_bad")
        if not isinstance(correction, str) or len(correction) > MAX_CORRECTION_CHARS:
            return error_response(request, 400, f"the correction must be text of at most {MAX_CORRECTION_CHARS} characters")
        pair_set = review.load()
        pair = pair_set.pairs.get(key)
        if pair is None:
            return error_response(request, 404, f"pair {key!r} is not among the pairs under review (the answers may have "
                                                 "changed since the page was loaded); reload the review page")
        position = review.candidate_position(key)
        correction = correction.strip()
        if correction and params.serve.scrub_pii:
            correction = scrub_pii(correction)[0]
        record_judgment(review.engine, reviewer=review.reviewer, pair_key=key,
                        prompt=json.dumps(pair.messages, ensure_ascii=False), candidate=pair_set.candidate,
                        reference=pair_set.reference, candidate_position=position,
                        choice=un_blind(choice, position), correction=correction or None)
        review.export(pair_set)
        return RedirectResponse("/?saved=1", status_code=303)  # a reload of the next page never re-posts the form

    return app


def summary(metrics: dict[str, Any]) -> str:
    rate = "no decided comparisons yet"
    if metrics.get("win_rate") is not None:
        low, high = metrics["interval"]
        rate = f"win rate {metrics['win_rate']:.2f} [{low:.2f}, {high:.2f}] at {metrics['confidence']:.0%} confidence"
    return (f"preference: {metrics['candidate']} vs {metrics['reference']}: {metrics['judgments']} judgment(s), "
            f"{metrics['candidate_wins']} won, {metrics['reference_wins']} lost, {metrics['ties']} tie(s), "
            f"{metrics['both_bad']} both bad; {rate}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langfoundry review", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (default: 8001)")
    parser.add_argument("--params", default="params.yaml", help="the parameter file (default: params.yaml)")
    parser.add_argument("--database", help="database URL (default: $LANGFOUNDRY_DATABASE_URL, else serve.database)")
    parser.add_argument("--pairs", choices=("predictions", "logs"), default="predictions",
                        help="predictions: adapter vs base on the test set; logs: challenger vs champion from shadow mode")
    parser.add_argument("--reviewer", help="your name, stored with each judgment (default: the login name)")
    parser.add_argument("--export", action="store_true", help="write metrics/preference.json from the judgments and exit")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
        app = create_app(params, database=args.database, pairs=args.pairs, reviewer=args.reviewer)
        review: Review = app.state.review
        pair_set = review.load()
        if args.export:
            print(f"{summary(review.export(pair_set))} -> {review.preference_path}")
            return 0
        print(f"review: {len(pair_set.pairs)} pair(s) of {pair_set.candidate or '?'} vs {pair_set.reference or '?'}, "
              f"{len(review.judged(pair_set))} judged by {review.reviewer}, {pair_set.identical} with identical answers "
              f"left out; open http://{args.host}:{args.port}/", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    except UserError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
