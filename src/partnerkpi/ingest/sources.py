"""Input files as DuckDB relations: format and kind detection, reading, and value expressions.

A `Source` names a relation with a `_row` column (1-based data row; for JSON Lines the line number)
and the file's own columns, and builds the SQL expressions that read one column as text, as a UTC
timestamp or as a JSON value. Files are read whole before anything is written.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import duckdb
import pyarrow as pa

from partnerkpi.errors import InputFileError

KINDS = ("partners", "users", "events", "segment")
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}
KIND_HINT = "pass the kind explicitly: --kind partners|users|events|segment"
TEXT_TYPES = ("VARCHAR", "JSON")
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT")
TIME_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")
TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
LINE_BATCH = 200_000


def sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


class Col(str):
    """A column reference inside a reason message (rendered as its text value)."""


def message(*parts: str) -> str:
    """SQL building a reason text from literal parts and `Col` values."""
    return "concat(" + ", ".join(f"CAST({p} AS VARCHAR)" if isinstance(p, Col) else sql_str(p) for p in parts) + ")"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def json_path(*keys: str) -> str:
    """A JSON path literal for nested object keys, e.g. $."context"."groupId"."""
    return sql_str("$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys))


def utc(text_sql: str) -> str:
    """ISO-8601 text to a naive UTC TIMESTAMP (offsets converted, none means UTC); NULL when unparseable."""
    return f"make_timestamp(epoch_us(try_cast({text_sql} AS TIMESTAMPTZ)))"


def blank_null(expr: str) -> str:
    """NULL for an empty or all-blank text, the text unchanged otherwise."""
    return f"CASE WHEN ascii({expr}) > 32 THEN {expr} WHEN trim({expr}) = '' THEN NULL ELSE {expr} END"


def is_object(valid_json: str) -> str:
    """Whether a valid JSON text is an object (it starts with '{'), without parsing it again."""
    return f"starts_with(ltrim({valid_json}, ' \t\n\r'), '{{')"


def _suffixes(path: Path) -> list[str]:
    sfx = [s.lower() for s in path.suffixes]
    return sfx[:-1] if sfx and sfx[-1] == ".gz" else sfx


def detect_format(path: Path | str) -> str:
    """csv, jsonl or parquet, from the file's extension."""
    sfx = _suffixes(Path(path))
    fmt = FORMATS.get(sfx[-1]) if sfx else None
    if fmt is None:
        raise InputFileError("unsupported file type", file=str(path),
                             hint="use .csv, .tsv, .jsonl (JSON Lines) or .parquet files")
    return fmt


def infer_kind(path: Path | str) -> str:
    """The kind of data a file holds, from its name (partners*, users*, events*, *segment*)."""
    name = Path(path).name.lower()
    if name.endswith((".segment.jsonl", ".segment.jsonl.gz")):
        return "segment"
    found = [k for k in ("partners", "users", "events") if name.startswith(k)]
    found += ["segment"] if "segment" in name else []
    if len(found) == 1:
        return found[0]
    if found:
        msg = f"the file name fits several kinds ({', '.join(found)})"
    else:
        msg = "cannot tell from the file name whether it holds partners, users, events or Segment messages"
    raise InputFileError(msg, file=str(path), hint=KIND_HINT)


