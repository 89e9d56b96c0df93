"""File formats, kinds, mapping files, and files too broken to import (nothing written)."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partnerkpi.catalog.plan import load_plan
from partnerkpi.errors import InputFileError, UsageError
from partnerkpi.ingest import import_files, infer_kind, load_mapping
from partnerkpi.store import Store

DATA = Path(__file__).parent / "data" / "ingest"
EMPTY = {"partners": 0, "users": 0, "events": 0, "rejected_rows": 0, "imports": 0}

PARTNERS = [
    {"partner_id": "p1", "name": "Acme", "tier": "gold", "onboarded_at": "2026-01-01T00:00:00Z", "industry": "retail"},
    {"partner_id": "p2", "name": "Beta", "tier": None, "onboarded_at": "2026-02-01T09:00:00+02:00", "industry": None},
    {"partner_id": "p3", "name": "Nodate", "tier": None, "onboarded_at": None, "industry": None},
]
USERS = [
    {"user_id": "u1", "partner_id": "p1", "email": "a@x", "created_at": "2026-01-02T00:00:00Z"},
    {"user_id": "u2", "partner_id": "p2", "email": None, "created_at": "2026-01-03T00:00:00Z"},
]
EVENTS = [
    {"event_id": "e1", "ts": "2026-07-01T10:00:00Z", "event": "Logged In", "user_id": "u1", "properties": None},
    {"event_id": "e2", "ts": "2026-07-01T11:00:00Z", "event": "Page Viewed", "user_id": "u2",
     "properties": {"path": "/docs"}},
    {"event_id": "e3", "ts": "2026-07-02T00:00:00Z", "event": "Policy Published", "user_id": None,
     "properties": {"required": True}},
    {"event_id": "e1", "ts": "2026-07-03T00:00:00Z", "event": "Logged In", "user_id": "u1", "properties": None},
    {"event_id": "e4", "ts": None, "event": "Logged In", "user_id": "u1", "properties": None},
]


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "x.duckdb", load_plan())
    yield s
    s.close()


def where(path: Path, row: int | None = None, field: str | None = None) -> str:
    """The location prefix of an InputFileError's message."""
    return f"{path}" + (f", row {row}" if row is not None else "") + (f", field '{field}'" if field else "")


def rows(store: Store, sql: str) -> list[tuple]:
    return store.con.execute(sql).fetchall()


