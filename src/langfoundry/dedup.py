"""Exact and near-duplicate removal that keeps the first occurrence.

Order: rows are visited by source id, then origin file, then origin line or record number (as a
number, so line 9 comes before line 10), then origin and id; the first row of each duplicate set
in that order is kept and every later one is rejected with the kept row's id as detail.

Exact duplicates share a key over (kind, lang, text, pivot_lang, pivot_text), and for
conversation and instruction rows the text inside meta, each text compared by
`normalize.comparison_key` (casefolded, punctuation and symbols as spaces, combining marks kept).
The key is stored as a 16-byte BLAKE2b digest so millions of rows fit in little memory.

Near duplicates: within one (kind, lang, pivot_lang), MinHash signatures over character shingles
of the same key, LSH banding to find candidate pairs, and the exact Jaccard similarity of the
two shingle sets to confirm a candidate (>= threshold). A row is removed when it is near an
earlier row that was kept. Keys with fewer than min_shingles character windows are only
exact-deduplicated: on a few shingles one shared syllable decides the Jaccard, and two different
dictionary words such as ("adem", "sejuk") and ("adhem", "dingin") must both stay.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash, MinHashLSH

from .config import DedupParams
from .normalize import comparison_key, meta_texts
from .records import REJECT_SCHEMA, RECORD_COLUMNS, make_reject

FIELD_SEPARATOR = "\x1f"
META_KEY_KINDS = frozenset({"conversation", "instruction"})  # their content lives in meta
MINHASH_SEED = 1
# Candidates are confirmed with the exact Jaccard, so a false positive costs only a comparison:
# weigh misses higher than datasketch's default (0.5, 0.5) does.
LSH_WEIGHTS = (0.1, 0.9)
SHINGLE_CHUNK = 8192  # shingles per signature step: (num_perm x chunk) uint32 stays ~4 MB, in cache


# --- order and keys ------------------------------------------------------------------------------


def keep_order(table: pa.Table) -> np.ndarray:
    """Row indices in the order that decides which duplicate is kept (see module docstring)."""
    parts = pc.extract_regex(table.column("origin"), r"^(?P<file>.*?)(?:[:#](?P<number>\d{1,18}))?$")
    keys = pa.table({
        "source": table.column("source"),
        "file": pc.struct_field(parts, "file"),
        "number": pc.cast(pc.struct_field(parts, "number"), pa.int64()),
        "origin": table.column("origin"),
        "id": table.column("id"),
    })
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending", "at_start") for name in keys.column_names])
    return order.to_numpy()


def content_keys(table: pa.Table) -> list[str]:
    """Per row: the compared form of text, pivot_text and (conversation, instruction) meta text."""
    keys = []
    for kind, text, pivot, meta in zip(*(table.column(name).to_pylist() for name in ("kind", "text", "pivot_text", "meta"))):
        key = comparison_key(text) + FIELD_SEPARATOR + comparison_key(pivot or "")
        if kind in META_KEY_KINDS and meta not in (None, "", "{}"):
            key += "".join(FIELD_SEPARATOR + comparison_key(part) for part in meta_texts(json.loads(meta), kind))
        keys.append(key)
    return keys


def exact_key_digests(table: pa.Table, contents: list[str]) -> np.ndarray:
    """16-byte digests of (kind, lang, pivot_lang, content) as one fixed-width numpy array."""
    columns = (table.column(name).to_pylist() for name in ("kind", "lang", "pivot_lang"))
    digests = b"".join(
        hashlib.blake2b(FIELD_SEPARATOR.join((kind, lang, pivot_lang or "", content)).encode("utf-8"), digest_size=16).digest()
        for kind, lang, pivot_lang, content in zip(*columns, contents))
    return np.frombuffer(digests, dtype=np.dtype((np.void, 16)))


def first_occurrences(digests: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row with the same digest (itself if it is the first)."""
    if len(digests) == 0:
        return np.zeros(0, dtype=np.int64)
    # return_index gives the first occurrence: np.unique sorts stably when asked for it
    _, first, inverse = np.unique(digests, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


# --- MinHash ----------------------------------------------------------------------------------------
# datasketch computes one MinHash per Python call (~80 us for a 180-shingle row here, and its LSH
# inserts one sketch at a time); the functions below compute the same "affine32" signatures for a
# whole batch with numpy (a test checks them against datasketch.MinHash) and band them in numpy.

_WINDOW_MULTIPLIER = np.uint32(0x9E3779B1)  # odd, so the window hash mixes every code point


def shingle_hashes(texts: list[str], width: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every `width`-character window of each text, and per-text offsets into them.

    A text shorter than `width` gives one shingle: itself. The hash is a polynomial over code
    points mod 2**32; it stands in for datasketch's default hash of the shingle's bytes.
    """
    lengths = np.fromiter((len(text) for text in texts), dtype=np.int64, count=len(texts))
    counts = np.where(lengths >= width, lengths - width + 1, np.minimum(lengths, 1))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    # Texts back to back, a short one padded to `width` so it has one whole window; the last
    # width - 1 windows of each text run into the next text and are dropped.
    padded = "".join(text.ljust(width, "\x00") for text in texts if text)
    points = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32)
    windows = max(len(points) - width + 1, 0)
    window = np.zeros(windows, dtype=np.uint32)
    for j in range(width):
        window = window * _WINDOW_MULTIPLIER + points[j:j + windows]
    ends = np.cumsum(np.maximum(lengths[lengths > 0], width))
    crossing = (ends[:, None] - width + 1 + np.arange(width - 1)).reshape(-1)
    keep = np.ones(windows, dtype=bool)
    keep[crossing[crossing < windows]] = False
    return window[keep], offsets


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix of datasketch's affine32 scheme."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def minhash_signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int = MINHASH_SEED) -> np.ndarray:
    """(rows, num_perm) uint32 signatures, equal to datasketch.MinHash(num_perm, seed) updated
    with each row's hashes (hashfunc=int). Every row needs at least one hash."""
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    a, b = a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]
    mixed = _fmix32(hashes.astype(np.uint32))
    rows = len(offsets) - 1
    signatures = np.empty((rows, num_perm), dtype=np.uint32)
    # cut the shingles into chunks on row boundaries, about SHINGLE_CHUNK shingles each
    cuts = np.unique(np.searchsorted(offsets, np.arange(0, offsets[-1], SHINGLE_CHUNK), side="right") - 1)
    cuts = np.append(cuts, rows)
    for first_row, end_row in zip(cuts[:-1], cuts[1:]):
        low, high = offsets[first_row], offsets[end_row]
        permuted = a * mixed[low:high]  # (num_perm, shingles); uint32 wraps, which is the mod 2**32
        permuted += b
        signatures[first_row:end_row] = np.minimum.reduceat(permuted, offsets[first_row:end_row] - low, axis=1).T
    return signatures


def band_keys(signatures: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
    """(rows, bands) uint64: each band of a signature folded into one number (FNV-1a style).
    Unequal bands that fold alike only add a candidate, which the exact check then drops."""
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for band in range(bands):
        key = np.full(len(signatures), 0xCBF29CE484222325, dtype=np.uint64)
        for column in range(band * rows_per_band, (band + 1) * rows_per_band):
            key = (key ^ signatures[:, column].astype(np.uint64)) * np.uint64(0x100000001B3)
        keys[:, band] = key
    return keys


def lsh_band_keys(texts: list[str], shingle_chars: int, num_perm: int, bands: int, rows_per_band: int,
                  chunk_rows: int = 2048) -> np.ndarray:
    """Band keys of many texts, computed in row chunks so memory stays bounded (signatures are
    dropped once banded); numpy releases the GIL, so two threads use two cores."""
    def chunk_keys(start: int) -> np.ndarray:
        hashes, offsets = shingle_hashes(texts[start:start + chunk_rows], shingle_chars)
        return band_keys(minhash_signatures(hashes, offsets, num_perm), bands, rows_per_band)

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(chunk_keys, range(0, len(texts), chunk_rows)))
    return np.concatenate(parts) if parts else np.zeros((0, bands), dtype=np.uint64)


def shingle_set(text: str, width: int) -> set[str]:
    return {text[i:i + width] for i in range(len(text) - width + 1)} or {text}


def jaccard(left: set[str], right: set[str]) -> float:
    return len(left & right) / len(left | right)


def near_duplicates(contents: list[str], params: DedupParams) -> np.ndarray:
    """For rows in keep order (one kind/lang/pivot_lang), the index of the earlier kept row each
    one nearly repeats, or -1. Rows too short for near-dedup are never removed here."""
    near = params.near
    result = np.full(len(contents), -1, dtype=np.int64)
    windows = np.fromiter((len(text) - near.shingle_chars + 1 for text in contents), dtype=np.int64, count=len(contents))
    eligible = np.flatnonzero(windows >= near.min_shingles)
    if len(eligible) < 2:
        return result
    texts = [contents[i] for i in eligible]
    lsh = MinHashLSH(threshold=near.threshold, num_perm=near.num_perm, weights=LSH_WEIGHTS)  # for its (b, r) choice
    keys = lsh_band_keys(texts, near.shingle_chars, near.num_perm, lsh.b, lsh.r)
    buckets = np.empty(keys.shape, dtype=np.int64)
    shared = np.zeros(keys.shape, dtype=bool)
    for band in range(lsh.b):
        _, inverse, sizes = np.unique(keys[:, band], return_inverse=True, return_counts=True)
        buckets[:, band] = inverse.reshape(-1)
        shared[:, band] = sizes[inverse.reshape(-1)] > 1
    # Only rows that share a bucket with another row need the sequential keep-first pass.
    kept_in_bucket: dict[tuple[int, int], list[int]] = {}
    shingles: dict[int, set[str]] = {}
    for position in np.flatnonzero(shared.any(axis=1)):
        its_buckets = [(band, int(buckets[position, band])) for band in np.flatnonzero(shared[position])]
        candidates = sorted({kept for bucket in its_buckets for kept in kept_in_bucket.get(bucket, ())})
        mine = shingles.setdefault(position, shingle_set(texts[position], near.shingle_chars))
        match = next((kept for kept in candidates
                      if jaccard(mine, shingles[kept]) >= near.threshold), None)
        if match is None:
            for bucket in its_buckets:
                kept_in_bucket.setdefault(bucket, []).append(position)
        else:
            result[eligible[position]] = eligible[match]
            del shingles[position]
    return result


# --- the stage's work ---------------------------------------------------------------------------------


@dataclass
class DedupResult:
    kept: pa.Table
    rejects: pa.Table
    counts: Counter  # ("in"|"kept"|"exact_duplicate"|"near_duplicate", lang)


def dedup_table(table: pa.Table, params: DedupParams) -> DedupResult:
    """Remove exact, then near duplicates; rejects name the kept row's id."""
    table = table.take(pa.array(keep_order(table), type=pa.int64()))
    contents = content_keys(table)
    first = first_occurrences(exact_key_digests(table, contents))
    duplicate_of = np.where(first == np.arange(len(first)), -1, first)
    reasons = np.where(duplicate_of >= 0, "exact_duplicate", "").astype(object)
    if params.near.enabled:
        groups: dict[tuple, list[int]] = {}
        columns = (table.column(name).to_pylist() for name in ("kind", "lang", "pivot_lang"))
        for row, group in enumerate(zip(*columns)):
            if duplicate_of[row] < 0:
                groups.setdefault(group, []).append(row)
        for group in sorted(groups, key=lambda key: tuple(part or "" for part in key)):
            rows = np.array(groups[group], dtype=np.int64)
            near = near_duplicates([contents[row] for row in rows], params)
            found = near >= 0
            duplicate_of[rows[found]] = rows[near[found]]
            reasons[rows[found]] = "near_duplicate"

    ids = table.column("id").to_pylist()
    langs = table.column("lang").to_pylist()
    removed = np.flatnonzero(duplicate_of >= 0)
    counts: Counter = Counter(("in", lang) for lang in langs)
    counts.update((reasons[row], langs[row]) for row in removed)
    kept_rows = np.flatnonzero(duplicate_of < 0)
    counts.update(("kept", langs[row]) for row in kept_rows)
    rejected = table.take(pa.array(removed, type=pa.int64())).to_pylist()
    rejects = pa.Table.from_pylist([
        make_reject(source=row["source"], origin=row["origin"], stage="dedup", reason=reasons[index],
                    detail=ids[duplicate_of[index]], id=row["id"], lang=row["lang"],
                    raw={name: row[name] for name in RECORD_COLUMNS})
        for index, row in zip(removed, rejected)
    ], schema=REJECT_SCHEMA)
    return DedupResult(table.take(pa.array(kept_rows, type=pa.int64())), rejects, counts)


def dedup_metrics(counts: Counter) -> dict[str, Any]:
    names = ("in", "exact_duplicate", "near_duplicate", "kept")
    rows = {name: sum(n for key, n in counts.items() if key[0] == name) for name in names}
    langs = sorted({key[1] for key in counts})
    return {
        "rows": {"in": rows["in"], "exact_removed": rows["exact_duplicate"], "near_removed": rows["near_duplicate"],
                 "kept": rows["kept"]},
        "lang": {lang: {"in": counts[("in", lang)], "exact_removed": counts[("exact_duplicate", lang)],
                        "near_removed": counts[("near_duplicate", lang)], "kept": counts[("kept", lang)]}
                 for lang in langs},
    }
