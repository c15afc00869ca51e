"""The vocabulary index: the train split's dictionary entries and short parallel pairs in SQLite with FTS5.

Built by the dictionary stage from data/interim/split.parquet, train rows only (val and test words
must not leak into prompts evaluate scores). Each pair gives an entry in both directions, keyed by
`comparison_key`, so "Abot," and "abot" meet. The file is byte-deterministic: rows go in sorted
order, the page size is fixed, nothing records a time, and VACUUM rewrites it compactly.

Read by `langfoundry lookup` and by model.dictionary_context (prompt context). A data module: no torch.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import regex

from langfoundry.core.errors import UserError
from langfoundry.core.normalize import comparison_key
from langfoundry.core.storage import atomic_output
from langfoundry.data.chat import EXAMPLE_KEYS, POS_KEYS

FORMAT_VERSION = "1"
# A pair from parallel text counts as vocabulary when both sides are this short; longer sentences would
# need word alignment, which a one-to-three-word pair does not (its two sides are each other's gloss).
MAX_PHRASE_WORDS = 3
MAX_ORIGINS = 5  # origins kept per entry; `count` says how many records gave it
MIN_STEM = 4  # a word without an entry may use the longest entry that starts it, this long at least,
MAX_SUFFIX = 3  # with at most this many letters left over ("mangane" -> "mangan")
# Kinds whose pivot_text is not a translation of text (format makes no translation examples of them).
NOT_PAIRS = ("conversation", "instruction", "feedback")
COLUMNS = ("kind", "lang", "text", "pivot_lang", "pivot_text", "meta", "origin", "split")
# Words in any script: letters with their combining marks (Malayalam, N'Ko), digits, joiners.
WORD = regex.compile(r"[\w\p{M}\u200c\u200d]+(?:'[\w\p{M}]+)*")

SCHEMA = """
CREATE TABLE info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
  id INTEGER PRIMARY KEY, lang TEXT NOT NULL, gloss_lang TEXT NOT NULL, key TEXT NOT NULL,
  headword TEXT NOT NULL, gloss TEXT NOT NULL, pos TEXT, example TEXT, kinds TEXT NOT NULL,
  count INTEGER NOT NULL, origins TEXT NOT NULL);
CREATE INDEX entries_by_key ON entries (lang, key);
CREATE VIRTUAL TABLE entry_text USING fts5(headword, gloss, tokenize = "unicode61 remove_diacritics 0");
"""


@dataclass(frozen=True)
class Entry:
    lang: str  # language of the headword
    gloss_lang: str
    headword: str
    gloss: str
    pos: str | None
    example: str | None
    kinds: str  # "dictionary", "parallel", or both comma-joined
    count: int  # train records that gave the pair
    origins: tuple[str, ...]  # the first MAX_ORIGINS, sorted
    match: str = "exact"  # exact | phrase | stem | prefix | text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "origins": list(self.origins)}


def words(text: str) -> list[str]:
    return WORD.findall(text)


def _meta_extras(meta_text: str | None) -> tuple[str | None, str | None]:
    """(part of speech, first usage example) of a dictionary record's meta, when it has them."""
    try:
        meta = json.loads(meta_text or "{}")
    except json.JSONDecodeError:
        return None, None  # clean has checked meta already; a bad one only loses its extras here
    if not isinstance(meta, Mapping):
        return None, None
    pos = next((str(meta[key]).strip() for key in POS_KEYS if meta.get(key)), None)
    example = next((meta[key] for key in EXAMPLE_KEYS if meta.get(key)), None)
    if isinstance(example, list):
        example = example[0] if example else None
    if isinstance(example, Mapping):
        example = example.get("text")
    return pos or None, (str(example).strip() or None) if example else None


def _pairs(row: Mapping[str, Any]) -> Iterable[tuple[str, str, str, str, bool]]:
    """(lang, headword, gloss_lang, gloss, forward) entries one train record gives."""
    text, gloss = (row["text"] or "").strip(), (row["pivot_text"] or "").strip()
    if not text or not gloss or not row["pivot_lang"] or row["kind"] in NOT_PAIRS:
        return
    short_text, short_gloss = len(words(text)) <= MAX_PHRASE_WORDS, len(words(gloss)) <= MAX_PHRASE_WORDS
    if row["kind"] == "dictionary" or (short_text and short_gloss):
        yield row["lang"], text, row["pivot_lang"], gloss, True
    if short_gloss and (row["kind"] == "dictionary" or short_text):  # a long definition is no headword
        yield row["pivot_lang"], gloss, row["lang"], text, False


