"""Bad input is never silently dropped (issue 11): a storm of generated bad rows and events, through file import
(CSV, JSONL, Parquet) and the collector over HTTP. Every row sent is accepted, counted as a duplicate or
rejected with a reason (a request or file refused whole says why); no answer is a server error."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from partnerkpi.errors import InputFileError
from partnerkpi.ingest import import_files
from tests.scale import scaled
from tests.test_collector import served  # noqa: F401  (the fixture: a real server on loopback)

pytestmark = pytest.mark.reliability

ROWS = scaled(1000, 10000)
USERS = {"u1": "p1", "u2": "p1", "u3": "p2"}
GOOD = {"ts": "2026-07-01T10:00:00Z", "event": "Logged In", "user_id": "u1", "partner_id": "p1"}
BAD: dict[str, dict] = {  # a category of bad row, and what it changes in a good one
    "missing_id": {"event_id": None},
    "missing_event": {"event": None},
    "bad_ts": {"ts": "not a time"},
    "far_future": {"ts": "9999-12-31T23:59:59Z"},
    "far_past": {"ts": "0001-01-01T00:00:00Z"},
    "unknown_user": {"user_id": "ghost"},
    "unknown_partner": {"partner_id": "p9", "user_id": None},
    "other_partner": {"partner_id": "p2"},
    "ts_number": {"ts": 1783000000},
    "props_list": {"properties": [1, 2]},
    "props_text": {"properties": "not an object"},
}


def storm(count: int, seed: int) -> tuple[list[dict], dict[str, int]]:
    """`count` rows: good ones, bad ones of each category, oversize ones, identical and conflicting repeats."""
    rng = random.Random(seed)
    rows: list[dict] = []
    tally = {"good": 0, "duplicate": 0, "conflict": 0, "oversize": 0, **dict.fromkeys(BAD, 0)}
    good: list[dict] = []
    for i in range(count):
        pick = rng.random()
        row = {"event_id": f"e-{i}", **GOOD, "properties": {"n": i}}
        if pick < 0.3 or not good:
            kind = "good"
            good.append(row)
        elif pick < 0.4:
            kind, row = "duplicate", dict(rng.choice(good))
        elif pick < 0.5:
            kind, row = "conflict", {**rng.choice(good), "event": "Page Viewed", "properties": {"n": -1}}
        elif pick < 0.55:
            kind, row = "oversize", {**row, "event_id": f"big-{i}", "properties": {"blob": "x" * 200_000}}
        else:
            kind = rng.choice(sorted(BAD))
            row = {**row, **BAD[kind]}
        tally[kind] += 1
        rows.append(row)
    return rows, tally


@pytest.fixture
def people(store, tmp_path):
    partners = tmp_path / "partners.jsonl"
    partners.write_text("".join(json.dumps({"partner_id": p, "onboarded_at": "2026-01-01T00:00:00Z"}) + "\n"
                                for p in ("p1", "p2")))
    users = tmp_path / "users.jsonl"
    users.write_text("".join(json.dumps({"user_id": u, "partner_id": p, "created_at": "2026-02-01T00:00:00Z"}) + "\n"
                             for u, p in USERS.items()))
    import_files(store, [partners, users])
    return store


def _as_text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def write_rows(path, fmt: str, rows: list[dict]) -> None:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return
    columns = ("event_id", "ts", "event", "user_id", "partner_id", "properties")
    table = pa.table({c: pa.array([_as_text(r.get(c)) for r in rows], pa.string()) for c in columns})
    if fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_file_storm_of_bad_rows_is_accounted_for_row_by_row(people, tmp_path, fmt):
    rows, tally = storm(ROWS, seed=3)
    path = tmp_path / f"events.{fmt}"
    write_rows(path, fmt, rows)
    [summary] = import_files(people, [path])
    con = people.con
    big_stored = con.execute("SELECT count(*) FROM events WHERE event_id LIKE 'big-%'").fetchall()[0][0]
    reasons = [r[0] for r in con.execute("SELECT reason FROM rejected_rows WHERE import_id = ?",
                                         [summary.import_id]).fetchall()]
    assert summary.rows_read == len(rows) == sum(tally.values())
    assert summary.accepted + summary.duplicates + summary.rejected == len(rows)
    assert summary.duplicates == tally["duplicate"], tally
    assert summary.accepted == tally["good"] + big_stored, tally
    assert len(reasons) == summary.rejected and all(r and r.strip() for r in reasons)
    assert summary.rejected_by_reason.get("conflict") == tally["conflict"]


def test_a_file_with_invalid_utf8_is_refused_whole_with_a_reason(people, tmp_path):
    rows, _ = storm(ROWS // 10, seed=4)
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path = tmp_path / "events.jsonl"
    path.write_bytes(text[: len(text) // 2] + b"\xff\xfe\xc3(" + text[len(text) // 2:])
    before = people.counts()
    with pytest.raises(InputFileError) as refused:
        import_files(people, [path])
    assert refused.value.message and refused.value.hint
    assert people.counts() == before


def as_message(row: dict, i: int) -> object:
    """A storm row as a Segment track message (a few as things that are not messages at all)."""
    if i % 97 == 0:
        return "not a message"
    message = {"type": "track", "messageId": row.get("event_id"), "event": row.get("event"),
               "userId": row.get("user_id"), "timestamp": row.get("ts"), "properties": row.get("properties")}
    if row.get("partner_id"):
        message["context"] = {"groupId": row["partner_id"]}
    if i % 89 == 0:
        message["event"] = "lone \ud800 surrogate"
    return message


def test_a_collector_storm_of_bad_events_is_accounted_for_and_never_a_server_error(served):  # noqa: F811
    setup = [{"type": "group", "groupId": p, "userId": "u1", "traits": {"onboarded_at": "2026-01-01T00:00:00Z"}}
             for p in ("p1", "p2")]
    setup += [{"type": "identify", "userId": u, "traits": {"partner_id": p, "created_at": "2026-02-01T00:00:00Z"}}
              for u, p in USERS.items()]
    assert served.post("/v1/batch", {"batch": setup}).status_code == 200
    rows, _ = storm(ROWS, seed=5)
    messages = [as_message(r, i) for i, r in enumerate(rows)]
    bodies: list[tuple[bytes, int]] = []
    for start in range(0, len(messages), 25):
        part = messages[start:start + 25]
        body = json.dumps({"batch": part}).encode()
        if start % 500 == 250:  # invalid UTF-8 bytes in the body
            body = body[:-2] + b"\xff\xfe" + body[-2:]
        elif start % 500 == 475:  # a body that is not JSON
            body = body[:-1]
        bodies.append((body, len(part)))
    statuses: dict[int, int] = {}
    refused_whole = loaded = 0
    for body, n in bodies:
        response = served.post("/v1/batch", content=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 200:
            loaded += n
        else:
            assert response.status_code == 400 and response.json()["message"], response.text
            refused_whole += n
    assert set(statuses) <= {200, 400}, statuses
    served.wait_loaded(len(setup) + loaded, timeout=300)
    [(read, accepted, duplicates, rejected)] = served.rows(
        "SELECT sum(rows_read), sum(accepted), sum(duplicates), sum(rejected) FROM imports")
    [(kept, with_reason)] = served.rows("SELECT count(*), count(*) FILTER (WHERE trim(reason) <> '') "
                                        "FROM rejected_rows")
    assert read == accepted + duplicates + rejected == len(setup) + loaded
    assert kept == with_reason == rejected
    assert refused_whole > 0 and loaded > 0
    assert (accepted - len(setup)) + duplicates + rejected + refused_whole == len(messages)
