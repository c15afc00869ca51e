"""params.yaml's synthesize section: variations of seed examples asked of an OpenAI-compatible endpoint.

langfoundry.core.config puts it on Params as `synthesize`.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from langfoundry.core.strict_yaml import Strict

SYNTH_KEY_ENV = "LANGFOUNDRY_SYNTH_API_KEY"  # the endpoint's key, never in params.yaml


class SynthesizeParams(Strict):
    """Seeds of the chosen sources, N variations per register; each variation is pending until reviewed."""
    enabled: bool = False  # off: the stage writes empty outputs and asks nothing
    sources: list[str] = []  # seed source ids (sources.yaml)
    max_seeds: int = Field(50, ge=1)  # per source; chosen by a hash of seed and record id, so stable as data grows
    registers: list[str] = ["formal", "business", "casual"]  # one template each: <templates>/<template_lang>/<register>.txt
    variations: int = Field(3, ge=1, le=20)  # asked per seed and register
    endpoint: str = Field("http://127.0.0.1:8000/v1", pattern=r"^https?://")  # langfoundry serve by default
    model: str = "auto"  # serve routes "auto"; a hosted endpoint needs its model name
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    seed: int = 13  # sent with each request, for endpoints that honour it
    max_tokens: int = Field(128, ge=1, le=8192)  # at most what the endpoint allows (langfoundry serve: serve.max_new_tokens)
    timeout_s: float = Field(60.0, gt=0.0)
    retries: int = Field(2, ge=0, le=10)  # more tries after a failed connection, a timeout or an HTTP 5xx
    max_similarity: float = Field(0.9, gt=0.0, le=1.0)  # a variation this close to its seed (character ratio) is dropped
    require_review: bool = True  # format: only accepted variations train (false: pending ones too)
    max_share: float = Field(0.3, ge=0.0, le=1.0)  # format: the largest share of train that may be synthetic

    @field_validator("registers")
    @classmethod
    def _register_names(cls, registers: list[str]) -> list[str]:
        for name in registers:
            if not name or not name.replace("_", "").replace("-", "").isalnum() or not name.islower():
                raise ValueError(f"register {name!r} must be a lower-case file name such as 'formal'")
        if len(set(registers)) != len(registers):
            raise ValueError("a register is listed twice")
        return registers
