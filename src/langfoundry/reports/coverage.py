"""Coverage: how much data each language and dataset has at each level of the pipeline, against its target.

Levels: raw (rows ingest read: kept plus rejected), clean, dedup, and the train/val/test splits
(records), plus the chat examples format wrote per split. Tables are counted batch by batch and
JSONL files line by line, so memory stays flat however large the data grows. Targets come from the
inventory (per language) and the manifest (per dataset); the overall goal is a parameter.

The report also checks that rows are in the language they declare (langcheck.py): the script of
every raw row, and the pluggable identifiers on a bounded sample of distinct clean texts.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from langfoundry.clean.langcheck import (
    IdentifierReport,
    Sample,
    SampleReservoir,
    make_identifier,
    run_identifier,
    script_mismatch,
)
from langfoundry.core.config import CoverageParams, PathsParams, Source, source_inputs
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import Language, region_key
from langfoundry.core.normalize import comparison_key

RECORD_LEVELS = ("raw", "clean", "dedup")
SPLITS = ("train", "val", "test")
LEVELS = RECORD_LEVELS + SPLITS
BATCH_ROWS = 65_536
SIDES = (("text", "lang"), ("pivot_text", "pivot_lang"))
# Flagged rows kept for the flags file per (language, observed script); all of them are counted.
# A whole source in the wrong script would otherwise fill memory with copies of itself.
SCRIPT_FLAGS_PER_GROUP = 1000


@dataclass(frozen=True)
class CoveragePaths:
    ingested: Path
    ingest_rejects: Path
    clean: Path
    dedup: Path
    split: Path
    processed: Path
    metrics: Path
    report: Path
    chart: Path
    flags: Path

    @classmethod
    def from_params(cls, paths: PathsParams) -> CoveragePaths:
        return cls(ingested=paths.ingested, ingest_rejects=paths.ingest_rejects, clean=paths.clean, dedup=paths.dedup,
                   split=paths.split, processed=paths.processed, metrics=paths.metric("coverage"),
                   report=paths.reports / "coverage.md", chart=paths.reports / "coverage.png",
                   flags=paths.reports / "coverage_flags.jsonl")


# --- streaming counts -----------------------------------------------------------------------------


def iter_batches(path: Path, columns: Sequence[str], made_by: str) -> Iterator[pa.RecordBatch]:
    """A table's columns batch by batch, or one clear line naming the stage that makes it."""
    if not path.exists():
        raise UserError(f"{path}: not found; run the {made_by} stage first (dvc repro {made_by})")
    handle = pq.ParquetFile(path)
    missing = [name for name in columns if name not in handle.schema_arrow.names]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; rerun the {made_by} stage (dvc repro {made_by})")
    yield from handle.iter_batches(batch_size=BATCH_ROWS, columns=list(columns))


def count_parquet(path: Path, keys: Sequence[str], made_by: str) -> Counter:
    """Rows per combination of key columns, one batch in memory at a time."""
    counts: Counter = Counter()
    for batch in iter_batches(path, keys, made_by):
        grouped = pa.Table.from_batches([batch]).group_by(list(keys)).aggregate([([], "count_all")])
        for row in grouped.to_pylist():
            counts[tuple(row[key] for key in keys)] += row["count_all"]
    return counts


def count_jsonl(path: Path, key: str) -> tuple[int, Counter]:
    """(lines, lines per value of key) of a JSONL file, read one line at a time."""
    lines, counts = 0, Counter()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line).get(key)
            except (ValueError, AttributeError):
                raise UserError(f"{path}:{number}: not a JSON object; rerun the format stage (dvc repro format)") from None
            lines += 1
            counts[value] += 1
    return lines, counts


@dataclass
class LevelCounts:
    """records[level][(source, lang)] and chat examples[split][lang]."""

    records: dict[str, Counter] = field(default_factory=dict)
    examples: dict[str, Counter] = field(default_factory=dict)

    def by_lang(self, level: str) -> Counter:
        out: Counter = Counter()
        for (_, lang), count in self.records[level].items():
            out[lang] += count
        return out

    def by_source(self, level: str) -> Counter:
        out: Counter = Counter()
        for (source, _), count in self.records[level].items():
            out[source] += count
        return out


