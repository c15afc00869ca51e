"""The data benchmarks' corpus: a seeded synthetic parallel corpus with planted defects, labelled per line.

Usage: python benchmarks/corpus.py [--n 200000] [--seed 12345] --out DIR

Pairs of a Javanese-like language (Latin script with è and é) and an Indonesian-like one, each side
drawn from its own vocabulary of 20,000 made-up words with Zipf-Mandelbrot frequencies (s = 1,
q = 2.7; frequent words tend to be short). Clean pairs have 3 to 40 words a side, their lengths
correlated (ratio under 2). Planted defects, as shares of all pairs: 5% exact copies of clean pairs,
3% a word-length ratio over 4, 2% one side mostly digits and punctuation, 2% one word repeated 10 to
20 times in a row on one side, 1% one side empty.

DIR receives src.txt and tgt.txt (line-aligned), corpus.jsonl ({"src": .., "tgt": ..} a line),
labels.txt (clean, dup, ratio, digits, repeat or empty for each line) and, once complete,
corpus.json (pairs, seed, format version and label counts: a later run reuses a corpus that matches).

The same seed gives the same bytes anywhere: every draw comes from PCG64's raw 64-bit output turned
into numbers by fixed arithmetic, not from library sampling methods whose algorithms may change.
Pairs are made and written in blocks of 65,536, so memory stays bounded whatever the size; a copy
lies in the same block as the pair it copies.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

VERSION = 1  # raise it when the output for a seed changes, so kept corpora are made again
BLOCK = 1 << 16
VOCABULARY = 20_000
LABELS = ("clean", "ratio", "digits", "repeat", "empty", "dup")
CLEAN, RATIO, DIGITS, REPEAT, EMPTY, DUP = range(len(LABELS))
SHARES = {"ratio": 0.03, "digits": 0.02, "repeat": 0.02, "empty": 0.01, "dup": 0.05}  # of all pairs
FILES = ("src.txt", "tgt.txt", "corpus.jsonl", "labels.txt")
MANIFEST = "corpus.json"

SENTENCE, DIGIT_SIDE, EMPTY_SIDE = range(3)  # what a side of a pair holds
SHORTEST, LONGEST = 3, 40  # words in a side of a clean pair
TAILS = (" ", ", ", ".\n", "?\n", "!\n")  # what follows a word: the next word, a comma, or the end
FORMS = 2 * len(TAILS)  # each word as written: plain or capitalised, times its tail
GUIDE = 1 << 20  # buckets of the lookup table for word draws
SYMBOLS = ("-", "--", ":", "/", "%", "(", ")", "#", "*", "+", "=", "...", ";", "|")
ABBREVIATIONS = ("No", "Rp", "Tbl", "hal")


def cdf_of(weights) -> np.ndarray:  # noqa: ANN001
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    return cumulative / cumulative[-1]


SYLLABLES_CDF = cdf_of([1, 3, 3, 1])  # one to four syllables a word
PUNCTUATION_CDF = cdf_of([6, 1, 1])  # a sentence ends in ".", "?" or "!"
DIGIT_TOKEN_CDF = cdf_of([55, 20, 20, 5])  # a number, a decimal, a symbol, an abbreviation


class Draws:
    """Random numbers from one PCG64 stream, named by the seed and the stream's own numbers."""

    def __init__(self, seed: int, *stream: int) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence([seed, *stream]))

    def uniform(self, size: int) -> np.ndarray:
        """Floats in [0, 1): the top 53 bits of each raw draw."""
        return (self._bits.random_raw(size) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def below(self, bounds, size: int) -> np.ndarray:  # noqa: ANN001
        """Integers in [0, bound), bound an int or an array of ints of at least 1."""
        scaled = np.floor(self.uniform(size) * bounds).astype(np.int64)
        return np.minimum(scaled, np.asarray(bounds) - 1)  # a product can round up to the bound itself

    def between(self, low: int, high: int, size: int) -> np.ndarray:
        return low + self.below(high - low + 1, size)

    def weighted(self, cdf: np.ndarray, size: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, self.uniform(size), side="right"), len(cdf) - 1)

    def order(self, size: int) -> np.ndarray:
        """A random permutation."""
        return np.argsort(self.uniform(size), kind="stable")


@dataclass(frozen=True)
class Phonology:
    """Word parts with their weights: a word is a prefix, one to four syllables and a suffix."""

    onsets: dict[str, int]
    vowels: dict[str, int]
    codas: dict[str, int]
    prefixes: dict[str, int]
    suffixes: dict[str, int]


def _even(*options: str) -> dict[str, int]:
    return dict.fromkeys(options, 1)


