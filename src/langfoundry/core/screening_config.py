"""params.yaml's clean.screening: the optional toxicity classifier (blocklists are files, not parameters).

The blocklists themselves live under paths.screening (data/screening/<tag>.txt or <tag>/<list>.txt);
see langfoundry.clean.screening.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from langfoundry.core.strict_yaml import Strict

SCREENING_KEY_ENV = "LANGFOUNDRY_SCREENING_API_KEY"


class ScreeningHttpParams(Strict):
    """Where the http classifier sends texts, and how it reads the scores back."""
    url: str | None = None  # openai: the API base (…/v1, /moderations is added); json: the endpoint itself
    api: Literal["openai", "json"] = "openai"  # openai: a moderation endpoint; json: {texts, lang} -> {scores}
    model: str | None = None  # sent as "model" to an openai endpoint (e.g. omni-moderation-latest)
    batch_size: int = Field(64, ge=1)  # texts per request
    timeout_s: float = Field(60.0, gt=0.0)


class ScreeningParams(Strict):
    classifier: Literal["http"] | None = None  # null: blocklists only
    max_toxicity: float = Field(0.5, ge=0.0, le=1.0)  # a side scoring at or above it is rejected as toxicity
    http: ScreeningHttpParams = ScreeningHttpParams()

    @model_validator(mode="after")
    def _http_needs_a_url(self) -> ScreeningParams:
        if self.classifier == "http" and not self.http.url:
            raise ValueError("clean.screening.classifier is http but clean.screening.http.url is not set; "
                             "give the endpoint's URL (e.g. http://127.0.0.1:8000/v1)")
        return self
