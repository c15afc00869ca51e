"""A language per row (columns: {lang: ...}) and declared split groups (group_by), from sources.yaml
through ingest, clean and split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ingest_run import ingest_into

from langfoundry.clean.driver import clean_parquet
from langfoundry.core.config import CleanParams, IngestParams, Source, SplitParams
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.data.split import assign_splits, split_metrics

REPO = Path(__file__).resolve().parents[1]
INVENTORY = load_inventory(REPO / "data/inventory/languages.csv")
SCRIPTS = {tag: language.script for tag, language in INVENTORY.items()}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def mixed_rows() -> list[dict]:
    return [
        {"text": "Omahé adoh banget saka kali.", "metadata": {"language": "jv-x-banyumas"}},
        {"text": "Rumahnya jauh sekali dari sungai.", "metadata": {"language": "ID"}},  # tags are case-insensitive
        {"text": "വീട് പുഴയിൽ നിന്ന് വളരെ ദൂരെയാണ്.", "metadata": {"language": "ml"}},
        {"text": "Das Haus ist weit vom Fluss.", "metadata": {"language": "de"}},
        {"text": "La maison est loin de la rivière.", "metadata": {"language": "fr"}},
        {"text": "Das Dorf liegt am Berg.", "metadata": {"language": "de"}},
        {"text": "Wong-wong padha lunga menyang pasar.", "metadata": {}},  # no tag: the source's lang
    ]


def mixed_source(path: str, **extra) -> Source:
    return Source(id="mixed", kind="monolingual", lang="jv-x-banyumas", format="jsonl", path=path,
                  columns={"lang": "metadata.language"}, **extra)


def test_each_row_takes_its_tag_and_unknown_tags_are_rejects_counted_per_tag(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "mixed.jsonl", mixed_rows())
    ingested = ingest_into(tmp_path / "out", [mixed_source("mixed.jsonl")], IngestParams(), INVENTORY, root=tmp_path)
    langs = {row["text"]: row["lang"] for row in ingested.records.to_pylist()}
    assert langs == {"Omahé adoh banget saka kali.": "jv-x-banyumas", "Rumahnya jauh sekali dari sungai.": "id",
                     "വീട് പുഴയിൽ നിന്ന് വളരെ ദൂരെയാണ്.": "ml",
                     "Wong-wong padha lunga menyang pasar.": "jv-x-banyumas"}
    rejects = ingested.rejects.to_pylist()
    assert Counter(row["reason"] for row in rejects) == {"unknown_lang": 3}
    assert all("data/inventory/languages.csv" in row["detail"] for row in rejects)
    assert {json.loads(row["raw"])["text"] for row in rejects} == {
        "Das Haus ist weit vom Fluss.", "La maison est loin de la rivière.", "Das Dorf liegt am Berg."}
    assert ingested.metrics["sources"]["mixed"]["unknown_lang_tags"] == {"de": 2, "fr": 1}
    assert ingested.metrics_file()["sources.mixed.unknown_lang_tags.de"] == 2


def test_clean_judges_each_row_by_its_own_language(tmp_path: Path) -> None:
    # Declared Banyumasan (Latin script), the Malayalam row passes the script filter because its tag says ml.
    write_jsonl(tmp_path / "mixed.jsonl", mixed_rows())
    ingested = ingest_into(tmp_path / "out", [mixed_source("mixed.jsonl")], IngestParams(), INVENTORY, root=tmp_path)
    kept, rejects = tmp_path / "clean.parquet", tmp_path / "clean_rejects.parquet"
    counts = clean_parquet(ingested.paths[0], kept, rejects, CleanParams(), SCRIPTS, workers=1)
    assert sorted(pq.read_table(kept).column("lang").to_pylist()) == ["id", "jv-x-banyumas", "jv-x-banyumas", "ml"]
    assert counts[("kept", "ml")] == 1


def test_a_parallel_csv_with_a_lang_column_leaves_the_column_wise_path(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("text,pivot_text,lang\nomah,rumah,jv-x-banyumas\nomah,rumah,jv\n"
                                        "wong,orang,\n", encoding="utf-8")
    source = Source(id="pairs", kind="parallel", lang="jv-x-banyumas", pivot_lang="id", format="csv",
                    path="pairs.csv", columns={"lang": "lang"})
    records = ingest_into(tmp_path / "out", [source], IngestParams(), INVENTORY, root=tmp_path).records.to_pylist()
    assert sorted((row["text"], row["lang"], row["pivot_lang"]) for row in records) == [
        ("omah", "jv", "id"), ("omah", "jv-x-banyumas", "id"), ("wong", "jv-x-banyumas", "id")]
    assert len({row["id"] for row in records}) == 3, "the same pair in two languages is two records"


def test_a_mapped_lang_column_the_file_lacks_stops_with_one_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "mixed.jsonl", [{"text": "omah", "lang": "jv"}])
    source = Source(id="mixed", kind="monolingual", lang="jv", format="jsonl", path="mixed.jsonl",
                    columns={"lang": "language"})
    with pytest.raises(UserError, match=r"no column 'language' for lang; did you mean 'lang'\?"):
        ingest_into(tmp_path / "out", [source], IngestParams(), INVENTORY, root=tmp_path)


def test_lang_is_a_column_every_kind_may_map() -> None:
    from langfoundry.data.mapping import check_source

    check_source(Source(id="d", kind="dictionary", lang="jv", pivot_lang="id", path="d.csv", columns={"lang": "l"}))
    with pytest.raises(UserError, match="columns.langs is not a field of kind dictionary; did you mean 'lang'"):
        check_source(Source(id="d", kind="dictionary", lang="jv", pivot_lang="id", path="d.csv", columns={"langs": "l"}))


def documents_csv(path: Path, documents: int, sentences: int) -> Path:
    lines = ["doc_id,text,pivot_text"]
    for document in range(documents):
        for sentence in range(sentences):
            lines.append(f"D{document:03d},ukara {document} nomer {sentence},kalimat {document} nomor {sentence}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_group_by_keeps_every_row_of_a_document_on_one_side(tmp_path: Path) -> None:
    documents_csv(tmp_path / "docs.csv", documents=60, sentences=5)
    source = Source(id="docs", kind="parallel", lang="jv", pivot_lang="id", format="csv", path="docs.csv",
                    group_by="doc_id")
    ingested = ingest_into(tmp_path / "out", [source], IngestParams(), INVENTORY, root=tmp_path)
    table = assign_splits(ingested.records, SplitParams(val_fraction=0.2, test_fraction=0.2))
    rows = table.select(["group", "split", "meta"]).to_pylist()
    assert {json.loads(row["meta"])["group"] for row in rows} == {f"group:docs:D{n:03d}" for n in range(60)}
    splits_per_group: dict[str, set[str]] = {}
    for row in rows:
        splits_per_group.setdefault(row["group"], set()).add(row["split"])
    assert len(splits_per_group) == 60 and all(len(splits) == 1 for splits in splits_per_group.values())
    assert set().union(*splits_per_group.values()) == {"train", "val", "test"}, "60 documents reach every split"
    metrics = split_metrics(table)
    assert metrics["groups"]["total"] == 60 and metrics["groups_in_several_splits"] == 0


def test_without_group_by_the_same_rows_group_by_sentence(tmp_path: Path) -> None:
    documents_csv(tmp_path / "docs.csv", documents=20, sentences=5)
    source = Source(id="docs", kind="parallel", lang="jv", pivot_lang="id", format="csv", path="docs.csv")
    ingested = ingest_into(tmp_path / "out", [source], IngestParams(), INVENTORY, root=tmp_path)
    table = assign_splits(ingested.records, SplitParams())
    assert len(set(table.column("group").to_pylist())) == 100


def test_group_by_a_column_the_file_lacks_is_one_line(tmp_path: Path) -> None:
    documents_csv(tmp_path / "docs.csv", documents=2, sentences=2)
    source = Source(id="docs", kind="parallel", lang="jv", pivot_lang="id", format="csv", path="docs.csv",
                    group_by="docid")
    with pytest.raises(UserError, match=r"docs.csv has no column 'docid' for group_by; did you mean 'doc_id'\?"):
        ingest_into(tmp_path / "out", [source], IngestParams(), INVENTORY, root=tmp_path)


def test_a_declared_group_wins_over_the_headword() -> None:
    from langfoundry.data.split import group_key

    assert group_key("dictionary", "dict", "adem", '{"group":"group:dict:lesson-3"}') == "group:dict:lesson-3"
    assert group_key("dictionary", "dict", "adem", "{}") == "text:adem"