CODAS = {"": 4, **_even("n", "ng", "k", "h", "r", "l", "t", "s", "m")}
JAVANESE_LIKE = Phonology(
    onsets=_even("", "b", "c", "d", "dh", "g", "h", "j", "k", "l", "m", "n", "ng", "ny", "p", "r", "s", "t", "th",
                 "w", "y"),
    vowels={"a": 3, "i": 2, "u": 2, "e": 1, "o": 2, "è": 1, "é": 2},
    codas=CODAS,
    prefixes={"": 5, **_even("ng", "di", "ka", "pa", "sa", "ma")},
    suffixes={"": 5, **_even("é", "ipun", "aken", "an", "na", "ing")},
)
INDONESIAN_LIKE = Phonology(
    onsets=_even("", "b", "c", "d", "g", "h", "j", "k", "l", "m", "n", "ng", "ny", "p", "r", "s", "t", "w", "y",
                 "sy", "kh"),
    vowels={"a": 4, "i": 2, "u": 2, "e": 2, "o": 1, "é": 1},
    codas=CODAS,
    prefixes={"": 5, **_even("me", "mem", "men", "meng", "ber", "di", "ter", "pe", "ke", "se")},
    suffixes={"": 5, **_even("kan", "an", "nya", "i", "lah", "kah")},
)


def _pick(draws: Draws, table: dict[str, int], size: int) -> list[str]:
    options = list(table)
    return [options[index] for index in draws.weighted(cdf_of(list(table.values())), size).tolist()]


def _candidate_words(draws: Draws, phonology: Phonology, count: int) -> list[str]:
    syllables = (1 + draws.weighted(SYLLABLES_CDF, count)).tolist()
    total = sum(syllables)
    parts = zip(*(_pick(draws, table, total) for table in (phonology.onsets, phonology.vowels, phonology.codas)))
    made = iter("".join(part) for part in parts)
    stems = ("".join(islice(made, length)) for length in syllables)
    prefixes, suffixes = _pick(draws, phonology.prefixes, count), _pick(draws, phonology.suffixes, count)
    return [prefix + stem + suffix for prefix, stem, suffix in zip(prefixes, stems, suffixes)]


