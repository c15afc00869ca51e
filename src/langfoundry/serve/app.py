"""The HTTP API: OpenAI-compatible chat completions routed between champion and challenger, feedback on
answers, and a user's own logged answers.

POST /v1/chat/completions   OpenAI's request and response (one choice, no streaming); greedy unless a
                            temperature above 0 is sent; model "auto" (or none) is routed by the mode
GET  /v1/models             the versions being served
POST /v1/feedback           {response_id, rating 1-5, correction?} by the user who received the answer
GET  /v1/responses/{id}     a logged answer, only to the user (X-User-Id) who received it
GET  /health                the mode, the versions and the shadow queue
GET  /demo                  a chat page for people: a prompt box that posts to /v1/chat/completions

Every refusal is a 4xx with OpenAI's error body {"error": {"message", "type", "param", "code"}}; an
unexpected failure is a 500 with the same body and no traceback (the traceback goes to the log).
Generation runs in worker threads, never on the event loop; every answer is logged before it is returned.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from langfoundry.clean.pii import scrub_pii
from langfoundry.serve.generation import PromptError, ServedModel
from langfoundry.serve.routing import CHALLENGER, CHAMPION, ROUTED, Mode, Route, route, route_named
from langfoundry.serve.schemas import (
    ApiError,
    ChatCompletionRequest,
    ChatMessage,
    FeedbackRequest,
    TextPart,
    error_body,
)
from langfoundry.serve.store import Store

log = logging.getLogger("langfoundry.serve")

USER_HEADER = "x-user-id"
FIELD_NAMES = {*ChatCompletionRequest.model_fields, *ChatMessage.model_fields, *TextPart.model_fields,
               *FeedbackRequest.model_fields}


@dataclass(frozen=True)
class ServeSettings:
    mode: Mode = "ab"
    challenger_share: float = 0.2
    salt: str = "13"  # of the A/B hash; params.seed, so a restart keeps every user on the same model
    max_new_tokens: int = 128  # the cap on a request's max_tokens
    scrub_pii: bool = True
    shadow_queue: int = 256  # shadow copies waiting for the challenger; beyond, copies are dropped and counted
    max_body_bytes: int = 1_000_000


class ShadowRunner:
    """Runs the challenger's shadow answers one at a time in a background thread, with a bounded queue so
    a slow challenger never holds up the champion or fills memory."""

    def __init__(self, capacity: int):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._slots = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self.counts = {"submitted": 0, "done": 0, "failed": 0, "dropped": 0}

    def submit(self, job: Callable[[], None]) -> bool:
        if not self._slots.acquire(blocking=False):
            self._count("dropped")
            log.warning("shadow queue full: a shadow answer was dropped (the challenger is slower than the traffic)")
            return False
        self._count("submitted")
        self._executor.submit(self._run, job)
        return True

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
            self._count("done")
        except Exception:
            log.exception("shadow answer failed")
            self._count("failed")
        finally:
            self._slots.release()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def status(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self.counts)
        return {**counts, "pending": counts["submitted"] - counts["done"] - counts["failed"]}

    def close(self) -> None:
        """Wait for the queued shadow answers (they are logged), then stop."""
        self._executor.shutdown(wait=True)


class ChatService:
    """What the endpoints do, apart from HTTP: choose the model, check limits, generate, scrub, log."""

    def __init__(self, models: Mapping[str, ServedModel], store: Store, settings: ServeSettings):
        if CHAMPION not in models:
            raise ValueError("a champion model is required")
        self.models, self.store, self.settings = dict(models), store, settings
        self.mode: Mode = settings.mode if CHALLENGER in self.models else "champion_only"
        self.shadow = ShadowRunner(settings.shadow_queue)

    def route_for(self, requested: str | None, user_id: str | None) -> Route:
        if requested in (None, ROUTED):
            return route(self.mode, user_id, self.settings.challenger_share, self.settings.salt)
        for role, model in self.models.items():
            if requested in (role, model.version):
                return route_named(role, self.mode)
        raise ApiError(404, f"model {requested!r} is not served here; GET /v1/models lists the served versions "
                            f"(or send {', '.join(self.models)} or {ROUTED!r})", param="model", code="model_not_found")

    def check_token_cap(self, requested: int | None) -> None:
        cap = self.settings.max_new_tokens
        if requested is not None and requested > cap:
            raise ApiError(400, f"max_tokens {requested} is over this server's limit of {cap} (serve.max_new_tokens); "
                                f"send at most {cap}", param="max_tokens")

    def token_budget(self, model: ServedModel, prompt_tokens: int, requested: int | None) -> int:
        """The most new tokens this answer may have: the request's max_tokens, the server's cap, the context."""
        self.check_token_cap(requested)
        wanted = requested if requested is not None else self.settings.max_new_tokens
        if model.context_length is None:
            return wanted
        room = model.context_length - prompt_tokens
        if room < 1 or (requested is not None and requested > room):
            asked = f" and max_tokens {requested}" if requested is not None else ""
            raise ApiError(400, f"the messages are {prompt_tokens} tokens{asked}; model {model.version} reads at most "
                                f"{model.context_length} tokens, prompt and answer together; shorten the messages"
                                + (" or lower max_tokens" if requested is not None else ""),
                           param="messages", code="context_length_exceeded")
        return min(wanted, room)

    def scrub(self, text: str) -> str:
        return scrub_pii(text)[0] if self.settings.scrub_pii else text

    def logged_messages(self, request: ChatCompletionRequest) -> list[dict[str, str]]:
        """The messages as the model read them (roles its template knows), scrubbed: they become training data."""
        return [{"role": message["role"], "content": self.scrub(message["content"])}
                for message in request.template_messages()]

    def encode(self, model: ServedModel, request: ChatCompletionRequest) -> list[int]:
        try:
            return model.encode(request.template_messages())
        except PromptError as err:
            raise ApiError(400, str(err), param="messages") from err

    def complete(self, request: ChatCompletionRequest, role: str, user_id: str | None, request_id: str,
                 started: float) -> dict:
        """The answer of the model in `role`, logged, as OpenAI's chat.completion object (runs in a worker thread)."""
        model = self.models[role]
        requested = request.token_limit()
        self.check_token_cap(requested)  # before tokenizing anything
        prompt_ids = self.encode(model, request)
        budget = self.token_budget(model, len(prompt_ids), requested)
        answer = model.generate(prompt_ids, budget, request.temperature or 0.0, request.top_p,
                                request.stop_sequences(), request.seed)
        response_id = self.store.log_response(
            request_id=request_id, user_id=user_id, model_version=model.version, role=role, shadow=False,
            prompt=self.logged_messages(request), answer=self.scrub(answer.text),
            latency_ms=(time.perf_counter() - started) * 1000, prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens)
        return {
            "id": response_id, "object": "chat.completion", "created": int(time.time()), "model": model.version,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": answer.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                      "total_tokens": answer.prompt_tokens + answer.completion_tokens},
        }

    def answer_in_shadow(self, request: ChatCompletionRequest, role: str, user_id: str | None, request_id: str) -> None:
        """The challenger answers a copy: logged with shadow=True under the same request id, never returned."""
        model = self.models[role]
        prompt_ids = model.encode(request.template_messages())
        room = model.context_length - len(prompt_ids) if model.context_length else self.settings.max_new_tokens
        if room < 1:
            log.warning("shadow: request %s does not fit %s's context; no shadow answer", request_id, model.version)
            return
        budget = min(request.token_limit() or self.settings.max_new_tokens, room)
        answer = model.generate(prompt_ids, budget, request.temperature or 0.0, request.top_p,
                                request.stop_sequences(), request.seed)
        self.store.log_response(
            request_id=request_id, user_id=user_id, model_version=model.version, role=role, shadow=True,
            prompt=self.logged_messages(request), answer=self.scrub(answer.text), latency_ms=answer.seconds * 1000,
            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens)


