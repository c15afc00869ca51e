"""Every origin shape a reader writes survives clean, dedup, split and format: no crash, every row
accounted for, origins kept byte for byte, the same outputs whatever the input order.

The shapes, as the readers write them (src/langfoundry/data/readers/):
- "file:line": text.read_lines and read_aligned (and mapping.add_block), tabular.read_delimited (CSV,
  TSV) and read_jsonl (1-based lines); tmx.read_tmx ("file:<the <tu>'s sourceline>", which lxml may
  give as None: "file:None");
- "file:line" and "file:line:msgstr[n]": po.read_po, a plain entry and each form of a plural entry;
- "file#index": tabular.read_json and read_parquet (0-based record or row);
- "file:Sheet!row": tabular.read_xlsx (Excel's 1-based row; a sheet name never holds : \\ / ? * [ ]).
The file is the path relative to the repository root, so it may hold folders, spaces, colons, "#",
"!" and any letter.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_run import ingest_into

from langfoundry.clean.dedup import dedup_parquet, dedup_table
from langfoundry.core.config import IngestParams, Params, Source, load_params
from langfoundry.core.inventory import load_inventory
from langfoundry.core.records import make_record, origin_parts, records_table

REPO = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=8, deadline=None)

# Characters file and folder names hold here: the ones origins use as separators among them.
NAME_CHARS = "aŋéñമꦗ漢 :#!-_.09[]"
SHEET_CHARS = "Sheetŋé 1#!-_.()"  # what Excel allows: no : \ / ? * [ ]
EXTENSIONS = {"txt": ".txt", "csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "tmx": ".tmx", "po": ".po",
              "json": ".json", "parquet": ".parquet", "xlsx": ".xlsx"}

# What each format's origins look like after the file name (see the module docstring).
SUFFIX = {
    "txt": r":[1-9][0-9]*", "csv": r":[1-9][0-9]*", "tsv": r":[1-9][0-9]*", "jsonl": r":[1-9][0-9]*",
    "tmx": r":(?:[1-9][0-9]*|None)", "po": r":[1-9][0-9]*(?::msgstr\[[0-9]+\])?",
    "json": r"#[0-9]+", "parquet": r"#[0-9]+", "xlsx": r":[^:\\/?*\[\]]{1,31}![1-9][0-9]*",
}


@st.composite
def file_names(draw, fmt: str) -> str:
    segment = st.text(NAME_CHARS, min_size=1, max_size=6)
    folders = draw(st.lists(segment, max_size=2))
    return "/".join(["data/raw", *folders, draw(segment) + EXTENSIONS[fmt]])


@st.composite
def origins(draw) -> tuple[str, dict]:
    """(origin, its parts as records.origin_parts should give them), in a shape a reader writes."""
    fmt = draw(st.sampled_from(sorted(EXTENSIONS)))
    name = draw(file_names(fmt))
    parts = {"file": name, "sheet": None, "number": None, "form": None}
    if fmt in ("json", "parquet"):
        parts["number"] = draw(st.integers(0, 10**6))
        return f"{name}#{parts['number']}", parts
    if fmt == "xlsx":
        parts["sheet"] = draw(st.text(SHEET_CHARS, min_size=1, max_size=31))
        parts["number"] = draw(st.integers(1, 1_048_576))
        return f"{name}:{parts['sheet']}!{parts['number']}", parts
    if fmt == "tmx" and draw(st.integers(0, 9)) == 0:
        return f"{name}:None", {**parts, "file": f"{name}:None"}  # no number to order by: all file
    parts["number"] = draw(st.integers(1, 10**7))
    if fmt == "po" and draw(st.booleans()):
        parts["form"] = draw(st.integers(0, 5))
        return f"{name}:{parts['number']}:msgstr[{parts['form']}]", parts
    return f"{name}:{parts['number']}", parts


@settings(max_examples=60, deadline=None)
@given(st.lists(origins(), min_size=1, max_size=20))
def test_every_reader_shape_parses_back_to_its_file_and_number(drawn):
    parsed = origin_parts(pa.chunked_array([[origin for origin, _ in drawn]])).to_pylist()
    assert parsed == [parts for _, parts in drawn]


def test_the_example_from_the_bug_report_and_odd_digits_parse():
    parsed = origin_parts(pa.array(["data/raw/kamus jawa/ŋ:x.csv:12", "app.po:7:msgstr[1]", "a.csv:١٢", "b.txt:" + "9" * 19]))
    assert parsed.to_pylist() == [
        {"file": "data/raw/kamus jawa/ŋ:x.csv", "sheet": None, "number": 12, "form": None},
        {"file": "app.po", "sheet": None, "number": 7, "form": 1},
        {"file": "a.csv:١٢", "sheet": None, "number": None, "form": None},  # not ASCII digits: no line
        {"file": "b.txt:" + "9" * 19, "sheet": None, "number": None, "form": None},  # beyond int64: no line
    ]


# --- the stages on records with such origins ---------------------------------------------------------


def stage_main(name: str) -> Callable:
    """stages/<name>.py's main, imported as DVC would run it."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


