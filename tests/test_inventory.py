"""The language inventory and the dataset manifest hold checkable facts: every code, tag, script and
licence is checked against a maintained registry (langcodes' copy of the IANA subtag registry, which
carries ISO 639 and ISO 15924; the SPDX licence list of license-expression), not against a list kept here."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import langcodes
import pytest
import regex
from langcodes.registry_parser import parse_registry

from langfoundry.core.config import load_sources
from langfoundry.core.inventory import INVENTORY_PATH, REQUIRED_COLUMNS, load_inventory

REPO = Path(__file__).resolve().parents[1]
STATUSES = {"core", "priority", "expansion"}
# The tiers the inventory promises for the Indonesian languages (ISO 639-3 codes).
CORE = {"ind", "jav", "sun", "min", "bbc", "bug"}
PRIORITY = {"bew", "mkn", "pmy", "ljp", "gor", "sda"}
EXPANSION_NAMED = {"cia", "tjg", "alp", "jmd", "yli"}  # Cia-Cia, Tunjung, Alune, Yamdena, (Angguruk) Yali
INDONESIAN_REGIONS = {"Sumatra", "Java", "Kalimantan", "Sulawesi", "Bali and Nusa Tenggara", "Maluku", "Papua"}


def rows() -> list[dict[str, str]]:
    with (REPO / INVENTORY_PATH).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def registry() -> dict[tuple[str, str], dict]:
    """(type, subtag) -> entry of the IANA language subtag registry that langcodes ships."""
    return {(entry["Type"], entry["Subtag"]): entry for entry in parse_registry() if "Subtag" in entry}


def iso639_3_problem(code: str) -> str | None:
    """Why code is not an ISO 639-3 code (None when it is)."""
    if not regex.fullmatch(r"[a-z]{3}", code):
        return "not three lower-case letters"
    language = langcodes.Language.get(code)
    if not language.is_valid():
        return "unknown to the registry"
    if language.to_alpha3() != code:  # a bibliographic (639-2/B) or deprecated code maps to another one
        return f"not the ISO 639-3 form (that is {language.to_alpha3()!r})"
    entry = registry().get(("language", language.language), {})
    if entry.get("Scope") in ("collection", "private-use") or code.startswith("q") and "qaa" <= code <= "qtz":
        return f"a {entry.get('Scope', 'private-use')} code, not a language"
    return None


def iso15924_codes() -> set[str]:
    """Script subtags of the registry: the ISO 15924 codes (the Qaaa..Qabx private range is one entry)."""
    return {subtag for kind, subtag in registry() if kind == "script" and ".." not in subtag}


def test_inventory_has_every_column_and_at_least_fifty_languages():
    table = rows()
    assert list(table[0]) == list(REQUIRED_COLUMNS)
    assert len(table) >= 50
    assert len(load_inventory(REPO / INVENTORY_PATH)) == len(table)  # the pipeline reads every row


def test_the_iso_check_rejects_what_is_not_an_iso_639_3_language():
    assert iso639_3_problem("bbc") is None and iso639_3_problem("ind") is None and iso639_3_problem("msa") is None
    assert "collection" in iso639_3_problem("btk")  # Batak languages: ISO 639-5 only
    assert "ISO 639-3 form" in iso639_3_problem("may")  # 639-2/B for Malay
    assert iso639_3_problem("xyz") == "unknown to the registry"
    assert iso639_3_problem("id") == "not three lower-case letters"
    assert "private-use" in iso639_3_problem("qaa")


@pytest.mark.parametrize("row", rows(), ids=lambda row: row["tag"])
def test_row_facts_check_out(row):
    problem = iso639_3_problem(row["iso_code"])
    assert problem is None, f"{row['language']}: iso_code {row['iso_code']!r} is {problem}"

    tag = langcodes.Language.get(row["tag"])
    assert langcodes.tag_is_valid(row["tag"]), f"{row['tag']!r} is not a valid BCP 47 tag"
    assert langcodes.standardize_tag(row["tag"]) == row["tag"], "write the tag in its standard form"
    assert tag.language == langcodes.Language.get(row["iso_code"]).language, \
        f"tag {row['tag']!r} names another language than iso_code {row['iso_code']!r}"

    assert row["script"] in iso15924_codes(), f"{row['script']!r} is not an ISO 15924 code"
    regex.compile(rf"\p{{sc={row['script']}}}")  # and the pipeline's regex module can match letters of it
    assert tag.script in (None, row["script"]), "the tag's script subtag and the script column disagree"

    assert row["status"] in STATUSES
    assert row["region"].strip() and row["family"].strip() and row["language"].strip()
    assert 0 < float(row["estimated_speakers_millions"]) < 2000
    assert int(row["target_examples"]) > 0


def test_names_agree_with_the_registry_for_single_language_rows():
    """The language column names the language its code stands for (catches a right-looking wrong code).

    Rows whose name says more than the code (a dialect, a script) are named in the registry's words too."""
    pytest.importorskip("language_data")
    for row in rows():
        registered = langcodes.Language.get(row["iso_code"]).language_name("en")
        simple = lambda text: regex.sub(r"[^a-z]", "", text.casefold())  # noqa: E731  (N'Ko vs N’Ko, Sa'dan)
        mentioned = simple(registered.split(" (")[0]) in simple(row["language"] + row["notes"])
        assert mentioned, f"{row['language']} ({row['iso_code']}): the registry calls it {registered!r}"