class BodySizeLimit:
    """Refuses a request body over max_bytes with a JSON 413: at once when Content-Length says so, else as
    soon as the bytes read pass the limit (a chunked upload), so no oversized prompt is held in memory."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(self.too_large().body(), status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.too_large().message)  # FastAPI passes it on to the JSON handler
            return message

        await self.app(scope, counted_receive, send)

    def too_large(self) -> ApiError:
        return ApiError(413, f"the request body is over this server's limit of {self.max_bytes:,} bytes; "
                             "shorten the messages", code="request_too_large")


def request_user(request: Request, *given: str | None) -> str | None:
    """The user id of a request: the X-User-Id header or the body's field(s); they must agree."""
    header = request.headers.get(USER_HEADER) or None
    named = {value for value in (header, *given) if value}
    if len(named) > 1:
        raise ApiError(400, "the X-User-Id header and the body's user field name different users; send one",
                       param="user")
    return named.pop() if named else None


def validation_error(errors: list[dict], content_type: str | None) -> ApiError:
    """One 400 naming the first problem pydantic (or the JSON parser) found in a request body."""
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return ApiError(400, f"the request body is not valid JSON: {first.get('ctx', {}).get('error', 'decode error')} "
                             f"at character {first['loc'][-1]}", code="invalid_json")
    param = _param(first)
    if param is None and kind in ("model_attributes_type", "missing", "model_type"):
        json_sent = (content_type or "").split(";")[0].strip().lower().endswith("json")
        hint = "" if json_sent else " with Content-Type: application/json"
        return ApiError(400, f"the request body must be a JSON object{hint}", code="invalid_body")
    message = str(first["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = f"unrecognized request argument: {param}"
    elif param:
        message = f"{param}: {message}"
    more = len({_param(error) for error in errors}) - 1
    return ApiError(400, message + (f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else ""), param=param)


def _param(error: dict) -> str | None:
    """The request field an error is about, as messages[0].role (union members pydantic names are left out)."""
    path = [part for part in error["loc"][1:] if isinstance(part, int) or part in FIELD_NAMES]
    if error["type"] == "extra_forbidden":
        path.append(error["loc"][-1])
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".") or None


def create_app(models: Mapping[str, ServedModel], store: Store, settings: ServeSettings) -> FastAPI:
    """The application serving `models` ({"champion": ..., "challenger": ...}), logging into `store`."""
    service = ChatService(models, store, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await run_in_threadpool(service.shadow.close)  # shadow answers still queued are generated and logged

    app = FastAPI(title="LangFoundry", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def refused(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        refusal = validation_error(list(error.errors()), request.headers.get("content-type"))
        return JSONResponse(refusal.body(), status_code=refusal.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(error.status_code, str(error.detail))
        kind = "server_error" if error.status_code >= 500 else "invalid_request_error"
        code = "request_too_large" if error.status_code == 413 else None
        return JSONResponse(error_body(message, kind, code=code), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse(error_body("internal server error; the server log has the details", "server_error"),
                            status_code=500)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> JSONResponse:
        started = time.perf_counter()
        user_id = request_user(request, body.user, body.safety_identifier)
        if body.stream:
            raise ApiError(400, "stream=true is not supported by this server; send stream=false or leave it out",
                           param="stream")
        if body.n not in (None, 1):
            raise ApiError(400, f"n={body.n}: this server returns one choice per request; send n=1 or leave it out",
                           param="n")
        chosen = service.route_for(body.model, user_id)
        request_id = "req-" + uuid.uuid4().hex[:24]
        completion = await run_in_threadpool(service.complete, body, chosen.answer, user_id, request_id, started)
        if chosen.shadow:
            service.shadow.submit(lambda: service.answer_in_shadow(body, chosen.shadow, user_id, request_id))
        return JSONResponse(completion)

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [
            {"id": model.version, "object": "model", "created": int(model.path.stat().st_mtime), "owned_by": "langfoundry",
             "role": role} for role, model in service.models.items()]}

    @app.post("/v1/feedback")
    async def feedback(body: FeedbackRequest, request: Request) -> dict:
        user_id = request_user(request, body.user)
        correction = service.scrub(body.correction) if body.correction is not None else None
        try:
            feedback_id = await run_in_threadpool(store.add_feedback, body.response_id, user_id, body.rating, correction)
        except KeyError:
            raise ApiError(404, f"no response {body.response_id!r} was returned to this user; rate an id from a "
                                "chat completion this user received", param="response_id", code="response_not_found") from None
        return {"id": feedback_id, "object": "feedback", "response_id": body.response_id, "rating": body.rating}

    @app.get("/v1/responses/{response_id}")
    async def logged_response(response_id: str, request: Request) -> dict:
        user_id = request.headers.get(USER_HEADER) or None
        row = await run_in_threadpool(store.response, response_id, user_id) if user_id else None
        if row is None:
            raise ApiError(404, f"no response {response_id!r} was returned to this user; send the X-User-Id header "
                                "of the user who received it", param="response_id", code="response_not_found")
        return {"id": row["id"], "object": "chat.completion.log", "created": int(row["created_at"]),
                "model": row["model_version"], "messages": row["prompt"], "answer": row["answer"],
                "usage": {"prompt_tokens": row["prompt_tokens"], "completion_tokens": row["completion_tokens"]}}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "mode": service.mode, "models": {role: m.version for role, m in service.models.items()},
                "shadow": service.shadow.status()}

    # GET /demo: a chat page (static/demo.html and demo.js, nothing from outside) that posts to /v1/chat/completions
    from pathlib import Path

    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/demo")
    async def demo_page() -> FileResponse:
        return FileResponse(static / "demo.html", media_type="text/html; charset=utf-8")

    return app