MAINS = {name: stage_main(name) for name in ("clean", "dedup", "split", "format")}

# Contents that repeat (exact duplicates) and sentences one word apart (near duplicates).
PAIRS = [("adem", "sejuk"), ("adhem", "dingin"), ("banyu", "air"), ("gedhang", "pisang"),
         ("aku arep lunga maring pasar esuk kiye", "saya mau pergi ke pasar pagi ini"),
         ("aku arep lunga maring pasar esuk kiye lho", "saya mau pergi ke pasar pagi ini lho"),
         ("wong kae lagi mangan sega karo iwak pitik", "orang itu sedang makan nasi dengan ayam")]
SOURCES = {"kamus": "dictionary", "crita": "parallel"}


def record_tables() -> st.SearchStrategy[pa.Table]:
    rows = st.lists(st.tuples(st.sampled_from(sorted(SOURCES)), st.sampled_from(PAIRS), origins()),
                    min_size=1, max_size=14, unique_by=lambda row: (row[0], row[2][0]))
    return rows.map(lambda drawn: records_table(
        make_record(source=source, kind=SOURCES[source], lang="jv-x-banyumas", text=text, pivot_lang="id",
                    pivot_text=pivot, origin=origin) for source, (text, pivot), (origin, _) in drawn))


def project(folder: Path, ingested: pa.Table) -> Params:
    """A project folder whose ingest output is the table (in the table's own row order)."""
    (folder / "data" / "inventory").mkdir(parents=True)
    (folder / "data" / "interim").mkdir()
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", folder / "data" / "inventory")
    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={"paths": params.paths.under(folder)})
    pq.write_table(ingested, params.paths.ingested)
    return params


def run_stages(params: Params) -> None:
    paths = params.paths
    MAINS["clean"](params, paths, gate=False)
    MAINS["dedup"](params, paths)
    MAINS["split"](params, paths, gate=False)
    MAINS["format"](params, paths, gate=False)


def pairs(table: pa.Table) -> list[tuple[str, str]]:
    return sorted(zip(table.column("id").to_pylist(), table.column("origin").to_pylist()))


def outputs(params: Params) -> dict[str, object]:
    paths = params.paths
    files = {name: pq.read_table(getattr(paths, name)) for name in ("clean", "clean_rejects", "dedup", "dedup_rejects", "split")}
    files.update({split: paths.split_file(split).read_bytes() for split in ("train", "val", "test")})
    return files


def assert_accounted_for(params: Params, ingested: pa.Table) -> None:
    """Each stage's kept rows and rejects are exactly its input rows, origins byte for byte."""
    out = outputs(params)
    for stage_in, kept, rejected in ((ingested, out["clean"], out["clean_rejects"]),
                                     (out["clean"], out["dedup"], out["dedup_rejects"])):
        assert kept.num_rows + rejected.num_rows == stage_in.num_rows
        assert sorted(pairs(kept) + pairs(rejected)) == pairs(stage_in)
    assert pairs(out["split"]) == pairs(out["dedup"])
    assert set(out["dedup_rejects"].column("detail").to_pylist()) <= set(out["dedup"].column("id").to_pylist())
    split_of = dict(zip(out["split"].column("id").to_pylist(), out["split"].column("split").to_pylist()))
    examples = [(split, json.loads(line)["record_id"]) for split in ("train", "val", "test") for line in out[split].splitlines()]
    assert all(split == split_of[record_id] for split, record_id in examples)  # in its record's split file
    with_examples = {record_id for _, record_id in examples}
    # a record gives examples, or format counts it as one of a kind no task takes (monolingual text)
    metrics = json.loads(params.paths.metric("format").read_text(encoding="utf-8"))
    without_task = sum(count for key, count in metrics.items() if key.startswith("records_without_task."))
    assert len(with_examples) + without_task == len(split_of)