def test_indonesian_tiers_and_regions_are_covered():
    table = rows()
    status = {row["iso_code"]: row["status"] for row in table if not row["tag"].count("-x-")}
    assert all(status.get(code) == "core" for code in CORE), {code: status.get(code) for code in CORE}
    assert all(status.get(code) == "priority" for code in PRIORITY), {code: status.get(code) for code in PRIORITY}
    assert all(status.get(code) == "expansion" for code in EXPANSION_NAMED)
    expansion_regions = {row["region"] for row in table if row["status"] == "expansion"}
    assert INDONESIAN_REGIONS <= expansion_regions
    tags = {row["tag"] for row in table}
    assert {"jv-x-banyumas", "nqo", "bm", "ml"} <= tags
    assert {row["script"] for row in table if row["tag"] == "nqo"} == {"Nkoo"}
    assert {row["script"] for row in table if row["tag"] == "ml"} == {"Mlym"}


def test_every_language_in_the_manifest_is_in_the_inventory():
    inventory = load_inventory(REPO / INVENTORY_PATH)
    for source in load_sources(REPO / "sources.yaml").sources:
        for tag in (source.lang, source.pivot_lang):
            assert tag is None or tag in inventory, f"{source.id}: {tag!r} is not in {INVENTORY_PATH}"


MANIFEST_FIELDS = ("category", "region", "target_examples", "priority", "license", "notes")


def spdx_problem(expression: str) -> str | None:
    """Why a licence is not a valid SPDX expression in its canonical spelling (None when it is)."""
    from license_expression import get_spdx_licensing

    if regex.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", expression):  # SPDX's own form for a licence of one's own
        return None
    info = get_spdx_licensing().validate(expression, strict=True)
    if info.errors:
        return "; ".join(info.errors)
    if info.normalized_expression != expression:
        return f"write it as {info.normalized_expression!r}"
    return None


def test_spdx_check_accepts_ids_and_rejects_free_text():
    assert spdx_problem("MIT") is None and spdx_problem("CC-BY-SA-4.0") is None
    assert spdx_problem("Apache-2.0 OR MIT") is None and spdx_problem("LicenseRef-community-only") is None
    assert spdx_problem("mit") == "write it as 'MIT'"
    assert "Unknown license key" in spdx_problem("free for research")


def test_every_source_fills_the_manifest_with_an_spdx_licence():
    for source in load_sources(REPO / "sources.yaml").sources:
        missing = [name for name in MANIFEST_FIELDS if getattr(source, name) in (None, "")]
        assert not missing, f"{source.id}: manifest field(s) {missing} are empty in sources.yaml"
        problem = spdx_problem(source.license)
        assert problem is None, f"{source.id}: license {source.license!r}: {problem}"
