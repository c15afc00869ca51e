"""`langfoundry check`: read one file the way ingest would, without the pipeline, and say whether it is usable.

It builds a Source from the command's arguments, reads it with ingest's own readers and row mapping
(ingest_source), runs the clean stage's filters on what ingest keeps, and reports rows read, rows
usable, rejects by reason with their first places, the detected encoding and line endings, the
columns nothing reads, and the script mix of each side.

Exit status: 0 when the file is usable; 1 when no row is usable, or when ingest rejects more of the
rows read, or the clean filters more of the rows ingest keeps, than the threshold allows (the quality
gates judge each stage so: --max-reject-rate, else quality.max_reject_rate in params.yaml, else 0.5);
2 when the file cannot be read at all (a UserError).
"""

from __future__ import annotations

import io
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import regex
from pydantic import ValidationError

from langfoundry.core.config import Params, Source, load_params
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import INVENTORY_PATH, load_inventory
from langfoundry.core.records import origin_parts, records_table, rejects_table
from langfoundry.data.ingest import TableBuffer, ingest_source
from langfoundry.data.mapping import check_source
from langfoundry.data.readers import SourceFile, source_files
from langfoundry.data.readers.encoding import choose_codec

CHECK_ID = "check"
DEFAULT_MAX_REJECT_RATE = 0.5  # the quality gate's default, used when params.yaml sets none
PLACES_SHOWN = 3
TEXT_FORMATS = ("csv", "tsv", "json", "jsonl", "txt", "po")  # formats whose line endings are counted
# Scripts the mix names besides the inventory's. The regex module can test a character's script
# (\p{sc=...}) but cannot name it, so candidates are tried in turn; a letter of any other script is
# shown under the first word of its Unicode name.
COMMON_SCRIPTS = ("Latn", "Cyrl", "Grek", "Arab", "Hebr", "Deva", "Beng", "Guru", "Gujr", "Orya", "Taml", "Telu",
                  "Knda", "Mlym", "Sinh", "Thai", "Laoo", "Khmr", "Mymr", "Tibt", "Geor", "Armn", "Ethi", "Hang",
                  "Hira", "Kana", "Hani", "Java", "Sund", "Bali", "Bugi", "Nkoo", "Adlm", "Vaii", "Tfng", "Thaa",
                  "Syrc", "Zyyy", "Zinh")


@dataclass
class Rejects:
    """Rejected rows of one stage and reason: how many, the first places and the first detail."""
    count: int = 0
    places: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass
class CheckReport:
    file: str
    formats: Counter  # format -> files
    encodings: Counter  # description -> files
    line_endings: Counter  # CRLF / LF / CR -> lines
    files: int
    empty_files: int
    rows_read: int
    ingest_kept: int
    usable: int
    rejects: dict[tuple[str, str], Rejects]  # (stage, reason) -> rejects
    unused_columns: list[str]
    script_mix: dict[str, tuple[str, str | None, list[tuple[str, float]]]]  # side -> (lang, expected script, shares)
    clean_ran: bool
    notes: list[str]
    max_reject_rate: float
    threshold_from: str

    @property
    def rejected(self) -> int:
        return self.rows_read - self.usable

    @property
    def stage_rates(self) -> dict[str, float]:
        """Share of its input each stage rejects, as the quality gates compute it."""
        rates = {"ingest": (self.rows_read - self.ingest_kept) / self.rows_read if self.rows_read else 0.0}
        if self.clean_ran:
            rates["clean"] = (self.ingest_kept - self.usable) / self.ingest_kept if self.ingest_kept else 0.0
        return rates

    @property
    def exit_code(self) -> int:
        too_many = any(rate > self.max_reject_rate for rate in self.stage_rates.values())
        return 1 if self.usable == 0 or too_many else 0


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """--map column=field arguments as a Source's columns (field -> column)."""
    columns: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.rpartition("=")
        if not sep or not column or not name:
            raise UserError(f"--map {pair!r}: write it as COLUMN=FIELD, e.g. --map kata=headword")
        if name in columns:
            raise UserError(f"--map: field {name!r} is mapped twice ({columns[name]!r} and {column!r}); keep one")
        columns[name] = column
    return columns


