"""Train/val/test assignment by hashing a grouping key.

The group of a row:
- a group the row declares (meta "group"): a source's `group_by` column (declared_group) or, for a
  synthetic variation, its seed's group, so both land on the same side;
- dictionary: its headword (meta "headword" if ingest recorded one, else text) in comparison
  form (casefolded, punctuation ignored), so "Adem", "adem" and "adem!" share a split;
- any kind whose meta names a "document" or "doc_id": that document within its source, so the
  sentences of one text stay together;
- otherwise the text in comparison form, so a repeated sentence cannot sit on both sides.

BLAKE2b of (salt, group) read as a number in [0, 1) picks the split: below test_fraction ->
test, below test_fraction + val_fraction -> val, else train. The split depends on nothing but
the group and the salt, so adding rows never moves an existing one.

Labelled rows (a classification set) are stratified instead: within each (task, label), groups are
ranked by that same number and the first take test_fraction of the rows, the next val_fraction, the
rest train, so every label of three rows or more is in all three splits at its share. The price:
a new row of a label can move that label's rows at the boundary, as in any stratified split.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.core.config import SplitParams
from langfoundry.core.normalize import comparison_key

SPLITS = ("train", "val", "test")
DOCUMENT_KEYS = ("document", "doc_id")


def declared_group(source: str, value: str) -> str:
    """The group of a row whose source declares `group_by`: that column's value, within its source."""
    return f"group:{source}:{value}"


def group_key(kind: str, source: str, text: str, meta: str | None) -> str:
    parsed: dict[str, Any] = {}
    if meta and any(f'"{key}"' in meta for key in ("group", "headword", *DOCUMENT_KEYS)):
        parsed = json.loads(meta)
    declared = parsed.get("group")
    if isinstance(declared, str) and declared:
        return declared
    video = parsed.get("document")  # every entry read off one video's frames stays with that video (media/video.py)
    if kind == "dictionary" and not (isinstance(video, str) and video.startswith("video:")):
        headword = parsed.get("headword")
        return "text:" + comparison_key(headword if isinstance(headword, str) and headword else text)
    document = next((parsed[key] for key in DOCUMENT_KEYS if parsed.get(key) not in (None, "")), None)
    if document is not None:
        return f"doc:{source}:{document}"
    return "text:" + comparison_key(text)


def group_fraction(group: str, salt: str) -> float:
    """A stable number in [0, 1) for a group (hashlib, not hash(): that changes per process)."""
    digest = hashlib.blake2b(f"{salt}\x1f{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_of(group: str, params: SplitParams) -> str:
    fraction = group_fraction(group, params.salt)
    if fraction < params.test_fraction:
        return "test"
    if fraction < params.test_fraction + params.val_fraction:
        return "val"
    return "train"


def stratum_targets(rows: int, params: SplitParams) -> tuple[int, int]:
    """Rows of one label that go to test and to val: their shares, at least one each from three rows on."""
    test, val = round(rows * params.test_fraction), round(rows * params.val_fraction)
    if rows >= 3:
        test = max(test, 1) if params.test_fraction > 0 else 0
        val = max(val, 1) if params.val_fraction > 0 else 0
    return test, val


def stratified_splits(groups: list[str], kinds: list[str], metas: list[str | None], params: SplitParams) -> dict[str, str]:
    """The split of each labelled row's group, chosen per (task, label) so each label keeps its shares."""
    strata: dict[tuple[str, str], Counter] = {}
    for group, kind, meta in zip(groups, kinds, metas):
        if kind == "labelled":
            parsed = json.loads(meta or "{}")
            strata.setdefault((str(parsed.get("task")), str(parsed.get("label"))), Counter())[group] += 1
    assigned: dict[str, str] = {}
    for stratum in sorted(strata):
        sizes = strata[stratum]
        test, val = stratum_targets(sum(sizes.values()), params)
        # a text of two labels (or two tasks) stays where its first stratum put it, and counts toward this one's shares
        taken = Counter({"test": 0, "val": 0})
        for group in sizes:
            if group in assigned:
                taken[assigned[group]] += sizes[group]
        for group in sorted((name for name in sizes if name not in assigned),
                            key=lambda name: (group_fraction(name, params.salt), name)):
            split = "test" if taken["test"] < test else "val" if taken["val"] < val else "train"
            assigned[group] = split
            taken[split] += sizes[group]
    return assigned


def assign_splits(table: pa.Table, params: SplitParams) -> pa.Table:
    """The table with `group` and `split` columns appended."""
    kinds, sources, texts, metas = (table.column(name).to_pylist() for name in ("kind", "source", "text", "meta"))
    groups = [group_key(*row) for row in zip(kinds, sources, texts, metas)]
    assigned: dict[str, str] = stratified_splits(groups, kinds, metas, params) if "labelled" in kinds else {}
    splits = [assigned[group] if group in assigned else assigned.setdefault(group, split_of(group, params))
              for group in groups]
    return (table.append_column(pa.field("group", pa.string(), nullable=False), pa.array(groups, pa.string()))
                 .append_column(pa.field("split", pa.string(), nullable=False), pa.array(splits, pa.string())))


def split_metrics(table: pa.Table) -> dict[str, Any]:
    """Rows and groups per split, rows per language and split, and groups found in several splits."""
    def counts(keys: list[str]) -> list[dict[str, Any]]:
        return table.group_by(keys, use_threads=False).aggregate([([], "count_all")]).to_pylist()

    rows = Counter({row["split"]: row["count_all"] for row in counts(["split"])})
    group_splits = table.group_by(["group", "split"], use_threads=False).aggregate([])
    groups = Counter(group_splits.column("split").to_pylist())
    splits_per_group = group_splits.group_by("group", use_threads=False).aggregate([([], "count_all")])
    by_lang = {(row["lang"], row["split"]): row["count_all"] for row in counts(["lang", "split"])}
    langs = sorted({lang for lang, _ in by_lang})
    return {
        "rows": {split: rows[split] for split in SPLITS} | {"total": table.num_rows},
        "groups": {split: groups[split] for split in SPLITS} | {"total": splits_per_group.num_rows},
        "groups_in_several_splits": int(pc.sum(pc.greater(splits_per_group.column("count_all"), 1)).as_py() or 0),
        "lang": {lang: {split: by_lang.get((lang, split), 0) for split in SPLITS} for lang in langs},
    }
