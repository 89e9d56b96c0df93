"""Extreme and malformed values of every field, through file import and the collector: every row is
accepted, counted as a duplicate or rejected with a reason, and afterwards every page, JSON twin and
read command still answers."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from partnerkpi.catalog.plan import load_plan
from partnerkpi.cli import app as cli_app
from partnerkpi.errors import InputFileError
from partnerkpi.hub import Hub
from partnerkpi.ingest import import_files
from tests.test_collector import served  # noqa: F401  (the fixture: a real server on loopback)
from tests.test_query_values import PATHS, get_routes
from tests.web_fixtures import build_program, client_for, sign_in

PLAN = load_plan()
TIMES = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2999-01-01", "1677-09-21T00:12:43Z", "2262-04-11",
         "1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z", "2026-07-01T00:00:00+14:00",
         "2026-07-01T23:00:00-12:00", "294276-01-01", "infinity", "-infinity", "", " ", "2026-02-30", "now",
         "2026-07-01T10:00:00.123456789Z", "2026-07-15"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["x" * 5000, "a\x00b", "\ud800", "é", "-0", "1e308", "NaN", "<script>alert(1)</script>"]),
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=6)
times = st.one_of(st.sampled_from(TIMES), st.datetimes(min_value=datetime(1, 1, 1)).map(lambda d: d.isoformat() + "Z"),
                  scalars)
texts = st.one_of(st.sampled_from(["p1", "p2", "R1", "u1", "u2", "uR1", ""]), scalars, values)
properties = st.one_of(values, st.fixed_dictionaries({}, optional={
    "due_at": times, "amount": scalars, "score": scalars, "kind": texts, "required": scalars, "path": texts,
    "grant_id": texts, "decision": texts}))
events_names = st.one_of(st.sampled_from(sorted(PLAN.names)), texts)


def rows_of(fields: dict) -> st.SearchStrategy[list[dict]]:
    return st.lists(st.fixed_dictionaries({}, optional=fields), min_size=1, max_size=6)


partners = rows_of({"partner_id": texts, "name": texts, "type": texts, "tier": texts, "region": texts,
                    "onboarded_at": times, "offboarded_at": times, "industry": values})
users = rows_of({"user_id": texts, "partner_id": texts, "email": texts, "role": texts, "created_at": times,
                 "deactivated_at": times})
events = rows_of({"event_id": st.sampled_from(["e1", "e2", "e3", "", None, 7]), "ts": times, "event": events_names,
                  "partner_id": texts, "user_id": texts, "object_id": texts, "properties": properties})


def line(row: dict) -> str:
    """A JSON Lines line; NaN and Infinity make it invalid JSON on purpose."""
    return json.dumps(row, allow_nan=True)


def balanced(hub_or_con, import_id: int, summary) -> None:
    assert summary.rows_read == summary.accepted + summary.duplicates + summary.rejected
    reasons = hub_or_con.execute("SELECT reason FROM rejected_rows WHERE import_id = ?", [import_id]).fetchall()
    assert len(reasons) == summary.rejected
    assert all(r[0] for r in reasons)


READ_COMMANDS = [["scorecard"], ["scorecard", "--format", "json"], ["explain", "active_partner_rate"], ["trends"],
                 ["review"], ["health"], ["at-risk"], ["inactive"], ["lifecycle"], ["backtest"],
                 ["impact", "--kpi", "portal_usage_rate", "--on", "partner_revenue"], ["alerts", "list"]]


def every_page_answers(get, partner_ids: list[str]) -> int:
    """GET every page and JSON twin (partner pages for each id); returns how many were asked."""
    asked = 0
    for route in get_routes():
        if route.path.startswith(("/v1/", "/signin", "/signout", "/static", "/admin", "/api/v1/users",
                                  "/api/v1/tokens", "/api/v1/subscriptions")):  # admin-only
            continue
        ids = partner_ids if "{partner_id}" in route.path else [""]
        for pid in ids:
            path = route.path.replace("{partner_id}", quote(pid, safe=""))
            for key, value in PATHS.items():
                path = path.replace(key, value)
            r = get(path)
            asked += 1
            assert r.status_code < 500, (path, r.status_code, r.text[-500:])
            assert r.status_code in (200, 400, 404), (path, r.status_code, r.text[:300])
    return asked


def _feed_files(tmp_path_factory, examples: int) -> str:
    root = tmp_path_factory.mktemp("extremes")
    db = build_program(root)
    hub = Hub.open(db)
    counter = iter(range(10**6))

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(partners, users, events)
    def feed(ps, us, es):
        n = next(counter)
        paths = []
        for kind, rows in (("partners", ps), ("users", us), ("events", es)):
            path = root / f"{kind}-{n}.jsonl"
            path.write_text("".join(line(r) + "\n" for r in rows))
            paths.append(path)
        for path in paths:
            before = hub.store.counts()
            try:
                [summary] = import_files(hub.store, [path])
            except InputFileError as exc:  # refused whole (no required column, ...): said, and nothing stored
                assert exc.message and exc.hint
                assert hub.store.counts() == before
                continue
            if not summary.skipped_same_file:
                balanced(hub.store.con, summary.import_id, summary)

    try:
        feed()
    finally:
        hub.close()
    return str(db)


def _reads_and_pages(db: str) -> None:
    runner = CliRunner()
    for command in READ_COMMANDS:
        result = runner.invoke(cli_app, [*command, "--db", db])
        assert result.exit_code == 0, (command, result.output[-2000:], result.exception)
    with Hub.open(db, read_only=True) as hub:
        ids = [r[0] for r in hub.store.con.execute("SELECT partner_id FROM partners ORDER BY length(partner_id) DESC "
                                                   "LIMIT 2").fetchall()]
    for client in client_for(db):
        assert every_page_answers(client.get, ["R1", *ids]) > 20


def test_extreme_files_are_accounted_for_and_break_nothing(tmp_path_factory):
    _reads_and_pages(_feed_files(tmp_path_factory, 20))


@pytest.mark.slow
def test_extreme_files_many_examples(tmp_path_factory):
    _reads_and_pages(_feed_files(tmp_path_factory, 300))


def test_a_file_that_is_not_utf8_is_refused_whole(store, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event_id": "e1", "ts": "2026-07-01T00:00:00Z", "event": "\xff\xfe"}\n')
    with pytest.raises(InputFileError, match="not UTF-8"):
        import_files(store, [path])
    assert store.counts()["imports"] == 0


message_types = st.one_of(st.sampled_from(["track", "identify", "group", "page", "screen", "alias"]), scalars)
messages = st.lists(st.fixed_dictionaries({"type": message_types}, optional={
    "messageId": st.sampled_from(["m1", "m2", "m3", "", None, 5]), "userId": texts, "anonymousId": texts,
    "groupId": texts, "event": events_names, "timestamp": times, "sentAt": times, "originalTimestamp": times,
    "properties": properties, "context": st.one_of(values, st.fixed_dictionaries({"groupId": texts})),
    "traits": st.one_of(values, st.fixed_dictionaries({}, optional={
        "created_at": times, "onboarded_at": times, "offboarded_at": times, "partner_id": texts, "name": texts})),
}), min_size=1, max_size=8)


def test_extreme_messages_through_the_collector(served):  # noqa: F811
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(messages)
    def feed(batch):
        r = served.post("/v1/batch", content=json.dumps({"batch": batch}, allow_nan=True).encode())
        assert r.status_code in (200, 400), r.text
        assert r.json()["success"] is (r.status_code == 200)
        spooled.append(len(batch) if r.status_code == 200 else 0)

    spooled: list[int] = []
    feed()
    served.wait_loaded(sum(spooled))  # a 200 is a durable spool append; the loader imports it a moment later
    imports = served.rows("SELECT import_id, rows_read, accepted, duplicates, rejected FROM imports")
    assert imports
    for import_id, read, accepted, duplicates, rejected in imports:
        assert read == accepted + duplicates + rejected
        kept = served.rows(f"SELECT count(*), count(*) FILTER (WHERE reason <> '') FROM rejected_rows "
                           f"WHERE import_id = {int(import_id)}")
        assert kept == [(rejected, rejected)]
    ids = [r[0] for r in served.rows("SELECT partner_id FROM partners ORDER BY length(partner_id) DESC LIMIT 2")]
    with httpx.Client(base_url=served.url, timeout=60) as client:
        assert sign_in(client, "ana@example.com", "analyst-pass").status_code == 303
        assert every_page_answers(client.get, ["R1", *ids]) > 20
