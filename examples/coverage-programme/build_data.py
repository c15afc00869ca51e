"""The coverage programme's input data, built offline and the same on every machine.

- `data/raw/programme/banyumasan/dictionary.csv`: 300 Banyumasan headwords with their Indonesian glosses, taken
  from the installed `banyumasan-corpus` package (every sixth of its 2,000 entries, in order).
- `data/raw/programme/<language>/delivery-<n>.tsv`: short phrase pairs (a noun and an adjective) in Javanese,
  Sundanese, Minangkabau and Balinese with their Indonesian translation, made from the small word lists below
  (20 nouns and 20 adjectives a language: 400 phrases). Delivery 1 holds 300 phrases per language; each later
  delivery adds the next 40 of the same seeded order. The word lists are everyday vocabulary written for this
  walkthrough, not a linguistic resource: they give each language its own words, so the coverage report, the
  language identifier and the per-region scores have something real to separate.

Usage: python examples/coverage-programme/build_data.py --root DIR [--delivery N]
(delivery 1 also writes the Banyumasan dictionary; N > 1 adds data/raw/programme/<language>/delivery-N.tsv).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from importlib import metadata
from pathlib import Path

PROGRAMME = Path("data/raw/programme")
FIRST_DELIVERY = 300  # phrases per language in delivery 1
LATER_DELIVERY = 40  # phrases per language in each later delivery
DICTIONARY_ENTRIES = 300
SEED = 16

INDONESIAN_NOUNS = ["rumah", "air", "nasi", "jalan", "sungai", "gunung", "anak", "orang", "pohon", "buku",
                    "kucing", "anjing", "ayam", "ikan", "laut", "desa", "pasar", "sawah", "baju", "mobil"]
INDONESIAN_ADJECTIVES = ["besar", "kecil", "baru", "lama", "bagus", "jelek", "bersih", "kotor", "panas", "dingin",
                         "tinggi", "pendek", "jauh", "dekat", "putih", "hitam", "merah", "kuning", "manis", "murah"]

# tag -> (folder, column name, nouns, adjectives), each list in the order of the Indonesian one above
LANGUAGES: dict[str, tuple[str, str, list[str], list[str]]] = {
    "jv": ("javanese", "jawa",
           ["omah", "banyu", "sega", "dalan", "kali", "gunung", "bocah", "wong", "wit", "buku",
            "kucing", "asu", "pitik", "iwak", "segara", "desa", "pasar", "sawah", "klambi", "montor"],
           ["gedhe", "cilik", "anyar", "lawas", "apik", "elek", "resik", "reged", "panas", "adhem",
            "dhuwur", "cendhek", "adoh", "cedhak", "putih", "ireng", "abang", "kuning", "legi", "murah"]),
    "su": ("sundanese", "sunda",
           ["imah", "cai", "sangu", "jalan", "walungan", "gunung", "budak", "jalma", "tangkal", "buku",
            "ucing", "anjing", "hayam", "lauk", "laut", "lembur", "pasar", "sawah", "baju", "mobil"],
           ["gede", "leutik", "anyar", "heubeul", "alus", "awon", "beresih", "kotor", "panas", "tiis",
            "jangkung", "pondok", "jauh", "deukeut", "bodas", "hideung", "beureum", "koneng", "amis", "mirah"]),
    "min": ("minangkabau", "minang",
            ["rumah", "aia", "nasi", "jalan", "batang aia", "gunuang", "anak", "urang", "batang kayu", "buku",
             "kuciang", "anjiang", "ayam", "lauak", "lauik", "nagari", "pasa", "sawah", "baju", "oto"],
            ["gadang", "ketek", "baru", "lamo", "rancak", "buruak", "barasiah", "kumuah", "angek", "dingin",
             "tinggi", "pendek", "jauah", "dakek", "putiah", "itam", "sirah", "kuniang", "manih", "murah"]),
    "ban": ("balinese", "bali",
            ["umah", "yeh", "nasi", "margi", "tukad", "gunung", "pianak", "jelema", "punyan kayu", "buku",
             "meong", "cicing", "siap", "be", "pasih", "desa", "peken", "carik", "baju", "montor"],
            ["gede", "cenik", "anyar", "tua", "luung", "jelek", "kedas", "daki", "panes", "nyem",
             "tegeh", "bawak", "joh", "paek", "putih", "selem", "barak", "kuning", "manis", "mudah"]),
}


def phrases(tag: str) -> list[tuple[str, str]]:
    """Every (phrase, Indonesian) pair of a language, in a seeded order that never changes."""
    _, _, nouns, adjectives = LANGUAGES[tag]
    pairs = [(f"{noun} {adjective}", f"{noun_id} {adjective_id}")
             for noun, noun_id in zip(nouns, INDONESIAN_NOUNS, strict=True)
             for adjective, adjective_id in zip(adjectives, INDONESIAN_ADJECTIVES, strict=True)]
    random.Random(f"{SEED}:{tag}").shuffle(pairs)
    return pairs


def delivery_slice(number: int) -> slice:
    """The phrases of delivery `number` (1, 2, ...) in each language's order."""
    if number == 1:
        return slice(0, FIRST_DELIVERY)
    start = FIRST_DELIVERY + (number - 2) * LATER_DELIVERY
    return slice(start, start + LATER_DELIVERY)


def write_delivery(root: Path, number: int) -> dict[str, int]:
    """data/raw/programme/<language>/delivery-<number>.tsv for each phrase language; rows written per tag."""
    written = {}
    for tag, (folder, column, _, _) in LANGUAGES.items():
        rows = phrases(tag)[delivery_slice(number)]
        if not rows:
            raise SystemExit(f"delivery {number}: no phrases left for {tag} (400 in all)")
        path = root / PROGRAMME / folder / f"delivery-{number}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow([column, "indonesia"])
            writer.writerows(rows)
        written[tag] = len(rows)
    return written


def package_entries() -> list[dict[str, str]]:
    """The Banyumasan entries as the installed banyumasan-corpus package ships them."""
    [resource] = [file for file in metadata.files("banyumasan-corpus") or [] if file.name == "corpus.json"]
    return json.loads(Path(resource.locate()).read_text(encoding="utf-8"))["entries"]


def write_dictionary(root: Path) -> int:
    entries = package_entries()[::6][:DICTIONARY_ENTRIES]
    path = root / PROGRAMME / "banyumasan" / "dictionary.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ngapak", "indonesia"])
        writer.writerows([entry["ngapak"], entry["indonesia"]] for entry in entries)
    return len(entries)


def build(root: Path, delivery: int = 1) -> str:
    """Write delivery `delivery` under root; a line saying what arrived."""
    written = write_delivery(Path(root), delivery)
    parts = [f"{tag} {count}" for tag, count in written.items()]
    if delivery == 1:
        parts.insert(0, f"jv-x-banyumas {write_dictionary(Path(root))}")
    return f"delivery {delivery}: {sum(written.values()) + (DICTIONARY_ENTRIES if delivery == 1 else 0)} rows " \
           f"({', '.join(parts)}) under {PROGRAMME}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="the project the data goes into")
    parser.add_argument("--delivery", type=int, default=1)
    args = parser.parse_args()
    print(build(args.root, args.delivery))
