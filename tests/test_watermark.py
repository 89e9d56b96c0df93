"""The data watermark (KPI-SPEC §6 Completeness): how far the data reaches, the last complete period, and
every "now" of the product taken from it rather than from the wall clock."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.insights.health import default_as_of
from partnerkpi.insights.review import quarter_review
from partnerkpi.insights.risk import inactive
from partnerkpi.settings import Settings
from partnerkpi.web import create_app
from tests.kpi_fixtures import Fixture
from tests.web_fixtures import build_program, client_for

LATE_CLOCK = datetime(2026, 12, 5, 19, 0)  # long after the data ends


def one_event(tmp_path, ts: str) -> Hub:
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("uA", "A")
    fx.event("Logged In", ts, user="uA")
    hub = fx.hub()
    hub.clock = FixedClock(LATE_CLOCK)
    return hub


# -- the watermark ------------------------------------------------------------------------------------------
def test_the_last_second_of_a_day_and_the_first_of_the_next(tmp_path):
    late = one_event(tmp_path / "a", "2026-10-31 23:59:59")
    assert late.watermark() == datetime(2026, 11, 1)  # October is complete
    assert late.last_complete("month").label == "2026-10"
    first = one_event(tmp_path / "b", "2026-11-01 00:00:00")
    assert first.watermark() == datetime(2026, 11, 2)  # 1 November holds data: the watermark is its end
    assert first.last_complete("month").label == "2026-10"


def test_no_data_means_no_watermark_and_the_clock_is_now(tmp_path):
    hub = Hub.open(tmp_path / "empty.duckdb", clock=FixedClock(LATE_CLOCK))
    assert hub.watermark() is None and hub.last_complete("month") is None
    assert hub.now() == LATE_CLOCK


def test_now_is_the_watermark_but_never_after_the_clock(tmp_path):
    hub = one_event(tmp_path, "2026-10-31 08:00")
    assert hub.now() == datetime(2026, 11, 1)
    hub.clock = FixedClock(datetime(2026, 10, 31, 12, 0))  # the day is still running
    assert hub.now() == datetime(2026, 10, 31, 12, 0) and hub.watermark() == datetime(2026, 11, 1)


@pytest.mark.parametrize(("grain", "last", "running"), [
    ("week", "2026-W43", "2026-W44"),  # 2026-11-01 is a Sunday: W44 (26 Oct .. 2 Nov) is still running
    ("month", "2026-10", None),
    ("quarter", "2026-Q3", "2026-Q4"),
    ("year", "2025", "2026"),
])
def test_the_last_complete_and_the_running_period_of_each_grain(tmp_path, grain, last, running):
    hub = one_event(tmp_path, "2026-10-31 12:00")
    assert hub.last_complete(grain).label == last
    assert hub.last_complete(grain).end <= hub.watermark()
    found = hub.running_period(grain)
    assert (found.label if found else None) == running


def test_a_collector_arrival_later_than_every_event_moves_the_watermark(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("uA", "A")
    fx.event("Logged In", "2026-10-20 10:00", user="uA")
    db = tmp_path / "hub.duckdb"
    fx.hub().close()
    with Hub.open(db) as hub:
        key = Credentials(hub.store).create_write_key("site")
        assert hub.watermark() == datetime(2026, 10, 21)
        hub.import_files([fx.write()["events"]], kind="events")  # a file import again is no arrival
        assert hub.watermark() == datetime(2026, 10, 21)
    clock = FixedClock(datetime(2026, 11, 3, 8, 0))
    hub = Hub.open(db, clock=clock)
    with TestClient(create_app(Settings(db=str(db)), hub=hub)) as client:
        auth = base64.b64encode(f"{key}:".encode()).decode()
        body = {"userId": "uA", "event": "Logged In", "timestamp": "2026-10-20T11:00:00Z",
                "context": {"groupId": "A"}, "messageId": "m1"}  # an old event, arriving on 3 November
        answer = client.post("/v1/track", json=body, headers={"Authorization": f"Basic {auth}"})
        assert answer.status_code == 200, answer.text
    # the arrival's day counts, not the event's (the importer stamps it with the real clock, today, and the
    # watermark never passes the end of the hub clock's day, 3 November)
    assert hub.watermark() == datetime(2026, 11, 4)
    hub.close()


def test_a_snapshot_reads_the_watermark_and_the_data_version_once_and_a_new_one_reads_them_again(tmp_path):
    """A request's snapshot answers them from its first read (under a stream each read waits for the loader);
    the next request's snapshot sees the data that arrived in between."""
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("uA", "A")
    fx.event("Logged In", "2026-10-20 10:00", user="uA")
    fx.hub().close()
    with Hub.open(tmp_path / "hub.duckdb", clock=FixedClock(LATE_CLOCK)) as hub:
        request = hub.snapshot()
        before = request.data_version()
        assert request.watermark() == datetime(2026, 10, 21)
        fx.event("Logged In", "2026-11-02 09:00", user="uA", id="later")
        hub.import_files([fx.write()["events"]], kind="events")
        assert request.watermark() == datetime(2026, 10, 21) and request.data_version() == before
        assert hub.watermark() == datetime(2026, 11, 3) and hub.data_version().rows == before.rows + 1
        following = hub.snapshot()
        assert following.watermark() == datetime(2026, 11, 3) and following.data_version() == hub.data_version()
        request.close_snapshot()
        following.close_snapshot()