def write_rows(path: Path, records: list[dict], times: tuple[str, ...] = ()) -> Path:
    """Write records as CSV (JSON text for objects), JSON Lines or Parquet (time columns typed)."""
    if path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(records[0]))
            w.writeheader()
            for r in records:
                w.writerow({k: json.dumps(v) if isinstance(v, dict) else ("" if v is None else v)
                            for k, v in r.items()})
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        cols = {}
        for k in records[0]:
            vals = [r[k] for r in records]
            if k in times:
                parsed = [datetime.fromisoformat(v) if v else None for v in vals]
                cols[k] = pa.array(parsed, pa.timestamp("us", tz="UTC"))
            else:
                cols[k] = pa.array([json.dumps(v) if isinstance(v, dict) else v for v in vals], pa.string())
        pq.write_table(pa.table(cols), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_every_format_gives_the_same_tables(store, tmp_path, fmt):
    files = [write_rows(tmp_path / f"partners.{fmt}", PARTNERS, ("onboarded_at",)),
             write_rows(tmp_path / f"users.{fmt}", USERS, ("created_at",)),
             write_rows(tmp_path / f"events.{fmt}", EVENTS, ("ts",))]
    sp, su, se = import_files(store, files)
    assert [(s.kind, s.rows_read, s.accepted, s.duplicates, s.rejected) for s in (sp, su, se)] == [
        ("partners", 3, 2, 0, 1), ("users", 2, 2, 0, 0), ("events", 5, 3, 0, 2)]
    assert sp.rejected_by_reason == {"missing_onboarded_at": 1}
    assert se.rejected_by_reason == {"conflict": 1, "missing_ts": 1}  # e1 again, two days later
    assert rows(store, "SELECT partner_id, name, tier, onboarded_at, industry FROM partners ORDER BY 1") == [
        ("p1", "Acme", "gold", datetime(2026, 1, 1), "retail"), ("p2", "Beta", None, datetime(2026, 2, 1, 7), None)]
    assert rows(store, "SELECT user_id, partner_id, email, created_at FROM users ORDER BY 1") == [
        ("u1", "p1", "a@x", datetime(2026, 1, 2)), ("u2", "p2", None, datetime(2026, 1, 3))]
    got = rows(store, "SELECT event_id, ts, event, partner_id, user_id, properties, p_path, p_required "
                      "FROM events ORDER BY seq")
    assert [(r[:5], json.loads(r[5]), r[6:]) for r in got] == [
        (("e1", datetime(2026, 7, 1, 10), "Logged In", "p1", "u1"), {}, (None, None)),
        (("e2", datetime(2026, 7, 1, 11), "Page Viewed", "p2", "u2"), {"path": "/docs"}, ("/docs", None)),
        (("e3", datetime(2026, 7, 2), "Policy Published", None, None), {"required": True}, (None, True)),
    ]
    assert rows(store, "SELECT kind, row_number, field FROM rejected_rows ORDER BY import_id, row_number") == [
        ("partners", 3, "onboarded_at"), ("events", 4, "ts"), ("events", 5, "ts")]


def test_parquet_native_types(store, tmp_path):
    import_files(store, [DATA / "partners.csv"])
    users = pa.table({"user_id": pa.array([7, 8], pa.int64()), "partner_id": ["p1", "p2"],
                      "created_at": pa.array([datetime(2026, 1, 1), datetime(2026, 1, 2)], pa.timestamp("ms"))})
    pq.write_table(users, tmp_path / "users.parquet")
    paris = pa.timestamp("us", tz="Europe/Paris")
    events = pa.table({
        "event_id": ["e1", "e2"], "event": ["Deal Closed", "Logged In"], "user_id": pa.array([7, 8], pa.int32()),
        "ts": pa.array([datetime(2026, 7, 1, 8), datetime(2026, 7, 1, 9)], paris),
        "properties": pa.array([{"amount": 10.5, "kind": None}, None],
                               pa.struct([("amount", pa.float64()), ("kind", pa.string())])),
    })
    pq.write_table(events, tmp_path / "events.parquet")
    import_files(store, [tmp_path / "users.parquet", tmp_path / "events.parquet"])
    assert rows(store, "SELECT user_id, created_at FROM users ORDER BY 1") == [
        ("7", datetime(2026, 1, 1)), ("8", datetime(2026, 1, 2))]
    assert rows(store, "SELECT event_id, ts, partner_id, user_id, properties, p_amount FROM events ORDER BY seq") == [
        ("e1", datetime(2026, 7, 1, 8), "p1", "7", '{"amount":10.5,"kind":null}', 10.5),
        ("e2", datetime(2026, 7, 1, 9), "p2", "8", "{}", None),
    ]


def test_jsonl_properties_may_be_json_text_and_other_shapes_are_rejected(store, tmp_path):
    import_files(store, [DATA / "partners.csv", DATA / "users.csv"])
    lines = [
        {"event_id": "e1", "ts": "2026-07-01T00:00:00Z", "event": "Page Viewed", "user_id": "u1",
         "properties": '{"path": "/a"}'},
        {"event_id": "e2", "ts": "2026-07-01T00:00:00Z", "event": "Page Viewed", "user_id": "u1", "properties": [1]},
        {"event_id": "e3", "ts": "2026-07-01T00:00:00Z", "event": "Page Viewed", "user_id": "u1", "properties": "{x"},
        {"event_id": "e4", "ts": 1751328000, "event": "Page Viewed", "user_id": "u1"},
        {"event_id": 5, "ts": "2026-07-01T00:00:00Z", "event": "Logged In", "partner_id": "p3", "extra": 1},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    [s] = import_files(store, [path])
    assert (s.accepted, s.rejected_by_reason) == (2, {"bad_ts": 1, "invalid_properties": 1,
                                                      "properties_not_object": 1})
    assert s.ignored_columns == ["extra"]
    assert rows(store, "SELECT event_id, partner_id, p_path FROM events ORDER BY seq") == [
        ("e1", "p1", "/a"), ("5", "p3", None)]
    assert rows(store, "SELECT row_number, raw FROM rejected_rows ORDER BY 1")[2] == (4, json.dumps(lines[3]))


@pytest.mark.parametrize(("name", "kind"), [
    ("partners.csv", "partners"), ("partners_2026-07.parquet", "partners"), ("users.jsonl", "users"),
    ("events.csv.gz", "events"), ("hub.segment.jsonl", "segment"), ("segment_export.jsonl", "segment"),
    ("events.segment.jsonl", "segment"), ("PARTNERS.CSV", "partners"),
])
def test_kind_is_inferred_from_the_file_name(name, kind):
    assert infer_kind(name) == kind


@pytest.mark.parametrize(("name", "message"), [
    ("data.csv", "cannot tell from the file name whether it holds partners, users, events or Segment messages"),
    ("events_segment.jsonl", "the file name fits several kinds (events, segment)"),
])
def test_ambiguous_file_names_ask_for_kind(store, tmp_path, name, message):
    path = tmp_path / name
    path.write_text("a\n1\n")
    with pytest.raises(InputFileError) as err:
        import_files(store, [path])
    hint = "pass the kind explicitly: --kind partners|users|events|segment"
    assert str(err.value) == f"{path}: {message}\n  how to fix: {hint}"
    assert store.counts() == EMPTY


def test_kind_given_overrides_the_name(store, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("partner_id,onboarded_at\np1,2026-01-01\n")
    [s] = import_files(store, [path], kind="partners")
    assert (s.kind, s.accepted) == ("partners", 1)


def test_mapping_renames_columns_events_and_folds_properties(store, tmp_path):
    import_files(store, [DATA / "partners.csv", DATA / "users.csv"])
    path = tmp_path / "export.csv"
    path.write_text("Id,When,Action,AccountId,Member,deal_size,urgent,note,other\n"
                    "x1,2026-07-01T10:00:00Z,login,,u1,,,,zzz\n"
                    "x2,2026-07-02T10:00:00Z,deal_won,p1,,1200.50,,big one,\n"
                    "x3,2026-07-03T10:00:00Z,Reminder Sent,,u3,n/a,TRUE,,\n")
    [s] = import_files(store, [path], kind="events", mapping=DATA / "mapping.yaml")
    assert (s.accepted, s.rejected, s.ignored_columns) == (3, 0, ["other"])
    got = rows(store, "SELECT event_id, event, partner_id, user_id, properties, p_amount, p_manual, p_reason "
                      "FROM events ORDER BY seq")
    assert [(*r[:4], json.loads(r[4]), *r[5:]) for r in got] == [
        ("x1", "Logged In", "p1", "u1", {}, None, None, None),
        ("x2", "Deal Closed", "p1", None, {"amount": 1200.5, "reason": "big one"}, 1200.5, None, "big one"),
        ("x3", "Reminder Sent", "p2", "u3", {"amount": "n/a", "manual": True}, None, True, None),
    ]


def test_a_different_mapping_is_a_different_import(store, tmp_path):
    import_files(store, [DATA / "partners.csv", DATA / "users.csv"])
    path = tmp_path / "events.csv"
    path.write_text("event_id,ts,event,user_id\ne1,2026-07-01,login,u1\n")
    other = tmp_path / "map.yaml"
    other.write_text("events: {login: Logged In}\n")
    s1, s2 = import_files(store, [path, path])
    [s3] = import_files(store, [path], mapping=other)
    assert (s1.skipped_same_file, s2.skipped_same_file, s3.skipped_same_file) == (False, True, False)
    # the event now reads "Logged In" where the stored one reads "login": a conflict, kept aside
    assert (s3.accepted, s3.duplicates, s3.rejected_by_reason) == (0, 0, {"conflict": 1})


@pytest.mark.parametrize(("text", "message"), [
    ("columns: [a, b]\n", "invalid mapping file (1 problem(s)): 'columns' must be a mapping of their name to our "
                          "name, got list"),
    ("colums: {a: b}\n", "invalid mapping file (1 problem(s)): unknown section(s) colums; allowed: columns, "
                         "events, properties"),
    ("columns: {a: ts, b: ts}\nproperties: {a: x}\n",
     "invalid mapping file (2 problem(s)): columns: 'b' and 'a' both map to 'ts'; 'a' is both renamed (columns) "
     "and folded into properties; keep one"),
    ("events: {login: ''}\n", "invalid mapping file (1 problem(s)): events: 'login' maps to ''; the target must "
                              "be a non-empty text"),
    ("- a\n- b\n", "the mapping file must be a YAML mapping"),
])
def test_invalid_mapping_files_are_explained(store, tmp_path, text, message):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(InputFileError) as err:
        load_mapping(path)
    assert err.value.message == f"{path}: {message}" and err.value.file == str(path)
    with pytest.raises(InputFileError):
        import_files(store, [DATA / "partners.csv"], mapping=path)
    assert store.counts() == EMPTY


def test_mapping_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("columns:\n  a: b\n  c: [d\n")
    with pytest.raises(InputFileError) as err:
        load_mapping(path)
    assert err.value.row == 4 and "not valid YAML" in err.value.message


def _bool_ts_parquet(path: Path) -> None:
    pq.write_table(pa.table({"event_id": ["e1"], "ts": [True], "event": ["Logged In"]}), path)


@pytest.mark.parametrize(("name", "content", "message", "row", "field"), [
    ("events.csv", "event_id,event\ne1,Logged In\n",
     "the file has no 'ts' column (it has: event_id, event)", None, "ts"),
    ("events.csv", "event_id,ts,event\ne1,2026-07-01,Logged In\ne2,2026-07-01,Logged In\ne3,2026-07-01,x,y\n",
     "the file is not valid CSV: Original Line: e3,2026-07-01,x,y; Expected Number of Columns: 3 Found: 4", 3, None),
    ("events.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "this is not a CSV text file (it holds binary data)",
     None, None),
    ("events.csv", "", "the file is empty or has no header row", 0, None),
    ("events.csv", b"event_id,ts,ev\xe9nt\n", "the header row is not UTF-8 text", 0, None),
    ("events.csv", "event_id,ts,event,TS\n", "the column 'TS' appears twice in the header", 0, "TS"),
    ("partners.csv", "partner_id,Partner_ID,onboarded_at\n", "the column 'Partner_ID' appears twice in the header",
     0, "Partner_ID"),
    ("events.parquet", _bool_ts_parquet, "column type BOOLEAN cannot be read as TIMESTAMP, TIMESTAMP WITH TIME "
                                         "ZONE, DATE or ISO-8601 text", None, "ts"),
    ("events.parquet", "event_id,ts\n", "this is not a readable Parquet file", None, None),
    ("events.jsonl", "event_id,ts,event\ne1,2026-07-01,x\n", "this is not a JSON Lines file: no line holds a "
                                                             "JSON object", 1, None),
    ("events.jsonl", b'{"event_id": "e1"}\n{"event": "caf\xe9"}\n', "the line is not UTF-8 text", 2, None),
    ("events.jsonl", '{"event_id": "e1", "event": "x"}\n', "the file has no 'ts' column (it has: event_id, "
                                                           "event)", None, "ts"),
    ("events.xlsx", "x", "unsupported file type", None, None),
    ("hub.segment.csv", "type\n", "Segment messages are read from JSON Lines files", None, None),
])
def test_bad_files_raise_and_write_nothing(store, tmp_path, name, content, message, row, field):
    path = tmp_path / name
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputFileError) as err:
        import_files(store, [path])
    assert err.value.message.startswith(f"{where(path, row, field)}: {message}"), err.value.message
    assert (err.value.file, err.value.row, err.value.field) == (str(path), row, field)
    assert err.value.hint
    assert store.counts() == EMPTY
    assert store.columns("partners")[-1] == "offboarded_at"


def test_two_columns_giving_one_field_is_a_file_error(store, tmp_path):
    path = tmp_path / "partners.csv"
    path.write_text("id,AccountId,onboarded_at\np1,p1,2026-01-01\n")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns: {id: partner_id, AccountId: partner_id}\n")
    with pytest.raises(InputFileError) as err:
        import_files(store, [path], mapping=mapping)
    assert err.value.message == (f"{mapping}: invalid mapping file (1 problem(s)): columns: 'AccountId' and 'id' "
                                 "both map to 'partner_id'")
    mapping.write_text("columns: {id: partner_id}\n")
    path.write_text("id,Partner_id,onboarded_at\np1,p1,2026-01-01\n")
    with pytest.raises(InputFileError) as err:
        import_files(store, [path], mapping=mapping)
    assert err.value.message == f"{path}, field 'Partner_id': the columns 'id' and 'Partner_id' both give 'partner_id'"
    assert store.counts() == EMPTY


def test_gzip_tab_separated_and_empty_files(store, tmp_path):
    gz = tmp_path / "partners.csv.gz"
    gz.write_bytes(gzip.compress(b"partner_id,onboarded_at\np1,2026-01-01\n"))
    tsv = tmp_path / "users.tsv"
    tsv.write_text("user_id\tpartner_id\tcreated_at\nu1\tp1\t2026-01-02\n")
    header_only = tmp_path / "events.csv"
    header_only.write_text("event_id,ts,event\n")
    blank = tmp_path / "events.jsonl"
    blank.write_text("\n\n")
    summaries = import_files(store, [gz, tsv, header_only, blank])
    assert [(s.rows_read, s.accepted) for s in summaries] == [(1, 1), (1, 1), (0, 0), (0, 0)]
    assert rows(store, "SELECT user_id, partner_id FROM users") == [("u1", "p1")]


def test_unknown_kind_is_a_usage_error(store):
    with pytest.raises(UsageError, match="unknown kind 'people'"):
        import_files(store, [DATA / "users.csv"], kind="people")


def test_a_missing_file_is_named(store, tmp_path):
    with pytest.raises(InputFileError) as err:
        import_files(store, [tmp_path / "events.csv"])
    assert str(err.value).startswith(f"{tmp_path / 'events.csv'}: the file does not exist")
