"""Which rows are duplicates: the keep order, each row's compact keys, and the decisions on them.

Exact duplicates share a 16-byte digest of (kind, lang, pivot_lang, content key, a labelled text's task); near duplicates
share an LSH bucket within their group and have an exact shingle Jaccard of at least the threshold
with an earlier kept row (the package docstring gives the rules). A row's keys take a few dozen
bytes, so the decisions for millions of rows fit in memory; the texts are needed only for the few
rows that share a bucket.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from langfoundry.clean import columnar
from langfoundry.clean.dedup.minhash import jaccard, lsh_band_keys, shingle_set
from langfoundry.core.config import DedupParams
from langfoundry.core.normalize import _LATIN1_KEY_TABLE, comparison_key, meta_texts
from langfoundry.core.records import origin_parts

FIELD_SEPARATOR = "\x1f"
META_KEY_KINDS = frozenset({"conversation", "instruction"})  # their content lives in meta
REASONS = ("", "exact_duplicate", "near_duplicate")  # by reason code: 0 kept, 1 exact, 2 near
NO_NUMBER = -1  # an origin without a line, record or row number sorts first in its file


# --- order and keys ------------------------------------------------------------------------------


def origin_keys(table: pa.Table) -> pa.Table:
    """Per row, where its origin places it: source, place (the file, and an Excel sheet after a NUL, which
    no file name holds, so places sort as (file, sheet) pairs) and the line, record or row number
    (NO_NUMBER where there is none). Every origin a reader writes parses (records.origin_parts); the
    plural forms of one PO entry share place and number, and their ids order them."""
    parts = origin_parts(table.column("origin"))
    file, sheet = pc.fill_null(parts.column("file"), ""), parts.column("sheet")
    place = pc.if_else(pc.is_null(sheet), file, pc.binary_join_element_wise(file, sheet, "\x00"))
    return pa.table({"source": table.column("source"), "place": place,
                     "number": pc.fill_null(parts.column("number"), NO_NUMBER)})


def keep_order(table: pa.Table) -> np.ndarray:
    """Row indices in the order that decides which duplicate is kept (see the package docstring)."""
    keys = origin_keys(table).append_column("id", table.column("id")).append_column("origin", table.column("origin"))
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending", "at_start") for name in keys.column_names])
    return order.to_numpy()


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _side_keys(array: pa.Array) -> pa.LargeBinaryArray:
    """comparison_key (as UTF-8) of every text of one side, a null text as "". Texts in Latin-1 without
    ß or µ (whose casefold leaves Latin-1), nearly all of them in most corpora, are keyed all at once
    with numpy; the rest one by one."""
    fast = np.asarray(pc.fill_null(pc.match_substring_regex(array, _LATIN1_FOLDED_ALIKE), False)
                      .to_numpy(zero_copy_only=False), dtype=bool)
    fast_rows, other_rows = np.flatnonzero(fast), np.flatnonzero(~fast)
    keys = pa.array([], pa.large_binary())
    if len(fast_rows):
        texts = columnar.Latin1Texts(array.take(pa.array(fast_rows, type=pa.int64())))
        buffer, offsets = columnar.to_utf8(*columnar.squeezed(texts, np.frombuffer(_LATIN1_KEY_TABLE, dtype=np.uint8)))
        keys = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(fast_rows), [
            None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(np.ascontiguousarray(buffer))])
    if len(other_rows) == 0:
        return keys
    others = pa.array([comparison_key(text or "").encode("utf-8")
                       for text in array.take(pa.array(other_rows, type=pa.int64())).to_pylist()], pa.large_binary())
    places = np.empty(len(fast), dtype=np.int64)  # where each row's key lies in fast keys + other keys
    places[np.concatenate((fast_rows, other_rows))] = np.arange(len(fast))
    return pa.concat_arrays([keys, others]).take(pa.array(places))


_LATIN1_FOLDED_ALIKE = r"^[\x{00}-\x{B4}\x{B6}-\x{DE}\x{E0}-\x{FF}]*$"  # Latin-1 but ß and µ


def _rows_of_kinds(table: pa.Table, kinds: frozenset[str]) -> np.ndarray:
    """The rows whose kind is one of kinds."""
    return np.flatnonzero(pc.is_in(table.column("kind"), pa.array(sorted(kinds))).to_numpy(zero_copy_only=False))


def content_key_bytes(table: pa.Table) -> list[bytes]:
    """Per row, UTF-8: the compared form of text, pivot_text and (conversation, instruction) meta text."""
    sides = [_side_keys(_column(table, name)) for name in ("text", "pivot_text")]
    keys = pc.binary_join_element_wise(*sides, pa.scalar(FIELD_SEPARATOR.encode(), pa.large_binary())).to_pylist()
    meta_rows = _rows_of_kinds(table, META_KEY_KINDS)
    if len(meta_rows) == 0:
        return keys
    kinds = table.column("kind").take(pa.array(meta_rows)).to_pylist()
    metas = _column(table, "meta").take(pa.array(meta_rows)).to_pylist()
    for row, kind, meta in zip(meta_rows.tolist(), kinds, metas):
        if meta not in (None, "", "{}"):
            keys[row] += "".join(FIELD_SEPARATOR + comparison_key(part)
                                 for part in meta_texts(json.loads(meta), kind)).encode("utf-8")
    return keys


def with_labelled_task(table: pa.Table, contents: list[bytes]) -> list[bytes]:
    """The exact keys: a labelled text is a copy only within its task (one sentence may carry an intent and a
    sentiment). Near dedup compares the contents alone, which a shared task name would make look alike."""
    labelled = _rows_of_kinds(table, frozenset({"labelled"}))
    if len(labelled) == 0:
        return contents
    keys = list(contents)
    for row, meta in zip(labelled.tolist(), _column(table, "meta").take(pa.array(labelled)).to_pylist()):
        keys[row] += (FIELD_SEPARATOR + "task=" + str(json.loads(meta or "{}").get("task", ""))).encode("utf-8")
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


def id_numbers(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Ids (16 hex digits, as make_record writes them) as uint64 numbers that sort as the ids do;
    with other ids, each id's rank among the batch's ids (enough for keep order within a batch)."""
    numbers = columnar.hex_numbers(ids)
    if numbers is not None:
        return numbers
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    return pc.rank(ids, sort_keys="ascending", tiebreaker="dense").to_numpy(zero_copy_only=False).astype(np.uint64)