@FAST
@given(record_tables(), st.randoms(use_true_random=False))
def test_stages_keep_every_origin_and_give_the_same_outputs_in_any_input_order(table, rng: random.Random):
    order = list(range(table.num_rows))
    rng.shuffle(order)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        runs = []
        for folder, ingested in ((first, table), (second, table.take(order))):
            params = project(Path(folder), ingested)
            run_stages(params)
            assert_accounted_for(params, ingested)
            runs.append(outputs(params))
        assert runs[0].keys() == runs[1].keys()
        for name in runs[0]:
            assert runs[0][name] == runs[1][name], name

        # the same decisions in memory and streamed in batches of two (places met batch by batch)
        in_memory = dedup_table(runs[1]["clean"], params.dedup)
        streamed = Path(second) / "streamed.parquet"
        dedup_parquet(params.paths.clean, streamed, Path(second) / "streamed_rejects.parquet", params.dedup,
                      workers=1, batch_rows=2)
        assert pairs(in_memory.kept) == pairs(runs[1]["dedup"]) == pairs(pq.read_table(streamed))


# --- the real readers write these shapes --------------------------------------------------------------


def write_every_format(folder: Path) -> dict[str, Source]:
    """One small file per format in a folder whose names hold a space, a colon and non-ASCII letters."""
    from openpyxl import Workbook

    place = "data/raw/kamus jawa"
    (folder / place).mkdir(parents=True)
    names = {fmt: f"{place}/ŋ:x#1!{ext}" for fmt, ext in EXTENSIONS.items()}
    write = {fmt: (folder / name) for fmt, name in names.items()}
    write["csv"].write_text("headword,gloss\nadem,sejuk\nbanyu,air\n", encoding="utf-8")
    write["tsv"].write_text("headword\tgloss\nadhem\tdingin\n", encoding="utf-8")
    write["txt"].write_text("aku arep lunga maring pasar\nwong kae lagi mangan\n", encoding="utf-8")
    write["jsonl"].write_text('{"headword": "gedhang", "gloss": "pisang"}\n', encoding="utf-8")
    write["json"].write_text('[{"headword": "omah", "gloss": "rumah"}, {"headword": "wong", "gloss": "orang"}]',
                             encoding="utf-8")
    pq.write_table(pa.table({"headword": ["sega"], "gloss": ["nasi"]}), write["parquet"])
    write["tmx"].write_text('<?xml version="1.0" encoding="UTF-8"?>\n<tmx version="1.4"><header/><body>\n'
                            '<tu tuid="7"><tuv xml:lang="jv-x-banyumas"><seg>iwak</seg></tuv>'
                            '<tuv xml:lang="id"><seg>ikan</seg></tuv></tu>\n</body></tmx>\n', encoding="utf-8")
    write["po"].write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                           'msgid "water"\nmsgstr "banyu"\n\n'
                           'msgid "one house"\nmsgid_plural "%d houses"\nmsgstr[0] "siji omah"\nmsgstr[1] "%d omah"\n',
                           encoding="utf-8")
    workbook = Workbook()
    workbook.active.title = "Kata 1!"
    workbook.active.append(["headword", "gloss"])
    workbook.active.append(["pitik", "ayam"])
    workbook.save(write["xlsx"])
    kinds = {"txt": "monolingual"}
    return {fmt: Source(id=f"every-{fmt}", kind=kinds.get(fmt, "dictionary"), lang="jv-x-banyumas",
                        pivot_lang=None if fmt == "txt" else "id", path=name) for fmt, name in names.items()}


def test_real_readers_write_only_these_shapes_and_the_stages_take_them(tmp_path, monkeypatch):
    sources = write_every_format(tmp_path)
    monkeypatch.chdir(tmp_path)
    params = project(tmp_path, records_table([]))
    ingested = ingest_into(tmp_path / "ingest", sources.values(), IngestParams(), load_inventory(params.paths.inventory),
                           root=tmp_path)
    assert ingested.rejects.num_rows == 0
    found = {}
    for source, origin in zip(ingested.records.column("source").to_pylist(), ingested.records.column("origin").to_pylist()):
        fmt = source.removeprefix("every-")
        assert re.fullmatch(re.escape(sources[fmt].path) + SUFFIX[fmt], origin), origin
        found.setdefault(fmt, []).append(origin)
    assert sorted(found) == sorted(EXTENSIONS)
    assert any(origin.endswith(":msgstr[1]") for origin in found["po"])
    files = origin_parts(ingested.records.column("origin")).column("file").to_pylist()
    assert files == [sources[source.removeprefix("every-")].path for source in ingested.records.column("source").to_pylist()]

    shutil.copy(ingested.paths[0], params.paths.ingested)
    run_stages(params)
    assert_accounted_for(params, ingested.records)