def count_levels(paths: CoveragePaths, sources: Sequence[Source]) -> LevelCounts:
    declared = {source.id: source.lang for source in sources}
    counts = LevelCounts()
    raw = count_parquet(paths.ingested, ("source", "lang"), "ingest")
    # A row rejected before it became a record may have no language yet: it counts for its source's.
    for (source, lang), count in count_parquet(paths.ingest_rejects, ("source", "lang"), "ingest").items():
        raw[(source, lang or declared.get(source, "und"))] += count
    counts.records["raw"] = raw
    counts.records["clean"] = count_parquet(paths.clean, ("source", "lang"), "clean")
    counts.records["dedup"] = count_parquet(paths.dedup, ("source", "lang"), "dedup")
    split = count_parquet(paths.split, ("source", "lang", "split"), "split")
    for name in SPLITS:
        counts.records[name] = Counter({(source, lang): count for (source, lang, part), count in split.items() if part == name})
    for name in SPLITS:
        path = paths.processed / f"{name}.jsonl"
        if not path.exists():
            raise UserError(f"{path}: not found; run the format stage first (dvc repro format)")
        counts.examples[name] = count_jsonl(path, "lang")[1]
    return counts


def missing_inputs(sources: Iterable[Source], root: Path = Path(".")) -> list[tuple[str, str]]:
    """(source id, path) for every declared file or acquired folder that is not there."""
    return [(source.id, path) for source in sources for path in source_inputs(source) if not (root / path).exists()]


# --- language checks --------------------------------------------------------------------------------


@dataclass
class ScriptCheck:
    checked: int = 0  # texts with letters, raw rows, both sides
    flagged: Counter = field(default_factory=Counter)  # (lang, observed script) -> rows
    flags: list[dict[str, Any]] = field(default_factory=list)


