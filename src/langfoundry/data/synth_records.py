"""Synthetic variations as files: where the synthesize stage writes them, how ingest reads them, and the
review decisions file `langfoundry review-data` keeps.

The stage writes data/interim/media/synthesize/<seed source>.jsonl: one variation per line, its fields named
as records name them (headword/gloss, instruction/input/output, messages, text/pivot_text), with `origin`
and `meta`. Ingest reads each such file as a source of its own, `<seed source>.synthetic`, with the seed
source's kind and languages, so clean and dedup treat variations like any record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from langfoundry.core.config import MEDIA_DIR, Source
from langfoundry.core.errors import UserError
from langfoundry.core.storage import atomic_output, ensure_parent
from langfoundry.data.readers import Header, Item, Row, SourceFile
from langfoundry.data.readers.tabular import read_jsonl

STAGE_FOLDER = "synthesize"
SYNTHETIC_SUFFIX = ".synthetic"
SYNTHETIC_FORMAT = "synthetic"  # SourceFile.format of a synthesized file: read by read_synthetic
INDEX_FILE = "sources.json"  # variations per seed source, so the folder is never empty
REVIEW_FIELDS = ("seed_text", "variation_text")  # for people reviewing (review-data); ingest leaves them out
DECISIONS = ("accepted", "rejected")
REVIEW_STATES = ("pending", *DECISIONS)


def records_path(seed_source: str) -> Path:
    """data/interim/media/synthesize/<seed source>.jsonl, relative to the repository root."""
    return MEDIA_DIR / STAGE_FOLDER / f"{seed_source}.jsonl"


def synthetic_id(seed_source: str) -> str:
    return seed_source + SYNTHETIC_SUFFIX


def synthetic_source(seed: Source) -> Source:
    """The source ingest reads a seed source's variations as: its kind and languages, their file. A seed
    source with a per-row language column gets a `lang` field in each variation (columns: {lang: lang})."""
    update = {
        "id": synthetic_id(seed.id), "path": records_path(seed.id).as_posix(), "pivot_path": None,
        "format": "jsonl", "acquire": None, "media": None, "separator": None, "speaker": None,
        "columns": {"lang": "lang"} if "lang" in seed.columns else {}, "records_key": None, "sheet": None,
        "encoding": None, "target_examples": None, "planned": False,
        "group_by": None,  # variations carry their seed's group in meta, not in a column
        "notes": f"variations of {seed.id} (synthesize stage)"}
    return seed.model_copy(update=update)


def is_synthetic(source: Source) -> bool:
    return source.id.endswith(SYNTHETIC_SUFFIX) and source.path == records_path(
        source.id.removesuffix(SYNTHETIC_SUFFIX)).as_posix()


def synthetic_sources(sources: Iterable[Source], root: Path) -> list[Source]:
    """A `<id>.synthetic` source for each source the synthesize stage wrote variations of (none when it is off)."""
    sources = list(sources)
    taken = {source.id for source in sources}
    found = []
    for seed in sources:
        if seed.planned or is_synthetic(seed) or not (root / records_path(seed.id)).is_file():
            continue
        derived = synthetic_source(seed)
        if derived.id in taken:
            raise UserError(f"sources.yaml: source id {derived.id!r} is also the id of {seed.id!r}'s synthetic "
                            f"variations; rename that source")
        found.append(derived)
    return found


def synthetic_files(source: Source, root: Path) -> list[SourceFile]:
    path = root.absolute() / records_path(source.id.removesuffix(SYNTHETIC_SUFFIX))
    return [SourceFile(path, Path(source.path or "").as_posix(), SYNTHETIC_FORMAT)]


def read_synthetic(path: Path, name: str, source: Source) -> Iterator[Item]:
    """The stage's lines as rows: `origin` replaces file:line, `meta` (provenance, group, review) goes to meta."""
    for item in read_jsonl(path, name, source):
        if isinstance(item, Row):
            fields = dict(item.fields)
            origin = fields.pop("origin", None)
            meta = fields.pop("meta", None)
            for name in REVIEW_FIELDS:
                fields.pop(name, None)
            yield Row(origin if isinstance(origin, str) and origin else item.origin, fields,
                      meta if isinstance(meta, dict) else None)
        elif isinstance(item, Header):
            yield Header(item.file, tuple(column for column in item.columns if column not in ("origin", "meta", *REVIEW_FIELDS)))
        else:
            yield item


def variation_id(seed_id: str, register: str, model: str, text: str) -> str:
    """The id review decisions name: stable across reviews (a record's id changes with its meta)."""
    payload = "\x1f".join((seed_id, register, model, text))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def load_decisions(path: Path) -> dict[str, dict]:
    """variation id -> its decision line ({"id", "decision", "text"}); a later line for an id wins."""
    decisions: dict[str, dict] = {}
    if not path.is_file():
        return decisions
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or entry.get("decision") not in DECISIONS:
            raise UserError(f"{path}:{number}: expected {{\"id\": ..., \"decision\": \"accepted\"|\"rejected\"}}; "
                            f"fix or delete the line (langfoundry review-data writes this file)")
        decisions[entry["id"]] = entry
    return decisions


def save_decisions(path: Path, decisions: Mapping[str, dict]) -> None:
    """One line per variation, sorted by id, so the file diffs well in git."""
    with atomic_output(ensure_parent(path)) as partial, partial.open("w", encoding="utf-8", newline="\n") as out:
        for key in sorted(decisions):
            out.write(json.dumps(decisions[key], ensure_ascii=False, sort_keys=True) + "\n")


def read_variations(folder: Path) -> list[dict]:
    """Every variation the stage wrote (each line as written), in file and line order."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        with path.open(encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    return rows
