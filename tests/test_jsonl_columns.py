"""A large JSON Lines file of a parallel source is parsed by worker processes (data.jsonl_columns):
ingest writes the same bytes, rejects and metrics as when one process reads it line by line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_run import ingest_into

from langfoundry.core.config import IngestParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory
from langfoundry.data import ingest as ingest_module
from langfoundry.data import jsonl_columns
from langfoundry.data.readers import encoding

SOURCE = Source(id="src", kind="parallel", lang="jv", pivot_lang="id", path="data/raw/pairs.jsonl")

# Every kind of line a JSON Lines file of pairs holds, as bytes.
LINES = {
    "pair": lambda n: json.dumps({"text": f"sega {n}", "pivot_text": f"nasi {n}"}).encode(),
    "pair_with_note": lambda n: json.dumps({"text": f"banyu {n}", "pivot_text": f"air {n}", "note": "x"}).encode(),
    "non_ascii": lambda n: json.dumps({"text": f"ꦱꦼꦒ {n}", "pivot_text": f"nasi {n}"}, ensure_ascii=False).encode(),
    "colon": lambda n: json.dumps({"text": f"jam {n}:30", "pivot_text": f"pukul {n}:30"}).encode(),
    "blank": lambda n: b"",
    "spaces": lambda n: b"   ",
    "broken_json": lambda n: b'{"text": "sega", "pivot_text": ',
    "array": lambda n: b'["sega", "nasi"]',
    "key_twice": lambda n: f'{{"text": "a{n}", "text": "b", "pivot_text": "c"}}'.encode(),
    "empty_side": lambda n: json.dumps({"text": f"sega {n}", "pivot_text": ""}).encode(),
    "number_side": lambda n: json.dumps({"text": n, "pivot_text": f"nasi {n}"}).encode(),
    "missing_side": lambda n: json.dumps({"text": f"sega {n}"}).encode(),
    "invalid_utf8": lambda n: b'{"text": "se\xffga", "pivot_text": "nasi"}',
    "repeat_of_first": lambda n: json.dumps({"text": "sega 0", "pivot_text": "nasi 0"}).encode(),
    # what json reads and orjson (the workers' first parser) does not read alike
    "huge_number": lambda n: f'{{"text": "sega {n}", "pivot_text": "nasi", "count": {10**30 + n}}}'.encode(),
    "nan_note": lambda n: f'{{"text": "sega {n}", "pivot_text": "nasi", "score": NaN}}'.encode(),
    "lone_surrogate": lambda n: f'{{"text": "se\\ud800ga {n}", "pivot_text": "nasi"}}'.encode(),
    "deep_note": lambda n: f'{{"text": "sega {n}", "pivot_text": "nasi", "note": {"[" * 1100}{"]" * 1100}}}'.encode(),
    "escapes": lambda n: json.dumps({"text": f'sé"ga\\ {n}\u2028', "pivot_text": "na\tsi\u0000"}).encode(),
}


@pytest.fixture
def small_blocks(repo, monkeypatch):
    """Blocks of a few lines (so that a small file makes many), two to a worker's task, and two workers
    on any machine."""
    monkeypatch.setattr(encoding, "READ_BLOCK_CHARS", 300)
    monkeypatch.setattr(jsonl_columns, "GROUP_BLOCKS", 2)
    monkeypatch.setattr(jsonl_columns, "worker_count", lambda: 2)
    return repo


def ingest_both_ways(folder: Path, monkeypatch, caplog) -> tuple[dict, dict, int]:
    """The outputs (name -> bytes) read line by line, then in parallel, and how many blocks the
    parallel way parsed (0 would mean it never ran)."""
    outputs, blocks = [], []
    original = ingest_module.parsed_blocks

    def counted(*args):
        for block in original(*args):
            blocks.append(block)
            yield block

    monkeypatch.setattr(ingest_module, "parsed_blocks", counted)
    for minimum in (1 << 62, 0):
        monkeypatch.setattr(jsonl_columns, "PARALLEL_MIN_BYTES", minimum)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            try:
                result = ingest_into(folder / str(minimum), [SOURCE], IngestParams(), load_inventory())
            except UserError as error:  # the file as a whole is wrong (no pivot_text column at all)
                outputs.append({"error": str(error)})
                continue
        said = [record.getMessage() for record in caplog.records if record.name == ingest_module.__name__]
        outputs.append({path.name: path.read_bytes() for path in result.paths} | {"log": "\n".join(said)})
    return outputs[0], outputs[1], len(blocks)


def write_lines(kinds: list[str], newline: bytes = b"\n", bom: bool = False) -> None:
    body = newline.join(LINES[kind](number) for number, kind in enumerate(kinds)) + newline
    Path(SOURCE.path).write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)


def test_every_kind_of_line_gives_the_same_bytes_in_parallel(small_blocks, monkeypatch, caplog):
    kinds = [kind for _ in range(6) for kind in LINES]
    write_lines(kinds, newline=b"\r\n", bom=True)
    one_process, parallel, blocks = ingest_both_ways(small_blocks, monkeypatch, caplog)
    assert blocks >= 5
    assert one_process == parallel
    metrics = json.loads(parallel["ingest.json"])
    rejected = {key.rsplit(".", 1)[1]: count for key, count in metrics.items() if ".rejected_by_reason." in key}
    assert rejected == {"duplicate_key": 6, "invalid_json": 6 * 2, "invalid_utf8": 6, "missing_field": 12,  # empty, absent
                        "not_an_object": 6, "invalid_unicode": 6}  # invalid_json: broken, too deep
    # pair, pair_with_note, non_ascii, colon, number_side, repeat, huge_number, nan_note, escapes
    assert metrics["sources.src.kept"] == 6 * 9
    assert "ignored: count, note, score" in parallel["log"]


@given(kinds=st.lists(st.sampled_from(sorted(LINES)), min_size=1, max_size=60))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_mix_of_lines_gives_the_same_bytes_in_parallel(small_blocks, monkeypatch, caplog, kinds):
    write_lines(kinds)
    one_process, parallel, _ = ingest_both_ways(small_blocks, monkeypatch, caplog)
    assert one_process == parallel


def test_a_small_file_or_one_core_is_read_in_one_process(repo, monkeypatch):
    write_lines(["pair"] * 3)
    file = next(iter(ingest_module.source_files(SOURCE, repo, False)))
    columns = object()  # any ParallelColumns
    assert not jsonl_columns.in_parallel(file, columns)  # a few bytes: under PARALLEL_MIN_BYTES
    monkeypatch.setattr(jsonl_columns, "PARALLEL_MIN_BYTES", 0)
    assert jsonl_columns.in_parallel(file, columns) == (jsonl_columns.worker_count() > 1)
    monkeypatch.setattr(jsonl_columns, "worker_count", lambda: 1)
    assert not jsonl_columns.in_parallel(file, columns)
    monkeypatch.setattr(jsonl_columns, "worker_count", lambda: 2)
    assert jsonl_columns.in_parallel(file, columns) and not jsonl_columns.in_parallel(file, None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)


@given(pairs=st.lists(st.tuples(st.sampled_from(["text", "pivot_text", "note", "a:b"]), json_values), max_size=5),
       spaces=st.sampled_from(["", " ", "\t"]))
@settings(max_examples=300, deadline=None)
def test_the_workers_fast_parse_agrees_with_jsonl_item(pairs, spaces):
    """Where plain_object reads a line (orjson), it has the keys jsonl_item's row has, and the same
    value for every key whose value is text: the only values a worker takes from it."""
    line = spaces + "{" + ", ".join(f"{json.dumps(key)}:{spaces}{json.dumps(value)}" for key, value in pairs) + "}"
    fast = jsonl_columns.plain_object(line)
    if fast is None:
        return
    row = jsonl_columns.jsonl_item(7, line, "pairs.jsonl")
    assert isinstance(row, jsonl_columns.Row)  # neither a reject nor a repeated key
    assert list(fast) == list(row.fields)
    assert all(fast[key] == value for key, value in row.fields.items() if type(value) is str)
    assert all(type(fast[key]) is not str for key, value in row.fields.items() if type(value) is not str)
