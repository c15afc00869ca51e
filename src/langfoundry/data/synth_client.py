"""Asking an OpenAI-compatible /chat/completions endpoint for variations, through a cache by request hash,
and reading the variations out of whatever the model answers.

A cached answer is a file <cache>/<sha256 of endpoint and request>.json holding the request and the parts of
the response the stage uses (content, model), as deterministic JSON: a rerun asks nothing and writes the
same bytes. An answer is cached as soon as it arrives, so a run that stops half-way keeps what it paid for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.errors import UserError
from langfoundry.core.storage import atomic_output
from langfoundry.core.synth_config import SYNTH_KEY_ENV, SynthesizeParams

RETRY_PAUSE_S = 0.5  # doubled after each failed try
SENT_SETTINGS = ("model", "temperature", "seed", "max_tokens")  # request fields taken from synthesize's settings
# "1. ", "2) ", "- ", "* ", "• " before a listed variation
_LIST_MARK = re.compile(r"^\s*(?:\d{1,3}\s*[.):]|[-*•])\s+")
_QUOTES = "\"'“”‘’«»"


@dataclass(frozen=True)
class Answer:
    content: str
    model: str  # as the endpoint names the model that answered (serve: the served version)
    cached: bool


def cache_key(endpoint: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"endpoint": endpoint.rstrip("/"), "request": body}, ensure_ascii=False,
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SynthClient:
    """One endpoint, one cache folder; counts hits and misses (a miss is one request that was answered)."""

    def __init__(self, settings: SynthesizeParams, cache: Path, transport: Any = None):
        self.settings = settings
        self.endpoint = settings.endpoint.rstrip("/") + "/chat/completions"
        self.cache = cache
        self.hits = self.misses = 0
        self._transport = transport  # tests may answer in process
        self._client: Any = None

    def body(self, prompt: str) -> dict[str, Any]:
        settings = self.settings
        return {"model": settings.model, "temperature": settings.temperature, "seed": settings.seed,
                "max_tokens": settings.max_tokens, "messages": [{"role": "user", "content": prompt}]}

    def ask(self, prompt: str) -> Answer:
        body = self.body(prompt)
        path = self.cache / f"{cache_key(self.settings.endpoint, body)}.json"
        if path.is_file():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
                self.hits += 1
                return Answer(stored["response"]["content"], stored["response"]["model"], True)
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache file: ask again and rewrite it
        content, model = self._post(body)
        self.misses += 1
        stored = {"endpoint": self.settings.endpoint.rstrip("/"), "request": body,
                  "response": {"content": content, "model": model}}
        with atomic_output(path) as partial:
            partial.write_text(json.dumps(stored, ensure_ascii=False, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        return Answer(content, model, False)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _post(self, body: dict[str, Any]) -> tuple[str, str]:
        import httpx  # only when something is asked: a run from the cache needs no HTTP client

        if self._client is None:
            logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the progress lines
            key = os.environ.get(SYNTH_KEY_ENV)
            self._client = httpx.Client(timeout=self.settings.timeout_s, transport=self._transport,
                                        headers={"Authorization": f"Bearer {key}"} if key else {})
        fix = "start `langfoundry serve` or set synthesize.endpoint in params.yaml"
        pause, tries = RETRY_PAUSE_S, self.settings.retries + 1
        for attempt in range(1, tries + 1):
            problem = None
            try:
                response = self._client.post(self.endpoint, json=body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.settings.timeout_s:g} s (raise synthesize.timeout_s, or {fix})"
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {str(err) or 'no connection'}; {fix}"
            else:
                if response.status_code < 500:
                    return _read_response(self.endpoint, response)
                problem = f"HTTP {response.status_code}: {_one_line(response.text)}"
            if attempt == tries:
                raise UserError(f"synthesize.endpoint {self.endpoint}: {problem} (after {tries} tries)")
            time.sleep(pause)
            pause *= 2
        raise AssertionError("unreachable")


def _read_response(endpoint: str, response: Any) -> tuple[str, str]:
    if response.status_code in (401, 403):
        raise UserError(f"synthesize.endpoint {endpoint} refused the request (HTTP {response.status_code}); "
                        f"set {SYNTH_KEY_ENV} to a valid key")
    if response.status_code >= 400:
        raise UserError(f"synthesize.endpoint {endpoint}: HTTP {response.status_code}: {_one_line(response.text)}; "
                        f"check {_setting_named(response)}")
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"synthesize.endpoint {endpoint}: the answer is not a chat completion "
                        f"(expected choices[0].message.content): {_one_line(response.text)}") from None
    model = data.get("model") if isinstance(data.get("model"), str) else None
    return content if isinstance(content, str) else "", model or ""


def _setting_named(response: Any) -> str:
    """The setting to look at for a refused request: the one behind the field an OpenAI-style error names."""
    try:
        param = response.json()["error"]["param"]
    except (ValueError, KeyError, TypeError):
        param = None
    if param in SENT_SETTINGS:
        return f"synthesize.{param}"
    return "synthesize.model and the endpoint"


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def parse_variations(content: str) -> list[str] | None:
    """The variations in a model's answer: a JSON list of strings (or {"variations": [...]}), or one per line,
    with list marks and surrounding quotes taken off. None when the answer cannot be read as either."""
    text = content.strip()
    if text.startswith("```"):  # models often fence their answer
        text = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", text).strip()
    if not text:
        return None
    if text[0] in "[{":
        try:
            parsed = json.loads(text)
        except ValueError:
            return None  # it meant to be JSON and is broken: not lines of text either
        if isinstance(parsed, dict):
            parsed = parsed.get("variations")
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            return None
        return [item.strip() for item in parsed]
    lines = []
    for line in text.splitlines():
        line = _LIST_MARK.sub("", line).strip()
        if not line:
            continue  # blank lines between variations
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
        lines.append(line)
    return lines or None
