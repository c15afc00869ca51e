"""`langfoundry check`: one file read the way ingest reads it, judged, and an exit status to act on."""

from __future__ import annotations

import codecs
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ingest_run import ingest_into

from langfoundry.cli.check import parse_mapping, script_shares
from langfoundry.cli.main import main as cli_main
from langfoundry.core.config import IngestParams, Source
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
DICTIONARY = ["--kind", "dictionary", "--lang", "jv-x-banyumas", "--pivot-lang", "id"]


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A repository root with the language inventory and the fixtures under data/raw/."""
    (tmp_path / "data" / "inventory").mkdir(parents=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", tmp_path / "data" / "inventory")
    shutil.copytree(FIXTURES, tmp_path / "data" / "raw")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def line(out: str, label: str) -> str:
    [found] = [text for text in out.splitlines() if text.startswith(label)]
    return found


def test_a_usable_file_reports_counts_reasons_places_and_exits_0(repo, capsys):
    code, out, _ = check(capsys, "data/raw/dictionary.csv", *DICTIONARY)
    assert code == 0
    assert line(out, "rows read:").split()[-1] == "4"
    assert line(out, "usable:").split()[1] == "3"
    assert line(out, "rejected:").split()[1] == "1"
    rejects = [text.split() for text in out.splitlines() if text.startswith(("  ingest", "  clean"))]
    assert [(r[0], r[1], r[2], r[3]) for r in rejects] == [("ingest", "missing_field", "1", "data/raw/dictionary.csv:5")]
    assert line(out, "encoding:").endswith("utf-8")
    assert line(out, "verdict:").startswith("verdict:    usable")


def test_the_counts_are_the_ones_ingest_gets(repo, capsys):
    source = Source(id="kamus", kind="conversation", lang="jv", path="data/raw/conversations.jsonl")
    metrics = ingest_into("data/interim", [source], IngestParams(), load_inventory()).metrics
    _, out, _ = check(capsys, "data/raw/conversations.jsonl", "--kind", "conversation", "--lang", "jv")
    assert int(line(out, "rows read:").split()[-1]) == metrics["rows_read"] == 6
    by_reason = {r.split()[1]: int(r.split()[2]) for r in out.splitlines() if r.startswith("  ingest")}
    assert by_reason == metrics["rejected_by_reason"]


def test_over_the_threshold_exits_1_and_the_threshold_can_be_raised(repo, capsys):
    # conversations.jsonl: 4 of its 6 rows are rejects
    code, out, _ = check(capsys, "data/raw/conversations.jsonl", "--kind", "conversation", "--lang", "jv")
    assert code == 1 and "ingest rejects 66.7%" in line(out, "verdict:")
    code, out, _ = check(capsys, "data/raw/conversations.jsonl", "--kind", "conversation", "--lang", "jv",
                         "--max-reject-rate", "0.7")
    assert code == 0 and line(out, "verdict:").startswith("verdict:    usable")


def test_the_threshold_comes_from_params_yaml(repo, capsys):
    (repo / "params.yaml").write_text(yaml.safe_dump({"quality": {"max_reject_rate": 0.2}}))
    code, out, _ = check(capsys, "data/raw/dictionary.csv", *DICTIONARY)  # 1 of 4 rejected
    assert code == 1 and "20.0% (quality.max_reject_rate in params.yaml)" in line(out, "verdict:")


def test_a_file_that_cannot_be_read_exits_2_with_one_line(repo, capsys):
    Path("data/raw/broken.json").write_text('[\n{"text": "a"},\n{"text": }\n]')
    code, out, err = check(capsys, "data/raw/broken.json", "--kind", "monolingual", "--lang", "jv")
    assert (code, out) == (2, "")
    assert err.startswith("error: data/raw/broken.json:3:") and err.count("\n") == 1
    code, _, err = check(capsys, "data/raw/nothing.csv", *DICTIONARY)
    assert code == 2 and "data/raw/nothing.csv: not found" in err


def test_errors_name_the_command_options_not_sources_yaml(repo, capsys):
    code, _, err = check(capsys, "data/raw/dictionary.csv", *DICTIONARY, "--map", "arti=glos")
    assert code == 2 and "--map ...=glos" in err and "did you mean 'gloss'" in err and "sources.yaml" not in err
    code, _, err = check(capsys, "data/raw/instructions.json", "--kind", "instruction", "--lang", "jv")
    assert code == 2 and "pass --records-key" in err and "items" in err
    code, _, err = check(capsys, "data/raw/dictionary.csv", "--kind", "dictionary", "--lang", "jv")
    assert code == 2 and "needs --pivot-lang" in err


def test_no_traceback_unless_verbose(repo):
    command = [sys.executable, "-m", "langfoundry.cli.main", "check", "data/raw/missing.csv", *DICTIONARY]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == "error: data/raw/missing.csv: not found; give the path of the file to check\n"
    done = subprocess.run(command + ["--verbose"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" in done.stderr


def test_map_renames_columns_and_unread_columns_are_stated(repo, capsys):
    Path("data/raw/kamus.csv").write_text("kata,arti,catetan\nmangan,makan,x\nturu,tidur,\n", encoding="utf-8")
    code, out, _ = check(capsys, "data/raw/kamus.csv", *DICTIONARY, "--map", "kata=headword", "--map", "arti=gloss")
    assert code == 0 and line(out, "usable:").split()[1] == "2"
    assert "catetan" in line(out, "ignored:")
    assert parse_mapping(["kata=headword", "a=b=gloss"]) == {"headword": "kata", "gloss": "a=b"}
    with pytest.raises(UserError, match="COLUMN=FIELD"):
        parse_mapping(["kata"])


def test_encoding_and_mixed_line_endings_are_reported(repo, capsys):
    Path("data/raw/u16.txt").write_bytes(codecs.BOM_UTF16_LE + "siji\r\nloro\r\ntelu\n".encode("utf-16-le"))
    code, out, _ = check(capsys, "data/raw/u16.txt", "--kind", "monolingual", "--lang", "jv")
    assert code == 0 and line(out, "encoding:").endswith("utf-16 (BOM)")
    assert line(out, "lines end:") == "lines end:  mixed: CRLF 2, LF 1 (all read alike)"
    Path("data/raw/bom.csv").write_bytes(codecs.BOM_UTF8 + b"text\nsiji\n")
    _, out, _ = check(capsys, "data/raw/bom.csv", "--kind", "monolingual", "--lang", "jv")
    assert line(out, "encoding:").endswith("utf-8 with BOM")


def test_script_mix_is_the_share_of_letters_per_script(repo, capsys):
    # 6 Latin letters and 3 N'Ko letters; digits, spaces and punctuation are not letters
    Path("data/raw/mix.txt").write_text("abc 123!\n\u07ca\u07cb\u07cc def\n", encoding="utf-8")
    _, out, _ = check(capsys, "data/raw/mix.txt", "--kind", "monolingual", "--lang", "jv")
    assert line(out, "scripts:") == "scripts:    text (jv, inventory says Latn): Latn 66.7%, Nkoo 33.3%"
    assert script_shares(["\u0d15\u0d3e a"], ["Latn", "Mlym"]) == [("Mlym", 0.5), ("Latn", 0.5)]
    assert script_shares(["\u10d0"], ["Latn"]) == [("Georgian", 1.0)]  # a script outside the candidates


def test_clean_filters_judge_what_ingest_keeps(repo, capsys):
    Path("data/raw/teks.txt").write_text("Aku mangan sega.\n12345 678\nDheweke turu.\n", encoding="utf-8")
    code, out, _ = check(capsys, "data/raw/teks.txt", "--kind", "monolingual", "--lang", "jv")
    assert code == 0 and line(out, "usable:").split()[1] == "2"
    [clean] = [text.split() for text in out.splitlines() if text.startswith("  clean")]
    assert clean[:4] == ["clean", "script_ratio", "1", "data/raw/teks.txt:2"]
    assert "ingest rejects 0.0%, clean rejects 33.3%" in line(out, "verdict:")


def test_an_empty_file_is_not_usable(repo, capsys):
    Path("data/raw/empty.csv").write_bytes(b"")
    code, out, _ = check(capsys, "data/raw/empty.csv", *DICTIONARY)
    assert code == 1 and line(out, "verdict:") == "verdict:    not usable: no rows"
    assert line(out, "empty:").startswith("empty:      1 file(s)")


def test_a_file_outside_the_repository_is_checked_with_a_note(repo, tmp_path_factory, capsys):
    outside = tmp_path_factory.mktemp("elsewhere") / "words.txt"
    outside.write_text("siji\nloro\n", encoding="utf-8")
    code, out, _ = check(capsys, str(outside), "--kind", "monolingual", "--lang", "jv")
    assert code == 0 and "outside the repository" in line(out, "note:")
    assert "allow_outside_repo" in line(out, "note:")


def test_unknown_language_tag_is_a_note_and_skips_the_filters(repo, capsys):
    code, out, _ = check(capsys, "data/raw/moses.jv", "--format", "txt", "--kind", "monolingual", "--lang", "xx-new")
    assert code == 0 and "'xx-new' is not in" in line(out, "note:")
    assert line(out, "usable:").endswith("(clean filters not run)")
