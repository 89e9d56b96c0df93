"""Exports: a table of the rows a JSON twin (or a CLI `--format json`) writes, as CSV, XLSX or Parquet.

The rows go in as JSON records; nested objects become dotted columns (`segment.type`), lists of plain values
one cell ("a; b"), lists of objects their JSON text. Each column gets one type from its values, so a
spreadsheet holds numbers as numbers and instants as dates, and Parquet has typed columns.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from partnerkpi.errors import UsageError

FORMATS = ("csv", "xlsx", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
BINARY = frozenset({"xlsx", "parquet"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:00)?")
_MAX_WIDTH = 60


@dataclass(frozen=True)
class Table:
    """Named columns in order and rows of plain values (None, bool, int, float, str); `name` is the file stem."""

    name: str
    columns: list[str]
    rows: list[dict[str, Any]]

    def kinds(self) -> dict[str, str]:
        """Each column's type: bool, int, float, date, datetime or string."""
        return {c: _kind([r.get(c) for r in self.rows]) for c in self.columns}


def table(name: str, records: Iterable[Mapping[str, Any]], columns: Sequence[str] = ()) -> Table:
    """The table of JSON records, nested objects flattened. Columns follow `columns` (a field's dotted columns
    where the field is, a field no record holds left out; by default the records' own fields in order), then
    any others in the order they first appear; without records the columns are `columns`."""
    records = list(records)
    columns = list(columns) or list(dict.fromkeys(key for record in records for key in record))
    rows = [_flat(r) for r in records]
    if not rows:
        return Table(name, columns, [])
    seen = list(dict.fromkeys(key for row in rows for key in row))
    order = [key for c in columns for key in seen if key == c or key.startswith(f"{c}.")]
    return Table(name, [*dict.fromkeys(order), *(key for key in seen if key not in order)], rows)


def export(data: Table, format: str) -> bytes:
    """The table in `format` (csv, xlsx or parquet)."""
    writers = {"csv": to_csv, "xlsx": to_xlsx, "parquet": to_parquet}
    if format not in writers:
        raise UnknownFormat(format)
    return writers[format](data)


def filename(data: Table, format: str) -> str:
    """The file name of an export, e.g. `scorecard.xlsx`."""
    return f"{data.name}.{format}"


class UnknownFormat(UsageError):
    """An export format that is not csv, xlsx or parquet."""

    def __init__(self, format: str) -> None:
        super().__init__(f"unknown export format '{format}'", hint=f"use one of: {', '.join(FORMATS)}")


def to_csv(data: Table) -> bytes:
    """CSV with a header row; cells as the JSON has them (empty for null, true/false for booleans)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(data.columns)
    for row in data.rows:
        writer.writerow([_csv_cell(row.get(c)) for c in data.columns])
    return buffer.getvalue().encode("utf-8")


def to_xlsx(data: Table) -> bytes:
    """One worksheet: a bold, frozen header row, numbers as numbers, instants and days as dates, column widths
    from the contents (written row by row: xlsxwriter's constant-memory mode)."""
    import xlsxwriter

    kinds = data.kinds()
    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(output, {"constant_memory": True})
    sheet = workbook.add_worksheet(data.name[:31])
    header = workbook.add_format({"bold": True})
    formats = {"date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
               "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})}
    for i, column in enumerate(data.columns):
        width = max([len(column), *(len(_csv_cell(r.get(column))) for r in data.rows)])
        sheet.set_column(i, i, min(width + 2, _MAX_WIDTH))
    sheet.freeze_panes(1, 0)
    for i, column in enumerate(data.columns):
        sheet.write_string(0, i, column, header)
    for n, row in enumerate(data.rows, start=1):
        for i, column in enumerate(data.columns):
            value, kind = _typed(row.get(column), kinds[column]), kinds[column]
            if value is None:
                continue
            if kind in formats:
                sheet.write_datetime(n, i, value.replace(tzinfo=None) if kind == "datetime" else value, formats[kind])
            elif kind == "bool":
                sheet.write_boolean(n, i, value)
            elif kind in ("int", "float"):
                sheet.write_number(n, i, value)
            else:
                sheet.write_string(n, i, value)
    workbook.close()
    return output.getvalue()


def to_parquet(data: Table) -> bytes:
    """Parquet with one typed column per column (int64, double, bool, date32, timestamp UTC, string)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32(),
             "datetime": pa.timestamp("us", tz="UTC"), "string": pa.string()}
    kinds = data.kinds()
    arrays = [pa.array([_typed(r.get(c), kinds[c]) for r in data.rows], type=types[kinds[c]]) for c in data.columns]
    schema = pa.schema([pa.field(c, types[kinds[c]]) for c in data.columns])
    output = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), output)
    return output.getvalue()


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, list | tuple):
            plain = all(v is None or isinstance(v, str | int | float | bool) for v in value)
            out[name] = "; ".join("" if v is None else str(v) for v in value) if plain else json.dumps(value)
        else:
            out[name] = value
    return out


def _kind(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "string"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    if all(isinstance(v, date | str) and _DATE.fullmatch(str(v)) for v in present):
        return "date"
    if all(isinstance(v, datetime) or (isinstance(v, str) and _INSTANT.fullmatch(v)) for v in present):
        return "datetime"
    return "string"


def _typed(value: Any, kind: str) -> Any:
    """A cell as its column's type."""
    if value is None:
        return None
    if kind == "float":
        return float(value)
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(value)
    if kind == "datetime":
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
        return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    if kind == "string" and not isinstance(value, str):
        return _csv_cell(value)
    return value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
