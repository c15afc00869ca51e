"""The language inventory (data/inventory/languages.csv): which languages, which scripts, what targets."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from langfoundry.core.errors import UserError

INVENTORY_PATH = Path("data/inventory/languages.csv")
REQUIRED_COLUMNS = ("language", "iso_code", "tag", "script", "region", "family",
                    "estimated_speakers_millions", "status", "target_examples", "notes")


@dataclass(frozen=True)
class Language:
    language: str
    iso_code: str
    tag: str
    script: str  # ISO 15924 code, e.g. Latn, Mlym, Nkoo
    region: str
    family: str
    status: str
    target_examples: int


def load_inventory(path: str | Path = INVENTORY_PATH) -> dict[str, Language]:
    """Languages by BCP 47 tag."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: language inventory not found; it lists every language tag the sources use")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}; the header must have {', '.join(REQUIRED_COLUMNS)}")
        languages: dict[str, Language] = {}
        for line, row in enumerate(reader, start=2):
            tag = row["tag"].strip()
            if tag in languages:
                raise UserError(f"{path}:{line}: tag {tag!r} appears twice; each tag gets one row")
            try:
                target = int(row["target_examples"] or 0)
            except ValueError:
                raise UserError(f"{path}:{line}: target_examples {row['target_examples']!r} is not a whole number") from None
            languages[tag] = Language(row["language"], row["iso_code"], tag, row["script"].strip(), row["region"],
                                      row["family"], row["status"], target)
    return languages


def region_key(region: str) -> str:
    """A region as a metric key: "Bali and Nusa Tenggara" -> "bali-and-nusa-tenggara"."""
    return "-".join("".join(char if char.isalnum() else " " for char in region.casefold()).split()) or "none"


def region_keys(inventory: dict[str, Language]) -> dict[str, str]:
    """Language tag -> its region's metric key."""
    return {tag: region_key(language.region) for tag, language in inventory.items()}


def require_languages(tags: set[str], inventory: dict[str, Language], where: str) -> None:
    """Fail with one line if a tag is not in the inventory."""
    unknown = sorted(tag for tag in tags if tag and tag not in inventory)
    if unknown:
        raise UserError(f"{where}: language tag(s) {', '.join(map(repr, unknown))} not in {INVENTORY_PATH}; "
                        f"add a row there or use one of its tags")


def validate_project(params_path: str | Path, sources_path: str | Path | None = None,
                     inventory_path: str | Path | None = None) -> str:
    """Load params and sources strictly and check every language tag they use; the one-line summary.
    Sources and inventory default to params.yaml's paths."""
    from langfoundry.core.config import load_params, load_sources  # config is heavier; validate alone needs it

    paths = load_params(params_path).paths
    sources_path, inventory_path = sources_path or paths.sources, inventory_path or paths.inventory
    sources = load_sources(sources_path).sources
    inventory = load_inventory(inventory_path)
    for source in sources:
        require_languages({source.lang, source.pivot_lang or ""}, inventory, f"{sources_path}: source {source.id!r}")
    return f"ok: {params_path} valid; {len(sources)} source(s) in {sources_path}, every language in {inventory_path}"
