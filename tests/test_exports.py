"""Exports: CSV, XLSX and Parquet files hold the same rows as the JSON API (and the CLI's json) for the same
filters, typed; a partner user exports only what its own pages show."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime

import openpyxl
import pyarrow.parquet as pq
import pytest

from partnerkpi.errors import UsageError
from partnerkpi.reports.exports import export, table
from tests.web_fixtures import PARTNER_R1, add_users, build_program, client_for

JULY = {"from": "2026-07-01", "to": "2026-08-01"}
ROW_COLUMNS = ["kpi", "period", "period_start", "period_end", "segment.type", "value", "numerator", "denominator",
               "n", "unit", "band", "previous", "change", "status", "status_basis"]


def program(directory) -> str:
    """The tiny program of web_fixtures, its users, and one alert: no data for a month (data-stale)."""
    path = build_program(directory)
    add_users(path)
    assert cli("alerts", "run", "--now", "2026-09-01T00:00:00Z", "--db", str(path)).returncode == 0
    return str(path)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return program(tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory):
    """A second copy for the CLI (the web tests' app owns the first file while they run)."""
    return program(tmp_path_factory.mktemp("exports-cli"))


@pytest.fixture(scope="module")
def client(db):
    yield from client_for(db)


@pytest.fixture(scope="module")
def partner(db):
    yield from client_for(db, PARTNER_R1)


# -- reading the files back -----------------------------------------------------------------------------
def read(body: bytes, format: str) -> tuple[list[str], list[dict]]:
    """The header and the rows of an export file, read with csv, openpyxl or pyarrow."""
    if format == "csv":
        lines = list(csv.reader(io.StringIO(body.decode("utf-8"))))
        return lines[0], [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]
    if format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        header, *rows = list(sheet.iter_rows(values_only=True))
        return list(header), [dict(zip(header, row, strict=True)) for row in rows]
    data = pq.read_table(io.BytesIO(body))
    return data.column_names, data.to_pylist()


def flat(record: dict, prefix: str = "") -> dict:
    """A JSON record as the export spells its columns: `segment.type`, lists as 'a; b'."""
    out: dict = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            scalar = all(not isinstance(v, dict | list) for v in value)
            out[f"{prefix}{key}"] = "; ".join(str(v) for v in value) if scalar else json.dumps(value)
        else:
            out[f"{prefix}{key}"] = value
    return out


def instant(value) -> datetime | None:
    """A JSON instant ('...Z') or a file's date/datetime, as a naive UTC datetime."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


def same(cell, expected, format: str) -> bool:
    if expected is None:
        return cell in (None, "")
    if isinstance(expected, bool):
        return cell is expected or cell == str(expected).lower()
    if isinstance(expected, int | float):  # a spreadsheet keeps 15-16 significant digits; CSV and Parquet all
        wanted = pytest.approx(expected, rel=1e-15) if format == "xlsx" else float(expected)
        return not isinstance(cell, bool) and float(cell) == wanted
    if isinstance(expected, str) and len(expected) >= 16 and expected[4] == "-" and expected[10] == "T":
        return instant(cell) == instant(expected)
    if isinstance(expected, str) and isinstance(cell, date):  # a day ('2026-08-01') as a date
        return instant(cell) == instant(expected)
    return cell == expected or (cell is None and expected == "")


def assert_same_rows(body: bytes, format: str, records: list[dict], columns: list[str] | None = None) -> None:
    header, rows = read(body, format)
    expected = [flat(r) for r in records]
    if columns is not None:
        assert header == columns
    assert len(rows) == len(expected) > 0
    for row, want in zip(rows, expected, strict=True):
        assert set(want) <= set(header)
        bad = {k: (row[k], v) for k, v in want.items() if not same(row[k], v, format)}
        assert bad == {}, (format, bad)


# -- the library -----------------------------------------------------------------------------------------
RECORDS = [
    {"kpi": "a", "at": "2026-07-01T00:00:00Z", "day": "2026-07-01", "value": 75.0, "n": 4, "segment": {"type": "x"},
     "flag": True, "reasons": ["late", "quiet"]},
    {"kpi": "b", "at": None, "day": "2026-08-01", "value": 2, "n": None, "segment": {}, "flag": False, "reasons": []},
]


def test_a_table_flattens_and_types_its_columns():
    data = table("t", RECORDS)
    assert data.columns == ["kpi", "at", "day", "value", "n", "segment.type", "flag", "reasons"]
    assert data.kinds() == {"kpi": "string", "at": "datetime", "day": "date", "value": "float", "n": "int",
                            "segment.type": "string", "flag": "bool", "reasons": "string"}
    assert data.rows[0]["reasons"] == "late; quiet" and "segment.type" not in data.rows[1]
    assert table("t", [], ["kpi", "value"]).columns == ["kpi", "value"]


def test_xlsx_has_a_frozen_header_numbers_and_dates():
    body = export(table("scores", RECORDS), "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(body))
    sheet = book.active
    assert sheet.title == "scores" and sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == ["kpi", "at", "day", "value", "n", "segment.type", "flag", "reasons"]
    assert [c.font.b for c in sheet[1]] == [True] * 8
    assert [c.value for c in sheet[2]] == ["a", datetime(2026, 7, 1), datetime(2026, 7, 1), 75, 4, "x", True,
                                           "late; quiet"]
    assert sheet["C2"].is_date and sheet["C2"].number_format == "yyyy-mm-dd" and sheet["D3"].data_type == "n"
    assert sheet.column_dimensions["H"].width > sheet.column_dimensions["A"].width  # "late; quiet" vs "kpi"


def test_parquet_columns_are_typed():
    data = pq.read_table(io.BytesIO(export(table("t", RECORDS), "parquet")))
    types = {f.name: str(f.type) for f in data.schema}
    assert types == {"kpi": "string", "at": "timestamp[us, tz=UTC]", "day": "date32[day]", "value": "double",
                     "n": "int64", "segment.type": "string", "flag": "bool", "reasons": "string"}
    assert data.column("n").to_pylist() == [4, None] and data.column("day").to_pylist()[1] == date(2026, 8, 1)


def test_csv_writes_the_json_values():
    assert export(table("t", RECORDS), "csv").decode() == (
        "kpi,at,day,value,n,segment.type,flag,reasons\n"
        "a,2026-07-01T00:00:00Z,2026-07-01,75.0,4,x,true,late; quiet\n"
        "b,,2026-08-01,2,,,false,\n"
    )


def test_an_unknown_format_says_which_exist():
    with pytest.raises(UsageError, match="unknown export format 'ods'") as caught:
        export(table("t", RECORDS), "ods")
    assert "csv, xlsx, parquet" in caught.value.hint


# -- the JSON API: ?format= -------------------------------------------------------------------------------
MEDIA = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "parquet": "application/vnd.apache.parquet"}


def download(client, path: str, params: dict, format: str) -> bytes:
    r = client.get(path, params={**params, "format": format})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == MEDIA[format]
    assert r.headers["content-disposition"].startswith('attachment; filename="')
    assert r.headers["content-disposition"].endswith(f'.{format}"')
    return r.content


@pytest.mark.parametrize("format", ["csv", "xlsx", "parquet"])
def test_scorecard_and_kpi_series_round_trip(client, format):
    params = {**JULY, "by": "type", "kpi": "active_partner_rate"}
    rows = client.get("/api/v1/scorecard", params=params).json()["rows"]
    # hand-computed: July, 3 of 4 partners active = 75 %; the agency 1 of 1; resellers 2 of 3
    assert [(r["segment"], r["value"]) for r in rows] == [({}, 75.0), ({"type": "agency"}, 100.0),
                                                          ({"type": "reseller"}, pytest.approx(200 / 3))]
    assert_same_rows(download(client, "/api/v1/scorecard", params, format), format, rows, ROW_COLUMNS)
    series = {"grain": "month", "from": "2026-05-01", "to": "2026-08-01"}
    kpi_rows = client.get("/api/v1/kpis/active_partner_rate", params=series).json()["rows"]
    assert [(r["period"], r["value"]) for r in kpi_rows] == [("2026-05", 0.0), ("2026-06", 25.0), ("2026-07", 75.0)]
    body = download(client, "/api/v1/kpis/active_partner_rate", series, format)
    assert_same_rows(body, format, kpi_rows, [c for c in ROW_COLUMNS if c != "segment.type"])


@pytest.mark.parametrize("format", ["csv", "xlsx", "parquet"])
def test_partners_at_risk_and_alerts_round_trip(client, format):
    params = {**JULY, "q": "reseller", "sort": "partner_id", "order": "desc"}
    partners = client.get("/api/v1/partners", params=params).json()["partners"]
    assert [p["partner_id"] for p in partners] == ["R3", "R2", "R1"]
    assert_same_rows(download(client, "/api/v1/partners", params, format), format, partners)
    risk = client.get("/api/v1/at-risk", params={"days": 20}).json()
    listed = [{"list": "at_risk", **r} for r in risk["at_risk"]] + [{"list": "inactive", **r} for r in risk["inactive"]]
    assert "R3" in [r["partner_id"] for r in listed]  # never active
    assert_same_rows(download(client, "/api/v1/at-risk", {"days": 20}, format), format, listed)
    alerts = client.get("/api/v1/alerts", params={"status": "all"}).json()["alerts"]
    assert [a["rule_id"] for a in alerts] == ["data-stale"]
    assert_same_rows(download(client, "/api/v1/alerts", {"status": "all"}, format), format, alerts)


def test_an_unknown_format_is_a_422_that_names_it(client):
    r = client.get("/api/v1/scorecard", params={**JULY, "format": "ods"})
    assert r.status_code == 422 and "format 'ods'" in r.json()["error"]


def test_a_partner_user_exports_only_its_own_partner(partner):
    for path in ("/api/v1/scorecard", "/api/v1/kpis/active_partner_rate", "/api/v1/at-risk", "/api/v1/alerts"):
        r = partner.get(path, params={**JULY, "format": "csv"})
        assert r.status_code == 403, path  # program-wide, as the JSON answers
    for format in ("csv", "xlsx", "parquet"):
        header, rows = read(download(partner, "/api/v1/partners", JULY, format), format)
        assert [r["partner_id"] for r in rows] == ["R1"]
        assert "health" not in {k for k, v in rows[0].items() if v not in (None, "")}


# -- the pages' download links ---------------------------------------------------------------------------
def test_pages_link_their_downloads_with_their_filters(client):
    scorecard = client.get("/", params={**JULY, "by": "type"}).text
    assert ('href="/api/v1/scorecard?grain=month&amp;from=2026-07-01&amp;to=2026-08-01&amp;by=type&amp;format=xlsx"'
            ' download>XLSX</a>') in scorecard
    kpi = client.get("/kpis/active_partner_rate", params=JULY).text
    assert ('href="/api/v1/kpis/active_partner_rate?grain=month&amp;from=2026-07-01&amp;to=2026-08-01&amp;'
            'format=csv"') in kpi
    partners = client.get("/partners", params={**JULY, "q": "R", "sort": "name"}).text
    assert ('href="/api/v1/partners?grain=month&amp;from=2026-07-01&amp;to=2026-08-01&amp;q=R&amp;sort=name&amp;'
            'order=asc&amp;format=parquet" download>') in partners
    assert 'href="/api/v1/at-risk?days=45&amp;format=csv" download>' in client.get("/at-risk?days=45").text
    assert 'href="/api/v1/alerts?status=all&amp;format=xlsx" download>' in client.get("/alerts?status=all").text


# -- the CLI: --format csv|xlsx|parquet --out ----------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "partnerkpi.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


def test_cli_out_files_hold_the_json_rows(cli_db, tmp_path):
    where = ["--db", cli_db]
    scorecard = [*where, "--from", "2026-07-01", "--to", "2026-08-01", "--by", "type", "--kpi", "active_partner_rate"]
    commands = {"scorecard": scorecard, "inactive": [*where, "--days", "20"],
                "alerts": ["list", *where, "--status", "all"]}
    for command, args in commands.items():
        rows = json.loads(cli(command, *args, "--format", "json").stdout)
        if command == "scorecard":
            assert [r["value"] for r in rows] == [75.0, 100.0, pytest.approx(200 / 3)]
        # none active in the 20 days before Aug 1 (the last logins were on Jul 10); R3 never was
        assert rows and (command != "inactive" or [r["partner_id"] for r in rows][0] == "R3")
        for format in ("csv", "xlsx", "parquet"):
            out = tmp_path / f"{command}.{format}"
            done = cli(command, *args, "--format", format, "--out", str(out))
            assert done.returncode == 0 and done.stdout == "", done.stderr
            assert f"{len(rows)} rows written to {out}" in " ".join(done.stderr.split())
            assert_same_rows(out.read_bytes(), format, rows, ROW_COLUMNS if command == "scorecard" else None)


def test_cli_binary_formats_need_out_and_out_needs_a_file_format(cli_db, tmp_path):
    refused = cli("scorecard", "--db", cli_db, "--format", "xlsx")
    assert refused.returncode != 0 and "--format xlsx writes a binary file" in refused.stderr
    assert "--out rows.xlsx" in refused.stderr
    refused = cli("inactive", "--db", cli_db, "--format", "json", "--out", str(tmp_path / "x.json"))
    assert refused.returncode != 0 and "--out writes csv, xlsx or parquet" in refused.stderr
    assert not (tmp_path / "x.json").exists()
    plain = cli("scorecard", "--db", cli_db, "--from", "2026-07-01", "--to", "2026-08-01", "--kpi",
                "active_partner_rate", "--format", "csv")
    assert plain.returncode == 0 and plain.stdout.startswith("kpi,")  # csv to stdout works as before
