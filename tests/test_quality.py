"""Quality gates: each suite passes on good data, each family of expectations catches planted bad data
and names the offending rows' origins, reports and metrics are written either way, and a failed gate
stops its stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langfoundry.core.config import FormatParams, Params, QualityParams, SplitParams
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import make_record, make_reject, records_table, rejects_table
from langfoundry.core.storage import write_jsonl, write_parquet
from langfoundry.data.chat import format_records
from langfoundry.data.split import assign_splits
from langfoundry.gates.gate import enforce, failure_table, suite_parameters, validate
from langfoundry.gates.streamed import clean_gate_tables, ingested_gate_tables, processed_gate_tables, split_gate_tables

REPO = Path(__file__).resolve().parents[1]
INVENTORY = load_inventory(REPO / "data/inventory/languages.csv")
SCRIPTS = {tag: language.script for tag, language in INVENTORY.items()}
QUALITY = QualityParams()
PARAMETERS = suite_parameters(Params(), INVENTORY)
HEADWORDS = ["adem", "banyu", "cedhak", "dhuwur", "enggal", "gedhang", "inyong", "jagong", "kepriwe", "lemah",
             "manuk", "nggolet", "omah", "pitik", "rika", "sega", "tuku", "urip", "wedang", "yakin"]
GLOSSES = ["dingin", "air", "dekat", "tinggi", "cepat", "pisang", "saya", "jagung", "bagaimana", "tanah",
           "burung", "mencari", "rumah", "ayam", "kamu", "nasi", "beli", "hidup", "minuman", "yakin sekali"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A place for reports and metrics, with the repository's suites."""
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    return tmp_path