# --- keys of a batch, and of every row -----------------------------------------------------------------


@dataclass
class BatchKeys:
    """The compact keys of one batch; labels are the batch's own, codes index into them."""
    digests: np.ndarray
    place_labels: list[tuple[str, str]]  # (source, place): see origin_keys
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
    places = origin_keys(table)
    numbers = places.column("number").to_numpy()
    place_labels, place_codes = _labels(places, ("source", "place"))
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
    digests = exact_key_digests(table, with_labelled_task(table, contents))
    return BatchKeys(digests, place_labels, place_codes, np.asarray(numbers, dtype=np.int64),
                     id_numbers(table.column("id")), group_labels, group_codes, eligible, bands)


def ranked_places(labels: list[tuple[str, str]], codes: np.ndarray) -> np.ndarray:
    """Each row's place code turned into the rank of its (source, place) label in sorted order."""
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[sorted(range(len(labels)), key=lambda code: labels[code])] = np.arange(len(labels))
    return ranks[codes] if len(labels) else codes


@dataclass
class RowKeys:
    """What deciding duplicates needs of each row, in input order (a few dozen bytes a row)."""
    digests: np.ndarray  # (rows, 2) uint64
    places: np.ndarray  # int64 rank of (source, place): see origin_keys
    numbers: np.ndarray  # int64 line, record or row number, NO_NUMBER for none
    ids: np.ndarray  # uint64: the id's 16 hex digits as a number (ids order alike)
    groups: np.ndarray  # int64 code of (kind, lang, pivot_lang)
    group_labels: list[tuple]  # code -> (kind, lang, pivot_lang)
    eligible: np.ndarray  # bool: long enough for near dedup
    bands: np.ndarray | None  # (bands, rows) uint64 LSH band keys, or None without near dedup

    def keep_permutation(self) -> np.ndarray:
        # lexsort is stable: rows equal in all keys stay in input order
        return np.lexsort((self.ids, self.numbers, self.places))


