"""Coverage: counts per level, language, region and dataset against targets; streaming counts; missing inputs;
script and language-identifier checks; a deterministic report and chart."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from langfoundry.clean.langcheck import (
    NgramIdentifier,
    PackagedIdentifier,
    SampleReservoir,
    dominant_script,
    run_identifier,
    script_codes,
)
from langfoundry.core.config import AcquireSpec, CoverageParams, HuggingFaceSpec, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import Language
from langfoundry.core.normalize import comparison_key
from langfoundry.core.records import make_record, make_reject, records_table, rejects_table
from langfoundry.core.storage import write_jsonl, write_parquet
from langfoundry.reports import coverage as coverage_module
from langfoundry.reports.coverage import CoveragePaths, build_coverage, count_jsonl, count_parquet, missing_inputs
from langfoundry.reports.coverage_report import render_chart, render_report

INVENTORY = {
    "jv-x-banyumas": Language("Banyumasan", "jav", "jv-x-banyumas", "Latn", "Java", "Austronesian", "priority", 50),
    "id": Language("Indonesian", "ind", "id", "Latn", "Nationwide", "Austronesian", "core", 100),
    "ml": Language("Malayalam", "mal", "ml", "Mlym", "South Asia", "Dravidian", "priority", 10),
    "bug": Language("Buginese", "bug", "bug", "Latn", "Sulawesi", "Austronesian", "core", 20),
}
SOURCES = [
    Source(id="dict", kind="dictionary", lang="jv-x-banyumas", pivot_lang="id", path="data/raw/dict.csv",
           target_examples=10, license="MIT"),
    Source(id="ml-text", kind="monolingual", lang="ml", path="data/raw/ml.txt"),
    Source(id="hf", kind="parallel", lang="bug", pivot_lang="id",
           acquire=AcquireSpec(huggingface=HuggingFaceSpec(dataset="some-org/bugis", revision="abc123"))),
]
WORDS = [("adus", "mandi"), ("esuk", "pagi"), ("mangan", "makan"), ("sega", "nasi"), ("kowe", "kamu"), ("omah", "rumah")]
MALAYALAM = "മലയാളം നല്ല ഭാഷയാണ്"


def dict_record(index: int) -> dict:
    word, gloss = WORDS[index]
    return make_record(source="dict", kind="dictionary", lang="jv-x-banyumas", text=word, pivot_lang="id",
                       pivot_text=gloss, origin=f"data/raw/dict.csv:{index + 2}")


def write_pipeline(root: Path) -> CoveragePaths:
    """Tables of every level, small enough to count by hand:
    raw: dict 6 kept + 2 rejected (one with no language yet), ml-text 2 kept (one in Latin script) + 1 rejected;
    clean: dict 5, ml 1; dedup: dict 4, ml 1; splits: dict 2/1/1, ml 1/0/0."""
    paths = CoveragePaths(ingested=root / "ingested.parquet", ingest_rejects=root / "ingest_rejects.parquet",
                          clean=root / "clean.parquet", dedup=root / "dedup.parquet", split=root / "split.parquet",
                          processed=root / "processed", metrics=root / "metrics/coverage.json",
                          report=root / "reports/coverage.md", chart=root / "reports/coverage.png",
                          flags=root / "reports/coverage_flags.jsonl")
    words = [dict_record(i) for i in range(6)]
    malayalam = make_record(source="ml-text", kind="monolingual", lang="ml", text=MALAYALAM, origin="data/raw/ml.txt:1")
    latin = make_record(source="ml-text", kind="monolingual", lang="ml", text="this line is English", origin="data/raw/ml.txt:2")
    write_parquet(records_table(words + [malayalam, latin]), paths.ingested)
    rejects = [make_reject(source="dict", origin="data/raw/dict.csv:9", stage="ingest", reason="missing_field", raw="{}"),
               make_reject(source="dict", origin="data/raw/dict.csv:10", stage="ingest", reason="missing_field", raw="{}",
                           lang="jv-x-banyumas"),
               make_reject(source="ml-text", origin="data/raw/ml.txt:3", stage="ingest", reason="not_text", raw="1", lang="ml")]
    write_parquet(rejects_table(rejects), paths.ingest_rejects, sort_by=("source", "origin"))
    write_parquet(records_table(words[:5] + [malayalam]), paths.clean)
    kept = words[:4] + [malayalam]
    write_parquet(records_table(kept), paths.dedup)
    split = records_table(kept)
    split = split.append_column("group", pa.array([row["text"] for row in kept]))
    split = split.append_column("split", pa.array(["train", "train", "val", "test", "train"]))
    write_parquet(split, paths.split)
    for name, langs in (("train", ["jv-x-banyumas"] * 6 + ["ml"]), ("val", ["jv-x-banyumas"] * 3),
                        ("test", ["jv-x-banyumas"] * 3)):
        write_jsonl([{"id": f"{name}{i}", "lang": lang} for i, lang in enumerate(langs)], paths.processed / f"{name}.jsonl")
    (root / "data/raw").mkdir(parents=True)
    (root / "data/raw/dict.csv").write_text("ngapak,indonesia\n")
    return paths


@pytest.fixture
def built(tmp_path):
    paths = write_pipeline(tmp_path)
    params = CoverageParams(goal=100, count_level="dedup", identifiers=[])
    return build_coverage(params, SOURCES, INVENTORY, paths, root=tmp_path), paths


def test_counts_every_level_per_language_and_dataset(built):
    coverage, _ = built
    languages = {row["tag"]: row for row in coverage.language_rows()}
    assert {level: languages["jv-x-banyumas"][level] for level in ("raw", "clean", "dedup", "train", "val", "test")} == \
        {"raw": 8, "clean": 5, "dedup": 4, "train": 2, "val": 1, "test": 1}
    assert {level: languages["ml"][level] for level in ("raw", "clean", "dedup", "train", "val", "test")} == \
        {"raw": 3, "clean": 1, "dedup": 1, "train": 1, "val": 0, "test": 0}
    assert languages["jv-x-banyumas"]["examples"] == 12 and languages["ml"]["examples"] == 1
    assert languages["jv-x-banyumas"]["progress"] == 4 / 50 and languages["ml"]["progress"] == 1 / 10
    assert languages["bug"]["raw"] == 0 and languages["bug"]["progress"] == 0.0  # listed though it has no data yet
    sources = {row["id"]: row for row in coverage.source_rows()}
    assert (sources["dict"]["raw"], sources["dict"]["dedup"], sources["dict"]["progress"]) == (8, 4, 4 / 10)
    assert sources["ml-text"]["progress"] is None  # no target declared
    regions = {row["region"]: row for row in coverage.region_rows()}
    assert (regions["Java"]["count"], regions["Java"]["target"], regions["Java"]["with_data"]) == (4, 50, 1)
    assert regions["Sulawesi"]["with_data"] == 0

    metrics = coverage.metrics()
    assert metrics["total"] == 5 and metrics["goal_progress"] == 5 / 100
    assert (metrics["rows.raw"], metrics["rows.clean"], metrics["rows.train"]) == (11, 6, 3)
    assert (metrics["examples.train"], metrics["examples.val"]) == (7, 3)
    assert metrics["region.south-asia.progress"] == 1 / 10
    assert metrics["languages.with_data"] == 2 and metrics["languages.inventory"] == 4
    assert "lang.bug.raw" not in metrics  # languages without data are in the report, not the metrics


def test_the_count_level_and_the_goal_are_parameters(built, tmp_path):
    coverage, paths = built
    raw_level = build_coverage(CoverageParams(goal=22, count_level="raw", identifiers=[]), SOURCES, INVENTORY, paths, tmp_path)
    assert raw_level.total() == 11 and raw_level.metrics()["goal_progress"] == 0.5
    assert coverage.total() == 5


def test_missing_files_and_acquired_folders_are_listed(built, tmp_path):
    coverage, _ = built
    assert coverage.missing == [("ml-text", "data/raw/ml.txt"), ("hf", "data/raw/acquired/hf")]
    assert coverage.metrics()["missing_inputs"] == 2 and coverage.metrics()["source.hf.missing"] is True
    report = render_report(coverage, report_rows=5)
    assert "`hf`: `data/raw/acquired/hf` does not exist" in report
    (tmp_path / "data/raw/ml.txt").write_text(MALAYALAM)
    assert missing_inputs(SOURCES, tmp_path) == [("hf", "data/raw/acquired/hf")]


def test_script_mismatch_is_flagged_with_its_origin(built):
    coverage, _ = built
    assert coverage.scripts.flagged == Counter({("ml", "Latn"): 1})
    assert coverage.scripts.checked == 6 * 2 + 2  # both sides of the pairs, one side of the monolingual rows
    flag = coverage.flags()[0]
    assert (flag["check"], flag["expected"], flag["observed"], flag["origin"]) == ("script", "Mlym", "Latn", "data/raw/ml.txt:2")
    assert coverage.metrics()["check.script.lang.ml.Latn"] == 1


def test_dominant_script_reads_letters_only():
    assert dominant_script("Aku adus esuk.") == "Latn"
    assert dominant_script(MALAYALAM + " ok") == "Mlym"
    assert dominant_script("ߒ ߓߊ߯ ߘߌ߫") == "Nkoo"
    assert dominant_script("123 !?") is None
    assert {"Latn", "Mlym", "Nkoo", "Bugi", "Java"} <= set(script_codes())


def test_parquet_counts_stream_batch_by_batch(built, monkeypatch):
    _, paths = built
    whole = count_parquet(paths.ingested, ("source", "lang"), "ingest")
    monkeypatch.setattr(coverage_module, "BATCH_ROWS", 3)  # 8 rows: three batches
    assert count_parquet(paths.ingested, ("source", "lang"), "ingest") == whole == \
        Counter({("dict", "jv-x-banyumas"): 6, ("ml-text", "ml"): 2})


def test_a_large_jsonl_is_counted_line_by_line(tmp_path):
    path = tmp_path / "big.jsonl"
    langs = ["jv-x-banyumas", "id", "ml", "nqo"]
    payload = "x" * 150
    with path.open("w", encoding="utf-8") as handle:
        for i in range(120_000):
            handle.write(json.dumps({"id": i, "lang": langs[i % 4], "messages": payload}) + "\n")
    assert path.stat().st_size > 20_000_000
    lines, counts = count_jsonl(path, "lang")  # its memory peak: benchmarks/bench_memory.py
    assert lines == 120_000 and counts == Counter({lang: 30_000 for lang in langs})


def test_a_missing_table_names_the_stage_to_run(tmp_path):
    paths = write_pipeline(tmp_path)
    paths.dedup.unlink()
    with pytest.raises(UserError, match=r"dedup.parquet: not found; run the dedup stage"):
        build_coverage(CoverageParams(identifiers=[]), SOURCES, INVENTORY, paths, tmp_path)


INDONESIAN = ("saya kamu mereka kami rumah makan minum pergi datang besar kecil baru lama dengan untuk yang tidak "
              "sudah belum akan bisa harus sekali juga karena tetapi sangat banyak sedikit pagi malam hari").split()
ENGLISH = ("the and with this that from have will would could should about there their which people water house "
           "morning evening night through thought because little great small new old every other never always").split()


def phrases(words: list[str], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 6))) for _ in range(count)]


def samples_of(texts_by_lang: dict[str, list[str]], size: int = 10_000, folds: int = 5):
    reservoir = SampleReservoir(size, folds)
    for lang, texts in texts_by_lang.items():
        for number, text in enumerate(texts):
            reservoir.offer(lang, comparison_key(text), text, f"{lang}{number}", f"{lang}.txt:{number}", lang, "text")
    return reservoir.samples()


def test_ngram_identifier_tells_two_different_languages_apart_on_held_out_texts():
    samples = samples_of({"id": phrases(INDONESIAN, 300, 1), "en": phrases(ENGLISH, 300, 2)})
    report = run_identifier(NgramIdentifier(samples), samples, min_confidence=0.99)
    assert report.checked == len(samples) > 500
    assert report.accuracy > 0.97, report.confusion
    assert set(report.per_lang) == {"en", "id"}


def test_ngram_predictions_never_come_from_a_model_that_saw_the_text():
    # "zzz" is the only text of its language: held out, its language is unknown to the model that predicts it.
    samples = samples_of({"id": phrases(INDONESIAN, 60, 3), "en": phrases(ENGLISH, 60, 4), "xx": ["zzzq zzzq"]})
    identifier = NgramIdentifier(samples)
    lonely = [sample for sample in samples if sample.lang == "xx"]
    assert identifier.predict(lonely)[0].label != "xx"
    assert identifier.predict(samples) == identifier.predict(samples)  # and deterministic


def test_sample_reservoir_is_bounded_order_free_and_counts_repeats():
    texts = phrases(INDONESIAN, 400, 5)
    forward, backward = SampleReservoir(50, 5), SampleReservoir(50, 5)
    for number, text in enumerate(texts):
        forward.offer("id", comparison_key(text), text, str(number), "o", "s", "text")
    for number, text in reversed(list(enumerate(texts))):
        backward.offer("id", comparison_key(text), text, str(number), "o", "s", "text")
    assert len(forward.samples()) == 50
    assert [s.key for s in forward.samples()] == [s.key for s in backward.samples()]
    repeated = SampleReservoir(10, 5)
    for _ in range(3):
        repeated.offer("id", "rumah", "Rumah", "1", "o", "s", "text")
    assert [(s.key, s.rows) for s in repeated.samples()] == [("rumah", 3)]


def test_packaged_identifier_works_offline_on_the_inventory_languages_it_knows():
    identifier = PackagedIdentifier(["id", "en", "jv-x-banyumas", "su", "nqo"])
    assert set(identifier.labels()) <= {"id", "en", "jv", "su", "nqo"} and {"id", "en", "jv"} <= set(identifier.labels())
    assert identifier.covers("jv-x-banyumas") and identifier.agrees("jv-x-banyumas", "jv")
    samples = samples_of({"en": ["the weather is lovely this morning and we will walk to the house"],
                          "id": ["saya tidak bisa datang karena hujan sangat deras tadi malam"]})
    assert [p.label for p in identifier.predict(samples)] == ["en", "id"]


def test_identifiers_on_the_clean_sample_flag_disagreements(tmp_path):
    paths = write_pipeline(tmp_path)
    params = CoverageParams(identifiers=["ngram", "py3langid"], min_confidence=0.0, sample_per_lang=100)
    coverage = build_coverage(params, SOURCES, INVENTORY, paths, tmp_path)
    names = [report.name for report in coverage.identifiers]
    assert names == ["ngram", "py3langid"]
    metrics = coverage.metrics()
    assert metrics["identify.samples"] == 5 + 5 + 1  # distinct clean texts: 5 words, 5 glosses, 1 Malayalam line
    for report in coverage.identifiers:
        assert report.checked == report.correct + sum(report.confusion.values())
        flagged = [row for row in coverage.flags() if row["check"] == report.name]
        assert len(flagged) == len(report.flags) == report.checked - report.correct  # min_confidence 0: every miss


def test_report_and_chart_are_deterministic(built, tmp_path):
    coverage, paths = built
    first = render_report(coverage, report_rows=5)
    assert "## By region" in first and "## By language" in first and "## By dataset" in first
    assert "| Banyumasan | `jv-x-banyumas` | Java | priority | 8 | 5 | 4 | 2 | 1 | 1 | 50 | 8.0% |" in first
    render_chart(coverage, tmp_path / "a.png")
    render_chart(coverage, tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data.startswith(b"\x89PNG") and data == (tmp_path / "b.png").read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data.lower()
    again = build_coverage(coverage.params, SOURCES, INVENTORY, paths, tmp_path)
    assert render_report(again, report_rows=5) == first


def test_planned_sources_are_listed_but_neither_acquired_nor_ingested(tmp_path):
    from ingest_run import ingest_into

    from langfoundry.core.config import IngestParams
    from langfoundry.data.acquire import acquire_sources

    inventory = {tag: language for tag, language in INVENTORY.items()}
    later = Source(id="later", kind="monolingual", lang="bug", path="data/raw/bugis.txt", planned=True)
    hub = Source(id="hub-later", kind="parallel", lang="bug", pivot_lang="id", planned=True,
                 acquire=AcquireSpec(huggingface=HuggingFaceSpec(dataset="some-org/bugis", revision="abc123")))
    result = ingest_into(tmp_path / "data/interim", [later, hub], IngestParams(), inventory, root=tmp_path)
    assert result.records.num_rows == 0 and result.rejects.num_rows == 0
    assert acquire_sources([hub], root=tmp_path) == []  # no download attempted
    with pytest.raises(UserError, match="does not exist"):
        ingest_into(tmp_path / "data/interim", [Source(**{**later.model_dump(), "planned": False})], IngestParams(),
                    inventory, root=tmp_path)
    assert missing_inputs([later, hub], tmp_path) == [("later", "data/raw/bugis.txt"),
                                                      ("hub-later", "data/raw/acquired/hub-later")]
