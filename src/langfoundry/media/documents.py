"""A documents source (media: documents) through sentence alignment: linked sentence pairs for ingest, rejected
links with their reasons for people to look at.

A source's path is a document and its pivot_path the translation, both UTF-8 text with paragraphs separated
by blank lines. The anchors come from the dictionary sources of sources.yaml in the same two languages, read
with the project's own readers, so an anchor is exactly an entry the pipeline ingests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from langfoundry.core.config import AlignParams, Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers import read_file, source_files
from langfoundry.data.readers.encoding import read_text
from langfoundry.data.readers.rows import Row
from langfoundry.media.align import AlignSettings, Dictionary, align_documents


@dataclass
class DocumentCounts:
    source_sentences: int = 0
    target_sentences: int = 0
    links: Counter = field(default_factory=Counter)  # kind (1-1, 2-1, ...) -> links
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> links
    score_sum: float = 0.0

    def as_metrics(self) -> dict:
        return {"source_sentences": self.source_sentences, "target_sentences": self.target_sentences,
                "links": dict(sorted(self.links.items())), "accepted": self.accepted,
                "rejected": dict(sorted(self.rejected.items())),
                "mean_score": round(self.score_sum / self.accepted, 4) if self.accepted else None}


def settings_of(params: AlignParams) -> AlignSettings:
    return AlignSettings(min_score=params.min_score, anchor_weight=params.anchor_weight)


def dictionary_pairs(sources: Iterable[Source], lang: str, pivot_lang: str, root: Path) -> list[tuple[str, str]]:
    """(headword, gloss) of every dictionary source in lang with pivot_lang, as its files hold them."""
    pairs: list[tuple[str, str]] = []
    for source in sources:
        if source.kind != "dictionary" or source.media is not None or source.planned \
                or (source.lang, source.pivot_lang) != (lang, pivot_lang):
            continue
        headword, gloss = source.columns.get("headword", "headword"), source.columns.get("gloss", "gloss")
        for file in source_files(source, root):
            for item in read_file(file, source):
                if isinstance(item, Row) and isinstance(item.fields.get(headword), str) \
                        and isinstance(item.fields.get(gloss), str):
                    pairs.append((item.fields[headword], item.fields[gloss]))
    return pairs


def _document(root: Path, relative: str, source: Source) -> str:
    path = root / relative
    if not path.is_file():
        raise UserError(f"sources.yaml: source {source.id!r}: {relative} does not exist or is not a file; "
                        f"give one UTF-8 text file per side (path and pivot_path)")
    return read_text(path, "utf-8", relative)


def align_source(source: Source, dictionary: Dictionary | None, settings: AlignSettings, root: Path,
                 records: IO[str], rejects: IO[str]) -> DocumentCounts:
    """Align one document pair: accepted links to `records`, rejected ones to `rejects` (JSON Lines); the counts."""
    assert source.path is not None and source.pivot_path is not None and source.pivot_lang is not None
    text, pivot = _document(root, source.path, source), _document(root, source.pivot_path, source)
    alignment = align_documents(text, pivot, source.lang, source.pivot_lang, dictionary, settings,
                                where=f"source {source.id!r} ({source.path}, {source.pivot_path})")
    counts = DocumentCounts(len(alignment.source_sentences), len(alignment.target_sentences))
    for link in alignment.links:
        counts.links[link.kind] += 1
        sentences = _span(link.source)
        origin = f"{source.path}#sentences={sentences}&pivot={_span(link.target)}"
        row = {"text": " ".join(alignment.source_sentences[i] for i in link.source),
               "pivot_text": " ".join(alignment.target_sentences[j] for j in link.target),
               "origin": origin, "score": round(link.score, 4), "link": link.kind}
        if link.accepted:
            counts.accepted += 1
            counts.score_sum += link.score
            records.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            counts.rejected[link.reason or "rejected"] += 1
            rejects.write(json.dumps({"source": source.id, "reason": link.reason, **row}, ensure_ascii=False) + "\n")
    return counts


def _span(indices: tuple[int, ...]) -> str:
    """1-based sentence numbers: "4", "4-5", or "none" for the empty side of a 1-0 link."""
    if not indices:
        return "none"
    first, last = indices[0] + 1, indices[-1] + 1
    return str(first) if first == last else f"{first}-{last}"
