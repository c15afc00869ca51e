"""Screening: per-language blocklists and an optional toxicity classifier, run after the quality filters.

Blocklists are files under paths.screening (data/screening): `<tag>.txt`, or `<tag>/<list>.txt` for
several lists per language, one term a line, `#` lines and blank lines ignored. A side (text in its
lang, pivot_text in its pivot_lang) is checked against its own language's lists. Terms and text are
compared as comparison_key gives them (NFC, casefolded, punctuation as spaces) and match whole words:
a term never matches inside a longer word, a multi-word term matches those words in a row. Scripts
written without spaces (Thai, Han, Javanese ...) have no word boundaries to find, so their terms match
anywhere. The reject reason is "blocklist", its detail names the list and the term.

The classifier (clean.screening.classifier: http) scores the sides that passed everything else, per
language in batches; a side scoring at or above max_toxicity is rejected with reason "toxicity".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from langfoundry.clean import columnar
from langfoundry.clean.filters import SIDES, Filter, FilterBatch, Rejections
from langfoundry.clean.measures import BatchSide
from langfoundry.clean.pii import PLACEHOLDER
from langfoundry.core.config import CleanParams
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import INVENTORY_PATH
from langfoundry.core.normalize import _LATIN1_KEY_TABLE, comparison_key, normalize_text
from langfoundry.core.screening_config import SCREENING_KEY_ENV, ScreeningHttpParams, ScreeningParams

if TYPE_CHECKING:  # httpx is imported where a classifier calls out: a tenth of a second every clean run would pay
    import httpx

# Scripts written without spaces between words: a term there matches anywhere in the text.
UNSPACED_SCRIPTS = frozenset({"Hani", "Hans", "Hant", "Hira", "Kana", "Jpan", "Thai", "Laoo", "Khmr", "Mymr",
                              "Tibt", "Java", "Bali", "Bugi"})
_LIST_NAME = regex.compile(r"[A-Za-z0-9_-]+")
_PLACEHOLDER = regex.compile(PLACEHOLDER)


def _tokens(text: str) -> list[str]:
    """The words comparison_key leaves, quotes (apostrophes at a word's ends) dropped."""
    key = comparison_key(_PLACEHOLDER.sub(" ", text) if "<" in text else text)
    tokens = key.split()
    return [token.strip("'") for token in tokens] if "'" in key else tokens


@dataclass(frozen=True)
class BlockList:
    id: str  # "<tag>" or "<tag>/<list>": how details and metrics name it
    lang: str
    path: str
    terms: tuple[tuple[int, str], ...]  # (line, term as written)


class Matcher:
    """One language's lists, compiled: finds the first listed term in a text, as (list id, term)."""

    def __init__(self, lists: Sequence[BlockList], zero_width: str, unspaced: bool):
        self.words: dict[str, tuple[str, str]] = {}  # one-word term -> (list, term)
        self.phrases: dict[str, list[tuple[list[str], tuple[str, str]]]] = {}  # first word -> longer terms
        keys: dict[str, tuple[str, str]] = {}
        for blocklist in lists:
            for line, term in blocklist.terms:
                tokens = [token for token in _tokens(normalize_text(term, zero_width)) if token]
                if not tokens:
                    raise UserError(f"{blocklist.path}:{line}: {term!r} has no letters or digits once punctuation "
                                    f"is dropped; remove the line or spell the word out")
                hit = (blocklist.id, term)
                keys.setdefault(" ".join(tokens), hit)  # a term in two lists counts for the first
                if len(tokens) == 1:
                    self.words.setdefault(tokens[0], hit)
                else:
                    self.phrases.setdefault(tokens[0], []).append((tokens, hit))
        for candidates in self.phrases.values():
            candidates.sort(key=lambda item: -len(item[0]))  # the longest term starting at a word wins
        self.heads = frozenset(self.words) | frozenset(self.phrases)
        self.keys = keys
        self.pattern = (regex.compile("|".join(regex.escape(key) for key in sorted(keys, key=len, reverse=True)))
                        if unspaced and keys else None)

    def find(self, text: str) -> tuple[str, str] | None:
        if self.pattern is not None:
            key = " ".join(_tokens(text))
            match = self.pattern.search(key)
            return self.keys[match.group()] if match else None
        tokens = _tokens(text)
        if self.heads.isdisjoint(tokens):  # the common case, in C
            return None
        for i, token in enumerate(tokens):
            for words, hit in self.phrases.get(token, ()):
                if tokens[i:i + len(words)] == words:
                    return hit
            if token in self.words:
                return self.words[token]
        return None


@dataclass(frozen=True)
class Blocklists:
    lists: tuple[BlockList, ...] = ()
    matchers: Mapping[str, Matcher] = field(default_factory=dict)  # lang tag -> its lists compiled


def _read_terms(path: Path) -> tuple[tuple[int, str], ...]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: byte 0x{data[err.start]:02X} is not UTF-8; save the file as UTF-8") from None
    terms = []
    for line, raw in enumerate(text.splitlines(), start=1):
        term = raw.strip()
        if term and not term.startswith("#"):
            terms.append((line, term))
    return tuple(terms)


def load_blocklists(folder: str | Path, scripts: Mapping[str, str], zero_width: str = "keep_joiners") -> Blocklists:
    """Every list under folder (none when it is missing), checked against the inventory's tags and compiled."""
    folder = Path(folder)
    if not folder.is_dir():
        return Blocklists()
    lists: list[BlockList] = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_dir() or path.name.startswith(".") or path.name.lower().startswith("readme"):
            continue
        if path.suffix != ".txt" or len(parts) > 2 or (len(parts) == 2 and not _LIST_NAME.fullmatch(path.stem)):
            raise UserError(f"{path}: not a blocklist; lists are {folder}/<tag>.txt or {folder}/<tag>/<name>.txt "
                            f"(name: letters, digits, - and _), one term a line")
        tag = parts[0] if len(parts) == 2 else path.stem
        if tag not in scripts:
            raise UserError(f"{path}: {tag!r} is not a language tag of {INVENTORY_PATH}; name the list after one of "
                            f"its tags: {', '.join(sorted(scripts))}")
        lists.append(BlockList(tag if len(parts) == 1 else f"{tag}/{path.stem}", tag, str(path), _read_terms(path)))
    lists.sort(key=lambda blocklist: (blocklist.lang, blocklist.id != blocklist.lang, blocklist.id))
    langs = sorted({blocklist.lang for blocklist in lists})
    matchers = {lang: Matcher([b for b in lists if b.lang == lang], zero_width, scripts[lang] in UNSPACED_SCRIPTS)
                for lang in langs}
    return Blocklists(tuple(lists), matchers)


def list_of(detail: str) -> str:
    """The list a blocklist reject's detail names."""
    return detail.split(":", 1)[0].removeprefix("blocklist ")


def _texts(side: BatchSide, rows: list[int]) -> list[str | None]:
    """The normalised texts of the rows: one Arrow take, not a call per row."""
    texts = side.column.take(np.array(rows, dtype=np.int64)).to_pylist() if rows else []
    return [side.prepared.get(row, text) for row, text in zip(rows, texts)]


@dataclass(frozen=True)
class BlocklistFilter:
    """A side holds a term of one of its language's blocklists (as whole words, after normalisation)."""

    name: ClassVar[str] = "blocklist"
    blocklists: Blocklists

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        if not self.blocklists.matchers:
            return
        for side in SIDES:
            langs = batch.langs[side]
            listed = np.array([lang in self.blocklists.matchers for lang in langs], dtype=bool)
            rows = np.flatnonzero(open_rows & batch.checked[side] & listed & self._may_match(batch.sides[side], langs))
            rows = rows.tolist()
            for row, text in zip(rows, _texts(batch.sides[side], rows)):
                if text and (hit := self.blocklists.matchers[langs[row]].find(text)):
                    yield row, f"blocklist {hit[0]}: {hit[1]!r} in {side}"

    def _may_match(self, side: BatchSide, langs: list[str | None]) -> np.ndarray:
        """Rows that may hold a term: of the plain Latin-1 rows, those with a word that starts a term of
        any list (found batch-wide in Arrow, words as comparison_key gives them); every other row."""
        may = np.ones(len(langs), dtype=bool)
        if side.latin1 is None:
            return may
        heads = sorted(set().union(*(matcher.heads for matcher in self.blocklists.matchers.values())))
        words, text_of = columnar.key_words(side.latin1, _LATIN1_KEY_TABLE)
        if (side.latin1.bytes == ord("'")).any():
            words = pc.utf8_trim(words, "'")  # _tokens drops quotes too
        hit = pc.is_in(words, value_set=pa.array(heads, type=words.type)).to_numpy(zero_copy_only=False)
        flagged = np.zeros(side.latin1.count, dtype=bool)
        flagged[text_of[hit]] = True
        # ß and µ casefold to other letters than the key table's; unspaced scripts match inside words
        flagged |= side.latin1.sums((side.latin1.bytes == 0xDF) | (side.latin1.bytes == 0xB5)) > 0
        unspaced = [lang for lang, matcher in self.blocklists.matchers.items() if matcher.pattern is not None]
        if unspaced:
            flagged |= np.isin(np.array([langs[row] for row in side.plain_rows], dtype=object), unspaced)
        may[side.plain_rows] = flagged
        return may


# --- the toxicity classifier ---------------------------------------------------------------------------


class ToxicityClassifier(Protocol):
    def score(self, texts: list[str], lang: str) -> list[float]:
        """One score in [0, 1] per text, all in language lang (higher: more toxic)."""


class HttpClassifier:
    """An OpenAI-compatible moderation endpoint (score: a result's highest category score) or a JSON
    endpoint answering {"texts": [...], "lang": tag} with {"scores": [...]}; batch_size texts a request."""

    def __init__(self, http: ScreeningHttpParams, transport: httpx.BaseTransport | None = None):
        self.http = http
        self._transport = transport  # tests may answer in process
        base = (http.url or "").rstrip("/")
        self.endpoint = f"{base}/moderations" if http.api == "openai" else (http.url or "")

    def score(self, texts: list[str], lang: str) -> list[float]:
        import httpx

        key = os.environ.get(SCREENING_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        scores: list[float] = []
        with httpx.Client(timeout=self.http.timeout_s, transport=self._transport) as client:
            for start in range(0, len(texts), self.http.batch_size):
                scores.extend(self._request(client, texts[start:start + self.http.batch_size], lang, headers))
        return scores

    def _request(self, client: httpx.Client, texts: list[str], lang: str, headers: dict) -> list[float]:
        import httpx  # already loaded by score(): a lookup in sys.modules

        body: dict = {"texts": texts, "lang": lang} if self.http.api == "json" else {"input": texts}
        if self.http.api == "openai" and self.http.model:
            body["model"] = self.http.model
        where = f"clean.screening.http: {self.endpoint}"
        try:
            response = client.post(self.endpoint, json=body, headers=headers)
        except httpx.HTTPError as err:
            message = " ".join(str(err).split())
            raise UserError(f"{where}: {type(err).__name__}: {message}; check the URL and that the server runs "
                            f"(or set clean.screening.classifier: null)") from None
        if response.status_code in (401, 403):
            raise UserError(f"{where} refused the request (HTTP {response.status_code}); "
                            f"set {SCREENING_KEY_ENV} to a valid key")
        if response.status_code >= 400:
            raise UserError(f"{where}: HTTP {response.status_code}: {' '.join(response.text[:200].split())}")
        try:
            answer = response.json()
            if self.http.api == "openai":
                scores = [max(map(float, result["category_scores"].values()), default=0.0)
                          for result in answer["results"]]
            else:
                scores = [float(score) for score in answer["scores"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            expected = "results[].category_scores" if self.http.api == "openai" else '{"scores": [...]}'
            raise UserError(f"{where}: the answer is not {expected}: {' '.join(response.text[:200].split())}") from None
        if len(scores) != len(texts):
            raise UserError(f"{where}: {len(scores)} scores for {len(texts)} texts; the endpoint must score each text")
        return scores


CLASSIFIERS = {"http": HttpClassifier}


def make_classifier(params: ScreeningParams) -> ToxicityClassifier | None:
    return CLASSIFIERS[params.classifier](params.http) if params.classifier else None


@dataclass(frozen=True)
class ToxicityFilter:
    """(clean.screening.classifier set) a side the classifier scores at or above max_toxicity."""

    name: ClassVar[str] = "toxicity"
    classifier: ToxicityClassifier | None
    max_toxicity: float

    def check(self, batch: FilterBatch, open_rows: np.ndarray) -> Rejections:
        if self.classifier is None:
            return
        still_open = open_rows.copy()  # a row rejected on its text is not sent again for its pivot
        for side in SIDES:
            langs = batch.langs[side]
            by_lang: dict[str, list[int]] = {}
            for row in np.flatnonzero(still_open & batch.checked[side]).tolist():
                if langs[row]:
                    by_lang.setdefault(langs[row], []).append(row)
            for lang, rows in sorted(by_lang.items()):
                texts = _texts(batch.sides[side], rows)
                sent = [(row, text) for row, text in zip(rows, texts) if text]
                scores = self.classifier.score([text for _, text in sent], lang) if sent else []
                for (row, _), score in zip(sent, scores):
                    if score >= self.max_toxicity:
                        still_open[row] = False
                        yield row, f"{side} scores {score:.3f} for toxicity (rejected from {self.max_toxicity})"


SCREEN_NAMES = (BlocklistFilter.name, ToxicityFilter.name)


def screens(params: CleanParams, blocklists: Blocklists | None = None) -> list[Filter]:
    """The screening filters, in the order they apply after the quality filters."""
    return [BlocklistFilter(blocklists or Blocklists()),
            ToxicityFilter(make_classifier(params.screening), params.screening.max_toxicity)]
