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

Modules: minhash (shingles, signatures, LSH band keys, Jaccard), decision (the keep order, each
row's compact keys and the duplicate decisions on them), driver (a table in memory, or a file
streamed over worker processes in bounded memory, and the metrics).
"""

from langfoundry.clean.dedup.decision import content_keys
from langfoundry.clean.dedup.driver import DedupResult, dedup_metrics, dedup_parquet, dedup_table
from langfoundry.clean.dedup.minhash import minhash_signatures, shingle_hashes

__all__ = ["DedupResult", "content_keys", "dedup_metrics", "dedup_parquet", "dedup_table", "minhash_signatures",
           "shingle_hashes"]