# -- ranges -------------------------------------------------------------------------------------------------
def test_the_default_range_ends_with_the_last_complete_period(tmp_path):
    hub = one_event(tmp_path, "2026-10-20 12:00")  # October is running: September is the last complete month
    assert hub.default_range("month") == (date(2026, 4, 1), date(2026, 10, 1))
    assert hub.default_range("quarter", periods=2) == (date(2026, 4, 1), date(2026, 10, 1))


def test_a_range_past_the_watermark_is_cut_and_says_so(tmp_path):
    hub = one_event(tmp_path, "2026-10-20 12:00")
    end, note = hub.covered_range("month", date(2026, 7, 1), date(2027, 1, 1))
    assert end == date(2026, 10, 1) and "2026-09" in note and "2027-01-01" in note
    assert hub.covered_range("month", date(2026, 7, 1), date(2026, 9, 1)) == (date(2026, 9, 1), None)
    end, note = hub.covered_range("month", date(2026, 7, 1), date(2027, 1, 1), partial=True)
    assert end == date(2026, 11, 1) and "2026-10" in note  # the running October, never November
    with pytest.raises(UsageError, match="no complete month"):
        hub.covered_range("month", date(2026, 11, 1), date(2027, 1, 1))


def test_the_cli_scorecard_shows_the_running_period_only_when_asked(tmp_path):
    from typer.testing import CliRunner

    from partnerkpi.cli import app

    one_event(tmp_path, "2026-10-20 12:00").close()
    db = str(tmp_path / "hub.duckdb")
    runner = CliRunner()
    plain = runner.invoke(app, ["scorecard", "--db", db, "--kpi", "active_partner_rate", "--format", "json",
                                "--to", "2026-12-01"])
    assert plain.exit_code == 0, plain.output
    rows = json.loads(plain.stdout)
    assert [r["period"] for r in rows][-1] == "2026-09" and not any("partial" in r for r in rows)
    assert "the range ends with the last complete month, 2026-09" in plain.stderr
    asked = runner.invoke(app, ["scorecard", "--db", db, "--kpi", "active_partner_rate", "--format", "json",
                                "--partial"])
    rows = json.loads(asked.stdout)
    assert [(r["period"], r.get("partial")) for r in rows][-2:] == [("2026-09", None), ("2026-10", True)]
    assert rows[-1]["value"] == 100.0  # A logged in on 20 October: a partial month, not a 0
    table = runner.invoke(app, ["scorecard", "--db", db, "--kpi", "active_partner_rate", "--partial"])
    assert "2026-10 (partial)" in table.stdout