# Ingest's messages name sources.yaml settings; here the settings are the command's options.
_CHECK_WORDING = [
    (rf"sources\.yaml: source '{CHECK_ID}':? ", ""),
    (r"\(set columns\.(\w+) in sources\.yaml to map it\)", r"(map it with --map COLUMN=\1)"),
    (r"\(columns: \{(\w+): (.+?)\} in sources\.yaml\)", r"(--map \2=\1)"),
    (r"columns\.(\w+) is not a field", r"--map ...=\1: \1 is not a field"),
    (r"needs pivot_lang", "needs --pivot-lang"),
    (r"set records_key in sources\.yaml to", "pass --records-key:"),
    (r"set records_key in sources\.yaml", "pass --records-key"),
    (r"remove records_key", "leave out --records-key"),
    (r"`encoding:`|encoding:", "--encoding"),
    (r"in sources\.yaml", "given"),
    (r"`format:`|format:", "--format"),
]


def _as_check_message(message: str) -> str:
    for pattern, replacement in _CHECK_WORDING:
        message = regex.sub(pattern, replacement, message)
    return message


def make_source(path: str, kind: str, lang: str, pivot_lang: str | None = None, pivot_path: str | None = None,
                fmt: str | None = None, columns: dict[str, str] | None = None, encoding: str | None = None,
                sheet: str | None = None, records_key: str | None = None) -> Source:
    try:
        return Source(id=CHECK_ID, kind=kind, lang=lang, pivot_lang=pivot_lang, path=path, pivot_path=pivot_path,
                      format=fmt, columns=columns or {}, encoding=encoding, sheet=sheet, records_key=records_key,
                      task="checked" if kind == "labelled" else None)  # a one-file check names no set
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise UserError(f"check: {where} = {problem.get('input')!r}: {problem['msg']}") from None


# --- what the file is made of --------------------------------------------------------------------


def describe_encoding(file: SourceFile, declared: str | None) -> str:
    """How the file's text is encoded, as ingest will decode it."""
    if file.format in ("parquet", "xlsx"):
        return f"binary ({file.format})"
    if file.format == "tmx":
        with file.path.open("rb") as handle:
            head = handle.read(200)
        sniffed = choose_codec(file.path, declared)
        if sniffed != "utf-8":
            return _codec_name(sniffed)
        stated = regex.search(rb"""<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)""", head)
        return f"{stated.group(1).decode()} (XML declaration)" if stated else "utf-8 (XML default)"
    if file.format == "po":
        import polib

        sniffed = choose_codec(file.path, declared)
        if declared or sniffed != "utf-8":
            return _codec_name(sniffed)
        return f"{polib.detect_encoding(str(file.path))} (PO header charset or default)"
    return _codec_name(choose_codec(file.path, declared))


def _codec_name(codec: str) -> str:
    return {"utf-8-sig": "utf-8 with BOM", "utf-16": "utf-16 (BOM)"}.get(codec, codec)


def count_line_endings(path: Path, codec: str) -> Counter:
    """Lines ended by CRLF, LF and CR (ingest reads them all alike), counted in 1 MiB pieces."""
    counts: Counter = Counter()
    with path.open("rb") as binary:
        stream = io.TextIOWrapper(binary, encoding=codec, errors="replace", newline="")
        carry = ""
        while piece := stream.read(1 << 20):
            piece = carry + piece
            carry = "\r" if piece.endswith("\r") else ""  # its "\n" may open the next piece
            piece = piece[:-1] if carry else piece
            crlf = piece.count("\r\n")
            counts["CRLF"] += crlf
            counts["LF"] += piece.count("\n") - crlf
            counts["CR"] += piece.count("\r") - crlf
        counts["CR"] += len(carry)
    return +counts


def script_shares(texts: Iterable[str | None], candidates: Iterable[str]) -> list[tuple[str, float]]:
    """Share of letters (\\p{L}) per Unicode script, largest first."""
    characters: Counter = Counter()
    for text in texts:
        if text:
            characters.update(text)
    groups = []
    for code in dict.fromkeys(candidates):
        try:
            regex.compile(rf"\p{{sc={code}}}")
        except regex.error:
            continue  # not a script code regex knows; the inventory check reports it
        groups.append(rf"(?P<{code}>\p{{sc={code}}})")
    classify = regex.compile("|".join(groups)) if groups else None
    letters: Counter = Counter()
    for char, count in characters.items():
        if not regex.match(r"\p{L}", char):
            continue
        match = classify.match(char) if classify else None
        letters[match.lastgroup if match else unicodedata.name(char, "UNKNOWN").split()[0].title()] += count
    total = sum(letters.values())
    return [(script, count / total) for script, count in letters.most_common()] if total else []