def made_up_words(draws: Draws, phonology: Phonology, size: int) -> list[str]:
    """size distinct words of two letters or more, most frequent first: ranked by length plus noise
    (normal, sd 2), so that frequent words tend to be short."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        for word in _candidate_words(draws, phonology, size):
            if len(word) >= 2 and word not in seen and len(words) < size:
                seen.add(word)
                words.append(word)
    first, second = draws.uniform(size).tolist(), draws.uniform(size).tolist()
    # Box-Muller with the math module's functions, one by one
    noise = [math.sqrt(-2.0 * math.log(1.0 - a)) * math.cos(2.0 * math.pi * b) for a, b in zip(first, second)]
    keys = np.array([len(word) + 2.0 * shift for word, shift in zip(words, noise)])
    return [words[index] for index in np.argsort(keys, kind="stable").tolist()]


class Language:
    """A vocabulary, its Zipf-Mandelbrot frequencies and every word written in each of its FORMS."""

    def __init__(self, words: list[str]) -> None:
        forms = [(word, word[0].upper() + word[1:]) for word in words]
        self.pieces = np.array([written + tail for pair in forms for written in pair for tail in TAILS], dtype=object)
        self.cdf = cdf_of(1.0 / (np.arange(1, len(words) + 1, dtype=np.float64) + 2.7))
        # The word of a draw u lies in guide[bucket of u] or the next one: a lookup, not a binary search.
        self.guide = np.minimum(np.searchsorted(self.cdf, np.arange(GUIDE + 1) / GUIDE, side="right"), len(words) - 1)
        self.guided = bool(np.diff(self.guide).max() <= 1)

    def draw(self, draws: Draws, size: int) -> np.ndarray:
        """Word ranks by frequency; the same as draws.weighted(self.cdf, size), faster."""
        if not self.guided:
            return draws.weighted(self.cdf, size)
        uniform = draws.uniform(size)
        word = self.guide[(uniform * GUIDE).astype(np.int64)]
        return word + (self.cdf[word] <= uniform)


def languages(seed: int) -> tuple[Language, Language]:
    draws = Draws(seed, 0)
    return tuple(Language(made_up_words(draws, phonology, VOCABULARY)) for phonology in (JAVANESE_LIKE, INDONESIAN_LIKE))


def clean_length_tables() -> tuple[np.ndarray, np.ndarray]:
    """Cumulative probabilities of a clean pair's side lengths, SHORTEST to LONGEST words: the source
    a log-normal(2.5, 0.55) count, the target (one row per source length) the source length times a
    normal(1.1, 0.15) factor; both rounded and clipped."""
    def normal(z: float) -> float:
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    lengths = range(SHORTEST, LONGEST)
    source = [normal((math.log(k + 0.5) - 2.5) / 0.55) for k in lengths] + [1.0]
    target = [[normal(((k + 0.5) / s - 1.1) / 0.15) for k in lengths] + [1.0] for s in range(SHORTEST, LONGEST + 1)]
    return np.array(source), np.array(target)


SOURCE_LENGTH_CDF, TARGET_LENGTH_CDF = clean_length_tables()


def clean_lengths(draws: Draws, size: int) -> np.ndarray:
    """Word counts of size clean pairs: shape (2, size), source then target."""
    source = draws.weighted(SOURCE_LENGTH_CDF, size)
    target = (TARGET_LENGTH_CDF[source] <= draws.uniform(size)[:, None]).sum(axis=1)
    return SHORTEST + np.stack([source, np.minimum(target, LONGEST - SHORTEST)])


@dataclass
class Plan:
    """What each side of each pair holds; arrays of shape (2, pairs) but run, of shape (pairs,)."""

    words: np.ndarray  # words in a sentence
    kind: np.ndarray  # SENTENCE, DIGIT_SIDE or EMPTY_SIDE
    repeat_at: np.ndarray  # the word repeated, -1 for none
    run: np.ndarray  # how many times in a row


def plan_pairs(draws: Draws, labels: np.ndarray) -> Plan:
    """Side lengths and contents of pairs with these labels (dup excluded); a one-sided defect falls
    on either side with even odds."""
    size = len(labels)
    words = clean_lengths(draws, size)
    side = draws.below(2, size)
    short = draws.between(3, 9, size)
    long = 4 * short + 1 + draws.below(LONGEST - 4 * short, size)  # a ratio over 4, at most LONGEST words
    run = draws.between(10, 20, size)
    kept = np.maximum(words[side, np.arange(size)] - run // 2, 1)  # words drawn before one is repeated
    repeated_word = draws.below(kept, size)

    rows = np.flatnonzero(labels == RATIO)
    words[side[rows], rows], words[1 - side[rows], rows] = short[rows], long[rows]
    kind = np.full((2, size), SENTENCE)
    for label, holds in ((DIGITS, DIGIT_SIDE), (EMPTY, EMPTY_SIDE)):
        rows = np.flatnonzero(labels == label)
        kind[side[rows], rows] = holds
    repeat_at = np.full((2, size), -1)
    rows = np.flatnonzero(labels == REPEAT)
    repeat_at[side[rows], rows] = repeated_word[rows]
    words[side[rows], rows] = kept[rows] - 1 + run[rows]
    return Plan(words, kind, repeat_at, run)


def _repeat_words(word: np.ndarray, starts: np.ndarray, repeat_at: np.ndarray, run: np.ndarray) -> None:
    rows = np.flatnonzero(repeat_at >= 0)
    first = starts[rows] + repeat_at[rows]
    copies = run[rows] - 1
    offsets = np.arange(int(copies.sum())) - np.repeat(np.cumsum(copies) - copies, copies)
    word[np.repeat(first + 1, copies) + offsets] = np.repeat(word[first], copies)


def _forms(draws: Draws, counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each word's form: capitalised or not (the first word, and a name in 20% of sentences over 4
    words) and its tail (a comma after one word in 40% of sentences over 6 words, the end mark after
    the last); set sentence by sentence, not word by word."""
    size = len(counts)
    named = (counts > 4) & (draws.uniform(size) < 0.2)
    name_at = 1 + draws.below(np.maximum(counts - 2, 1), size)
    with_comma = (counts > 6) & (draws.uniform(size) < 0.4)
    comma_at = 2 + draws.below(np.maximum(counts - 4, 1), size)
    end = 2 + draws.weighted(PUNCTUATION_CDF, size)
    form = np.zeros(int(counts.sum()), dtype=np.int64)
    form[starts[with_comma] + comma_at[with_comma]] = 1
    form[starts + counts - 1] = end
    form[starts] += len(TAILS)
    form[starts[named] + name_at[named]] += len(TAILS)
    return form