# -- every "now" is the data's now --------------------------------------------------------------------------
def test_health_review_inactive_and_overdue_ages_use_the_watermark(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("uA", "A")
    fx.event("Logged In", "2026-06-30 10:00", user="uA")
    fx.event("Task Assigned", "2026-06-01", partner="A", object="t1", kind="compliance", due_at="2026-06-20T00:00:00Z")
    hub = fx.hub()
    hub.clock = FixedClock(LATE_CLOCK)  # December: the data stopped at the end of June
    assert hub.watermark() == datetime(2026, 7, 1)
    assert default_as_of(hub) == datetime(2026, 7, 1)
    assert quarter_review(hub).quarter == "2026-Q2"  # not 2026-Q3, which the data does not reach
    assert inactive(hub, hub.now(), days=30) == []  # 1 day idle at the watermark, not 158 by the clock
    from partnerkpi.engine.partner_reads import open_tasks

    engine = hub.engine
    (task,) = open_tasks(engine.table, engine.execute, "A", hub.now())
    assert task["days_overdue"] == 11  # 20 June .. 1 July, not 168 days by the December clock


# -- data as of, on pages and twins -------------------------------------------------------------------------
def twin_routes(client: TestClient) -> list[str]:
    """Every GET route of the JSON API that answers a page's JSON twin (admin lists of users, tokens and
    report subscriptions are not twins of a data page)."""
    admin = ("/api/v1/users", "/api/v1/tokens", "/api/v1/subscriptions")
    paths = client.get("/openapi.json").json()["paths"]
    return sorted(p for p, ops in paths.items() if p.startswith("/api/v1/") and "get" in ops
                  and not p.endswith(".csv") and p not in admin)


def test_every_json_twin_and_every_page_states_the_watermark(tmp_path):
    db = build_program(tmp_path)  # the data reaches 2026-07-31
    params = {"/api/v1/impact": {"kpi": "login_frequency", "on": "active_partner_rate", "grain": "week"}}
    for client in client_for(db):
        routes = twin_routes(client)
        assert len(routes) >= 12
        for path in routes:
            url = path.replace("{kpi_id}", "active_partner_rate").replace("{partner_id}", "R1")
            answer = client.get(url, params=params.get(path, {}))
            assert answer.status_code == 200, (url, answer.text)
            assert answer.json()["data_as_of"] == "2026-08-01T00:00:00Z", url
        page = client.get("/", headers={"accept": "text/html"})
        assert "Data as of 2026-08-01 (last complete month: 2026-07)" in page.text


def test_the_scorecard_twin_marks_the_running_period_only_when_asked(tmp_path):
    db = build_program(tmp_path)  # the data reaches 2026-07-31, a Friday: week 2026-W31 is running
    for client in client_for(db):
        week = {"kpi": "active_partner_rate", "grain": "week"}
        plain = client.get("/api/v1/scorecard", params=week).json()
        assert [r["period"] for r in plain["rows"] if not r["segment"]][-1] == "2026-W30"
        assert not any("partial" in r for r in plain["rows"])
        asked = client.get("/api/v1/scorecard", params={**week, "partial": 1}).json()
        program = [r for r in asked["rows"] if not r["segment"]]
        assert [(r["period"], r.get("partial")) for r in program][-2:] == [("2026-W30", None), ("2026-W31", True)]
        assert asked["categories"][0]["tiles"][0]["period"] == "2026-W31 (partial)"
        assert asked["query"]["partial"] is True
        cut = client.get("/", params={"grain": "month", "from": "2026-06-01", "to": "2026-10-01"})
        assert "the range ends with the last complete month, 2026-07, not at 2026-10-01" in cut.text


def test_an_event_dated_in_the_future_does_not_stretch_the_watermark(tmp_path):
    hub = one_event(tmp_path, "2026-10-31 10:00")
    # imports reject such a row now; one stored before they had bounds (or by hand) stays harmless
    hub.store.con.execute("UPDATE events SET ts = TIMESTAMP '2999-01-01 10:00:00'")
    assert hub.watermark() == datetime(2026, 12, 6)  # the end of the clock's day
    assert hub.last_complete("month").label == "2026-11"
