"""Exact and near-duplicate removal that keeps the first occurrence.

Order: rows are visited by source id, then origin file, then origin line or record number (as a
number, so line 9 comes before line 10), then id and origin; the first row of each duplicate set
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

A file (dedup_parquet) is read in batches over worker processes, a pass at a time (a small one is
read once and kept): the first pass keeps per row only its digest, its place in the keep order
(about 40 bytes) and, for near duplicates, its LSH band keys, which spill to a temporary file
beside the output (one contiguous array per band, read back a band at a time). The decisions then
need only those arrays, the texts of the few rows that share an LSH bucket (a second pass) and the
ids of the kept rows that rejects name (a pass over the id column); the last pass writes the kept
rows and the rejects in the input's order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.clean import columnar
from langfoundry.core.config import DedupParams
from langfoundry.core.normalize import _LATIN1_KEY_TABLE, comparison_key, meta_texts
from langfoundry.core.records import REJECT_SCHEMA, RECORD_COLUMNS, make_reject
from langfoundry.core.streaming import SortedParquetWriter, open_parquet, ordered_map, worker_count

log = logging.getLogger(__name__)

FIELD_SEPARATOR = "\x1f"
META_KEY_KINDS = frozenset({"conversation", "instruction"})  # their content lives in meta
MINHASH_SEED = 1
# Candidates are confirmed with the exact Jaccard, so a false positive costs only a comparison:
# weigh misses higher than datasketch's default (0.5, 0.5) does.
LSH_WEIGHTS = (0.1, 0.9)
SHINGLE_CHUNK = 8192  # shingles per signature step: (num_perm x chunk) uint32 stays ~4 MB, in cache
DEDUP_BATCH_ROWS = 20_000
_ORIGIN = r"^(?P<file>.*?)(?:[:#](?P<number>\d{1,18}))?$"


# --- order and keys ------------------------------------------------------------------------------


def keep_order(table: pa.Table) -> np.ndarray:
    """Row indices in the order that decides which duplicate is kept (see module docstring)."""
    parts = pc.extract_regex(table.column("origin"), _ORIGIN)
    keys = pa.table({
        "source": table.column("source"),
        "file": pc.struct_field(parts, "file"),
        "number": pc.cast(pc.struct_field(parts, "number"), pa.int64()),
        "id": table.column("id"),
        "origin": table.column("origin"),
    })
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending", "at_start") for name in keys.column_names])
    return order.to_numpy()


def lsh_shape(params: DedupParams) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for the threshold and weights."""
    from datasketch import MinHashLSH  # imported here: it pulls in scipy, which start-up need not pay for

    lsh = MinHashLSH(threshold=params.near.threshold, num_perm=params.near.num_perm, weights=LSH_WEIGHTS)
    return lsh.b, lsh.r


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _latin1_keys(array: pa.Array, rows: np.ndarray) -> dict[int, bytes]:
    """comparison_key (as UTF-8) of the given rows' texts, which must be Latin-1 without ß or µ
    (whose casefold leaves Latin-1), computed for all of them at once."""
    if len(rows) == 0:
        return {}
    texts = columnar.Latin1Texts(array.take(pa.array(rows, type=pa.int64())))
    buffer, offsets = columnar.to_utf8(*columnar.squeezed(texts, np.frombuffer(_LATIN1_KEY_TABLE, dtype=np.uint8)))
    data = buffer.tobytes()
    return {int(row): data[start:end] for row, start, end in zip(rows, offsets[:-1], offsets[1:])}


_LATIN1_FOLDED_ALIKE = r"^[\x{00}-\x{B4}\x{B6}-\x{DE}\x{E0}-\x{FF}]*$"  # Latin-1 but ß and µ