def entry(i: int, source: str = "kamus", lang: str = "jv-x-banyumas", text: str | None = None,
          pivot: str | None = None, line: int | None = None) -> dict:
    return make_record(source=source, kind="dictionary", lang=lang, text=text or HEADWORDS[i % 20] + "an" * (i // 20),
                       pivot_lang="id", pivot_text=pivot or GLOSSES[i % 20],
                       origin=f"data/raw/{source}.csv:{line if line is not None else i + 2}")


def reject(i: int, source: str = "kamus", stage: str = "ingest") -> dict:
    return make_reject(source=source, origin=f"data/raw/{source}.csv:{100 + i}", stage=stage, reason="missing_field",
                       raw="{}")


def suite_size(name: str) -> int:
    return len(json.loads((REPO / "expectations" / f"{name}.json").read_text())["expectations"])


def failed(result, expectation: str):
    matches = [failure for failure in result.failures if failure.expectation == expectation]
    assert matches, f"{expectation} did not fail; failures: {[f.expectation for f in result.failures]}"
    return matches[0]


# --- the gated tables, read from files as the stages write them -----------------------------------------


def parquet(table: pa.Table, path: Path) -> Path:
    write_parquet(table, path, sort_by=("id", "origin"))
    return path


def ingested(root: Path, rows: list[dict], rejects: list[dict], rows_read: dict, quality: QualityParams = QUALITY):
    return ingested_gate_tables(parquet(records_table(rows), root / "data/records.parquet"),
                                parquet(rejects_table(rejects), root / "data/rejects.parquet"), rows_read, quality)


def clean(root: Path, ingested_rows: pa.Table, kept: pa.Table, rejects: pa.Table, quality: QualityParams = QUALITY):
    return clean_gate_tables(parquet(ingested_rows, root / "data/ingested.parquet"),
                             parquet(kept, root / "data/clean.parquet"),
                             parquet(rejects, root / "data/clean_rejects.parquet"), SCRIPTS, quality)


def split(root: Path, unsplit: pa.Table, table: pa.Table):
    return split_gate_tables(parquet(unsplit, root / "data/dedup.parquet"), parquet(table, root / "data/split.parquet"),
                             QUALITY)


def processed(root: Path, examples: dict, split_table: pa.Table):
    """The examples written as the format stage writes them (each file sorted by id); a context
    manager, since the flat example table lives in a temporary folder while it is open."""
    files = {name: root / f"data/processed/{name}.jsonl" for name in examples}
    for name, rows in examples.items():
        write_jsonl(sorted(rows, key=lambda example: example["id"]), files[name])
    return processed_gate_tables(files, parquet(split_table, root / "data/split.parquet"))


# --- good data for each gated table, built with the pipeline's own functions --------------------------


def good_ingested(root: Path):
    return contextlib.nullcontext(ingested(root, [entry(i) for i in range(20)], [reject(0)], {"kamus": 21}))


def good_clean(root: Path):
    ingested_rows = records_table([entry(i) for i in range(20)])
    kept = records_table([entry(i) for i in range(18)])
    rejects = rejects_table([reject(i, stage="clean") for i in range(2)])
    return contextlib.nullcontext(clean(root, ingested_rows, kept, rejects))


def good_split_table() -> pa.Table:
    return assign_splits(records_table([entry(i) for i in range(40)]), SplitParams(val_fraction=0.2, test_fraction=0.2))


def good_split(root: Path):
    return contextlib.nullcontext(split(root, records_table([entry(i) for i in range(40)]), good_split_table()))


def good_examples() -> dict:
    return format_records(good_split_table(), FormatParams(), seed=1).examples


def good_processed(root: Path):
    return processed(root, good_examples(), good_split_table())


GOOD = {"ingested": good_ingested, "clean": good_clean, "split": good_split, "processed": good_processed}


@pytest.mark.parametrize("name", list(GOOD))
def test_each_suite_passes_on_good_data_and_writes_report_and_metrics(root: Path, name: str, capsys) -> None:
    with GOOD[name](root) as tables:
        result = validate(name, tables, PARAMETERS, root)
    assert result.success, failure_table(result)
    assert result.evaluated == result.passed == suite_size(name)
    enforce(result)
    assert f"gate {name}: {result.evaluated}/{result.evaluated} expectations passed in" in capsys.readouterr().out
    metrics = json.loads((root / f"metrics/quality/{name}.json").read_text())
    assert (metrics["expectations.evaluated"], metrics["expectations.passed"], metrics["expectations.failed"]) == \
        (suite_size(name), suite_size(name), 0)
    site = root / "reports/quality" / name
    assert (site / "index.html").is_file()
    assert list((site / "validations" / name).rglob("*.html"))


# --- each family of expectations fails on planted bad data ------------------------------------------


def test_same_content_on_two_lines_passes_ingest_because_dedup_removes_it(root: Path) -> None:
    rows = [entry(i) for i in range(10)]
    rows.append(dict(rows[3], origin="data/raw/kamus.csv:77"))  # one id, two lines: a duplicate, not a bug
    result = validate("ingested", ingested(root, rows, [], {"kamus": 11}), PARAMETERS, root)
    assert result.success, failure_table(result)


def test_a_line_read_twice_fails_and_names_its_origin(root: Path, capsys) -> None:
    rows = [entry(i) for i in range(10)]
    rows.append(dict(rows[3]))  # the same record from the same line: a reader bug
    result = validate("ingested", ingested(root, rows, [], {"kamus": 10}), PARAMETERS, root)
    failure = failed(result, "expect_compound_columns_to_be_unique(id, origin)")
    assert failure.rows_failed == 2
    assert {example.split(":")[1] for example in failure.examples} == {"5"}
    with pytest.raises(UserError, match="quality gate ingested failed"):
        enforce(result)
    assert "data/raw/kamus.csv:5" in capsys.readouterr().err


def test_unknown_language_fails_with_the_row_origin(root: Path) -> None:
    rows = [entry(i) for i in range(10)] + [entry(10, lang="xx-nowhere", line=42)]
    result = validate("ingested", ingested(root, rows, [], {"kamus": 11}), PARAMETERS, root)
    failure = failed(result, "expect_column_values_to_be_in_set(lang)")
    assert failure.rows_failed == 1 and failure.examples == ["data/raw/kamus.csv:42: lang='xx-nowhere'"]


def test_group_in_train_and_test_is_leakage(root: Path) -> None:
    table = good_split_table()
    splits = table.column("split").to_pylist()
    groups = table.column("group").to_pylist()
    test_row = splits.index("test")
    train_row = splits.index("train")
    groups[train_row] = groups[test_row]  # a training row now shares the test row's group
    leaky = table.set_column(table.schema.get_field_index("group"), "group", pa.array(groups))
    result = validate("split", split(root, table.select(table.column_names[:-2]), leaky), PARAMETERS, root)
    failure = failed(result, "expect_column_values_to_be_in_set(group_in_several_splits)")
    origins = table.column("origin").to_pylist()
    assert failure.rows_failed == 2
    assert sorted(example.split(": ")[0] for example in failure.examples) == sorted([origins[test_row], origins[train_row]])


def test_rows_lost_between_input_and_outputs_break_conservation(root: Path) -> None:
    ingested_rows = records_table([entry(i) for i in range(12)])
    kept = records_table([entry(i) for i in range(10)])
    rejects = rejects_table([reject(0, stage="clean")])  # one row is neither kept nor rejected
    result = validate("clean", clean(root, ingested_rows, kept, rejects), PARAMETERS, root)
    failure = failed(result, "expect_column_pair_values_to_be_equal(rows_in, accounted)")
    assert failure.table == "sources" and failure.examples == ["source kamus: rows_in=12, accounted=11"]
    metrics = json.loads((root / "metrics/quality/clean.json").read_text())
    assert metrics["expectations.failed"] == len(result.failures) == 1
    assert metrics["expectations.evaluated"] == suite_size("clean") == metrics["expectations.passed"] + 1


def test_garbage_source_over_the_reject_rate_stops_the_gate_naming_it(root: Path) -> None:
    ingested_rows = records_table([entry(i) for i in range(10)] + [entry(i, source="noisy") for i in range(10)])
    kept = records_table([entry(i) for i in range(10)] + [entry(i, source="noisy") for i in range(3)])
    rejects = rejects_table([reject(i, source="noisy", stage="clean") for i in range(7)])
    result = validate("clean", clean(root, ingested_rows, kept, rejects), PARAMETERS, root)
    failure = failed(result, "expect_column_pair_values_a_to_be_greater_than_b(allowed_reject_rate, reject_rate)")
    assert failure.examples == ["source noisy: allowed_reject_rate=0.5, reject_rate=0.7"]
    with pytest.raises(UserError, match="source noisy"):
        enforce(result)
    # A source known to be noisy can be given its own limit.
    lenient = QualityParams(max_reject_rate_by_source={"noisy": 0.8})
    assert validate("clean", clean(root, ingested_rows, kept, rejects, lenient), PARAMETERS, root).success


def test_a_limit_for_a_source_that_does_not_exist_is_a_user_error(root: Path) -> None:
    quality = QualityParams(max_reject_rate_by_source={"nosiy": 0.8})
    with pytest.raises(UserError, match="quality.max_reject_rate_by_source.nosiy: there is no source 'nosiy'"):
        ingested(root, [entry(0)], [], {"noisy": 1}, quality)


def test_script_ratio_and_untranslated_pivots_are_checked_per_source(root: Path) -> None:
    rows = [entry(i) for i in range(10)]
    rows += [entry(i, source="copied", pivot=HEADWORDS[i]) for i in range(10)]  # pivot = text: nothing translated
    rows += [entry(i, source="wrong-script", text=f"മലയാളം{'ം' * i}") for i in range(10)]  # Malayalam tagged Banyumasan
    table = records_table(rows)
    result = validate("clean", clean(root, table, table, rejects_table([])), PARAMETERS, root)
    assert failed(result, "expect_column_values_to_be_between(text_equals_pivot_share)").examples == \
        ["source copied: text_equals_pivot_share=1"]
    assert failed(result, "expect_column_values_to_be_between(mean_script_ratio)").examples == \
        ["source wrong-script: mean_script_ratio=0"]


def test_latin_rows_that_clean_removes_do_not_stop_ingest(root: Path) -> None:
    # A real UI catalogue: a quarter of its Malayalam side is untranslated format strings (%Y, calendar:MY).
    malayalam = [make_record(source="ui", kind="parallel", lang="ml", text=f"തീയതി {i}", pivot_lang="en",
                             pivot_text=f"date {i}", origin=f"ml.po:{i}") for i in range(30)]
    latin = [make_record(source="ui", kind="parallel", lang="ml", text=f"%Y-{i}", pivot_lang="en",
                         pivot_text=f"%Y-{i}", origin=f"ml.po:{100 + i}") for i in range(10)]
    assert validate("ingested", ingested(root, malayalam + latin, [], {"ui": 40}), PARAMETERS, root).success
    ingested_rows = records_table(malayalam + latin)
    # clean's script filter drops the Latin rows; what it keeps is judged, and passes
    rejects = rejects_table([make_reject(source="ui", origin=row["origin"], stage="clean", reason="script_ratio",
                                         raw="{}") for row in latin])
    kept = records_table(malayalam)
    assert validate("clean", clean(root, ingested_rows, kept, rejects), PARAMETERS, root).success
    # had clean kept them, its gate would have named the source
    result = validate("clean", clean(root, ingested_rows, ingested_rows, rejects_table([])), PARAMETERS, root)
    assert failed(result, "expect_column_values_to_be_between(mean_script_ratio)").examples == \
        ["source ui: mean_script_ratio=0.75"]


def test_text_longer_than_clean_max_chars_fails_with_its_origin(root: Path) -> None:
    rows = [entry(i) for i in range(10)] + [entry(10, text="panjang " * 300, line=9)]
    table = records_table(rows)
    result = validate("clean", clean(root, table, table, rejects_table([])), PARAMETERS, root)
    failure = failed(result, "expect_column_value_lengths_to_be_between(text)")
    assert failure.rows_failed == 1 and failure.examples[0].startswith("data/raw/kamus.csv:9: text='panjang panjang")


def test_meta_that_is_not_json_fails_with_its_origin_and_real_meta_passes(root: Path) -> None:
    rows = [entry(i) for i in range(8)]
    rows[3] = dict(rows[3], meta=json.dumps({"pos": "verba"}))
    rows[5] = dict(rows[5], meta='{"pos": "verba"')  # cut short
    table = records_table(rows)
    result = validate("clean", clean(root, table, table, rejects_table([])), PARAMETERS, root)
    failure = failed(result, "expect_column_values_to_be_json_parseable(meta)")
    assert failure.rows_failed == 1
    assert failure.examples == [f"{rows[5]['origin']}: meta='{{\"pos\": \"verba\"'"]
    assert [f.expectation for f in result.failures] == ["expect_column_values_to_be_json_parseable(meta)"]


def test_invalid_chat_examples_fail_with_origin_and_reason(root: Path) -> None:
    examples = good_examples()
    broken = dict(examples["train"][0], messages=examples["train"][0]["messages"][:1])  # ends with the user
    empty = dict(examples["val"][0], messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}])
    examples["train"][0], examples["val"][0] = broken, empty
    split_table = good_split_table()
    with processed(root, examples, split_table) as tables:
        result = validate("processed", tables, PARAMETERS, root)
    failure = failed(result, "expect_column_values_to_be_in_set(chat_valid)")
    origin_of = dict(zip(split_table.column("id").to_pylist(), split_table.column("origin").to_pylist()))
    assert failure.rows_failed == 2
    shown = "\n".join(failure.examples)
    assert origin_of[broken["record_id"]] in shown and origin_of[empty["record_id"]] in shown
    assert "are not (system,) user/assistant turns ending with assistant" in shown and "empty content" in shown


