"""format.mix in params.yaml: the share of training examples per source or per category."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from langfoundry.core.strict_yaml import Strict


class MixParams(Strict):
    by: Literal["source", "category"] = "source"  # category: the source's `category` in sources.yaml
    shares: dict[str, float] = {}  # name -> share of the train examples; empty: no mixing
    max_repeats: int = Field(3, ge=1)  # a small group is repeated at most this many times to reach its share

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> MixParams:
        for name, share in self.shares.items():
            if share < 0:
                raise ValueError(f"shares.{name} is {share}; shares must be 0 or more")
        total = sum(self.shares.values())
        if self.shares and abs(total - 1) > 1e-6:
            raise ValueError(f"shares sum to {total:g}; make them sum to 1 (for example domain: 0.8, general: 0.2)")
        return self
