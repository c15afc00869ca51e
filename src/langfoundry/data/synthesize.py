"""Synthetic variations of seed examples: for each seed of the chosen sources, N variations per register
(formal, business, casual ...), asked of an OpenAI-compatible endpoint with one template per register.

The seeds are the records ingest makes of a source. What varies is the side a prompt asks with: a
dictionary entry's or a parallel pair's pivot side (its gloss or translation), an instruction, the first
user turn of a conversation, the text of the other kinds; the rest of the seed stays. Each variation keeps
its provenance (meta: synthetic, seed, seed_source, register, template, model, variation), its seed's split
group (meta "group", so a seed and its variations never straddle train and test) and its review state
(meta "review": pending until `langfoundry review-data` accepts or rejects it). A variation empty, equal
to its seed or near it is dropped and counted; dedup later removes duplicates among the rest.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langfoundry.core.config import Params, PathsParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.normalize import MULTILINE_KINDS, comparison_key, normalize_text
from langfoundry.data.synth_client import SynthClient, parse_variations
from langfoundry.data.synth_records import STAGE_FOLDER, records_path, variation_id

log = logging.getLogger(__name__)

PROGRESS_EVERY = 10  # seeds between progress lines
DROP_REASONS = ("unparseable", "empty", "surplus", "same_as_seed", "near_seed", "repeated")
PIVOT_SIDE_KINDS = ("dictionary", "parallel")  # the pivot side varies: the template language's own text
MESSAGE_KINDS = ("conversation", "feedback")


@dataclass
class SourceCounts:
    seeds: int = 0
    requests: int = 0
    requested: int = 0  # variations asked for
    returned: int = 0  # variations read out of the answers
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    review: Counter = field(default_factory=Counter)

    def as_metrics(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "requests": self.requests, "requested": self.requested, "returned": self.returned,
                "kept": self.kept, "dropped": {reason: self.dropped[reason] for reason in DROP_REASONS},
                "review": {state: self.review[state] for state in ("accepted", "rejected", "pending")}}


@dataclass(frozen=True)
class Template:
    register: str
    name: str  # <template_lang>/<register>@<hash of its text>: which wording asked
    text: str

    def prompt(self, n: int, language: str, seed_text: str) -> str:
        # plain replacement, not str.format: a template may show a JSON example with braces
        return self.text.replace("{n}", str(n)).replace("{language}", language).replace("{text}", seed_text)


def load_templates(folder: Path, template_lang: str, registers: list[str]) -> list[Template]:
    templates = []
    for register in registers:
        path = folder / template_lang / f"{register}.txt"
        if not path.is_file():
            raise UserError(f"{path}: no template for register {register!r} in format.template_lang "
                            f"{template_lang!r}; write it (see {folder}/id/) or remove the register from "
                            f"synthesize.registers")
        text = path.read_text(encoding="utf-8").strip()
        if "{text}" not in text:
            raise UserError(f"{path}: the template has no {{text}} placeholder (where the seed goes); add it")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        templates.append(Template(register, f"{template_lang}/{register}@{digest}", text))
    return templates


def seed_sources(sources: list[Source], wanted: list[str]) -> list[Source]:
    by_id = {source.id: source for source in sources}
    chosen = []
    for source_id in wanted:
        source = by_id.get(source_id)
        if source is None:
            hint = difflib.get_close_matches(source_id, list(by_id), n=1)
            raise UserError(f"params.yaml: synthesize.sources: no source {source_id!r} in sources.yaml"
                            + (f"; did you mean {hint[0]!r}?" if hint else ""))
        if source.planned:
            raise UserError(f"params.yaml: synthesize.sources: source {source_id!r} is planned (not read yet); "
                            f"remove it from synthesize.sources or set planned: false")
        chosen.append(source)
    return chosen


def read_seeds(source: Source, root: Path, allow_outside: bool, languages: list[str]) -> list[dict[str, Any]]:
    """The source's records exactly as ingest makes them (same readers, same mapping), one per id;
    languages: the inventory's tags, which a row's own tag (a lang column) must be one of."""
    from langfoundry.core.records import records_table, rejects_table
    from langfoundry.data.ingest import TableBuffer, ingest_source

    records, rejects = TableBuffer(records_table), TableBuffer(rejects_table)
    ingest_source(source, root, allow_outside, records, rejects, languages)
    unique = {row["id"]: row for row in records.table().to_pylist()}
    return list(unique.values())


def pick_seeds(records: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` records chosen by a hash of (seed, id): adding rows to a source rarely changes the choice."""
    def rank(record: dict[str, Any]) -> str:
        return hashlib.sha256(f"{seed}\x1f{record['id']}".encode()).hexdigest()

    return sorted(records, key=rank)[:count]


