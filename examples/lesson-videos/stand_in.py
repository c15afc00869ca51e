"""A local stand-in for the hosted vision model that would read N'Ko off the board: an OpenAI-compatible
POST /v1/chat/completions on 127.0.0.1 that takes the ocr stage's request (a text prompt and the frame as a
base64 PNG data URL) and answers {"lines": [{"text": ..., "confidence": ...}]}, as media/ocr.py parses it.

It does not read. build_data.py wrote a table of every slide it rendered (a 48x27 grey thumbnail and the lines
written on it); the stand-in shrinks the frame it is sent the same way and answers the lines of the nearest
slide, or nothing when no slide is near (the frame is not one of the lessons). Its confidence is 1 minus the
mean grey-level distance to that slide, so a frame the video codec blurred a little still comes out near 0.99.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

MODEL = "stand-in-board-lookup"
MAX_DISTANCE = 0.08  # mean absolute grey difference (0..1) above which a frame matches no slide


class BoardTable:
    def __init__(self, path: Path):
        table = json.loads(Path(path).read_text(encoding="utf-8"))
        self.size = tuple(table["size"])
        self.slides = table["slides"]
        self.thumbs = np.array([slide["thumbnail"] for slide in self.slides], dtype=np.float32) / 255.0

    def read(self, image: Image.Image) -> tuple[list[str], float]:
        """The lines of the nearest slide and the confidence; ([], 0.0) when none is near."""
        thumb = np.frombuffer(image.convert("L").resize(self.size, Image.Resampling.BILINEAR).tobytes(),
                              dtype=np.uint8).astype(np.float32) / 255.0
        distances = np.abs(self.thumbs - thumb).mean(axis=1)
        best = int(distances.argmin())
        if distances[best] > MAX_DISTANCE:
            return [], 0.0
        return self.slides[best]["lines"], round(1.0 - float(distances[best]), 4)


def create_app(table: BoardTable, calls: list[dict] | None = None):
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    log = calls if calls is not None else []

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        parts = body["messages"][-1]["content"]
        url = next(part["image_url"]["url"] for part in parts if part.get("type") == "image_url")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        lines, confidence = table.read(image)
        log.append({"model": body.get("model"), "prompt": next(p["text"] for p in parts if p.get("type") == "text"),
                    "lines": len(lines)})
        content = json.dumps({"lines": [{"text": line, "confidence": confidence} for line in lines]}, ensure_ascii=False)
        return {"id": f"standin-{len(log)}", "object": "chat.completion", "created": 0, "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}

    return app


@contextmanager
def serving(table_path: Path, calls: list[dict] | None = None) -> Iterator[str]:
    """The stand-in under uvicorn in a thread, on a free port of 127.0.0.1: yields its API base (.../v1)."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(BoardTable(table_path), calls), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the stand-in vision server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