def digit_lines(draws: Draws, counts: np.ndarray) -> list[str]:
    """Sides of mostly numbers and symbols, counts[i] tokens in the i-th."""
    total = int(counts.sum())
    kinds = draws.weighted(DIGIT_TOKEN_CDF, total).tolist()
    numbers, wholes, fractions = (draws.below(bound, total).tolist() for bound in (100_000, 1000, 1000))
    symbols, abbreviations = draws.below(len(SYMBOLS), total).tolist(), draws.below(len(ABBREVIATIONS), total).tolist()
    tokens = iter([str(number) if kind == 0 else f"{whole}.{fraction:03d}" if kind == 1 else
                   SYMBOLS[symbol] if kind == 2 else ABBREVIATIONS[abbreviation]
                   for kind, number, whole, fraction, symbol, abbreviation
                   in zip(kinds, numbers, wholes, fractions, symbols, abbreviations)])
    return [" ".join(islice(tokens, count)) for count in counts.tolist()]


def side_lines(draws: Draws, language: Language, plan: Plan, side: int) -> list[str]:
    """One side of the planned pairs as lines: words are drawn and written for every pair at once,
    a digits or empty side standing in for one word."""
    kind = plan.kind[side]
    counts = np.where(kind == SENTENCE, plan.words[side], 1)
    starts = np.cumsum(counts) - counts
    word = language.draw(draws, int(counts.sum()))
    _repeat_words(word, starts, plan.repeat_at[side], plan.run)
    pieces = language.pieces[word * FORMS + _forms(draws, counts, starts)]
    digits = np.flatnonzero(kind == DIGIT_SIDE)
    pieces[starts[digits]] = np.array([line + "\n" for line in digit_lines(draws, plan.words[side][digits])],
                                      dtype=object)
    pieces[starts[kind == EMPTY_SIDE]] = "\n"
    return "".join(pieces.tolist()).split("\n")[:-1]


def block_labels(draws: Draws, start: int, stop: int) -> np.ndarray:
    """Labels of pairs start to stop, shuffled: each defect's running count stays at its share of all
    pairs so far, rounded, so the corpus holds round(share * pairs) of each."""
    counts = [round(SHARES[LABELS[code]] * stop) - round(SHARES[LABELS[code]] * start) for code in range(1, len(LABELS))]
    defects = np.repeat(np.arange(1, len(LABELS)), counts)
    labels = np.concatenate([np.full(stop - start - len(defects), CLEAN), defects])
    return labels[draws.order(len(labels))]


def block(pair: tuple[Language, Language], seed: int, index: int, start: int, stop: int):  # noqa: ANN201
    """(source lines, target lines, label codes) of pairs start to stop, the index-th block."""
    draws = Draws(seed, 1, index)
    labels = block_labels(draws, start, stop)
    copy = labels == DUP
    base = labels[~copy]
    plan = plan_pairs(draws, base)
    sides = [side_lines(draws, language, plan, side) for side, language in enumerate(pair)]
    clean = np.flatnonzero(base == CLEAN)
    source_row = np.empty(len(labels), dtype=np.int64)
    source_row[~copy] = np.arange(len(base))
    source_row[copy] = clean[draws.order(len(clean))[:int(copy.sum())]]  # each clean pair copied once at most
    rows = source_row.tolist()
    return [sides[0][row] for row in rows], [sides[1][row] for row in rows], labels


def write_corpus(out: Path, pairs: int, seed: int) -> dict[str, int]:
    """Write the corpus of pairs pairs into out, block by block; the label counts."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    pair = languages(seed)
    counts: Counter[str] = Counter()
    with ExitStack() as stack:
        src, tgt, jsonl, labels_file = (stack.enter_context((out / name).open("w", encoding="utf-8", newline="\n"))
                                        for name in FILES)
        for index, start in enumerate(range(0, pairs, BLOCK)):
            sources, targets, labels = block(pair, seed, index, start, min(start + BLOCK, pairs))
            names = [LABELS[code] for code in labels.tolist()]
            src.write("\n".join(sources) + "\n")
            tgt.write("\n".join(targets) + "\n")
            # no side holds a quote, a backslash or a control character, so this is what json.dumps writes
            jsonl.write("".join(f'{{"src": "{source}", "tgt": "{target}"}}\n'
                                for source, target in zip(sources, targets)))
            labels_file.write("\n".join(names) + "\n")
            counts.update(names)
    labelled = {label: counts[label] for label in LABELS}
    manifest = {"pairs": pairs, "seed": seed, "version": VERSION, "labels": labelled}
    (out / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
    return labelled


def is_current(out: Path, pairs: int, seed: int) -> bool:
    """Whether out holds a complete corpus of this size and seed from this version of the generator."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = {"pairs": pairs, "seed": seed, "version": VERSION}
    return all(manifest.get(key) == value for key, value in wanted.items()) and all(
        (out / name).is_file() for name in FILES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="pairs")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    labels = write_corpus(args.out, args.n, args.seed)
    print(json.dumps({"n": args.n, "seed": args.seed, "labels": labels}))


if __name__ == "__main__":
    main()