def varied_side(record: dict[str, Any]) -> tuple[str, str] | None:
    """(text to vary, its language tag) of a seed record, or None when it has no such text."""
    kind, meta = record["kind"], json.loads(record["meta"])
    if kind in PIVOT_SIDE_KINDS:
        text, lang = record["pivot_text"], record["pivot_lang"]
    elif kind == "instruction":
        text, lang = meta.get("instruction"), record["lang"]
    elif kind in MESSAGE_KINDS:
        text = next((turn["content"] for turn in meta.get("messages", []) if turn.get("role") == "user"), None)
        lang = record["lang"]
    else:
        text, lang = record["text"], record["lang"]
    return (text, lang) if isinstance(text, str) and text.strip() and lang else None


def variation_fields(record: dict[str, Any], text: str) -> dict[str, Any]:
    """The seed's fields, as records name them, with the varied side replaced by text."""
    kind, meta = record["kind"], json.loads(record["meta"])
    if kind == "dictionary":
        return {"headword": record["text"], "gloss": text, "pos": meta.get("pos"), "examples": meta.get("examples")}
    if kind == "parallel":
        return {"text": record["text"], "pivot_text": text}
    if kind == "instruction":
        return {"instruction": text, "input": meta.get("input"), "output": meta.get("output")}
    if kind in MESSAGE_KINDS:
        turns, replaced = [], False
        for turn in meta["messages"]:
            if turn["role"] == "user" and not replaced:
                turn, replaced = {**turn, "content": text}, True
            turns.append(turn)
        return {"messages": turns}
    return {"text": text, "pivot_text": record["pivot_text"]}


def seed_group(record: dict[str, Any], params: Params) -> str:
    """The split group of the seed as split will see it: its text after clean's normalisation."""
    from langfoundry.data.split import group_key

    text = normalize_text(record["text"], params.clean.zero_width, record["kind"] in MULTILINE_KINDS)
    return group_key(record["kind"], record["source"], text, record["meta"])


def vary_seed(record: dict[str, Any], source: Source, templates: list[Template], client: SynthClient,
              params: Params, decisions: dict[str, dict], counts: SourceCounts) -> list[dict[str, Any]]:
    """The kept variations of one seed, each a line of the records file."""
    settings = params.synthesize
    side = varied_side(record)
    if side is None:
        return []
    seed_text, lang = side
    language = params.format.language_names.get(lang, lang)
    seed_key = comparison_key(seed_text)
    group = seed_group(record, params)
    seen: set[str] = set()
    rows = []
    for template in templates:
        counts.requests += 1
        counts.requested += settings.variations
        answer = client.ask(template.prompt(settings.variations, language, seed_text))
        items = parse_variations(answer.content)
        if items is None:
            counts.dropped["unparseable"] += 1
            continue
        counts.returned += len(items)
        counts.dropped["surplus"] += max(0, len(items) - settings.variations)
        model = answer.model or settings.model
        for index, item in enumerate(items[:settings.variations]):
            text = normalize_text(item, params.clean.zero_width, record["kind"] in MULTILINE_KINDS)
            key = comparison_key(text)
            reason = ("empty" if not key else "same_as_seed" if key == seed_key
                      else "near_seed" if difflib.SequenceMatcher(None, seed_key, key).ratio() >= settings.max_similarity
                      else "repeated" if key in seen else None)
            if reason:
                counts.dropped[reason] += 1
                continue
            seen.add(key)
            vid = variation_id(record["id"], template.register, model, text)
            review = decisions.get(vid, {}).get("decision", "pending")
            counts.review[review] += 1
            meta = {"synthetic": True, "seed": record["id"], "seed_source": record["source"],
                    "register": template.register, "template": template.name, "model": model, "group": group,
                    "variation": vid, "review": review}
            origin = f"synthetic: seed {record['id']} ({record['origin']}), template {template.name}, model {model} #{index}"
            per_row = {"lang": record["lang"]} if "lang" in source.columns else {}  # the seed's own tag
            rows.append({**variation_fields(record, text), **per_row, "origin": origin, "meta": meta, "seed_text": seed_text,
                         "variation_text": text})
    counts.kept += len(rows)
    return rows