def content_key_bytes(table: pa.Table) -> list[bytes]:
    """Per row, UTF-8: the compared form of text, pivot_text and (conversation, instruction) meta text."""
    kinds = table.column("kind").to_pylist()
    separator = FIELD_SEPARATOR.encode()
    sides = []
    for name in ("text", "pivot_text"):
        array = _column(table, name)
        fast = np.asarray(pc.fill_null(pc.match_substring_regex(array, _LATIN1_FOLDED_ALIKE), False)
                          .to_numpy(zero_copy_only=False), dtype=bool)
        keys = _latin1_keys(array, np.flatnonzero(fast))
        others = np.flatnonzero(~fast)
        for row, text in zip(others, array.take(pa.array(others, type=pa.int64())).to_pylist()):
            keys[int(row)] = comparison_key(text or "").encode("utf-8")
        sides.append(keys)
    meta_rows = [row for row, kind in enumerate(kinds) if kind in META_KEY_KINDS]
    metas = dict(zip(meta_rows, _column(table, "meta").take(pa.array(meta_rows, type=pa.int64())).to_pylist()))
    keys = [sides[0][row] + separator + sides[1][row] for row in range(table.num_rows)]
    for row, meta in metas.items():
        if meta not in (None, "", "{}"):
            keys[row] += "".join(FIELD_SEPARATOR + comparison_key(part)
                                 for part in meta_texts(json.loads(meta), kinds[row])).encode("utf-8")
    return keys


def content_keys(table: pa.Table) -> list[str]:
    """Per row: the compared form of text, pivot_text and (conversation, instruction) meta text."""
    return [key.decode("utf-8") for key in content_key_bytes(table)]


def exact_key_digests(table: pa.Table, contents: list[bytes]) -> np.ndarray:
    """(rows, 2) uint64: 16-byte BLAKE2b digests of (kind, lang, pivot_lang, content)."""
    labels, codes = _labels(table, ("kind", "lang", "pivot_lang"))
    prefixes = [FIELD_SEPARATOR.join((kind, lang, pivot_lang or "", "")).encode("utf-8") for kind, lang, pivot_lang in labels]
    blake2b = hashlib.blake2b
    digests = b"".join(blake2b(prefixes[code] + content, digest_size=16).digest()
                       for code, content in zip(codes.tolist(), contents))
    return np.frombuffer(digests, dtype=np.uint64).reshape(-1, 2)


_NULL_LABEL = "\x00"


def _labels(table: pa.Table, names: tuple[str, ...]) -> tuple[list[tuple], np.ndarray]:
    """The distinct value tuples of some string columns (None kept) and each row's code into them."""
    columns = [pc.fill_null(table.column(name), _NULL_LABEL) for name in names]
    joined = pc.binary_join_element_wise(*columns, FIELD_SEPARATOR) if len(columns) > 1 else columns[0]
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    encoded = pc.dictionary_encode(joined)
    labels = [tuple(None if part == _NULL_LABEL else part for part in value.split(FIELD_SEPARATOR, len(names) - 1))
              for value in encoded.dictionary.to_pylist()]
    return labels, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


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
    from datasketch import MinHash  # imported here: it pulls in scipy, which start-up need not pay for

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
                  chunk_rows: int = 2048, threads: int = 2) -> np.ndarray:
    """Band keys of many texts, computed in row chunks so memory stays bounded (signatures are
    dropped once banded); numpy releases the GIL, so two threads use two cores."""
    def chunk_keys(start: int) -> np.ndarray:
        hashes, offsets = shingle_hashes(texts[start:start + chunk_rows], shingle_chars)
        return band_keys(minhash_signatures(hashes, offsets, num_perm), bands, rows_per_band)

    with ThreadPoolExecutor(max_workers=max(1, min(threads, os.cpu_count() or 1))) as pool:
        parts = list(pool.map(chunk_keys, range(0, len(texts), chunk_rows)))
    return np.concatenate(parts) if parts else np.zeros((0, bands), dtype=np.uint64)


def shingle_set(text: str, width: int) -> set[str]:
    return {text[i:i + width] for i in range(len(text) - width + 1)} or {text}


def jaccard(left: set[str], right: set[str]) -> float:
    return len(left & right) / len(left | right)


# --- decisions on compact keys ---------------------------------------------------------------------


