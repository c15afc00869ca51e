"""A local stand-in for the hosted model that writes the variations: an OpenAI-compatible
POST /v1/chat/completions on 127.0.0.1 that answers the synthesize stage's prompts with deterministic
register rewrites of the seed question, as a JSON list, the way the real model is asked to.

It is not a language model: it puts a register's opening in front of the seed. The casual register's second
rewrite uses Jakarta slang ("gue") on purpose, so the review step has something to reject.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MODEL = "stand-in-register-rewriter"
REWRITES = {  # register word in templates/synthesize/id/<register>.txt -> openings
    "formal": ["Dengan hormat, saya ingin menanyakan: ", "Mohon informasi resmi dari koperasi: "],
    "bisnis": ["Untuk keperluan usaha saya, mohon dijelaskan: ", "Mohon penjelasan singkat dan jelas: "],
    "santai": ["Kak, mau tanya dong, ", "Gue mau nanya nih, "],
}


def rewrite(prompt: str) -> str:
    """The answer to one synthesize prompt: n rewrites of the text after 'Teks:' in the prompt's register."""
    seed = prompt.rsplit("Teks:\n", 1)[-1].strip()
    register = re.search(r"gaya bahasa (\w+)", prompt)
    asked = re.search(r"Buat (\d+) variasi", prompt)
    openings = REWRITES.get(register.group(1) if register else "", REWRITES["formal"])
    count = int(asked.group(1)) if asked else 2
    body = seed[:1].lower() + seed[1:]
    return json.dumps([openings[i % len(openings)] + body for i in range(count)], ensure_ascii=False)


def create_app(calls: list[dict] | None = None):
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    log = calls if calls is not None else []

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        log.append(body)
        content = rewrite(body["messages"][-1]["content"])
        return {"id": f"standin-{len(log)}", "object": "chat.completion", "created": 0, "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}

    return app


@contextmanager
def serving(calls: list[dict] | None = None) -> Iterator[str]:
    """The stand-in under uvicorn in a thread, on a free port of 127.0.0.1: yields its API base (…/v1)."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(calls), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the stand-in server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
