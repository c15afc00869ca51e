"""The clean gate's per-source table from what the clean stage measured: the same counts and means as
measuring the written files again, the per-row values as the measures define them, and a row lost
between the stage's counts and its files still caught by the conservation expectation."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_quality import PARAMETERS, QUALITY, REPO, failed

from langfoundry.clean.driver import clean_files
from langfoundry.clean.measures import SourceTally, kept_measures, measure_text
from langfoundry.core.config import CleanParams
from langfoundry.core.normalize import comparison_key
from langfoundry.core.records import make_record, records_table
from langfoundry.core.storage import write_parquet
from langfoundry.gates import streamed
from langfoundry.gates.gate import validate
from langfoundry.gates.streamed import clean_gate_tables, count_by_source, ingested_gate_tables, tally_by_source

SCRIPTS = {"jv": "Latn", "id": "Latn", "ml": "Mlym"}
TEXT_CHARS = list("abcAB éÉß µ.,'’!-1<>@") + ["ന", "ക", "\u200b", "K", "ﬀ"]
texts = st.one_of(st.none(), st.text(alphabet=TEXT_CHARS, max_size=12))


def expected_row(text: str | None, pivot: str | None, lang: str | None, pivot_lang: str | None) -> list[float]:
    """The three values of one kept row by their definitions, one text at a time."""
    def share(value: str | None, tag: str | None) -> float:
        if not value or tag not in SCRIPTS:
            return math.nan
        _, _, letters, script_letters, _, _ = measure_text(value, SCRIPTS[tag])
        return script_letters / letters if letters else 0.0

    equal = math.nan if not pivot or text is None else float(comparison_key(text) == comparison_key(pivot))
    return [share(text, lang), share(pivot, pivot_lang), equal]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(texts, texts, st.sampled_from(["jv", "ml", "xx-unknown"]),
                          st.sampled_from(["id", "ml", None])), max_size=25), st.booleans())
def test_kept_measures_are_the_measures_of_each_text(rows: list[tuple], pivot_copies: bool) -> None:
    if pivot_copies:  # untranslated pairs, up to case and punctuation
        rows = [(text, (text or "").upper() + "!" if i % 2 else text, lang, pivot_lang)
                for i, (text, _, lang, pivot_lang) in enumerate(rows)]
    table = pa.table({"text": pa.array([row[0] for row in rows], pa.string()),
                      "pivot_text": pa.array([row[1] for row in rows], pa.string()),
                      "lang": pa.array([row[2] for row in rows], pa.string()),
                      "pivot_lang": pa.array([row[3] for row in rows], pa.string())})
    values = kept_measures(table, SCRIPTS)
    got = np.stack([values[name] for name in SourceTally.MEANS], axis=1) if rows else np.zeros((0, 3))
    want = np.array([expected_row(*row) for row in rows], dtype=np.float64).reshape(len(rows), 3)
    assert np.allclose(got, want, equal_nan=True, rtol=0, atol=1e-15)


def corpus(rows: int, seed: int) -> list[dict]:
    """Rows from three sources: Javanese pairs (some untranslated, some with personal data, some
    rejected), Malayalam pairs with Latin words mixed in, and monolingual notes whose pivot side is
    empty once normalised."""
    chooser = random.Random(seed)
    words = ["omah", "banyu", "segara", "wit", "kali", "Angin", "lemah", "geni", "ngène", "mlaku", "Straße", "µ-meter"]
    out = []
    for line in range(1, rows + 1):
        sentence = " ".join(chooser.choice(words) for _ in range(chooser.randint(1, 8)))
        pivot = " ".join(chooser.choice(words[::-1]) for _ in range(chooser.randint(1, 8)))
        roll = chooser.random()
        source, kind, lang, pivot_lang = "kamus", "parallel", "jv", "id"
        if roll < 0.1:
            pivot = sentence.upper() + "."  # untranslated
        elif roll < 0.15:
            sentence = "123 456 --"  # rejected
        elif roll < 0.2:
            sentence += " call 0812 3456 7890"  # scrubbed
        elif roll < 0.45:
            source, lang = "malayalam", "ml"
            sentence = "മലയാളം കടൽ " + (sentence if roll < 0.3 else "")
        elif roll < 0.55:
            source, kind, pivot_lang, pivot = "notes", "monolingual", None, chooser.choice(["", "  ", "\u200b"])
        out.append(make_record(source=source, kind=kind, lang=lang, text=sentence, pivot_lang=pivot_lang,
                               pivot_text=pivot, origin=f"data/raw/{source}.txt:{line}"))
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    return tmp_path


@pytest.fixture
def cleaned(tmp_path: Path):
    """A corpus cleaned by the stage's file-to-file driver on two workers, in small batches."""
    write_parquet(records_table(corpus(1500, seed=3)), tmp_path / "ingested.parquet", sort_by=("id", "origin"))
    outcome = clean_files(tmp_path / "ingested.parquet", tmp_path / "clean.parquet", tmp_path / "clean_rejects.parquet",
                          CleanParams(), SCRIPTS, batch_rows=170, workers=2)
    return tmp_path, outcome


