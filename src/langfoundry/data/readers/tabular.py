"""Readers for files with columns: CSV, TSV, JSON, JSON Lines, Parquet and Excel workbooks."""

from __future__ import annotations

import csv
import difflib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langfoundry.core.config import Source
from langfoundry.core.errors import UserError
from langfoundry.data.readers.detect import reader_codec
from langfoundry.data.readers.encoding import RAW_PREFIX_CHARS, iter_lines, read_text
from langfoundry.data.readers.jsonl import parse_json, read_jsonl, repeated_detail, repeated_keys
from langfoundry.data.readers.rows import BadRow, Header, Item, Row, one_line, raw_json

PARQUET_BATCH_ROWS = 8192


def unique_names(names: list[str]) -> list[str]:
    """Header names with repeats made distinct ("gloss", "gloss.1"), so no column is silently dropped."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}.{count}")
    return unique


def header_of(file: str, names: list[str]) -> Header:
    """The Header for a row of column names: distinct names, and which of them the file repeats."""
    counts = Counter(names)
    return Header(file, tuple(unique_names(names)), tuple(name for name in counts if counts[name] > 1))


def read_delimited(path: Path, name: str, source: Source, *, tsv: bool) -> Iterator[Item]:
    """CSV (RFC 4180 quoting, fields may span lines) or TSV (no quoting: a tab separates, a line ends a row).

    The first non-blank row is the header; blank lines are not rows. A line with undecodable bytes
    is rejected by itself and the rest of the file is read. A field longer than the csv module's
    limit (131,072 characters; usually a quote that is never closed, which swallows the lines after
    it) is one reject (field_too_long) for the lines it took, and reading goes on after them.
    """
    codec = reader_codec(path, name, source.encoding, source.lang)
    consumed: list[int] = []  # line numbers the csv parser has taken for the current row
    consumed_text: list[str] = []
    unreadable: list[BadRow] = []

    def decoded_lines() -> Iterator[str]:
        for line in iter_lines(path, codec):
            if line.text is None:
                unreadable.append(BadRow(f"{name}:{line.number}", line.reason or "unreadable", line.detail or "",
                                         line.raw))
                continue
            consumed.append(line.number)
            consumed_text.append(line.text)
            yield line.text + "\n"

    def span() -> str:
        return f"line {consumed[0]}" if len(consumed) == 1 else f"lines {consumed[0]}-{consumed[-1]}"

    # TSV as distributed with corpora has no quoting: a stray '"' must not swallow the lines after it.
    options: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
    rows = csv.reader(decoded_lines(), **options)
    header: list[str] | None = None
    while True:
        consumed.clear()
        consumed_text.clear()
        try:
            values = next(rows)
        except StopIteration:
            break
        except csv.Error as err:
            if consumed and sum(len(text) + 1 for text in consumed_text) >= csv.field_size_limit():
                # the csv reader starts afresh on the next line, so the rest of the file is still read
                yield from unreadable
                unreadable.clear()
                yield BadRow(f"{name}:{consumed[0]}", "field_too_long",
                             f"{span()} make a field over {csv.field_size_limit():,} characters (a quote that is "
                             f"never closed?); fix the quoting there", "\n".join(consumed_text)[:RAW_PREFIX_CHARS])
                continue
            where = consumed[-1] if consumed else "?"
            raise UserError(f"{name}:{where}: {one_line(err)}; fix the quoting there") from None
        yield from unreadable
        unreadable.clear()
        if not values:
            continue
        origin = f"{name}:{consumed[0]}"
        if header is None:
            header_row = header_of(name, [value.strip() for value in values])
            header = list(header_row.columns)
            yield header_row
            continue
        if len(values) != len(header):
            quoted = f"; quoted fields make this row run over {span()}: a quote that is never closed?" \
                if len(consumed) > 1 else ""
            yield BadRow(origin, "wrong_field_count", f"{len(values)} fields where the header has {len(header)}{quoted}",
                         raw_json(values))
            continue
        yield Row(origin, dict(zip(header, values)))
    yield from unreadable


def _records_of(data: Any, name: str, source: Source) -> list[Any]:
    key = source.records_key
    if key is not None:
        if not isinstance(data, dict):
            raise UserError(f"{name}: records_key is {key!r} but the file holds a JSON {type(data).__name__}, "
                            f"not an object; remove records_key for a top-level list")
        if key not in data:
            keys = [str(k) for k in data]
            hint = difflib.get_close_matches(key, keys, n=1)
            maybe = f"; did you mean {hint[0]!r}?" if hint else ""
            raise UserError(f"{name}: no key {key!r} at the top level{maybe} (keys: {', '.join(keys) or 'none'}); "
                            f"set records_key in sources.yaml")
        data = data[key]
    elif isinstance(data, dict):
        lists = [str(k) for k, v in data.items() if isinstance(v, list)]
        raise UserError(f"{name}: the file is a JSON object; set records_key in sources.yaml to the key that "
                        f"holds the records (keys holding lists: {', '.join(lists) or 'none'})")
    if not isinstance(data, list):
        raise UserError(f"{name}: expected a list of records, found a JSON {type(data).__name__}")
    return data


def read_json(path: Path, name: str, source: Source) -> Iterator[Item]:
    """A JSON list of objects, or an object whose `records_key` holds that list; origin is file#index (0-based).

    A record with a key twice (at any depth) is a reject (duplicate_key) rather than a silent pick.
    """
    text = read_text(path, reader_codec(path, name, source.encoding, source.lang), name)
    try:
        data, repeated = parse_json(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{name}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); fix the file there") from None
    except (ValueError, RecursionError) as err:
        raise UserError(f"{name}: cannot read the JSON ({one_line(err)}); simplify or fix the file") from None
    records = _records_of(data, name, source)
    columns: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            columns.update(dict.fromkeys(record))
    if columns:
        yield Header(name, tuple(columns))
    for index, record in enumerate(records):
        origin = f"{name}#{index}"
        if not isinstance(record, dict):
            yield BadRow(origin, "not_an_object", f"record {index} is a JSON {type(record).__name__}", raw_json(record))
        elif repeated and (keys := repeated_keys(record)):
            yield BadRow(origin, "duplicate_key", f"record {index}: {repeated_detail(keys)}", raw_json(record))
        else:
            yield Row(origin, record)


# What a media stage measured about a record, kept in its meta; "document" is also the split's group (one video).
EXTRACTION_META = ("confidence", "engine", "score", "link", "document")


def read_extracted(path: Path, name: str, source: Source) -> Iterator[Item]:
    """A media stage's records (data/interim/media/): JSON Lines whose `origin` names the scan page and line or
    the document's sentences; that origin replaces the file:line one, and the engine's measures go to meta."""
    for item in read_jsonl(path, name, source):
        if isinstance(item, Row):
            fields = dict(item.fields)
            origin = fields.pop("origin", None)
            meta = {key: fields.pop(key) for key in EXTRACTION_META if key in fields}
            yield Row(origin if isinstance(origin, str) and origin else item.origin, fields, meta or None)
        elif isinstance(item, Header):
            yield Header(item.file, tuple(column for column in item.columns
                                          if column != "origin" and column not in EXTRACTION_META))
        else:
            yield item


def read_parquet(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Stream a Parquet file batch by batch; origin is file#row (0-based)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps every row group read in memory
        header = header_of(name, parquet.schema_arrow.names)
        yield header
        index = 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            if header.duplicates:  # Arrow allows repeated names; to_pylist would keep only the last
                batch = batch.rename_columns(list(header.columns))
            for record in batch.to_pylist():
                yield Row(f"{name}#{index}", record)
                index += 1
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:
        raise UserError(f"{name}: cannot read it as Parquet ({one_line(err)}); check the file or set `format:`") from None


def _cell_name(value: Any, index: int) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"column {index + 1}"
    return str(value).strip()


def _is_blank(values: tuple[Any, ...]) -> bool:
    return all(value is None or (isinstance(value, str) and not value.strip()) for value in values)


MergedRange = tuple[int, int, int, int]  # first row, first column, last row, last column (1-based)


def merged_ranges(workbook_path: Path, sheet_part: str) -> list[MergedRange]:
    """The merged cell ranges of one sheet, read from its XML part: openpyxl's read-only sheets, which
    stream large workbooks, do not expose them. Rows are cleared as they pass, so memory stays small."""
    import zipfile

    from lxml import etree
    from openpyxl.utils.cell import range_boundaries

    ranges: list[MergedRange] = []
    try:
        with zipfile.ZipFile(workbook_path) as archive, archive.open(sheet_part.lstrip("/")) as stream:
            for _, element in etree.iterparse(stream, events=("end",), tag=("{*}row", "{*}mergeCell"),
                                              resolve_entities=False, no_network=True, huge_tree=True):
                if element.tag.endswith("mergeCell") and element.get("ref"):
                    first_column, first_row, last_column, last_row = range_boundaries(element.get("ref"))
                    ranges.append((first_row, first_column, last_row, last_column))
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, etree.XMLSyntaxError) as err:
        raise UserError(f"{workbook_path.name}: cannot read the merged cells of {sheet_part} ({one_line(err)}); "
                        f"open the workbook and save it again as .xlsx") from None
    return ranges


class MergedCells:
    """Fills every cell of a merged range with the value of its top-left cell, as the sheet shows it."""

    def __init__(self, ranges: list[MergedRange]):
        self.by_row: dict[int, list[int]] = {}
        for index, (first_row, _, last_row, _) in enumerate(ranges):
            for row in range(first_row, last_row + 1):
                self.by_row.setdefault(row, []).append(index)
        self.ranges = ranges
        self.anchors: dict[int, Any] = {}

    def fill(self, number: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        covering = self.by_row.get(number)
        if not covering:
            return values
        cells = list(values)
        for index in covering:
            first_row, first_column, _, last_column = self.ranges[index]
            if len(cells) < last_column:
                cells.extend([None] * (last_column - len(cells)))
            if number == first_row:
                self.anchors[index] = cells[first_column - 1]
            for column in range(first_column, last_column + 1):
                cells[column - 1] = self.anchors.get(index)
        return tuple(cells)


def read_xlsx(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Every sheet (or the one `sheet` names) of a workbook; the first non-blank row of a sheet is its header.

    Origin is file:Sheet!row with Excel's 1-based row numbers; blank rows are not rows. Every cell of
    a merged range reads as the range's (top-left) value, as the sheet displays it: a gloss merged over
    three headwords' rows belongs to all three. A header cell merged over several columns names them
    all (then repeated, see Header.duplicates).
    """
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as err:
        raise UserError(f"{name}: cannot open it as an Excel workbook ({one_line(err)}); save it as .xlsx") from None
    try:
        sheets = workbook.sheetnames
        if source.sheet is not None:
            if source.sheet not in sheets:
                hint = difflib.get_close_matches(source.sheet, sheets, n=1)
                maybe = f"; did you mean {hint[0]!r}?" if hint else ""
                raise UserError(f"{name}: no sheet {source.sheet!r}{maybe} (sheets: {', '.join(sheets)})")
            sheets = [source.sheet]
        for sheet in sheets:
            worksheet = workbook[sheet]
            # the part name is kept on read-only sheets (openpyxl 3.1); without it merges stay top-left only
            part = getattr(worksheet, "_worksheet_path", None)
            merged = MergedCells(merged_ranges(path, part) if part else [])
            header: list[str] | None = None
            for number, values in enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1):
                values = merged.fill(number, values)
                if _is_blank(values):
                    continue
                if header is None:
                    header_row = header_of(f"{name}:{sheet}", [_cell_name(value, index) for index, value in enumerate(values)])
                    header = list(header_row.columns)
                    yield header_row
                    continue
                fields = dict(zip(header, values))
                for index in range(len(header), len(values)):  # cells right of the header keep their place
                    if values[index] is not None:
                        fields[f"column {index + 1}"] = values[index]
                yield Row(f"{name}:{sheet}!{number}", fields)
    finally:
        workbook.close()
