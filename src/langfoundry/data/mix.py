"""format.mix: resample the train split so each source (or category) gets the share of examples asked for.

The train size stays what the task weights made it, so a mix changes what the model sees, not how long it
trains. A group too small for its share is repeated at most `max_repeats` times; what it cannot fill goes
to the other groups in their own proportions, and the log and metrics say so. Which examples are kept or
repeated comes from their ids hashed with the seed, never from the input order, so the same inputs give
the same bytes. Val and test are never resampled: their scores stay comparable across mixes.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langfoundry.core.errors import UserError
from langfoundry.core.format_config import MixParams
from langfoundry.data.chat import hash_unit
from langfoundry.data.synth_records import SYNTHETIC_SUFFIX

log = logging.getLogger(__name__)

Example = dict[str, Any]
PLURAL = {"source": "sources", "category": "categories"}


def group_function(mix: MixParams, categories: Mapping[str, str | None] | None) -> Callable[[Example], str]:
    """example -> its group name: its source, or its source's category from sources.yaml."""
    if mix.by == "source":
        return lambda example: example["source"]
    if categories is None:
        raise UserError("params.yaml: format.mix.by is category but no sources.yaml categories were given; "
                        "run the format stage from the repository root (it reads paths.sources) or set format.mix.by: source")

    def category(example: Example) -> str:
        name = categories.get(example["source"])
        if name is None and example["source"].endswith(SYNTHETIC_SUFFIX):  # variations: their seed source's category
            name = categories.get(example["source"].removesuffix(SYNTHETIC_SUFFIX))
        if not name:
            raise UserError(f"sources.yaml: source {example['source']!r} has no category, so format.mix.by: category "
                            f"cannot place its examples; give it a category or set format.mix.by: source")
        return name

    return category


def known_names(mix: MixParams, train: Sequence[Example], group_of: Callable[[Example], str],
                categories: Mapping[str, str | None] | None) -> set[str]:
    """The names format.mix.shares may use: groups in train, plus sources (or categories) of sources.yaml."""
    names = {group_of(example) for example in train}
    if categories is not None:
        names |= set(categories) if mix.by == "source" else {name for name in categories.values() if name}
    return names


def targets(sizes: Mapping[str, int], shares: Mapping[str, float], total: int, max_repeats: int) -> dict[str, int]:
    """Examples per group: `total` split by share, no group above max_repeats x its size; a capped group's
    shortfall goes to the others in proportion to their shares (so the total may only shrink when all are capped)."""
    counts: dict[str, int] = {name: 0 for name in shares}
    active = {name: share for name, share in shares.items() if share > 0 and sizes.get(name, 0) > 0}
    remaining = total
    while active:
        weight = sum(active.values())
        capped = [name for name, share in active.items() if share / weight * remaining > max_repeats * sizes[name]]
        if not capped:
            break
        for name in capped:
            counts[name] = max_repeats * sizes[name]
            remaining -= counts[name]
            del active[name]
    if active:  # largest remainders, ties by name, so the counts sum to exactly `remaining`
        weight = sum(active.values())
        exact = {name: share / weight * remaining for name, share in active.items()}
        for name, value in exact.items():
            counts[name] = math.floor(value)
        left = remaining - sum(counts[name] for name in active)
        for name in sorted(active, key=lambda name: (-(exact[name] - math.floor(exact[name])), name))[:left]:
            counts[name] += 1
    return counts


def resample(entries: Sequence[Example], count: int, seed: int, salt: str) -> list[Example]:
    """`count` entries from a group: whole passes over it, then a hash-chosen part of one more pass.
    An entry is (example id, which repeat), so examples a task weight repeated are drawn one by one."""
    seen: Counter = Counter()
    units = []
    for example in entries:
        units.append((hash_unit(seed, f"{salt}\x1f{example['id']}\x1f{seen[example['id']]}"), example["id"], example))
        seen[example["id"]] += 1
    units.sort(key=lambda unit: (unit[0], unit[1]))
    passes, part = divmod(count, len(units)) if units else (0, 0)
    return [unit[2] for unit in units] * passes + [unit[2] for unit in units[:part]]


def mix_train(train: Sequence[Example], mix: MixParams, seed: int,
              categories: Mapping[str, str | None] | None = None) -> tuple[list[Example], dict[str, Any]]:
    """(train resampled to format.mix.shares, sorted by id; flat metrics). Off (unchanged) without shares."""
    if not mix.shares:
        return list(train), {}
    group_of = group_function(mix, categories)
    names = known_names(mix, train, group_of, categories)
    unknown = sorted(set(mix.shares) - names)
    if unknown:
        raise UserError(f"params.yaml: format.mix.shares.{unknown[0]} names no {mix.by}; the {PLURAL[mix.by]} are: "
                        f"{', '.join(sorted(names)) or '(none)'}")
    groups: dict[str, list[Example]] = {}
    for example in train:
        groups.setdefault(group_of(example), []).append(example)
    sizes = {name: len(entries) for name, entries in groups.items()}
    counts = targets(sizes, mix.shares, len(train), mix.max_repeats)
    metrics: dict[str, Any] = {"mix.max_repeats": mix.max_repeats}
    mixed: list[Example] = []
    for name in sorted(set(groups) | set(mix.shares)):
        size, count, share = sizes.get(name, 0), counts.get(name, 0), mix.shares.get(name, 0.0)
        metrics.update({f"mix.asked.{name}": share, f"mix.examples_before.{name}": size, f"mix.examples.{name}": count})
        if name not in mix.shares:
            log.warning("format.mix: %s %r has no share in format.mix.shares; its %d train examples are left out",
                        mix.by, name, size)
        elif share > 0 and size == 0:
            log.warning("format.mix: %s %r has no train examples, so its share %g stays empty", mix.by, name, share)
        elif share > 0 and count == mix.max_repeats * size and count < share * len(train):
            log.warning("format.mix: %s %r has %d train examples; its share %g needs about %d, more than "
                        "format.mix.max_repeats (%d) repeats give, so it gets %d (raise max_repeats or lower its share)",
                        mix.by, name, size, share, round(share * len(train)), mix.max_repeats, count)
        mixed += resample(groups.get(name, []), count, seed, f"mix\x1f{name}")
    mixed.sort(key=lambda example: example["id"])  # copies are identical, so ties need no tie-break
    return mixed, metrics


def obtained_shares(train: Sequence[Example], mix: MixParams,
                    categories: Mapping[str, str | None] | None = None) -> dict[str, float]:
    """mix.obtained.<group>: the share of each group in the final train split (after every other step)."""
    if not mix.shares:
        return {}
    group_of = group_function(mix, categories)
    counts = Counter(group_of(example) for example in train)
    return {f"mix.obtained.{name}": round(counts.get(name, 0) / len(train), 6) if train else 0.0
            for name in sorted(set(counts) | set(mix.shares))}