# --- the check -----------------------------------------------------------------------------------


def reject_threshold(params: Params, override: float | None) -> tuple[float, str]:
    if override is not None:
        return override, "--max-reject-rate"
    quality = getattr(params, "quality", None)
    value = getattr(quality, "max_reject_rate", None)
    if value is not None:
        return float(value), "quality.max_reject_rate in params.yaml"
    return DEFAULT_MAX_REJECT_RATE, "the quality gate's default"


def _collect(rejects: dict[tuple[str, str], Rejects], stage: str, table: pa.Table) -> None:
    for reason, origin, detail in zip(*(table.column(name).to_pylist() for name in ("reason", "origin", "detail"))):
        entry = rejects.setdefault((stage, reason), Rejects(detail=detail or ""))
        entry.count += 1
        if len(entry.places) < PLACES_SHOWN:
            entry.places.append(origin)


def check_file(source: Source, root: Path | str = ".", params_path: Path | str = "params.yaml",
               inventory_path: Path | str = INVENTORY_PATH, max_reject_rate: float | None = None) -> CheckReport:
    """Read the source's file(s) as ingest would and judge them; raises UserError when it cannot be read."""
    root = Path(root).absolute()
    path = Path(source.path or "")
    if not (root / path).exists():
        raise UserError(f"{path}: not found; give the path of the file to check")
    notes: list[str] = []
    params = load_params(params_path) if Path(params_path).exists() else Params()
    threshold, threshold_from = reject_threshold(params, max_reject_rate)
    inventory = load_inventory(inventory_path) if Path(inventory_path).exists() else {}
    if not inventory:
        notes.append(f"no language inventory at {inventory_path}: scripts are not compared and clean filters not run")
    for tag in (source.lang, source.pivot_lang):
        if inventory and tag and tag not in inventory:
            notes.append(f"language tag {tag!r} is not in {inventory_path}; ingest refuses it until a row is added there")
    for side in (source.path, source.pivot_path):
        resolved = (root / side).resolve() if side else None
        if resolved and not resolved.is_relative_to(root.resolve()) and not params.ingest.allow_outside_repo:
            notes.append(f"{side} lies outside the repository: ingest refuses it unless ingest.allow_outside_repo "
                         f"is true; copy it under data/raw/")
    try:
        check_source(source)
        files = source_files(source, root, allow_outside=True)
        encodings: Counter = Counter()
        endings: Counter = Counter()
        for file in files:
            encodings[describe_encoding(file, source.encoding)] += 1
            if file.format in TEXT_FORMATS:
                for side in filter(None, (file.path, file.pivot_path)):
                    endings.update(count_line_endings(side, choose_codec(side, source.encoding)))
        records, rejected_rows = TableBuffer(records_table), TableBuffer(rejects_table)
        counts = ingest_source(source, root, True, records, rejected_rows, inventory)
    except UserError as err:
        raise UserError(_as_check_message(str(err))) from None
    kept = records.table()
    rejects: dict[tuple[str, str], Rejects] = {}
    _collect(rejects, "ingest", rejected_rows.table())

    scripts = {tag: language.script for tag, language in inventory.items()}
    candidates = list(COMMON_SCRIPTS) + sorted(set(scripts.values()))
    mix = {}
    for side, lang in (("text", source.lang), ("pivot_text", source.pivot_lang)):
        values = kept.column(side).to_pylist()
        if lang and any(values):
            expected = scripts.get(lang)
            mix[side] = (lang, expected, script_shares(values, ([expected] if expected else []) + candidates))

    usable, clean_ran = kept.num_rows, False
    if kept.num_rows and all(tag in scripts for tag in (source.lang, source.pivot_lang) if tag):
        from langfoundry.clean.driver import clean_batch

        clean_kept, clean_rejects, _ = clean_batch(kept, params.clean, scripts, where=str(path))
        _collect(rejects, "clean", clean_rejects)
        usable, clean_ran = clean_kept.num_rows, True
    return CheckReport(file=files[0].name if len(files) == 1 else str(path), formats=Counter(f.format for f in files),
                       encodings=encodings, line_endings=endings, files=len(files), empty_files=counts.empty_files,
                       rows_read=counts.rows_read, ingest_kept=counts.kept, usable=usable, rejects=rejects,
                       unused_columns=sorted(counts.unused_columns), script_mix=mix, clean_ran=clean_ran, notes=notes,
                       max_reject_rate=threshold, threshold_from=threshold_from)