def test_example_moved_to_another_split_is_caught(root: Path) -> None:
    examples = good_examples()
    moved = examples["test"].pop(0)
    examples["train"].append(moved)
    with processed(root, examples, good_split_table()) as tables:
        result = validate("processed", tables, PARAMETERS, root)
    assert failed(result, "expect_column_pair_values_to_be_equal(split, record_split)").rows_failed == 1
    assert failed(result, "expect_column_values_to_be_in_set(group_in_several_splits)").rows_failed >= 2


def test_a_missing_column_fails_its_expectations_instead_of_crashing(root: Path) -> None:
    table = good_split_table()
    result = validate("split", split(root, table, table.drop_columns(["group"])), PARAMETERS, root)
    assert failed(result, "expect_table_columns_to_match_set()").rows_failed is None
    assert "could not run" in failed(result, "expect_column_values_to_not_be_null(group)").observed


def test_no_examples_at_all_fails_the_row_count_with_what_was_observed(root: Path) -> None:
    with processed(root, {"train": [], "val": [], "test": []}, good_split_table()) as tables:
        result = validate("processed", tables, PARAMETERS, root)
    assert failed(result, "expect_table_row_count_to_be_between()").observed == "observed 0, expected >= 1"


# --- reports and suites -------------------------------------------------------------------------------


