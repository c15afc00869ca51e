"""The benchmark corpus generator (benchmarks/corpus.py): deterministic, with its planted defects where its
labels say, in the shares it promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import corpus  # noqa: E402

PAIRS = 20_000
SEED = 12345


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:  # noqa: ANN001
    out = tmp_path_factory.mktemp("corpus")
    corpus.write_corpus(out, PAIRS, SEED)
    return out


@pytest.fixture(scope="module")
def rows(made: Path) -> list[tuple[str, str, str]]:
    """(label, source, target) of each line."""
    return list(zip(read_lines(made / "labels.txt"), read_lines(made / "src.txt"), read_lines(made / "tgt.txt")))


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    first, second, other = (tmp_path / name for name in ("first", "second", "other"))
    corpus.write_corpus(first, 3000, 7)
    subprocess.run([sys.executable, str(BENCHMARKS / "corpus.py"), "--n", "3000", "--seed", "7", "--out", str(second)],
                   check=True, capture_output=True)
    corpus.write_corpus(other, 3000, 8)
    for name in (*corpus.FILES, corpus.MANIFEST):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    for name in ("src.txt", "tgt.txt", "labels.txt"):
        assert (first / name).read_bytes() != (other / name).read_bytes(), name


def test_files_are_line_aligned_with_one_label_a_line(made: Path, rows: list[tuple[str, str, str]]) -> None:
    assert len(rows) == PAIRS
    assert len(read_lines(made / "src.txt")) == len(read_lines(made / "tgt.txt")) == PAIRS
    assert {label for label, _, _ in rows} == set(corpus.LABELS)
    records = [json.loads(line) for line in read_lines(made / "corpus.jsonl")]
    assert [(record["src"], record["tgt"]) for record in records] == [(source, target) for _, source, target in rows]
    assert corpus.is_current(made, PAIRS, SEED)
    assert not corpus.is_current(made, PAIRS + 1, SEED) and not corpus.is_current(made, PAIRS, SEED + 1)


def test_planted_shares_match_their_targets(made: Path, rows: list[tuple[str, str, str]]) -> None:
    counts = Counter(label for label, _, _ in rows)
    for label, share in corpus.SHARES.items():
        assert counts[label] / PAIRS == pytest.approx(share, abs=0.001), label
    assert counts["clean"] == PAIRS - sum(counts[label] for label in corpus.SHARES)
    assert json.loads((made / corpus.MANIFEST).read_text())["labels"] == dict(counts)


def test_labelled_duplicates_are_exact_copies_of_clean_pairs(rows: list[tuple[str, str, str]]) -> None:
    clean = Counter((source, target) for label, source, target in rows if label == "clean")
    copies = [(source, target) for label, source, target in rows if label == "dup"]
    assert copies and all(clean[pair] >= 1 for pair in copies)
    assert len(set(copies)) == len(copies), "each clean pair is copied once at most"
    unplanted = Counter((source, target) for label, source, target in rows if label != "dup")
    assert max(unplanted.values()) == 1, "no duplicates but the planted ones"


def longest_run(text: str) -> int:
    words = [word.strip(",.?!").lower() for word in text.split()]
    longest = current = 1 if words else 0
    for before, word in zip(words, words[1:]):
        current = current + 1 if word == before else 1
        longest = max(longest, current)
    return longest


def letter_share(text: str) -> float:
    visible = re.sub(r"\s", "", text)
    return sum(character.isalpha() for character in visible) / max(len(visible), 1)


def test_each_label_holds_its_defect_and_clean_pairs_none(rows: list[tuple[str, str, str]]) -> None:
    for label, source, target in rows:
        words = sorted((len(source.split()), len(target.split())))
        if label in ("clean", "dup"):
            assert corpus.SHORTEST <= words[0] and words[1] <= corpus.LONGEST and words[1] < 2 * words[0]
            # frequent words now and then come two to five times in a row by chance, never ten
            assert longest_run(source) < 10 and longest_run(target) < 10
            assert min(letter_share(source), letter_share(target)) > 0.7
        elif label == "ratio":
            assert words[1] > 4 * words[0] >= 12, (source, target)
        elif label == "empty":
            assert (source == "") != (target == ""), (source, target)
        elif label == "repeat":
            assert max(longest_run(source), longest_run(target)) >= 10, (source, target)
        else:
            assert min(letter_share(source), letter_share(target)) <= 0.5, (source, target)