def test_the_stage_tally_equals_measuring_the_written_files_again(cleaned) -> None:
    folder, outcome = cleaned
    tally = outcome.sources
    again = tally_by_source(folder / "clean.parquet", SCRIPTS)
    assert tally.kept == again.kept and sum(tally.kept.values()) == pq.read_metadata(folder / "clean.parquet").num_rows
    assert tally.rows_in == count_by_source(folder / "ingested.parquet")
    assert tally.rejected == count_by_source(folder / "clean_rejects.parquet") and sum(tally.rejected.values()) > 0
    assert set(tally.kept) == {"kamus", "malayalam", "notes"}
    for column in SourceTally.MEANS:
        assert tally.counts[column] == again.counts[column]
        assert tally.means(column) == pytest.approx(again.means(column), rel=1e-12)
    means = tally.means("text_equals_pivot_share")
    assert 0.05 < means["kamus"] < 0.3 and "notes" not in means  # copies counted; no pivot, no value
    assert tally.means("mean_script_ratio")["malayalam"] < 1.0  # Latin words among Malayalam ones
    with_tally = clean_gate_tables(folder / "ingested.parquet", folder / "clean.parquet", folder / "clean_rejects.parquet",
                                   SCRIPTS, QUALITY, tally=tally).sources
    measured = clean_gate_tables(folder / "ingested.parquet", folder / "clean.parquet", folder / "clean_rejects.parquet",
                                 SCRIPTS, QUALITY).sources
    assert with_tally.column_names == measured.column_names
    for name in with_tally.column_names:
        if pa.types.is_floating(with_tally.schema.field(name).type):
            assert np.allclose(*(table.column(name).to_numpy(zero_copy_only=False) for table in (with_tally, measured)),
                               rtol=1e-12, equal_nan=True)
        else:
            assert with_tally.column(name).to_pylist() == measured.column(name).to_pylist()


def test_counts_the_files_agree_with_are_taken_without_reading_them(cleaned, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, outcome = cleaned

    def no_reading(*args, **kwargs):
        raise AssertionError("read a file whose rows per source the stage had counted")

    monkeypatch.setattr(streamed, "count_by_source", no_reading)
    monkeypatch.setattr(streamed, "tally_by_source", no_reading)
    tables = clean_gate_tables(folder / "ingested.parquet", folder / "clean.parquet", folder / "clean_rejects.parquet",
                               SCRIPTS, QUALITY, tally=outcome.sources)
    assert tables.sources.column("rows_in").to_pylist() == tables.sources.column("accounted").to_pylist()
    tables = ingested_gate_tables(folder / "clean.parquet", folder / "clean_rejects.parquet",
                                  {name: outcome.sources.rows_in[name] for name in outcome.sources.rows_in}, QUALITY,
                                  kept=outcome.sources.kept, rejected=outcome.sources.rejected)
    assert sum(tables.sources.column("accounted").to_pylist()) == 1500


def test_a_row_lost_on_its_way_to_the_file_still_breaks_conservation(cleaned, root: Path) -> None:
    folder, outcome = cleaned
    kept = pq.read_table(folder / "clean.parquet")
    lost_at = kept.column("source").to_pylist().index("malayalam")
    write_parquet(pa.concat_tables([kept.slice(0, lost_at), kept.slice(lost_at + 1)]), folder / "clean.parquet",
                  sort_by=("id", "origin"))
    tables = clean_gate_tables(folder / "ingested.parquet", folder / "clean.parquet", folder / "clean_rejects.parquet",
                               SCRIPTS, QUALITY, tally=outcome.sources)
    result = validate("clean", tables, PARAMETERS, root)
    lost = failed(result, "expect_column_pair_values_to_be_equal(rows_in, accounted)")
    assert lost.examples == [f"source malayalam: rows_in={outcome.sources.rows_in['malayalam']}, "
                             f"accounted={outcome.sources.rows_in['malayalam'] - 1}"]