def collect_entries(split_path: Path) -> list[dict[str, Any]]:
    """The train split's entries, merged per (direction, key, gloss key), in sorted order."""
    if not split_path.exists():
        raise UserError(f"{split_path}: not found; run the split stage first (dvc repro split)")
    found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    forms: dict[tuple, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    file = pq.ParquetFile(split_path)
    missing = [name for name in COLUMNS if name not in file.schema_arrow.names]
    if missing:
        raise UserError(f"{split_path}: missing column(s) {', '.join(missing)}; rerun the split stage (dvc repro split)")
    for batch in file.iter_batches(columns=list(COLUMNS)):
        for row in batch.to_pylist():
            if row["split"] != "train":
                continue
            pos, example = _meta_extras(row["meta"]) if row["kind"] == "dictionary" else (None, None)
            for lang, headword, gloss_lang, gloss, forward in _pairs(row):
                key = comparison_key(headword)
                if not key:
                    continue
                group = (lang, gloss_lang, key, comparison_key(gloss) or gloss)
                entry = found.setdefault(group, {"lang": lang, "gloss_lang": gloss_lang, "key": key, "pos": set(),
                                                 "example": set(), "kinds": set(), "count": 0, "origins": set()})
                entry["count"] += 1
                entry["kinds"].add(row["kind"])
                entry["origins"].add(row["origin"])
                if forward and pos:
                    entry["pos"].add(pos)
                if forward and example:
                    entry["example"].add(example)
                forms[group][(headword, gloss)] += 1
    entries = []
    for group in sorted(found):
        entry = found[group]
        # the spelling most records use, on a tie the one with fewer capitals (a sentence's first word is
        # capitalised, a headword seldom), then alphabetical: the choice never depends on row order
        headword, gloss = min(forms[group].items(),
                              key=lambda item: (-item[1], sum(char.isupper() for char in "".join(item[0])), item[0]))[0]
        entries.append({**entry, "headword": headword, "gloss": gloss, "pos": min(entry["pos"], default=None),
                        "example": min(entry["example"], default=None), "kinds": ",".join(sorted(entry["kinds"])),
                        "origins": json.dumps(sorted(entry["origins"])[:MAX_ORIGINS], ensure_ascii=False)})
    return entries


def write_index(entries: list[dict[str, Any]], path: Path) -> None:
    """The SQLite file, written beside `path` and renamed into place when complete."""
    with atomic_output(path) as partial:
        connection = sqlite3.connect(partial)
        try:
            connection.execute("PRAGMA page_size = 4096")
            connection.execute("PRAGMA journal_mode = DELETE")
            connection.executescript(SCHEMA)
            connection.executemany("INSERT INTO info VALUES (?, ?)", [("format_version", FORMAT_VERSION),
                                                                     ("entries", str(len(entries)))])
            rows = [(number, e["lang"], e["gloss_lang"], e["key"], e["headword"], e["gloss"], e["pos"], e["example"],
                     e["kinds"], e["count"], e["origins"]) for number, e in enumerate(entries, start=1)]
            connection.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            connection.executemany("INSERT INTO entry_text (rowid, headword, gloss) VALUES (?, ?, ?)",
                                   [(row[0], row[3], comparison_key(row[5])) for row in rows])
            connection.execute("INSERT INTO entry_text (entry_text) VALUES ('optimize')")  # one b-tree segment
            connection.commit()
            connection.execute("VACUUM")
        finally:
            connection.close()


def index_metrics(entries: list[dict[str, Any]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {"entries": len(entries)}
    for entry in entries:
        for key in (f"direction.{entry['lang']}>{entry['gloss_lang']}", f"lang.{entry['lang']}",
                    *(f"kind.{kind}" for kind in entry["kinds"].split(","))):
            metrics[key] = metrics.get(key, 0) + 1
    return dict(sorted(metrics.items()))


def fts_query(key: str) -> str:
    """An FTS5 query for every token of a key in the headword column, each quoted (no operators)."""
    return " AND ".join('headword : "' + token.replace('"', '""') + '"' for token in key.split())


class DictionaryIndex:
    """Read-only queries of the index file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no dictionary index; build it with `dvc repro dictionary`")
        self.connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = self.connection.execute("SELECT value FROM info WHERE name = 'format_version'").fetchone()
        except sqlite3.DatabaseError:
            version = None
        if version is None or version[0] != FORMAT_VERSION:
            self.connection.close()
            raise UserError(f"{self.path}: not a dictionary index of this version; rebuild it with `dvc repro dictionary`")

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> DictionaryIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _select(self, where: str, args: tuple, match: str, order: str, limit: int) -> list[Entry]:
        rows = self.connection.execute(
            f"SELECT lang, gloss_lang, headword, gloss, pos, example, kinds, count, origins, id FROM entries "
            f"WHERE {where} ORDER BY {order} LIMIT ?", (*args, limit)).fetchall()
        return [Entry(*row[:8], tuple(json.loads(row[8])), match) for row in rows]

    def _lang(self, lang: str | None) -> tuple[str, tuple]:
        return (" AND lang = ?", (lang,)) if lang else ("", ())

    def exact(self, key: str, lang: str | None = None, limit: int = 10) -> list[Entry]:
        clause, args = self._lang(lang)
        return self._select(f"key = ?{clause}", (key, *args), "exact", "count DESC, kinds, headword, gloss, id", limit)

    def prefix(self, key: str, lang: str | None = None, limit: int = 10) -> list[Entry]:
        clause, args = self._lang(lang)
        # a range, not LIKE: LIKE folds ASCII case and treats % and _ in the key as wildcards
        return self._select(f"key > ? AND key < ?{clause}", (key, key + "\U0010ffff", *args), "prefix",
                            "length(key), count DESC, key, gloss, id", limit)

    def text(self, key: str, lang: str | None = None, limit: int = 10) -> list[Entry]:
        """Entries whose headword holds every token of the key (FTS5, best bm25 first)."""
        if not key.split():
            return []
        clause, args = self._lang(lang)
        return self._select(f"id IN (SELECT rowid FROM entry_text WHERE entry_text MATCH ?){clause}",
                            (fts_query(key), *args), "text", "length(key), count DESC, key, gloss, id", limit)

    def stem(self, key: str, lang: str, limit: int = 10) -> list[Entry]:
        """Entries of the longest headword that starts the word, leaving at most MAX_SUFFIX letters."""
        for length in range(len(key) - 1, max(MIN_STEM, len(key) - MAX_SUFFIX) - 1, -1):
            found = self.exact(key[:length], lang, limit)
            if found:
                return [Entry(**{**asdict(entry), "match": "stem"}) for entry in found]
        return []

    def lookup(self, word: str, lang: str | None = None, limit: int = 10) -> list[Entry]:
        """Exact entries first, then longer headwords that start with the word, then headwords that contain it."""
        key = comparison_key(word)
        if not key:
            return []
        results: list[Entry] = []
        seen: set[tuple[str, str, str, str]] = set()
        for found in (self.exact(key, lang, limit), self.prefix(key, lang, limit), self.text(key, lang, limit)):
            for entry in found:
                ident = (entry.lang, entry.gloss_lang, entry.headword, entry.gloss)
                if ident not in seen and len(results) < limit:
                    seen.add(ident)
                    results.append(entry)
        return results

    def for_text(self, text: str, lang: str, gloss_lang: str | None, limit: int) -> list[Entry]:
        """Entries for the words of a text in `lang`: the whole text if it is a headword, then one sense per word
        in reading order (exact, else a stem, else a headword containing the word), then second senses, ..."""
        def usable(entries: list[Entry]) -> list[Entry]:
            return [entry for entry in entries if gloss_lang is None or entry.gloss_lang == gloss_lang]

        whole = comparison_key(text)
        queues: list[list[Entry]] = []
        if len(whole.split()) > 1:
            queues.append([Entry(**{**asdict(entry), "match": "phrase"}) for entry in usable(self.exact(whole, lang, limit))])
        for key in dict.fromkeys(comparison_key(word) for word in words(text)):
            if not key:
                continue
            found = usable(self.exact(key, lang, limit)) or usable(self.stem(key, lang, limit)) \
                or usable(self.text(key, lang, limit))
            queues.append(found)
        chosen: list[Entry] = []
        seen: set[tuple[str, str]] = set()
        while len(chosen) < limit and any(queues):
            for queue in queues:
                while queue:
                    entry = queue.pop(0)
                    if (entry.headword, entry.gloss) not in seen:
                        seen.add((entry.headword, entry.gloss))
                        chosen.append(entry)
                        break
                if len(chosen) >= limit:
                    break
        return chosen