def synthesize_source(source: Source, templates: list[Template], client: SynthClient, params: Params,
                      root: Path, decisions: dict[str, dict], languages: list[str]
                      ) -> tuple[list[dict[str, Any]], SourceCounts]:
    settings = params.synthesize
    records = read_seeds(source, root, params.ingest.allow_outside_repo, languages)
    seeds = pick_seeds(records, settings.max_seeds, settings.seed)
    counts = SourceCounts(seeds=len(seeds))
    log.info("synthesize: %s: %d of %d records as seeds, %d register(s) x %d variation(s) each",
             source.id, len(seeds), len(records), len(templates), settings.variations)
    rows: list[dict[str, Any]] = []
    for number, record in enumerate(seeds, 1):
        rows += vary_seed(record, source, templates, client, params, decisions, counts)
        if number % PROGRESS_EVERY == 0 or number == len(seeds):
            log.info("  %s: %d/%d seeds, %d variations kept (cache: %d hits, %d asked)",
                     source.id, number, len(seeds), counts.kept, client.hits, client.misses)
    rows.sort(key=lambda row: row["meta"]["variation"])
    return rows, counts


def write_records(rows: list[dict[str, Any]], path: Path) -> None:
    from langfoundry.core.storage import write_jsonl

    write_jsonl(rows, path)  # keys sorted, compact: the same rows give the same bytes


def run_synthesis(params: Params, paths: PathsParams, sources: list[Source], root: Path,
                  transport: Any = None) -> dict[str, Any]:
    """Variations of every seed source into paths.media/synthesize/<source>.jsonl (only sources with some);
    returns the metrics and the number of variations written per source (under "written")."""
    from langfoundry.core.inventory import load_inventory
    from langfoundry.data.synth_records import load_decisions

    settings = params.synthesize
    languages = list(load_inventory(paths.inventory))
    templates = load_templates(paths.synthetic_templates, params.format.template_lang, settings.registers)
    decisions = load_decisions(paths.synthetic_review)
    client = SynthClient(settings, paths.synthetic_cache, transport)
    per_source: dict[str, SourceCounts] = {}
    written: dict[str, int] = {}
    produced: set[str] = set()
    try:
        for source in seed_sources(sources, settings.sources):
            rows, counts = synthesize_source(source, templates, client, params, root, decisions, languages)
            per_source[source.id] = counts
            produced.update(row["meta"]["variation"] for row in rows)
            if rows:  # none: no file, so ingest adds no empty source
                write_records(rows, paths.media / STAGE_FOLDER / records_path(source.id).name)
            written[source.id] = len(rows)
    finally:
        client.close()
    totals = SourceCounts()
    for counts in per_source.values():
        for name in ("seeds", "requests", "requested", "returned", "kept"):
            setattr(totals, name, getattr(totals, name) + getattr(counts, name))
        totals.dropped.update(counts.dropped)
        totals.review.update(counts.review)
    metrics = {"enabled": True, **totals.as_metrics(), "cache": {"hits": client.hits, "misses": client.misses},
               "decisions_unmatched": len(set(decisions) - produced),
               "sources": {source_id: counts.as_metrics() for source_id, counts in sorted(per_source.items())}}
    return {"metrics": metrics, "written": written}
