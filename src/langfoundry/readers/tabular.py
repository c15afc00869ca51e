"""Readers for files with columns: CSV, TSV, JSON, JSON Lines, Parquet and Excel workbooks."""

from __future__ import annotations

import csv
import difflib
import json
from pathlib import Path
from typing import Any, Iterator

from ..config import Source
from ..errors import UserError
from .encoding import choose_codec, invalid_reason, iter_lines, read_text
from .rows import BadRow, Header, Item, Row, one_line, raw_json

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


def read_delimited(path: Path, name: str, source: Source, *, tsv: bool) -> Iterator[Item]:
    """CSV (RFC 4180 quoting, fields may span lines) or TSV (no quoting: a tab separates, a line ends a row).

    The first non-blank row is the header; blank lines are not rows. A line with undecodable bytes
    is rejected by itself and the rest of the file is read.
    """
    codec = choose_codec(path, source.encoding)
    reason = invalid_reason(codec)
    consumed: list[int] = []  # line numbers the csv parser has taken for the current row
    undecodable: list[BadRow] = []

    def decoded_lines() -> Iterator[str]:
        for line in iter_lines(path, codec):
            if line.text is None:
                undecodable.append(BadRow(f"{name}:{line.number}", reason, f"bytes that are not valid {codec}", line.raw))
                continue
            consumed.append(line.number)
            yield line.text + "\n"

    # TSV as distributed with corpora has no quoting: a stray '"' must not swallow the lines after it.
    options: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
    rows = csv.reader(decoded_lines(), **options)
    header: list[str] | None = None
    while True:
        consumed.clear()
        try:
            values = next(rows)
        except StopIteration:
            break
        except csv.Error as err:
            where = consumed[-1] if consumed else "?"
            raise UserError(f"{name}:{where}: {one_line(err)}; fix the quoting there") from None
        yield from undecodable
        undecodable.clear()
        if not values:
            continue
        origin = f"{name}:{consumed[0]}"
        if header is None:
            header = unique_names([value.strip() for value in values])
            yield Header(name, tuple(header))
            continue
        if len(values) != len(header):
            yield BadRow(origin, "wrong_field_count", f"{len(values)} fields where the header has {len(header)}",
                         raw_json(values))
            continue
        yield Row(origin, dict(zip(header, values)))
    yield from undecodable


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
    """A JSON list of objects, or an object whose `records_key` holds that list; origin is file#index (0-based)."""
    text = read_text(path, choose_codec(path, source.encoding), name)
    try:
        data = json.loads(text)
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
        if isinstance(record, dict):
            yield Row(origin, record)
        else:
            yield BadRow(origin, "not_an_object", f"record {index} is a JSON {type(record).__name__}", raw_json(record))


def read_jsonl(path: Path, name: str, source: Source) -> Iterator[Item]:
    """One JSON object per line; a broken line is a reject, blank lines are not rows.

    The header (every key seen) comes after the rows, since a stream has no header line.
    """
    codec = choose_codec(path, source.encoding)
    reason = invalid_reason(codec)
    columns: dict[str, None] = {}
    for line in iter_lines(path, codec):
        origin = f"{name}:{line.number}"
        if line.text is None:
            yield BadRow(origin, reason, f"bytes that are not valid {codec}", line.raw)
            continue
        if not line.text.strip():
            continue
        try:
            record = json.loads(line.text)
        except json.JSONDecodeError as err:
            yield BadRow(origin, "invalid_json", f"line {line.number}, column {err.colno}: {err.msg}", line.raw)
            continue
        except (ValueError, RecursionError) as err:
            yield BadRow(origin, "invalid_json", f"line {line.number}: {err}", line.raw)
            continue
        if not isinstance(record, dict):
            yield BadRow(origin, "not_an_object", f"line {line.number} is a JSON {type(record).__name__}", line.raw)
            continue
        columns.update(dict.fromkeys(record))
        yield Row(origin, record)
    if columns:
        yield Header(name, tuple(columns))


def read_parquet(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Stream a Parquet file batch by batch; origin is file#row (0-based)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        yield Header(name, tuple(parquet.schema_arrow.names))
        index = 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
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


def read_xlsx(path: Path, name: str, source: Source) -> Iterator[Item]:
    """Every sheet (or the one `sheet` names) of a workbook; the first non-blank row of a sheet is its header.

    Origin is file:Sheet!row with Excel's 1-based row numbers; blank rows are not rows.
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
            header: list[str] | None = None
            for number, values in enumerate(workbook[sheet].iter_rows(min_row=1, values_only=True), start=1):
                if _is_blank(values):
                    continue
                if header is None:
                    header = unique_names([_cell_name(value, index) for index, value in enumerate(values)])
                    yield Header(f"{name}:{sheet}", tuple(header))
                    continue
                fields = dict(zip(header, values))
                for index in range(len(header), len(values)):  # cells right of the header keep their place
                    if values[index] is not None:
                        fields[f"column {index + 1}"] = values[index]
                yield Row(f"{name}:{sheet}!{number}", fields)
    finally:
        workbook.close()
