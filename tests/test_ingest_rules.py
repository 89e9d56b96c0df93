"""The ingest rules of KPI-SPEC §2, each on a tiny hand-made file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerkpi.catalog.plan import load_plan
from partnerkpi.ingest import ImportSummary, import_files
from partnerkpi.ingest.sources import utc
from partnerkpi.store import Store

DATA = Path(__file__).parent / "data" / "ingest"
HEADER = "event_id,ts,event,partner_id,user_id,object_id,properties\n"
NOW = datetime(2026, 8, 1, 12, 0)
ISO = "write ISO-8601 such as 2026-07-01T10:00:00Z (an offset such as +02:00 is converted to UTC)"


@pytest.fixture
def hub(store):
    """The fixture partners (p1..p3) and users (u1, u2 of p1; u3 of p2; u4 of p9, not known yet)."""
    import_files(store, [DATA / "partners.csv", DATA / "users.csv"])
    return store


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def events_file(tmp_path: Path, name: str, *lines: str) -> Path:
    return write(tmp_path, name, HEADER + "\n".join(lines) + "\n")


def rows(store: Store, sql: str, *params: object) -> list[tuple]:
    return store.con.execute(sql, list(params)).fetchall()


def balanced(s: ImportSummary) -> bool:
    return s.rows_read == s.accepted + s.duplicates + s.rejected and s.rejected == sum(s.rejected_by_reason.values())


def test_every_event_rule_in_one_file(hub, tmp_path):
    path = events_file(
        tmp_path, "events.csv",
        "e1,2026-07-01T10:00:00Z,Logged In,,u1,,",  # partner taken from the user
        "e2,2026-07-01T11:00:00Z,Logged In,p1,u1,,",  # partner given and equal
        "e1,2026-07-01T10:00:00Z,Logged In,,u1,,",  # e1 again, the same: a duplicate
        "e3,2026-07-01T10:00:00Z,Logged In,p2,u1,,",  # partner differs from u1's
        "e4,2026-07-01T10:00:00Z,Logged In,,u9,,",  # unknown user
        "e5,2026-07-01T10:00:00Z,Coordination Logged,p9,,,",  # unknown partner
        "e6,2026-07-01T10:00:00Z,Policy Published,,,pol-1,",  # program-wide
        "e7,2026-07-01T10:00:00Z,Support Requested,p3,,t-1,",  # partner without a user
        ",2026-07-01T10:00:00Z,Logged In,,u1,,",
        "e8,,Logged In,,u1,,",
        "e9,2026-07-01T10:00:00Z,,,u1,,",
        "e10,next tuesday,Logged In,,u1,,",
        'e11,2026-07-01T10:00:00Z,Logged In,,u1,,"{""a"": 1"',
        'e12,2026-07-01T10:00:00Z,Logged In,,u1,,"[1, 2]"',
        "e13,2026-07-01T10:00:00Z,My Custom Thing,,u4,,",  # custom event of a user whose partner comes later
    )
    [s] = import_files(hub, [path], clock=lambda: NOW)
    assert (s.rows_read, s.accepted, s.duplicates, s.rejected) == (15, 5, 1, 9)
    assert s.rejected_by_reason == {
        "bad_ts": 1, "invalid_properties": 1, "missing_event": 1, "missing_event_id": 1, "missing_ts": 1,
        "partner_mismatch": 1, "properties_not_object": 1, "unknown_partner_id": 1, "unknown_user_id": 1,
    }
    assert balanced(s)
    assert rows(hub, "SELECT event_id, event, partner_id, user_id, object_id, properties FROM events ORDER BY seq") == [
        ("e1", "Logged In", "p1", "u1", None, "{}"),
        ("e2", "Logged In", "p1", "u1", None, "{}"),
        ("e6", "Policy Published", None, None, "pol-1", "{}"),
        ("e7", "Support Requested", "p3", None, "t-1", "{}"),
        ("e13", "My Custom Thing", "p9", "u4", None, "{}"),
    ]
    assert rows(hub, "SELECT ts FROM events WHERE event_id = 'e1'") == [(datetime(2026, 7, 1, 10),)]
    assert rows(hub, "SELECT row_number, field, reason FROM rejected_rows ORDER BY row_number") == [
        (4, "partner_id", "partner_id 'p2' differs from the partner 'p1' of user_id 'u1'; leave partner_id empty "
                          "to use the user's partner, or fix it"),
        (5, "user_id", "user_id 'u9' is not a known user; import the users file first or fix the id"),
        (6, "partner_id", "partner_id 'p9' is not a known partner; import the partners file first or fix the id"),
        (9, "event_id", "event_id is missing; give every event a unique id"),
        (10, "ts", f"ts is missing; give the time of the event; {ISO}"),
        (11, "event", "event is missing; name the event, e.g. Logged In"),
        (12, "ts", f"ts 'next tuesday' is not a timestamp; {ISO}"),
        (13, "properties", 'properties is not valid JSON; write a JSON object such as {"path": "/home"}'),
        (14, "properties", 'properties must be a JSON object such as {"path": "/home"}, not a list, number or text'),
    ]


def test_rejected_row_keeps_source_kind_raw_and_import(hub, tmp_path):
    path = events_file(tmp_path, "events.csv", 'e1,2026-07-01T10:00:00Z,Logged In,,u9,,"{""a"": 1}"')
    [s] = import_files(hub, [str(path)], clock=lambda: NOW)
    [(import_id, source, kind, row, raw, at)] = rows(
        hub, "SELECT import_id, source, kind, row_number, raw, rejected_at FROM rejected_rows")
    assert (import_id, source, kind, row, at) == (s.import_id, str(path), "events", 1, NOW)
    assert json.loads(raw) == {"event_id": "e1", "ts": "2026-07-01T10:00:00Z", "event": "Logged In",
                               "partner_id": "", "user_id": "u9", "object_id": "", "properties": '{"a": 1}'}
    assert rows(hub, "SELECT import_id, source, kind, rows_read, accepted, duplicates, rejected FROM imports "
                     "WHERE import_id = ?", s.import_id) == [(s.import_id, str(path), "events", 1, 0, 0, 1)]


def test_first_stored_row_wins_across_imports(hub, tmp_path):
    first = events_file(tmp_path, "events_1.csv", "e1,2026-07-01T10:00:00Z,Logged In,,u1,,")
    second = events_file(tmp_path, "events_2.csv", "e1,2026-07-09T10:00:00Z,Task Started,,u2,,",
                         "e2,2026-07-09T10:00:00Z,Logged In,,u2,,")
    _, s = import_files(hub, [first, second])
    # the second e1 differs from the stored one: kept aside as a conflict, the stored one stays
    assert (s.rows_read, s.accepted, s.duplicates, s.rejected) == (2, 1, 0, 1)
    assert s.rejected_by_reason == {"conflict": 1}
    assert rows(hub, "SELECT event_id, ts, event, user_id FROM events ORDER BY seq") == [
        ("e1", datetime(2026, 7, 1, 10), "Logged In", "u1"),
        ("e2", datetime(2026, 7, 9, 10), "Logged In", "u2"),
    ]


def test_rejected_row_does_not_claim_its_event_id(hub, tmp_path):
    bad_then_good = events_file(tmp_path, "events_1.csv", "e1,soon,Logged In,,u1,,",
                                "e1,2026-07-01T10:00:00Z,Logged In,,u1,,", "e2,2026-07-01T10:00:00Z,Logged In,,u7,,")
    corrected = events_file(tmp_path, "events_2.csv", "e2,2026-07-01T10:00:00Z,Logged In,,u2,,")
    s1, s2 = import_files(hub, [bad_then_good, corrected])
    assert (s1.accepted, s1.duplicates, s1.rejected) == (1, 0, 2)
    assert (s2.accepted, s2.duplicates, s2.rejected) == (1, 0, 0)
    assert rows(hub, "SELECT event_id, user_id FROM events ORDER BY seq") == [("e1", "u1"), ("e2", "u2")]
    assert rows(hub, "SELECT count(*) FROM rejected_rows") == [(2,)]


def test_seq_is_arrival_order_and_import_id_marks_rows(hub, tmp_path):
    a = events_file(tmp_path, "events_a.csv", "a1,2026-07-02T00:00:00Z,Logged In,,u1,,",
                    "a2,2026-07-01T00:00:00Z,Logged In,,u1,,")
    b = events_file(tmp_path, "events_b.csv", "b1,2026-07-01T00:00:00Z,Logged In,,u1,,")
    sa, sb = import_files(hub, [a, b])
    assert rows(hub, "SELECT event_id, seq, import_id FROM events ORDER BY seq") == [
        ("a1", 1, sa.import_id), ("a2", 2, sa.import_id), ("b1", 3, sb.import_id)]
    assert sb.import_id == sa.import_id + 1


def test_entities_are_upserts_and_traits_become_columns(store, tmp_path):
    first = write(tmp_path, "partners_1.csv", "partner_id,name,tier,onboarded_at,segment\n"
                  "p1,Acme,gold,2026-01-01,smb\np2,Beta,silver,2026-02-01,ent\np1,Acme Corp,platinum,2026-01-01,smb\n")
    second = write(tmp_path, "partners_2.csv", "partner_id,region,onboarded_at,offboarded_at,size\n"
                   "p2,NA,2026-02-01,2026-06-30T12:00:00Z,50\np3,EMEA,2026-03-01,,\n")
    s1, s2 = import_files(store, [first, second])
    assert (s1.rows_read, s1.accepted, s2.accepted) == (3, 3, 2)
    assert "segment" in store.trait_columns() and "size" in store.trait_columns()
    got = rows(store, "SELECT partner_id, name, tier, region, onboarded_at, offboarded_at, segment, size "
                      "FROM partners ORDER BY partner_id")
    assert got == [
        ("p1", "Acme Corp", "platinum", None, datetime(2026, 1, 1), None, "smb", None),
        ("p2", "Beta", "silver", "NA", datetime(2026, 2, 1), datetime(2026, 6, 30, 12), "ent", "50"),
        ("p3", None, None, "EMEA", datetime(2026, 3, 1), None, None, None),
    ]


def test_user_updates_and_user_of_unknown_partner_is_stored(store, tmp_path):
    first = write(tmp_path, "users_1.csv", "user_id,partner_id,email,created_at\nu1,p1,a@x,2026-01-02\n"
                  "u2,p404,b@x,2026-01-03\n")
    second = write(tmp_path, "users_2.csv", "user_id,partner_id,created_at,deactivated_at\n"
                   "u1,p1,2026-01-02,2026-05-01T00:00:00+02:00\n")
    s1, s2 = import_files(store, [first, second])
    assert (s1.accepted, s1.rejected, s2.accepted) == (2, 0, 1)
    assert rows(store, "SELECT user_id, partner_id, email, deactivated_at FROM users ORDER BY user_id") == [
        ("u1", "p1", "a@x", datetime(2026, 4, 30, 22)), ("u2", "p404", "b@x", None)]


def test_entity_rows_without_their_required_fields_are_rejected(store, tmp_path):
    partners = write(tmp_path, "partners.csv", "partner_id,name,onboarded_at,offboarded_at\n"
                     "p1,Acme,,\n,Nameless,2026-01-01,\np2,Beta,2026-01-01,never\np3,Gamma,2026-05-01,2026-04-01\n"
                     "p4,Delta,2026-01-01,\n")
    users = write(tmp_path, "users.csv", "user_id,partner_id,created_at,deactivated_at\n"
                  "u1,p4,,\nu2,,2026-01-01,\nu3,p4,2026-01-01,\n")
    sp, su = import_files(store, [partners, users])
    assert (sp.rows_read, sp.accepted, sp.rejected) == (5, 1, 4)
    assert sp.rejected_by_reason == {"bad_offboarded_at": 1, "missing_onboarded_at": 1, "missing_partner_id": 1,
                                     "offboarded_at_before_onboarded_at": 1}
    assert (su.rows_read, su.accepted, su.rejected) == (3, 1, 2)
    assert su.rejected_by_reason == {"missing_created_at": 1, "missing_partner_id": 1}
    assert rows(store, "SELECT kind, row_number, field, reason FROM rejected_rows ORDER BY import_id, row_number") == [
        ("partners", 1, "onboarded_at", f"onboarded_at is missing; add when the partner joined the program; {ISO}"),
        ("partners", 2, "partner_id", "partner_id is missing; give every partner a unique id"),
        ("partners", 3, "offboarded_at", f"offboarded_at 'never' is not a timestamp; {ISO}"),
        ("partners", 4, "offboarded_at", "offboarded_at 2026-04-01 00:00:00 is before onboarded_at "
                                         "2026-05-01 00:00:00; fix one of the two dates"),
        ("users", 1, "created_at", f"created_at is missing; add when the user was provisioned on the hub; {ISO}"),
        ("users", 2, "partner_id", "partner_id is missing; name the partner the user belongs to"),
    ]
    assert rows(store, "SELECT partner_id FROM partners") == [("p4",)]
    assert rows(store, "SELECT user_id FROM users") == [("u3",)]


def test_timestamps_are_utc_whatever_the_session_time_zone(hub, tmp_path):
    hub.con.execute("SET TimeZone = 'America/New_York'")
    path = events_file(tmp_path, "events.csv", "e1,2026-07-01T10:00:00+02:00,Logged In,,u1,,",
                       "e2,2026-07-01T10:00:00,Logged In,,u1,,", "e3,2026-07-01 10:00:00Z,Logged In,,u1,,",
                       "e4,2026-07-01T10:00:00.250-05:30,Logged In,,u1,,", "e5,2026-07-01,Logged In,,u1,,")
    import_files(hub, [path])
    assert rows(hub, "SELECT ts FROM events ORDER BY seq") == [
        (datetime(2026, 7, 1, 8),), (datetime(2026, 7, 1, 10),), (datetime(2026, 7, 1, 10),),
        (datetime(2026, 7, 1, 15, 30, 0, 250000),), (datetime(2026, 7, 1),)]
    assert rows(hub, "SELECT onboarded_at FROM partners WHERE partner_id = 'p2'") == [(datetime(2026, 2, 1, 7),)]


def test_typed_property_columns_follow_the_plan_types(hub, tmp_path):
    props = [
        {"path": "/home", "amount": 12.5, "manual": True, "due_at": "2026-07-01T10:00:00+02:00", "score": 9},
        {"path": 5, "amount": "12", "manual": "true", "due_at": "soon", "score": True},
        {"amount": -3, "manual": False, "due_at": 1751364000, "required": None},
        {},
    ]
    lines = [f"e{i},2026-07-01T00:00:00Z,Custom,,u1,,\"{json.dumps(p).replace(chr(34), chr(34) * 2)}\""
             for i, p in enumerate(props)]
    import_files(hub, [events_file(tmp_path, "events.csv", *lines)])
    got = rows(hub, "SELECT p_path, p_amount, p_manual, p_due_at, p_score, p_required FROM events ORDER BY seq")
    assert got == [
        ("/home", 12.5, True, datetime(2026, 7, 1, 8), 9.0, None),
        (None, None, None, None, None, None),
        (None, -3.0, False, None, None, None),
        (None, None, None, None, None, None),
    ]
    assert json.loads(rows(hub, "SELECT properties FROM events WHERE event_id = 'e1'")[0][0]) == props[1]


@settings(max_examples=60, deadline=None)
@given(
    instant=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_iso_text_with_any_offset_parses_to_the_same_utc_instant(instant, minutes):
    instant = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
    local = instant.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=minutes)))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as import_files sets it
    assert con.execute(f"SELECT {utc('?')}", [local.isoformat()]).fetchall() == [(instant,)]
    assert con.execute(f"SELECT {utc('?')}", [instant.isoformat()]).fetchall() == [(instant,)]
    con.close()


@settings(max_examples=25, deadline=None)
@given(
    before=st.sets(st.sampled_from("abcd"), max_size=2),
    lines=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", ""]), st.booleans()), max_size=12),
)
def test_dedupe_matches_a_row_by_row_model(tmp_path_factory, before, lines):
    store = Store.open(tmp_path_factory.mktemp("h") / "x.duckdb", load_plan())
    try:
        import_files(store, [DATA / "partners.csv", DATA / "users.csv"])
        tmp = tmp_path_factory.mktemp("f")
        if before:
            import_files(store, [events_file(tmp, "events_0.csv",
                                             *(f"{i},2026-07-01T00:00:00Z,Logged In,,u1,," for i in sorted(before)))])
        rows_text = [f"{i},2026-07-0{n % 9 + 1}T00:00:00Z,Logged In,,{'u2' if ok else 'u9'},,"
                     for n, (i, ok) in enumerate(lines)]
        [s] = import_files(store, [events_file(tmp, "events_1.csv", *rows_text)])
        seen, stored, dups, bad = dict.fromkeys(before, (1, "u1")), [], 0, 0
        for n, (i, ok) in enumerate(lines, 1):
            content = ((n - 1) % 9 + 1, "u2")
            if not i or not ok:
                bad += 1
            elif i in seen:  # an identical repeat is a duplicate, a different one a conflict (rejected)
                dups, bad = (dups + 1, bad) if seen[i] == content else (dups, bad + 1)
            else:
                seen[i] = content
                stored.append((i, n))
        assert (s.rows_read, s.accepted, s.duplicates, s.rejected) == (len(lines), len(stored), dups, bad)
        got = rows(store, "SELECT event_id, ts FROM events WHERE user_id = 'u2' ORDER BY seq")
        assert got == [(i, datetime(2026, 7, (n - 1) % 9 + 1)) for i, n in stored]
    finally:
        store.close()