@dataclass
class RowKeys:
    """What deciding duplicates needs of each row, in input order (a few dozen bytes a row)."""
    digests: np.ndarray  # (rows, 2) uint64
    places: np.ndarray  # int64 rank of (source, origin file)
    numbers: np.ndarray  # int64 line or record number, -1 for none
    ids: np.ndarray  # uint64: the id's 16 hex digits as a number (ids order alike)
    groups: np.ndarray  # int64 code of (kind, lang, pivot_lang)
    group_labels: list[tuple]  # code -> (kind, lang, pivot_lang)
    eligible: np.ndarray  # bool: long enough for near dedup
    bands: np.ndarray | None  # (bands, rows) uint64 LSH band keys, or None without near dedup

    def keep_permutation(self) -> np.ndarray:
        # lexsort is stable: rows equal in all keys stay in input order
        return np.lexsort((self.ids, self.numbers, self.places))


def id_numbers(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Ids (16 hex digits, as make_record writes them) as uint64 numbers that sort as the ids do;
    with other ids, each id's rank among the batch's ids (enough for keep order within a batch)."""
    numbers = columnar.hex_numbers(ids)
    if numbers is not None:
        return numbers
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    return pc.rank(ids, sort_keys="ascending", tiebreaker="dense").to_numpy(zero_copy_only=False).astype(np.uint64)


def find_duplicates(keys: RowKeys, params: DedupParams,
                    contents_of: Callable[[np.ndarray], dict[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate_of, reason) per row: the row it repeats (-1 if kept) and 0 kept, 1 exact, 2 near.

    contents_of(rows) gives the content keys of the few rows near dedup must compare exactly.
    """
    count = len(keys.digests)
    duplicate_of = np.full(count, -1, dtype=np.int64)
    reasons = np.zeros(count, dtype=np.int8)
    if count == 0:
        return duplicate_of, reasons
    keep = keys.keep_permutation()
    digests = keys.digests[keep]
    grouped = np.lexsort((digests[:, 1], digests[:, 0]))  # stable: keep order within a digest
    order = keep[grouped]  # rows by digest, each digest's rows in keep order
    digests = digests[grouped]
    del grouped
    starts = np.concatenate(([True], (digests[1:] != digests[:-1]).any(axis=1)))
    del digests
    first = np.maximum.accumulate(np.where(starts, np.arange(count), 0))
    repeats = np.flatnonzero(~starts)
    duplicate_of[order[repeats]] = order[first[repeats]]
    reasons[order[repeats]] = 1
    del first, starts, order
    if keys.bands is not None:
        _near_duplicates(keys, params, keep, duplicate_of, reasons, contents_of)
    return duplicate_of, reasons


def _near_duplicates(keys: RowKeys, params: DedupParams, order: np.ndarray, duplicate_of: np.ndarray,
                     reasons: np.ndarray, contents_of: Callable[[np.ndarray], dict[int, str]]) -> None:
    """Mark rows near an earlier kept row of their group, visiting rows in keep order."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    pool = np.flatnonzero(keys.eligible & (reasons == 0))
    if len(pool) < 2:
        return
    # Rows that share a bucket (band key within a group) with another row; the group is mixed into
    # the key, and a candidate from another group is never compared.
    salt = keys.groups[pool].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    shared_rows, shared_buckets = [], []
    for band in range(len(keys.bands)):
        with np.errstate(over="ignore"):
            bucket_keys = np.asarray(keys.bands[band])[pool] ^ salt
        by_key = np.argsort(bucket_keys, kind="stable")
        sorted_keys = bucket_keys[by_key]
        same = sorted_keys[1:] == sorted_keys[:-1]
        member = np.concatenate(([False], same)) | np.concatenate((same, [False]))
        bucket = np.cumsum(np.concatenate(([True], ~same))) - 1
        shared_rows.append(pool[by_key[member]])
        shared_buckets.append(bucket[member] + (band << 40))
    rows = np.concatenate(shared_rows)
    if len(rows) == 0:
        return
    buckets = np.concatenate(shared_buckets)
    by_rank = np.lexsort((buckets, rank[rows]))
    rows, buckets = rows[by_rank], buckets[by_rank]
    contents = contents_of(np.unique(rows))
    width, threshold = params.near.shingle_chars, params.near.threshold
    kept_in_bucket: dict[int, list[int]] = {}
    shingles: dict[int, set[str]] = {}
    boundaries = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1], [True])))
    for start, end in zip(boundaries[:-1], boundaries[1:]):
        row = int(rows[start])
        its_buckets = buckets[start:end].tolist()
        earlier = sorted({kept for bucket in its_buckets for kept in kept_in_bucket.get(bucket, ())},
                         key=lambda kept: rank[kept])
        mine = shingles.setdefault(row, shingle_set(contents[row], width))
        match = next((kept for kept in earlier if keys.groups[kept] == keys.groups[row]
                      and jaccard(mine, shingles[kept]) >= threshold), None)
        if match is None:
            for bucket in its_buckets:
                kept_in_bucket.setdefault(bucket, []).append(row)
        else:
            duplicate_of[row], reasons[row] = match, 2
            del shingles[row]


# --- keys of a batch ----------------------------------------------------------------------------------


@dataclass
class BatchKeys:
    digests: np.ndarray
    place_labels: list[tuple[str, str]]
    place_codes: np.ndarray
    numbers: np.ndarray
    ids: np.ndarray
    group_labels: list[tuple]
    group_codes: np.ndarray
    eligible: np.ndarray
    bands: np.ndarray | None  # (bands, rows)


def batch_keys(table: pa.Table, params: DedupParams, shape: tuple[int, int] | None, threads: int = 1) -> BatchKeys:
    """The compact keys of one batch of records (shape: LSH (bands, rows) or None without near dedup)."""
    contents = content_key_bytes(table)
    parts = pc.extract_regex(table.column("origin"), _ORIGIN)
    numbers = pc.fill_null(pc.cast(pc.struct_field(parts, "number"), pa.int64()), -1).to_numpy(zero_copy_only=False)
    places = pa.table({"source": table.column("source"), "file": pc.struct_field(parts, "file")})
    place_labels, place_codes = _labels(places, ("source", "file"))
    group_labels, group_codes = _labels(table, ("kind", "lang", "pivot_lang"))
    eligible = np.zeros(len(contents), dtype=bool)
    bands = None
    if shape is not None:
        near = params.near
        texts = [content.decode("utf-8") for content in contents]
        eligible = np.fromiter((len(text) - near.shingle_chars + 1 >= near.min_shingles for text in texts),
                               dtype=bool, count=len(texts))
        bands = np.zeros((shape[0], len(contents)), dtype=np.uint64)
        rows = np.flatnonzero(eligible)
        if len(rows):
            bands[:, rows] = lsh_band_keys([texts[row] for row in rows], near.shingle_chars, near.num_perm,
                                           *shape, threads=threads).T
    return BatchKeys(exact_key_digests(table, contents), place_labels, place_codes, np.asarray(numbers, dtype=np.int64),
                     id_numbers(table.column("id")), group_labels, group_codes, eligible, bands)


def _places_ranked(labels: list[tuple[str, str]], codes: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[sorted(range(len(labels)), key=lambda code: labels[code])] = np.arange(len(labels))
    return ranks[codes] if len(labels) else codes


# --- the stage's work ---------------------------------------------------------------------------------


@dataclass
class DedupResult:
    kept: pa.Table
    rejects: pa.Table
    counts: Counter  # ("in"|"kept"|"exact_duplicate"|"near_duplicate", lang)


REASONS = ("", "exact_duplicate", "near_duplicate")


def _counts(keys: RowKeys, reasons: np.ndarray) -> Counter:
    counts: Counter = Counter()
    langs = [label[1] for label in keys.group_labels]
    cells, numbers = np.unique(keys.groups * 4 + reasons, return_counts=True)
    for cell, number in zip(cells.tolist(), numbers.tolist()):
        lang, reason = langs[cell // 4], cell % 4
        counts[("in", lang)] += number
        counts[(REASONS[reason] or "kept", lang)] += number
    return counts


def _rejects(rows: pa.Table, reasons: Sequence[int], kept_ids: Sequence[str]) -> pa.Table:
    return pa.Table.from_pylist([
        make_reject(source=row["source"], origin=row["origin"], stage="dedup", reason=REASONS[reason],
                    detail=kept_id, id=row["id"], lang=row["lang"], raw={name: row[name] for name in RECORD_COLUMNS})
        for row, reason, kept_id in zip(rows.to_pylist(), reasons, kept_ids)
    ], schema=REJECT_SCHEMA)


def dedup_table(table: pa.Table, params: DedupParams) -> DedupResult:
    """Remove exact, then near duplicates of a table in memory; rejects name the kept row's id."""
    table = table.take(pa.array(keep_order(table), type=pa.int64()))
    shape = lsh_shape(params) if params.near.enabled and table.num_rows > 1 else None
    batch = batch_keys(table, params, shape, threads=2)
    keys = RowKeys(batch.digests, _places_ranked(batch.place_labels, batch.place_codes), batch.numbers, batch.ids,
                   batch.group_codes, batch.group_labels, batch.eligible, batch.bands)
    contents = content_keys(table) if shape is not None else []
    duplicate_of, reasons = find_duplicates(keys, params, lambda rows: {int(row): contents[row] for row in rows})
    removed = np.flatnonzero(duplicate_of >= 0)
    ids = table.column("id").to_pylist()
    rejects = _rejects(table.take(pa.array(removed, type=pa.int64())), reasons[removed].tolist(),
                       [ids[row] for row in duplicate_of[removed]])
    kept = table.take(pa.array(np.flatnonzero(duplicate_of < 0), type=pa.int64()))
    return DedupResult(kept, rejects, _counts(keys, reasons))


_WORKER_SETTINGS: tuple = ()


def _start_dedup_worker(params: DedupParams, shape: tuple[int, int] | None) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = (params, shape)


def _keys_in_worker(batch: pa.RecordBatch) -> BatchKeys:
    params, shape = _WORKER_SETTINGS
    return batch_keys(pa.Table.from_batches([batch]), params, shape)


def _contents_in_worker(job: tuple[pa.RecordBatch, np.ndarray]) -> list[str]:
    batch, rows = job
    return content_keys(pa.Table.from_batches([batch]).take(pa.array(rows, type=pa.int64())))


IN_MEMORY_BYTES = 256 << 20  # an input this small (uncompressed) is read once and kept for every pass


class _Input:
    """The record file, read once and kept when small, else read again for each pass."""

    def __init__(self, path: str | Path, batch_rows: int):
        self.file, self.batch_rows = open_parquet(path), batch_rows
        metadata = self.file.metadata
        size = sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
        self.table = self.file.read() if size <= IN_MEMORY_BYTES else None
        self.rows, self.schema = metadata.num_rows, self.file.schema_arrow

    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(first row number, batch) over the file."""
        if self.table is not None:
            batches = (self.table.select(columns) if columns else self.table).to_batches(max_chunksize=self.batch_rows)
        else:
            batches = self.file.iter_batches(batch_size=self.batch_rows, columns=columns)
        start = 0
        for batch in batches:
            if self.table is not None:  # a slice pickles with its whole row group: send workers a copy
                batch = batch.take(pa.array(np.arange(batch.num_rows)))
            yield start, batch
            start += batch.num_rows


def dedup_parquet(input_path: str | Path, kept_path: str | Path, rejects_path: str | Path, params: DedupParams,
                  workers: int | None = None, batch_rows: int = DEDUP_BATCH_ROWS) -> Counter:
    """Deduplicate a record file into kept and rejects files in the input's order (sorted by id
    and origin, as clean writes it), streaming in batches over `workers` processes; returns the
    counts for dedup_metrics. See the module docstring for what is held and what spills."""
    source = _Input(input_path, batch_rows)
    count = source.rows
    workers = worker_count() if workers is None else workers
    shape = lsh_shape(params) if params.near.enabled and count > 1 else None
    kept_path, spill = Path(kept_path), None
    try:
        digests = np.zeros((count, 2), dtype=np.uint64)
        numbers, ids = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.uint64)
        places, groups = np.zeros(count, dtype=np.int32), np.zeros(count, dtype=np.int32)
        eligible = np.zeros(count, dtype=bool)
        bands = None
        if shape is not None:
            spill = Path(tempfile.mkdtemp(prefix=f".{kept_path.name}.", suffix=".bands", dir=kept_path.parent))
            bands = np.lib.format.open_memmap(spill / "bands.npy", mode="w+", dtype=np.uint64, shape=(shape[0], count))
            log.info("dedup: LSH band keys (%d bands x %d rows, %.0f MiB) spill to %s", shape[0], count,
                     bands.nbytes / 2**20, spill)
        place_labels: dict[tuple, int] = {}
        group_labels: dict[tuple, int] = {}
        start = 0
        for batch in ordered_map(_keys_in_worker, (batch for _, batch in source.batches()), workers,
                                 _start_dedup_worker, (params, shape)):
            end = start + len(batch.digests)
            digests[start:end], numbers[start:end], ids[start:end] = batch.digests, batch.numbers, batch.ids
            eligible[start:end] = batch.eligible
            places[start:end] = np.array([place_labels.setdefault(label, len(place_labels)) for label in batch.place_labels],
                                         dtype=np.int32)[batch.place_codes]
            groups[start:end] = np.array([group_labels.setdefault(label, len(group_labels)) for label in batch.group_labels],
                                         dtype=np.int32)[batch.group_codes]
            if bands is not None:
                bands[:, start:end] = batch.bands
            start = end
        keys = RowKeys(digests, _places_ranked(list(place_labels), places), numbers, ids, groups, list(group_labels),
                       eligible, bands)
        del digests, places, numbers, ids, groups, eligible
        duplicate_of, reasons = find_duplicates(keys, params, lambda rows: _contents(source, rows, workers))
        counts = _counts(keys, reasons)
        del keys  # only the decisions are needed to write the outputs
        _write_outputs(source, duplicate_of, reasons, kept_path, rejects_path)
    finally:
        if spill is not None:
            del bands
            shutil.rmtree(spill, ignore_errors=True)
    return counts


def _contents(source: _Input, rows: np.ndarray, workers: int) -> dict[int, str]:
    """Content keys of the given rows (sorted row numbers), read in a pass over the file."""
    jobs: list[tuple[int, np.ndarray]] = []

    def wanted() -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        for first, batch in source.batches(["kind", "text", "pivot_text", "meta"]):
            local = rows[(rows >= first) & (rows < first + batch.num_rows)] - first
            if len(local):
                jobs.append((first, local))
                yield batch, local

    found: dict[int, str] = {}
    for index, contents in enumerate(ordered_map(_contents_in_worker, wanted(), workers)):
        first, local = jobs[index]
        found.update(zip((local + first).tolist(), contents))
    return found


def _write_outputs(source: _Input, duplicate_of: np.ndarray, reasons: np.ndarray, kept_path: Path,
                   rejects_path: str | Path) -> None:
    """Kept rows and rejects, in input order; rejects name the kept row's id (read in a pass first)."""
    removed = np.flatnonzero(duplicate_of >= 0)
    referenced = np.unique(duplicate_of[removed])
    kept_ids: dict[int, str] = {}
    for first, batch in source.batches(["id"]):
        local = referenced[(referenced >= first) & (referenced < first + batch.num_rows)] - first
        if len(local):
            kept_ids.update(zip((local + first).tolist(), batch.column(0).take(pa.array(local)).to_pylist()))
    with SortedParquetWriter(kept_path, source.schema, ("id", "origin")) as kept, \
            SortedParquetWriter(rejects_path, REJECT_SCHEMA, ("id", "origin")) as rejects:
        for first, batch in source.batches():
            table = pa.Table.from_batches([batch])
            mine = duplicate_of[first:first + batch.num_rows]
            kept.write(table.filter(pa.array(mine < 0)))
            gone = np.flatnonzero(mine >= 0)
            if len(gone):
                rejects.write(_rejects(table.take(pa.array(gone, type=pa.int64())), reasons[first + gone].tolist(),
                                       [kept_ids[int(row)] for row in mine[gone]]))


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
