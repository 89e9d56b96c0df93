"""Segment-spec JSON Lines: identify → users, group → partners, track/page → events."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from partnerkpi.ingest import import_files
from partnerkpi.store import Store

DATA = Path(__file__).parent / "data" / "ingest"
ISO = "write ISO-8601 such as 2026-07-01T10:00:00Z (an offset such as +02:00 is converted to UTC)"


def rows(store: Store, sql: str) -> list[tuple]:
    return store.con.execute(sql).fetchall()


def segment_file(tmp_path: Path, *messages: dict) -> Path:
    path = tmp_path / "hub.segment.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def test_segment_file_fills_partners_users_and_events(store):
    import_files(store, [DATA / "partners.csv", DATA / "users.csv"])
    [s] = import_files(store, [DATA / "hub.segment.jsonl"])
    assert (s.kind, s.rows_read, s.accepted, s.duplicates, s.rejected) == ("segment", 13, 7, 0, 6)
    # m-1 comes twice, four days apart: a conflict, not a duplicate
    assert s.rejected_by_reason == {"bad_timestamp": 1, "conflict": 1, "invalid_json_line": 1, "partner_mismatch": 1,
                                    "unknown_user_id": 1, "unsupported_type": 1}
    assert rows(store, "SELECT partner_id, name, type, tier, region, onboarded_at, industry, employees FROM partners "
                       "WHERE partner_id = 'g1'") == [
        ("g1", "Delta", "reseller", "gold", "EMEA", datetime(2026, 3, 1, 9), "retail", "120")]
    assert rows(store, "SELECT user_id, partner_id, email, role, created_at FROM users WHERE user_id LIKE 's%' "
                       "ORDER BY 1") == [
        ("su1", "g1", "eve@delta.example", "admin", datetime(2026, 3, 2)),
        ("su2", "g1", "fay@delta.example", None, datetime(2026, 3, 3, 8)),
    ]
    got = rows(store, "SELECT seq, event_id, ts, event, partner_id, user_id, object_id, properties, p_amount, p_path, "
                      "p_required FROM events ORDER BY seq")
    assert [(*r[:7], json.loads(r[7]), *r[8:]) for r in got] == [
        (4, "m-1", datetime(2026, 7, 1, 9, 59, 55), "Logged In", "g1", "su1", None, {}, None, None, None),
        (5, "m-2", datetime(2026, 7, 2, 10), "Deal Registered", "g1", "su2", "deal-7",
         {"amount": 5000, "object_id": "deal-7"}, 5000.0, None, None),
        (6, "m-3", datetime(2026, 7, 3, 9), "Page Viewed", "g1", "su1", None,
         {"title": "Resources", "path": "/resources"}, None, "/resources", None),
        (7, "m-4", datetime(2026, 7, 4), "Policy Published", None, None, "pol-1",
         {"required": True, "object_id": "pol-1"}, None, None, True),
    ]
    assert rows(store, "SELECT row_number, field, reason FROM rejected_rows ORDER BY row_number") == [
        (8, "timestamp", "messageId 'm-1' repeats row 4 of this file with different content: timestamp "
                         "'2026-07-05 10:00:00' here, '2026-07-01 09:59:55' there; keep one version: correct this "
                         "row, or give it its own id if it is another event"),
        (9, "userId", "userId 'nobody' is not a known user; import the users file first or fix the id"),
        (10, "type", "Segment message type 'screen' is not imported (only identify, group, track, page are); "
                     "remove the line if it is not needed"),
        (12, "sentAt", f"sentAt 'yesterday' is not a timestamp; {ISO}"),
        (13, "context.groupId", "context.groupId 'p1' differs from the partner 'g1' of userId 'su1'; leave "
                                "context.groupId empty to use the user's partner, or fix it"),
        (14, None, "the line is not a JSON object; fix the line or remove it"),
    ]
    assert rows(store, "SELECT raw FROM rejected_rows WHERE row_number = 14") == [("this line is not JSON",)]


def test_later_calls_update_traits_but_keep_first_seen_times(store, tmp_path):
    path = segment_file(
        tmp_path,
        {"type": "group", "groupId": "g1", "traits": {"tier": "silver", "plan": "pro"},
         "timestamp": "2026-03-05T00:00:00Z"},
        {"type": "group", "groupId": "g1", "traits": {"name": "G One"}, "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "identify", "userId": "u1", "traits": {"partner_id": "g1"}, "timestamp": "2026-03-06T00:00:00Z"},
        {"type": "group", "groupId": "g2", "traits": {"onboarded_at": "2026-01-15"},
         "timestamp": "2026-03-07T00:00:00Z"},
    )
    later = tmp_path / "later.segment.jsonl"
    later.write_text(json.dumps({"type": "group", "groupId": "g1", "traits": {"tier": "gold"},
                                 "timestamp": "2026-04-01T00:00:00Z"}) + "\n" +
                     json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "u1@x", "createdAt":
                                 "2026-02-01T00:00:00Z"}, "timestamp": "2026-04-01T00:00:00Z"}) + "\n")
    s1, s2 = import_files(store, [path, later])
    assert (s1.accepted, s2.accepted) == (4, 2)
    assert rows(store, "SELECT partner_id, name, tier, onboarded_at, plan FROM partners ORDER BY 1") == [
        ("g1", "G One", "gold", datetime(2026, 3, 1), "pro"), ("g2", None, None, datetime(2026, 1, 15), None)]
    assert rows(store, "SELECT user_id, partner_id, email, created_at FROM users") == [
        ("u1", "g1", "u1@x", datetime(2026, 2, 1))]


def test_segment_messages_missing_what_they_need_are_rejected(store, tmp_path):
    path = segment_file(
        tmp_path,
        {"type": "group", "traits": {"name": "No id"}, "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "group", "groupId": "g3"},
        {"type": "identify", "userId": "u1", "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "identify", "anonymousId": "a1", "traits": {"partner_id": "g3"}, "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "identify", "userId": "u2", "traits": {"partner_id": "g3", "created_at": "last week"}},
        {"type": "track", "event": "Logged In", "timestamp": "2026-07-01T00:00:00Z"},
        {"type": "track", "messageId": "m1", "timestamp": "2026-07-01T00:00:00Z"},
        {"type": "track", "event": "Logged In", "messageId": "m2"},
        {"type": "track", "event": "Logged In", "messageId": "m3", "originalTimestamp": "tomorrow"},
        {"type": "track", "event": "Logged In", "messageId": "m4", "timestamp": "2026-07-01T00:00:00Z",
         "properties": ["not", "an", "object"]},
        {"event": "Logged In", "messageId": "m5"},
    )
    [s] = import_files(store, [path])
    assert (s.rows_read, s.accepted, s.rejected) == (11, 0, 11)
    assert rows(store, "SELECT row_number, field, reason FROM rejected_rows ORDER BY row_number") == [
        (1, "groupId", "groupId is missing; give every partner a unique id"),
        (2, "traits.onboarded_at", f"neither traits.onboarded_at nor the message timestamp is given; {ISO}"),
        (3, "traits.partner_id (or context.groupId)", "traits.partner_id (or context.groupId) is missing; name the "
                                                      "partner the user belongs to"),
        (4, "userId", "userId is missing; give every user a unique id"),
        (5, "traits.created_at", f"traits.created_at 'last week' is not a timestamp; {ISO}"),
        (6, "messageId", "messageId is missing; give every event a unique id"),
        (7, "event", "event is missing; name the event, e.g. Logged In"),
        (8, "timestamp", f"timestamp is missing; give the time of the event; {ISO}"),
        (9, "originalTimestamp", f"originalTimestamp 'tomorrow' is not a timestamp; {ISO}"),
        (10, "properties", 'properties must be a JSON object such as {"path": "/home"}, not a list, number or text'),
        (11, "type", "type is missing; a Segment message has type identify, group, track or page"),
    ]


def test_segment_mapping_renames_traits_and_event_names(store, tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns: {company_tier: tier, account: partner_id}\nevents: {signin: Logged In}\n")
    path = segment_file(
        tmp_path,
        {"type": "group", "groupId": "g1", "traits": {"company_tier": "gold"}, "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "identify", "userId": "u1", "traits": {"account": "g1"}, "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "track", "event": "signin", "userId": "u1", "messageId": "m1", "timestamp": "2026-07-01T00:00:00Z"},
    )
    [s] = import_files(store, [path], mapping=mapping)
    assert s.accepted == 3
    assert rows(store, "SELECT partner_id, tier FROM partners") == [("g1", "gold")]
    assert "company_tier" not in store.columns("partners")
    assert rows(store, "SELECT event, partner_id FROM events") == [("Logged In", "g1")]


def test_page_path_comes_from_properties_else_from_the_name(store, tmp_path):
    path = segment_file(
        tmp_path,
        {"type": "group", "groupId": "g1", "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "identify", "userId": "u1", "groupId": "g1", "timestamp": "2026-03-01T00:00:00Z"},
        {"type": "page", "name": "Docs", "userId": "u1", "messageId": "p1", "timestamp": "2026-07-01T00:00:00Z",
         "properties": {"path": "/docs"}},
        {"type": "page", "name": "/home", "userId": "u1", "messageId": "p2", "timestamp": "2026-07-01T00:00:00Z"},
        {"type": "page", "userId": "u1", "messageId": "p3", "timestamp": "2026-07-01T00:00:00Z"},
    )
    [s] = import_files(store, [path])
    assert (s.accepted, s.rejected) == (5, 0)
    assert rows(store, "SELECT event_id, event, partner_id, p_path, properties FROM events ORDER BY seq") == [
        ("p1", "Page Viewed", "g1", "/docs", '{"path":"/docs"}'),
        ("p2", "Page Viewed", "g1", "/home", '{"path":"/home"}'),
        ("p3", "Page Viewed", "g1", None, "{}"),
    ]