def _open_binary(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def truncated_gzip(path: str) -> InputFileError:
    """The error of a .gz file whose stream stops before its end marker."""
    size = os.path.getsize(path)
    return InputFileError(f"the file is truncated: the gzip stream ends early (after {size:,} bytes); "
                          "it was probably cut during copy", file=path,
                          hint="copy the file again (or compress it again) and import it")


def check_gzip(path: str) -> None:
    """Read a .gz file through to its end marker, so a cut file fails before anything is read from it."""
    if not path.lower().endswith(".gz"):
        return
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except EOFError as exc:
        raise truncated_gzip(path) from exc
    except (OSError, gzip.BadGzipFile) as exc:
        raise InputFileError(f"this is not a gzip file: {exc}", file=path,
                             hint="compress the file with gzip, or import it without the .gz ending") from exc


def _fail_unreadable(path: str, exc: OSError) -> InputFileError:
    return InputFileError(f"cannot read the file: {exc.strerror or exc}", file=path,
                          hint="check the path and that the file is readable")


@dataclass
class Source:
    """One input file as a relation: `_row` plus its own columns (JSON Lines: `_line` and `_j`)."""

    path: str
    fmt: str
    relation: str
    columns: dict[str, str]
    temp_tables: list[str] = field(default_factory=list)
    cut_row: int | None = None  # JSON Lines: the last line, when the file ends inside it (no newline)

    def _col(self, name: str) -> str:
        return f"json_extract(_j, {json_path(name)})" if self.fmt == "jsonl" else ident(name)

    def text(self, name: str) -> str:
        """The column as text; NULL when absent or blank."""
        if self.fmt == "jsonl":
            return blank_null(f"json_extract_string(_j, {json_path(name)})")
        col, typ = ident(name), self.columns[name]
        if typ in TEXT_TYPES:
            return blank_null(f"CAST({col} AS VARCHAR)") if typ == "JSON" else blank_null(col)
        return f"CAST({col} AS VARCHAR)"

    def time(self, name: str) -> tuple[str, str]:
        """(the column as a UTC TIMESTAMP or NULL when unparseable, its original text or NULL when absent)."""
        typ = "VARCHAR" if self.fmt != "parquet" else self.columns[name]
        col = ident(name)
        present = f"CASE WHEN {col} IS NOT NULL THEN 'typed' END"  # a typed time never fails to parse
        if typ == TIMESTAMPTZ:
            return f"make_timestamp(epoch_us({col}))", present
        if typ in TIME_TYPES:
            return f"CAST({col} AS TIMESTAMP)", present
        text = self.text(name)
        return utc(text), text

    def json_value(self, name: str, prop_type: str | None) -> str:
        """The column as a JSON value (text), NULL when absent; CSV text is typed by the plan's property type."""
        if self.fmt == "jsonl":
            v = self._col(name)
            return f"CASE WHEN json_type({v}) <> 'NULL' THEN CAST({v} AS VARCHAR) END"
        if self.fmt == "parquet":
            return f"to_json({ident(name)})::VARCHAR"
        t = blank_null(ident(name))
        if prop_type == "number":
            d = f"try_cast(trim({t}) AS DOUBLE)"
            return f"CASE WHEN isfinite({d}) THEN to_json({d})::VARCHAR ELSE to_json({t})::VARCHAR END"
        if prop_type == "bool":
            b = f"lower(trim({t}))"
            return f"CASE WHEN {b} IN ('true', 'false') THEN {b} ELSE to_json({t})::VARCHAR END"
        return f"to_json({t})::VARCHAR"

    def properties(self, name: str) -> tuple[str, str]:
        """(the properties column as JSON text, its state: NULL absent, 'ok', 'invalid', 'not_object')."""
        typ = "VARCHAR" if self.fmt == "csv" else self.columns.get(name, "JSON")
        if self.fmt == "jsonl":
            v = self._col(name)
            as_text = f"json_extract_string(_j, {json_path(name)})"
            text = (f"CASE json_type({v}) WHEN 'OBJECT' THEN CAST({v} AS VARCHAR) "
                    f"WHEN 'VARCHAR' THEN {blank_null(as_text)} END")
            state = (f"CASE WHEN {v} IS NULL OR json_type({v}) = 'NULL' THEN NULL "
                     f"WHEN json_type({v}) = 'OBJECT' THEN 'ok' WHEN json_type({v}) <> 'VARCHAR' THEN 'not_object' "
                     f"WHEN {blank_null(as_text)} IS NULL THEN NULL "
                     f"WHEN NOT json_valid({as_text}) THEN 'invalid' "
                     f"WHEN NOT {is_object(as_text)} THEN 'not_object' ELSE 'ok' END")
            return text, state
        if typ.startswith(("STRUCT", "MAP")):
            col = ident(name)
            return f"to_json({col})::VARCHAR", f"CASE WHEN {col} IS NOT NULL THEN 'ok' END"
        text = self.text(name)
        state = (f"CASE WHEN {text} IS NULL THEN NULL WHEN NOT json_valid({text}) THEN 'invalid' "
                 f"WHEN NOT {is_object(text)} THEN 'not_object' ELSE 'ok' END")
        return text, state

    def raw(self, alias: str) -> str:
        """The original row of `relation AS alias` as JSON text (JSON Lines: the line as it came)."""
        if self.fmt == "jsonl":
            return f"{alias}._line"
        pairs = ", ".join(f"{sql_str(c)}, {alias}.{ident(c)}" for c in self.columns)
        return f"json_object({pairs})" if pairs else "'{}'"

    def check_type(self, name: str, expected: str) -> None:
        """Fail when a Parquet column's type cannot hold `expected` (text, time or properties) at all."""
        if self.fmt != "parquet":
            return
        typ = self.columns[name]
        ok = {
            "text": typ in TEXT_TYPES or typ in INTEGER_TYPES,
            "time": typ in TEXT_TYPES or typ in TIME_TYPES or typ == TIMESTAMPTZ,
            "properties": typ in TEXT_TYPES or typ.startswith(("STRUCT", "MAP")),
        }[expected]
        if not ok:
            wanted = {"text": "text (VARCHAR) or an integer id",
                      "time": "TIMESTAMP, TIMESTAMP WITH TIME ZONE, DATE or ISO-8601 text",
                      "properties": "JSON text, a STRUCT or a MAP"}[expected]
            raise InputFileError(f"column type {typ} cannot be read as {wanted}", file=self.path, field=name,
                                 hint=f"write '{name}' as {wanted} and export the file again")

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the temporary tables holding the file."""
        for table in self.temp_tables:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def _csv_header(path: str) -> tuple[str, list[str]]:
    try:
        with _open_binary(path) as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise _fail_unreadable(path, exc) from exc
    first = head.split(b"\n", 1)[0]
    if b"\x00" in head:
        raise InputFileError("this is not a CSV text file (it holds binary data)", file=path,
                             hint="export the data as UTF-8 CSV with a header row")
    try:
        line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputFileError("the header row is not UTF-8 text", file=path, row=0,
                             hint="save the file as UTF-8 CSV") from exc
    if not line.strip():
        raise InputFileError("the file is empty or has no header row", file=path, row=0,
                             hint="the first line of a CSV file names its columns")
    if path.lower().endswith((".tsv", ".tsv.gz")):
        delim = "\t"
    else:
        counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
        delim = max(counts, key=lambda d: (counts[d], d == ","))
    names = next(csv.reader([line], delimiter=delim))
    return delim, [n.strip() or f"column{i + 1}" for i, n in enumerate(names)]


def _csv_error(path: str, exc: duckdb.Error) -> InputFileError:
    text = str(exc)
    m = re.search(r"CSV Error on Line: (\d+)", text)
    detail = [ln.strip() for ln in text.splitlines()[1:4] if ln.strip() and not ln.startswith(("Possible", "*"))]
    why = "; ".join(detail) or text.splitlines()[0]
    return InputFileError(f"the file is not valid CSV: {why}", file=path,
                          row=int(m.group(1)) - 1 if m else None,
                          hint="fix that row (quotes, delimiters, number of columns, UTF-8 text) and import again")


def open_csv(con: duckdb.DuckDBPyConnection, path: str, table: str) -> Source:
    """Read a CSV file whole (all text) into a temporary table."""
    check_gzip(path)
    delim, names = _csv_header(path)
    seen: dict[str, str] = {}
    for n in names:
        if n.lower() in seen:
            raise InputFileError(f"the column '{n}' appears twice in the header", file=path, row=0, field=n,
                                 hint="give every column a distinct name")
        seen[n.lower()] = n
    cols = "{" + ", ".join(f"{sql_str(n)}: 'VARCHAR'" for n in names) + "}"
    opts = f"header=true, columns={cols}, delim={sql_str(delim)}, quote='\"', escape='\"', auto_detect=false"
    opts += ", nullstr=chr(0)"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv({sql_str(path)}, {opts}, "
                    "strict_mode=true)")
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise _csv_error(path, exc) from exc
    except duckdb.IOException as exc:
        raise InputFileError(f"cannot read the file: {exc}", file=path, hint="check the path") from exc
    relation = f"(SELECT rowid + 1 AS _row, * FROM {table})"
    return Source(path, "csv", relation, dict.fromkeys(names, "VARCHAR"), [table])


def _lines(path: str, ending: list[bytes]) -> Iterator[tuple[list[int], list[str]]]:
    """Batches of (line numbers, texts) of the non-blank lines; `ending` gets the last line's raw bytes."""
    rows: list[int] = []
    texts: list[str] = []
    try:
        with _open_binary(path) as fh:
            for n, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                ending[:] = [raw]
                try:
                    text = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise InputFileError("the line is not UTF-8 text", file=path, row=n,
                                         hint="save the file as UTF-8 JSON Lines (one JSON object per line)") from exc
                rows.append(n)
                texts.append(text.lstrip("\ufeff") if n == 1 else text)
                if len(rows) >= LINE_BATCH:
                    yield rows, texts
                    rows, texts = [], []
    except EOFError as exc:
        raise truncated_gzip(path) from exc
    except OSError as exc:
        raise InputFileError(f"cannot read the file: {exc}", file=path,
                             hint="check the path and that the file is complete") from exc
    if rows:
        yield rows, texts


def load_lines(con: duckdb.DuckDBPyConnection, path: str, table: str) -> int | None:
    """Load a JSON Lines file into a temporary table (_row, _line, _j); _j is NULL unless a JSON object.
    Returns the last line's number when the file ends inside it (cut mid-object), else None."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (_row BIGINT, _line VARCHAR, _j VARCHAR)")
    view = f"{table}_batch"
    ending: list[bytes] = []
    for rows, texts in _lines(path, ending):
        con.register(view, pa.table({"_row": pa.array(rows, pa.int64()), "_line": pa.array(texts, pa.string())}))
        try:
            con.execute(
                f"INSERT INTO {table} SELECT _row, _line, CASE WHEN json_valid(_line) THEN "
                f"CASE WHEN json_type(_line) = 'OBJECT' THEN _line END END FROM {view}"
            )
        finally:
            con.unregister(view)
    bad = con.execute(f"SELECT count(*) = count(*) FILTER (WHERE _j IS NULL), min(_row) FROM {table}").fetchall()
    if bad[0][1] is not None and bad[0][0]:
        raise InputFileError("this is not a JSON Lines file: no line holds a JSON object", file=path, row=bad[0][1],
                             hint="write one JSON object per line, e.g. {\"event_id\": \"e1\", ...}")
    if not ending or ending[0].endswith(b"\n"):
        return None
    last = con.execute(f"SELECT max(_row), arg_max(_j IS NULL, _row) FROM {table}").fetchall()[0]
    return last[0] if last[1] else None


def open_jsonl(con: duckdb.DuckDBPyConnection, path: str, table: str, *, keys: bool = True) -> Source:
    """Read a JSON Lines file whole into a temporary table; its columns are the keys found in any line."""
    cut = load_lines(con, path, table)
    if not keys:
        return Source(path, "jsonl", f"(SELECT _row, _line, _j FROM {table})", {}, [table], cut)
    found = [r[0] for r in con.execute(
        f"SELECT k FROM (SELECT unnest(json_keys(_j)) AS k, generate_subscripts(json_keys(_j), 1) AS i, _row "
        f"FROM {table}) GROUP BY k ORDER BY min(_row * 1000000 + i)"
    ).fetchall()]
    relation = f"(SELECT _row, _line, _j FROM {table})"
    return Source(path, "jsonl", relation, dict.fromkeys(found, "JSON"), [table], cut)


def open_parquet(con: duckdb.DuckDBPyConnection, path: str, table: str | None) -> Source:
    """Describe a Parquet file; with `table`, read it whole into a temporary table, else read it in place."""
    scan = f"read_parquet({sql_str(path)}, file_row_number=true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(path)})").fetchall()
        if table:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT file_row_number + 1 AS _row, * "
                        f"FROM {scan}")
    except duckdb.Error as exc:  # damage shows as IO, invalid input, or a bare Thrift protocol error
        if not os.path.exists(path):
            raise InputFileError("the file does not exist", file=path, hint="check the path") from exc
        raise InputFileError(f"this is not a readable Parquet file: {str(exc).splitlines()[0]}", file=path,
                             hint="export the data again as Parquet, or use CSV / JSON Lines") from exc
    columns = {r[0]: str(r[1]) for r in described}
    relation = f"(SELECT * FROM {table})" if table else f"(SELECT file_row_number + 1 AS _row, * FROM {scan})"
    return Source(path, "parquet", relation, columns, [table] if table else [])


def open_source(con: duckdb.DuckDBPyConnection, path: str, fmt: str, *, stage: bool = True,
                segment: bool = False) -> Source:
    """Open a file of any supported format; `stage=False` lets a Parquet file be read in place."""
    if not os.path.isfile(path):
        raise InputFileError("the file does not exist", file=path, hint="check the path")
    if fmt == "csv":
        return open_csv(con, path, "_ingest_src")
    if fmt == "jsonl":
        return open_jsonl(con, path, "_ingest_src", keys=not segment)
    return open_parquet(con, path, "_ingest_src" if stage else None)