# --- decisions on compact keys ---------------------------------------------------------------------


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
    # The keep order and the rows grouped by digest are two sorts of millions of rows that do not depend
    # on each other; numpy lets go of the GIL while it sorts, so they take two cores (9.2 million rows:
    # 6 to 12 s together against 14 to 17 s one after the other)
    with ThreadPoolExecutor(max_workers=1) as pool:
        keeping = pool.submit(keys.keep_permutation)
        grouped = np.lexsort((keys.digests[:, 1], keys.digests[:, 0]))
        keep = keeping.result()
    rank = np.empty(count, dtype=np.int64)
    rank[keep] = np.arange(count)
    digests = keys.digests[grouped]
    starts = np.flatnonzero(np.concatenate(([True], (digests[1:] != digests[:-1]).any(axis=1))))
    del digests
    # each digest's row that comes first in keep order is kept; the others repeat it
    keepers = keep[np.minimum.reduceat(rank[grouped], starts)]
    keeper_of = np.repeat(keepers, np.diff(np.append(starts, count)))
    repeats = grouped != keeper_of
    duplicate_of[grouped[repeats]] = keeper_of[repeats]
    reasons[grouped[repeats]] = 1
    del rank, grouped, keeper_of, repeats
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
    rows, buckets = _shared_buckets(keys, pool)
    if len(rows) == 0:
        return
    by_rank = np.lexsort((buckets, rank[rows]))
    rows, buckets = rows[by_rank], buckets[by_rank]
    _confirm_candidates(rows, buckets, rank, keys.groups, contents_of(np.unique(rows)), params, duplicate_of, reasons)


def _shared_buckets(keys: RowKeys, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) for each row of the pool that shares a bucket (a band key within a group) with
    another row; the group is mixed into the key, so a candidate from another group never comes up."""
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
    return np.concatenate(shared_rows), np.concatenate(shared_buckets)


def _confirm_candidates(rows: np.ndarray, buckets: np.ndarray, rank: np.ndarray, groups: np.ndarray,
                        contents: dict[int, str], params: DedupParams, duplicate_of: np.ndarray,
                        reasons: np.ndarray) -> None:
    """Visit the (row, bucket) pairs in keep order: a row whose shingles are near enough those of an
    earlier kept row in one of its buckets is a near duplicate, any other row is kept there."""
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
        match = next((kept for kept in earlier if groups[kept] == groups[row]
                      and jaccard(mine, shingles[kept]) >= threshold), None)
        if match is None:
            for bucket in its_buckets:
                kept_in_bucket.setdefault(bucket, []).append(row)
        else:
            duplicate_of[row], reasons[row] = match, 2
            del shingles[row]


def outcome_counts(keys: RowKeys, reasons: np.ndarray) -> Counter:
    """Rows per (outcome, lang): outcome "in", "kept", "exact_duplicate" or "near_duplicate"."""
    counts: Counter = Counter()
    langs = [label[1] for label in keys.group_labels]
    cells, numbers = np.unique(keys.groups * 4 + reasons, return_counts=True)
    for cell, number in zip(cells.tolist(), numbers.tolist()):
        lang, reason = langs[cell // 4], cell % 4
        counts[("in", lang)] += number
        counts[(REASONS[reason] or "kept", lang)] += number
    return counts
