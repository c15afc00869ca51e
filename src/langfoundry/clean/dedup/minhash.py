"""MinHash signatures and LSH band keys for a whole batch of texts at once, and the exact Jaccard.

datasketch computes one MinHash per Python call (~80 us for a 180-shingle row here, and its LSH
inserts one sketch at a time); the functions below compute the same "affine32" signatures for a
whole batch with numpy (a test checks them against datasketch.MinHash) and band them in numpy.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from langfoundry.core.config import DedupParams

MINHASH_SEED = 1
# Candidates are confirmed with the exact Jaccard, so a false positive costs only a comparison:
# weigh misses higher than datasketch's default (0.5, 0.5) does.
LSH_WEIGHTS = (0.1, 0.9)
SHINGLE_CHUNK = 8192  # shingles per signature step: (num_perm x chunk) uint32 stays ~4 MB, in cache

_WINDOW_MULTIPLIER = np.uint32(0x9E3779B1)  # odd, so the window hash mixes every code point


def lsh_shape(params: DedupParams) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for the threshold and weights."""
    from datasketch import MinHashLSH  # imported here: it pulls in scipy, which start-up need not pay for

    lsh = MinHashLSH(threshold=params.near.threshold, num_perm=params.near.num_perm, weights=LSH_WEIGHTS)
    return lsh.b, lsh.r


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
