"""Labelled text (kind labelled): a label column through ingest, dedup within a task, a split stratified by label,
the classification sets format writes, and the gate on rows per label."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from ingest_run import ingest_into
from pydantic import ValidationError

from langfoundry.clean.dedup.decision import batch_keys
from langfoundry.core.config import DedupParams, IngestParams, Source, SplitParams, load_params
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import make_record, records_table
from langfoundry.data.classification import classification_sets, label_table
from langfoundry.data.split import assign_splits, stratum_targets

REPO = Path(__file__).resolve().parents[1]
INVENTORY = load_inventory(REPO / "data/inventory/languages.csv")
INTENTS = {"cek_saldo": 60, "blokir_kartu": 25, "ganti_pin": 7, "keluhan": 3}  # label -> rows, one label rare


WORDS = ("pagi", "siang", "sore", "malam", "kemarin", "besok", "lusa", "minggu", "bulan", "tahun", "kantor", "rumah",
         "pasar", "jalan", "bank", "kartu", "rekening", "tagihan", "pulsa", "paket", "aplikasi", "cabang", "teller",
         "nasabah", "transfer", "bunga", "cicilan", "denda", "limit", "token", "kode", "email", "alamat", "nomor")


def utterance(label: str, number: int) -> str:
    """A sentence per label and number that near dedup does not take for another one."""
    rng = random.Random(f"{label}/{number}")
    return f"{label.replace('_', ' ')} {number}: " + " ".join(f"{word}{rng.randrange(1000)}" for word in rng.sample(WORDS, 6))


def labelled_record(text: str, label: str, task: str = "intent", line: int = 1) -> dict:
    return make_record(source=f"calls-{task}", kind="labelled", lang="id", text=text, origin=f"calls.csv:{line}",
                       meta={"label": label, "task": task})


def intent_records() -> list[dict]:
    return [labelled_record(utterance(label, number), label, line=number)
            for label, count in INTENTS.items() for number in range(count)]


def test_a_labelled_source_needs_a_task_and_only_labelled_sources_take_one():
    with pytest.raises(ValidationError, match="kind labelled needs task"):
        Source(id="calls", kind="labelled", lang="id", path="calls.csv")
    with pytest.raises(ValidationError, match="task names the classification set"):
        Source(id="calls", kind="monolingual", lang="id", path="calls.csv", task="intent")
    with pytest.raises(ValidationError, match="task"):
        Source(id="calls", kind="labelled", lang="id", path="calls.csv", task="Intent Names")


def test_ingest_reads_text_and_label_columns_and_rejects_a_row_without_a_label(tmp_path: Path):
    (tmp_path / "calls.csv").write_text("utterance,intent\nSaya mau cek saldo,cek_saldo\nKartu saya hilang,"
                                        " blokir_kartu \nHalo?,\n", encoding="utf-8")
    source = Source(id="calls", kind="labelled", lang="id", task="intent", path="calls.csv",
                    columns={"text": "utterance", "label": "intent"})
    ingested = ingest_into(tmp_path / "out", [source], IngestParams(), INVENTORY, root=tmp_path)
    records = ingested.records.to_pylist()
    assert [(row["text"], json.loads(row["meta"])) for row in sorted(records, key=lambda row: row["origin"])] == [
        ("Saya mau cek saldo", {"label": "cek_saldo", "task": "intent"}),
        ("Kartu saya hilang", {"label": "blokir_kartu", "task": "intent"})]  # the label's spaces trimmed
    rejects = ingested.rejects.to_pylist()
    assert [(row["reason"], row["origin"]) for row in rejects] == [("missing_field", "calls.csv:4")]
    assert "intent" in rejects[0]["detail"]


def test_a_hugging_face_class_label_column_arrives_as_label_names(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    from langfoundry.data.acquire import with_label_names

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "neutral", "positive"])})
    loaded = datasets.Dataset.from_dict({"text": ["jelek", "biasa", "bagus", "?"], "label": [0, 1, 2, -1]},
                                        features=features)
    named = with_label_names(loaded, datasets)
    assert named.to_list() == [{"text": "jelek", "label": "negative"}, {"text": "biasa", "label": "neutral"},
                               {"text": "bagus", "label": "positive"}, {"text": "?", "label": None}]


def test_one_sentence_in_two_tasks_is_kept_twice_and_a_copy_within_a_task_is_a_duplicate():
    sentence = "Saya kecewa, kartu saya diblokir tanpa alasan."
    rows = [labelled_record(sentence, "keluhan", "intent", 1), labelled_record(sentence, "negative", "sentiment", 1),
            labelled_record(sentence, "keluhan", "intent", 2)]
    keys = batch_keys(records_table(rows), DedupParams(), None)
    digests = [tuple(row) for row in keys.digests.tolist()]
    assert digests[0] != digests[1]  # intent and sentiment: both kept
    assert digests[0] == digests[2]  # the same sentence twice in one task: a copy


def test_the_split_is_stratified_by_label_and_deterministic():
    params = SplitParams()
    table = assign_splits(records_table(intent_records()), params)
    counts = Counter(zip((json.loads(meta)["label"] for meta in table.column("meta").to_pylist()),
                         table.column("split").to_pylist()))
    for label, rows in INTENTS.items():
        test, val = stratum_targets(rows, params)
        assert (counts[(label, "test")], counts[(label, "val")]) == (test, val), label
        assert counts[(label, "train")] == rows - test - val
    assert counts[("keluhan", "test")] == counts[("keluhan", "val")] == counts[("keluhan", "train")] == 1
    again = assign_splits(records_table(list(reversed(intent_records()))), params)
    assert dict(zip(again.column("id").to_pylist(), again.column("split").to_pylist())) == \
        dict(zip(table.column("id").to_pylist(), table.column("split").to_pylist()))


def test_stratifying_keeps_groups_whole_and_leaves_other_kinds_alone():
    # The same utterance under two labels is one group: it must not sit on both sides.
    shared = utterance("cek_saldo", 0)
    rows = [*intent_records(), labelled_record(shared, "keluhan", line=999)]
    monolingual = [make_record(source="stories", kind="monolingual", lang="id", text=f"Cerita ke-{n}.",
                               origin=f"stories.txt:{n}") for n in range(40)]
    params = SplitParams()
    table = assign_splits(records_table(rows + monolingual), params)
    splits_of = {}
    for text, split in zip(table.column("text").to_pylist(), table.column("split").to_pylist()):
        splits_of.setdefault(text, set()).add(split)
    assert len(splits_of[shared]) == 1
    alone = assign_splits(records_table(monolingual), params)
    assert sorted(zip(alone.column("id").to_pylist(), alone.column("split").to_pylist())) == sorted(
        (row_id, split) for row_id, kind, split in zip(table.column("id").to_pylist(), table.column("kind").to_pylist(),
                                                       table.column("split").to_pylist()) if kind == "monolingual")


def test_classification_sets_and_label_table_from_a_split_table():
    table = assign_splits(records_table(intent_records()), SplitParams())
    sets = classification_sets(table)
    assert list(sets) == ["intent"]
    assert sum(len(rows) for rows in sets["intent"].values()) == sum(INTENTS.values())
    assert all(set(row) == {"id", "text", "label", "lang", "source", "origin"} for row in sets["intent"]["train"])
    labels = {row["label"]: row for row in label_table(sets).to_pylist()}
    assert {label: row["total"] for label, row in labels.items()} == INTENTS
    assert labels["cek_saldo"]["train"] == len([row for row in sets["intent"]["train"] if row["label"] == "cek_saldo"])


def stage_main(name: str) -> Callable:
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_data_stages(folder: Path, rows: list[tuple[str, str]], min_per_label: int, lang_column: bool = False):
    """A labelled CSV (text, label and, with lang_column, each row's language) and a parallel file through
    the five data stages, gates on."""
    shutil.copytree(REPO / "expectations", folder / "expectations")
    (folder / "data" / "inventory").mkdir(parents=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", folder / "data" / "inventory")
    raw = folder / "data" / "raw"
    raw.mkdir(parents=True)
    with (raw / "calls.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utterance", "intent", "lang"])
        writer.writerows((text, label, label if lang_column else "") for text, label in rows)
    (raw / "pairs.id").write_text("".join(f"Rumah nomor {n} dekat sungai.\n" for n in range(30)), encoding="utf-8")
    (raw / "pairs.en").write_text("".join(f"House number {n} is near the river.\n" for n in range(30)), encoding="utf-8")
    sources = [{"id": "calls", "kind": "labelled", "lang": "id", "task": "intent", "path": "data/raw/calls.csv",
                "columns": {"text": "utterance", "label": "intent", **({"lang": "lang"} if lang_column else {})}},
               {"id": "pairs", "kind": "parallel", "lang": "id", "pivot_lang": "en", "path": "data/raw/pairs.id",
                "pivot_path": "data/raw/pairs.en", "format": "txt"}]
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={
        "paths": params.paths.under(folder),
        "quality": params.quality.model_copy(update={"min_examples_per_label": min_per_label})})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for stage in ("ingest", "clean", "dedup", "split", "format"):
            if stage == "dedup":
                stage_main(stage)(params, params.paths)
            else:
                stage_main(stage)(params, params.paths, gate=True)
    return params


def call_rows() -> list[tuple[str, str]]:
    return [(utterance(label, number), label) for label, count in INTENTS.items() for number in range(count)]


def test_format_writes_classification_sets_and_the_gate_passes(tmp_path: Path, capsys):
    params = run_data_stages(tmp_path, call_rows(), min_per_label=1)
    folder = params.paths.processed / "classification" / "intent"
    rows = {split: [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
            for split in ("train", "val", "test")}
    assert {row["label"] for row in rows["test"]} == set(INTENTS)  # every label is tested
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))["labels"]
    assert {label: sum(counts.values()) for label, counts in labels.items()} == INTENTS
    chat = [json.loads(line) for split in ("train", "val", "test")
            for line in params.paths.split_file(split).read_text(encoding="utf-8").splitlines()]
    assert chat and {example["source"] for example in chat} == {"pairs"}  # labelled rows train no chat task
    metrics = json.loads(params.paths.metric("format").read_text(encoding="utf-8"))
    assert metrics["classification.intent.labels"] == len(INTENTS)
    assert "records_without_task.labelled" not in metrics
    gate = json.loads((params.paths.metrics / "quality" / "classification.json").read_text(encoding="utf-8"))
    assert gate["expectations.failed"] == 0 and gate["rows"] == len(INTENTS)
    assert "classification (train/val/test): intent" in capsys.readouterr().out


def test_a_label_with_too_few_training_rows_stops_format_naming_it(tmp_path: Path, capsys):
    with pytest.raises(UserError, match="quality gate classification failed"):
        run_data_stages(tmp_path, call_rows(), min_per_label=6)
    table = capsys.readouterr().err
    assert "intent keluhan: train=1" in table and "intent ganti_pin: train=5" in table
    assert "intent cek_saldo" not in table


def test_without_labelled_sources_the_gate_says_it_had_nothing_to_check(tmp_path: Path):
    params = run_data_stages(tmp_path, [], min_per_label=20)
    gate = json.loads((params.paths.metrics / "quality" / "classification.json").read_text(encoding="utf-8"))
    assert gate["expectations.evaluated"] == 0
    assert (params.paths.processed / "classification" / "README.txt").is_file()
    assert not list((params.paths.processed / "classification").glob("*/train.jsonl"))
    assert set(pq.read_table(params.paths.split).column("kind").to_pylist()) == {"parallel"}
    assert params.paths.split_file("train").read_text(encoding="utf-8")  # the rest of format ran as before


def test_check_reads_a_labelled_file_and_names_a_row_without_a_label(tmp_path: Path):
    import subprocess
    import sys

    (tmp_path / "calls.csv").write_text("utterance,intent\nSaya mau cek saldo,cek_saldo\nHalo?,\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "langfoundry.cli.main", "check", str(tmp_path / "calls.csv"),
                             "--kind", "labelled", "--lang", "id", "--map", "utterance=text", "--map", "intent=label"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usable:     1 (50.0%)" in result.stdout, result.stdout
    assert "missing_field 1" in result.stdout and "calls.csv:3" in result.stdout and "(label) is empty" in result.stdout


def django_messages(lang: str) -> list[str]:
    """The translated messages of Django's own catalogue for a language, as the installed wheel ships it."""
    polib = pytest.importorskip("polib")
    spec = importlib.util.find_spec("django")
    assert spec is not None, "django is missing: install the dev extras"
    catalogue = Path(spec.origin).parent / "conf" / "locale" / lang / "LC_MESSAGES" / "django.po"
    return [entry.msgstr for entry in polib.pofile(str(catalogue)) if entry.msgstr and not entry.fuzzy]


def test_real_catalogues_as_a_language_identification_set_indonesian_against_malay(tmp_path: Path):
    # Text no one on the project wrote: Django's Indonesian and Malay translations, labelled by language, the
    # closest pair in the inventory. Default thresholds: every label needs 20 training rows.
    rows = [(text, lang) for lang in ("id", "ms") for text in django_messages(lang)]
    assert len(rows) > 400
    params = run_data_stages(tmp_path, rows, min_per_label=20, lang_column=True)
    folder = params.paths.processed / "classification" / "intent"
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))["labels"]
    assert set(labels) == {"id", "ms"}
    split = SplitParams()
    for label, counts in labels.items():
        test, val = stratum_targets(sum(counts.values()), split)
        assert (counts["test"], counts["val"]) == (test, val), label  # stratified exactly, after clean and dedup
    shared = set(django_messages("id")) & set(django_messages("ms"))  # "Email", "URL", ...: one text, two labels
    metrics = json.loads(params.paths.metric("format").read_text(encoding="utf-8"))
    assert 0 < metrics["classification.intent.texts_with_several_labels"] <= len(shared)
    test_rows = [json.loads(line) for line in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(row["lang"] == row["label"] for row in test_rows)  # each row kept its own language tag
    assert all(row["origin"].startswith("data/raw/calls.csv:") for row in test_rows)
    texts = {split_name: {json.loads(line)["text"] for line in (folder / f"{split_name}.jsonl").read_text(
        encoding="utf-8").splitlines()} for split_name in ("train", "val", "test")}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["val"]  # no sentence on two sides
    assert texts["test"] & shared or texts["train"] & shared  # a text of both labels sits on one side, with both