def _tree(directory: Path) -> dict[str, str]:
    return {path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_failed_gate_report_is_written_and_byte_identical_between_runs(root: Path, tmp_path: Path) -> None:
    rows = [entry(i) for i in range(10)] + [entry(10, lang="xx-nowhere")]
    tables = ingested(root, rows, [], {"kamus": 11})
    other = tmp_path / "other"
    shutil.copytree(root / "expectations", other / "expectations")
    first, second = validate("ingested", tables, PARAMETERS, root), validate("ingested", tables, PARAMETERS, other)
    assert not first.success and not second.success
    site = root / "reports/quality/ingested"
    pages = [page.read_text(encoding="utf-8") for page in site.rglob("*.html")]
    assert any("Failed" in page and "xx-nowhere" in page for page in pages)
    assert not any("logo-long.png?d=" in page for page in pages)  # no render-time beacon
    assert _tree(site) == _tree(other / "reports/quality/ingested")


def test_a_rerun_clears_pages_of_the_previous_run(root: Path) -> None:
    stale = root / "reports/quality/ingested/validations/old/page.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    with good_ingested(root) as tables:
        validate("ingested", tables, PARAMETERS, root)
    assert not stale.exists()


def test_an_invalid_expectation_in_a_suite_is_a_user_error_naming_it(root: Path) -> None:
    path = root / "expectations/ingested.json"
    suite = json.loads(path.read_text())
    suite["expectations"].append({"type": "expect_column_values_to_be_uniqe", "kwargs": {"column": "id"}})
    path.write_text(json.dumps(suite))
    tables = ingested(root, [entry(i) for i in range(5)], [], {"kamus": 5})
    with pytest.raises(UserError, match="expectations/ingested.json: expectation 'expect_column_values_to_be_uniqe'"):
        validate("ingested", tables, PARAMETERS, root)
    path.write_text(json.dumps(dict(suite, name="ingest")))
    with pytest.raises(UserError, match="\"name\" is 'ingest'; it must be 'ingested'"):
        validate("ingested", tables, PARAMETERS, root)


def test_importing_the_gate_modules_does_not_import_great_expectations() -> None:
    code = ("import sys, langfoundry.gates.gate, langfoundry.gates.tables, langfoundry.gates.streamed\n"
            "assert 'great_expectations' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- a failed gate stops its stage ------------------------------------------------------------------------


def stage_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    shutil.copytree(REPO / "data/inventory", tmp_path / "data/inventory")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def run_stage(name: str, work: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=work, capture_output=True,
                          text=True, env=env)


def test_clean_stage_stops_on_a_mostly_garbage_source_and_keeps_its_outputs(tmp_path: Path) -> None:
    work = stage_dir(tmp_path)
    garbage = [entry(i, source="scans", text=f"{i}{i} 0{i}-{i}{i}", line=i) for i in range(8)]  # no letters at all
    rows = [entry(i) for i in range(10)] + garbage + [entry(i, source="scans") for i in range(2)]
    write_parquet(records_table(rows), work / "data/interim/ingested.parquet")
    done = run_stage("clean", work)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: quality gate clean failed")
    assert "source scans: allowed_reject_rate=0.5, reject_rate=0.8" in done.stderr
    assert (work / "data/interim/clean_rejects.parquet").exists()
    assert pq.read_table(work / "data/interim/clean_rejects.parquet").num_rows == 8
    assert (work / "reports/quality/clean/index.html").exists()
    assert json.loads((work / "metrics/quality/clean.json").read_text())["expectations.failed"] == 1


def test_split_stage_exits_non_zero_on_duplicate_ids_and_prints_their_origins(tmp_path: Path) -> None:
    work = stage_dir(tmp_path)
    rows = [entry(i) for i in range(10)]
    rows.append(dict(rows[0], origin="data/raw/kamus.csv:500"))
    write_parquet(records_table(rows), work / "data/interim/dedup.parquet")
    done = run_stage("split", work)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "expect_column_values_to_be_unique(id)" in done.stderr
    assert "data/raw/kamus.csv:2" in done.stderr and "data/raw/kamus.csv:500" in done.stderr
    assert "gate split: " in done.stdout and (work / "data/interim/split.parquet").exists()