# --- the report ----------------------------------------------------------------------------------


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _places(places: list[str]) -> str:
    """Origins, the file named once: "a.csv:3, :7, :9" (or "#7", ":Sheet!7", ":7:msgstr[1]")."""
    files = origin_parts(pa.array(places, type=pa.string())).column("file").to_pylist()
    shown = places[:1]
    for place, file in zip(places[1:], files[1:]):
        shown.append(place[len(file):] if file == files[0] and len(file) < len(place) else place)
    return ", ".join(shown)


def _counted(counter: Counter, unit: str) -> str:
    return ", ".join(f"{name} ({count:,} {unit})" if len(counter) > 1 or unit != "files" else name
                     for name, count in counter.most_common())


def format_report(report: CheckReport, source: Source) -> str:
    pair = f" -> {source.pivot_lang}" if source.pivot_lang else ""
    files = f", {report.files:,} files" if report.files > 1 else ""
    lines = [f"check:      {report.file} ({', '.join(sorted(report.formats))}{files}) as {source.kind} {source.lang}{pair}",
             f"encoding:   {_counted(report.encodings, 'files')}"]
    if report.line_endings:
        kinds = report.line_endings
        said = ", ".join(f"{name} {count:,}" for name, count in kinds.most_common())
        lines.append(f"lines end:  {'mixed: ' if len(kinds) > 1 else ''}{said}" + (" (all read alike)" if len(kinds) > 1 else ""))
    if report.empty_files:
        lines.append(f"empty:      {report.empty_files:,} file(s) with no bytes or only a byte order mark")
    lines += [f"rows read:  {report.rows_read:,}",
              f"usable:     {report.usable:,} ({_share(report.usable, report.rows_read)})"
              + ("" if report.clean_ran else " (clean filters not run)"),
              f"rejected:   {report.rejected:,} ({_share(report.rejected, report.rows_read)})"]
    width = max((len(reason) for _, reason in report.rejects), default=0)
    digits = max((len(f"{entry.count:,}") for entry in report.rejects.values()), default=0)
    for (stage, reason), entry in sorted(report.rejects.items(), key=lambda item: (item[0][0] != "ingest", -item[1].count)):
        more = ", ..." if entry.count > len(entry.places) else ""
        first = "first: " if entry.count > 1 else ""
        lines.append(f"  {stage:<6} {reason:<{width}} {entry.count:>{digits},}  {_places(entry.places)}{more}"
                     + (f"  ({first}{entry.detail})" if entry.detail else ""))
    if report.unused_columns:
        lines.append(f"ignored:    column(s) no record field reads: {', '.join(report.unused_columns)} "
                     f"(map one with --map COLUMN=FIELD)")
    for number, (side, (lang, expected, shares)) in enumerate(report.script_mix.items()):
        shown = ", ".join(f"{script} {100 * share:.1f}%" for script, share in shares[:5]) or "no letters"
        rest = sum(share for _, share in shares[5:])
        shown += f", others {100 * rest:.1f}%" if rest else ""
        wants = f", inventory says {expected}" if expected else ""
        lines.append(f"{'scripts:' if number == 0 else '':<12}{side} ({lang}{wants}): {shown}")
    lines += [f"note:       {note}" for note in report.notes]
    limit = f"{100 * report.max_reject_rate:.1f}% ({report.threshold_from})"
    rates = ", ".join(f"{stage} rejects {100 * rate:.1f}%" for stage, rate in report.stage_rates.items())
    if report.rows_read == 0:
        verdict = "not usable: no rows"
    elif report.usable == 0:
        verdict = "not usable: every row is rejected"
    elif report.exit_code:
        verdict = f"not usable: {rates}; a stage may reject at most {limit}"
    else:
        verdict = f"usable: {rates}; a stage may reject at most {limit}"
    lines.append(f"verdict:    {verdict}")
    return "\n".join(lines)


def run_check(args: Any) -> int:
    """The `langfoundry check` command: print the report, return the exit status."""
    source = make_source(args.file, args.kind, args.lang, args.pivot_lang, args.pivot_file, args.format,
                         parse_mapping(args.map or []), args.encoding, args.sheet, args.records_key)
    report = check_file(source, params_path=args.params, inventory_path=args.inventory,
                        max_reject_rate=args.max_reject_rate)
    print(format_report(report, source))
    return report.exit_code
