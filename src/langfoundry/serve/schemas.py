"""Request bodies of the API, validated strictly, and the OpenAI-style error body every failure returns.

Types are strict (a max_tokens of "5" or true is an error, not 5 or 1) and unknown fields are refused by
name, as OpenAI's API does, so a misspelt parameter never passes silently.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# roles the chat templates of this project know; "developer" is OpenAI's newer name for "system"
ROLES = ("system", "developer", "user", "assistant")
MAX_STOP_SEQUENCES = 4
MAX_USER_ID_CHARS = 128


class ApiError(Exception):
    """A request the server refuses: the HTTP status and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TextPart(Strict):
    """One part of a message's content in OpenAI's list form; only text is understood."""
    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    role: Literal[ROLES]  # type: ignore[valid-type]
    content: str | list[TextPart]
    name: str | None = None  # accepted for compatibility; chat templates here have no place for it

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)

    def for_template(self) -> dict[str, str]:
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class ChatCompletionRequest(Strict):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    model: str | None = None  # None or "auto": routed; "champion", "challenger" or a served version: that model
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None  # OpenAI's newer name for max_tokens
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None  # 0: greedy
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    n: Annotated[int, Field(ge=1)] | None = None
    stream: bool | None = None
    stream_options: dict | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = None
    user: Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_CHARS)] | None = None
    safety_identifier: Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_CHARS)] | None = None

    @field_validator("messages")
    @classmethod
    def _has_a_user_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(message.role == "user" for message in messages):
            raise ValueError("no message has the role 'user'; add the user's turn")
        return messages

    def token_limit(self) -> int | None:
        if self.max_tokens is not None and self.max_completion_tokens is not None \
                and self.max_tokens != self.max_completion_tokens:
            raise ApiError(400, f"max_tokens ({self.max_tokens}) and max_completion_tokens ({self.max_completion_tokens}) "
                                "differ; send one of them", param="max_tokens")
        return self.max_tokens if self.max_tokens is not None else self.max_completion_tokens

    def stop_sequences(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [stop for stop in stops if stop]

    def template_messages(self) -> list[dict[str, str]]:
        return [message.for_template() for message in self.messages]


class FeedbackRequest(Strict):
    response_id: Annotated[str, Field(min_length=1, max_length=64)]
    rating: Annotated[int, Field(ge=1, le=5)]
    correction: str | None = None  # the answer the user would have wanted
    user: Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_CHARS)] | None = None