def iter_sides(path: Path, made_by: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(side, lang, text, row) for each non-empty side of each row of a record table, streamed."""
    columns = ("id", "source", "origin", "lang", "text", "pivot_lang", "pivot_text")
    for batch in iter_batches(path, columns, made_by):
        for row in batch.to_pylist():
            for side, lang_column in SIDES:
                if row[side] and row[lang_column]:
                    yield side, row[lang_column], row[side], row


def check_scripts(paths: CoveragePaths, scripts: Mapping[str, str]) -> ScriptCheck:
    """Every raw row's sides: is the dominant script the language's script in the inventory?"""
    check = ScriptCheck()
    for side, lang, text, row in iter_sides(paths.ingested, "ingest"):
        check.checked += 1
        observed = script_mismatch(text, scripts.get(lang))
        if observed:
            check.flagged[(lang, observed)] += 1
            if check.flagged[(lang, observed)] > SCRIPT_FLAGS_PER_GROUP:
                continue
            check.flags.append({"check": "script", "lang": lang, "expected": scripts[lang], "observed": observed,
                                "id": row["id"], "source": row["source"], "origin": row["origin"],
                                "side": side, "text": text[:200]})
    return check


def sample_clean_texts(paths: CoveragePaths, size: int, folds: int) -> list[Sample]:
    """A bounded, hash-chosen sample of distinct clean texts per language (both sides of pairs)."""
    reservoir = SampleReservoir(size, folds)
    for side, lang, text, row in iter_sides(paths.clean, "clean"):
        reservoir.offer(lang, comparison_key(text), text, row["id"], row["origin"], row["source"], side)
    return reservoir.samples()


def identify(samples: Sequence[Sample], params: CoverageParams, inventory_tags: Iterable[str]) -> list[IdentifierReport]:
    tags = sorted(inventory_tags)
    return [run_identifier(make_identifier(name, samples, tags, params.max_n), samples, params.min_confidence)
            for name in params.identifiers]


# --- the whole report ---------------------------------------------------------------------------------


@dataclass
class Coverage:
    params: CoverageParams
    inventory: Mapping[str, Language]
    sources: Sequence[Source]
    counts: LevelCounts
    missing: list[tuple[str, str]]
    scripts: ScriptCheck
    samples: int
    identifiers: list[IdentifierReport]

    def language_rows(self) -> list[dict[str, Any]]:
        """Every inventory language (and any other tag with data), with counts per level and progress."""
        level = self.params.count_level
        per_level = {name: self.counts.by_lang(name) for name in LEVELS}
        tags = sorted(set(self.inventory) | {lang for counter in per_level.values() for lang in counter})
        rows = []
        for tag in tags:
            language = self.inventory.get(tag)
            target = language.target_examples if language else 0
            count = per_level[level][tag]
            rows.append({"tag": tag, "language": language.language if language else tag,
                         "region": language.region if language else "not in the inventory",
                         "status": language.status if language else "", "target": target,
                         **{name: per_level[name][tag] for name in LEVELS},
                         "examples": sum(self.counts.examples[name][tag] for name in SPLITS),
                         "count": count, "progress": count / target if target else None})
        return rows

    def region_rows(self) -> list[dict[str, Any]]:
        regions: dict[str, dict[str, Any]] = defaultdict(lambda: {"languages": 0, "with_data": 0, "count": 0, "target": 0})
        for row in self.language_rows():
            region = regions[row["region"]]
            region["languages"] += 1
            region["with_data"] += row["raw"] > 0
            region["count"] += row["count"]
            region["target"] += row["target"]
        return [{"region": name, **values, "progress": values["count"] / values["target"] if values["target"] else None}
                for name, values in sorted(regions.items())]

    def source_rows(self) -> list[dict[str, Any]]:
        per_level = {name: self.counts.by_source(name) for name in LEVELS}
        missing = {source_id for source_id, _ in self.missing}
        rows = []
        for source in sorted(self.sources, key=lambda s: s.id):
            count = per_level[self.params.count_level][source.id]
            target = source.target_examples
            rows.append({"id": source.id, "kind": source.kind, "lang": source.lang, "pivot_lang": source.pivot_lang,
                         "category": source.category, "region": source.region, "priority": source.priority,
                         "license": source.license, "target": target, "missing": source.id in missing,
                         "planned": source.planned,
                         **{name: per_level[name][source.id] for name in LEVELS},
                         "count": count, "progress": count / target if target else None})
        return rows

    def total(self) -> int:
        return sum(self.counts.by_lang(self.params.count_level).values())

    def flags(self) -> list[dict[str, Any]]:
        rows = list(self.scripts.flags)
        for report in self.identifiers:
            for sample, prediction in report.flags:
                rows.append({"check": report.name, "lang": sample.lang, "expected": sample.lang,
                             "observed": prediction.label, "confidence": round(prediction.confidence, 4),
                             "id": sample.row_id, "source": sample.source, "origin": sample.origin,
                             "side": sample.side, "rows": sample.rows, "text": sample.text[:200]})
        return sorted(rows, key=lambda row: (row["check"], row["lang"], row["id"], row["side"]))

    def metrics(self) -> dict[str, Any]:
        level = self.params.count_level
        total = self.total()
        out: dict[str, Any] = {"count_level": level, "goal": self.params.goal, "total": total,
                               "goal_progress": total / self.params.goal,
                               "missing_inputs": len(self.missing), "sources": len(self.sources),
                               "sources_planned": sum(source.planned for source in self.sources)}
        for name in LEVELS:
            out[f"rows.{name}"] = sum(self.counts.records[name].values())
        for name in SPLITS:
            out[f"examples.{name}"] = sum(self.counts.examples[name].values())
        languages = self.language_rows()
        out["languages.inventory"] = len(self.inventory)
        out["languages.with_data"] = sum(row["raw"] > 0 for row in languages)
        out["languages.at_target"] = sum(bool(row["target"]) and row["count"] >= row["target"] for row in languages)
        for row in languages:
            if row["raw"] or row["examples"]:  # the other inventory languages are zeros: the report lists them
                for name in (*LEVELS, "target", "progress"):
                    out[f"lang.{row['tag']}.{name}"] = row[name]
        for row in self.region_rows():
            for name in ("count", "target", "progress", "languages", "with_data"):
                out[f"region.{region_key(row['region'])}.{name}"] = row[name]
        for row in self.source_rows():
            for name in (*LEVELS, "target", "progress", "missing"):
                out[f"source.{row['id']}.{name}"] = row[name]
        out["check.script.texts"] = self.scripts.checked
        out["check.script.flagged"] = sum(self.scripts.flagged.values())
        for (lang, observed), count in sorted(self.scripts.flagged.items()):
            out[f"check.script.lang.{lang}.{observed}"] = count
        out["identify.samples"] = self.samples
        for report in self.identifiers:
            prefix = f"identify.{report.name}"
            out[f"{prefix}.labels"] = len(report.labels)
            out[f"{prefix}.checked"] = report.checked
            out[f"{prefix}.accuracy"] = report.accuracy
            out[f"{prefix}.flagged"] = len(report.flags)
            for lang, (checked, correct) in report.per_lang.items():
                out[f"{prefix}.lang.{lang}.checked"] = checked
                out[f"{prefix}.lang.{lang}.accuracy"] = correct / checked if checked else None
        return out


def build_coverage(params: CoverageParams, sources: Sequence[Source], inventory: Mapping[str, Language],
                   paths: CoveragePaths, root: Path = Path(".")) -> Coverage:
    counts = count_levels(paths, sources)
    scripts = check_scripts(paths, {tag: language.script for tag, language in inventory.items()})
    samples = sample_clean_texts(paths, params.sample_per_lang, params.folds) if params.identifiers else []
    reports = identify(samples, params, inventory) if samples else []
    return Coverage(params, inventory, sources, counts, missing_inputs(sources, root), scripts, len(samples), reports)
