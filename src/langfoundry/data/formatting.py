"""The format stage's whole job on a split table: which records may train, their examples, the train mix.

In order: synthetic records that may not train leave (`synthetic`), every record gives its weighted
examples (`chat`), train is resampled to format.mix (`mix`), the synthetic share of train is capped, and
the shares obtained are measured on the train split as written.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from langfoundry.core.config import FormatParams
from langfoundry.data.chat import FormatResult, format_records
from langfoundry.data.mix import mix_train, obtained_shares
from langfoundry.data.synthetic import cap_synthetic, select_synthetic, synthetic_metrics


def format_dataset(table: pa.Table, params: FormatParams, seed: int, where: str = "data/interim/split.parquet",
                   categories: Mapping[str, str | None] | None = None, require_review: bool = True,
                   max_synthetic_share: float = 0.3) -> FormatResult:
    """Split records -> chat examples per split; categories maps source id -> sources.yaml category."""
    table, synthetic_ids, counts = select_synthetic(table, require_review, where)
    result = format_records(table, params, seed, where)
    train, mix_metrics = mix_train(result.examples["train"], params.mix, seed, categories)
    train, capped = cap_synthetic(train, synthetic_ids, max_synthetic_share, seed)
    result.examples["train"] = train
    result.extra.update(mix_metrics)
    result.extra.update(obtained_shares(train, params.mix, categories))
    result.extra.update(synthetic_metrics(counts, train, synthetic_ids, capped, max_synthetic_share, require_review))
    return result
