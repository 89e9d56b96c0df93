"""A partner's own view (engine/partner_reads.py): open tasks, unacknowledged policies, peer figures, by hand."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone

import pytest

from partnerkpi.engine.partner_reads import (
    PeerStats,
    open_tasks,
    peer_position,
    peer_stats,
    unacknowledged_policies,
)
from tests.kpi_fixtures import Fixture, at, iso

AT = datetime(2026, 8, 1)

# --- open_tasks --------------------------------------------------------------------------------


@pytest.fixture
def task_program(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B")
    fx.user("uA", "A").user("uB", "B")

    def assign(task, ts, partner="A", due=None, kind="compliance", **more):
        props = {"kind": kind} | ({"due_at": iso(due)} if due else {}) | more
        fx.event("Task Assigned", ts, partner=partner, object=task, **props)

    assign("t1", "2026-07-01", due="2026-07-20")
    assign("t0", "2026-07-02", due="2026-07-20", kind="training", title="Finish the sales training")
    assign("t2", "2026-06-15 10:00")  # no due_at: due 2026-07-15 10:00
    assign("t3", "2026-07-10", due="2026-08-10")
    assign("t4", "2026-07-01")  # due 2026-07-31
    assign("t5", "2026-07-01")
    assign("t6", "2026-07-01")
    assign("t7", "2026-07-01", partner="B")  # another partner's
    assign("t8", "2026-08-01")  # assigned at AT, not before
    assign("t9", "2026-07-01", partner="B")  # first assigned to B ...
    assign("t9", "2026-07-02")  # ... so a later assignment to A does not make it A's
    assign("t10", "2026-07-01", due="2026-08-01")  # due exactly at AT: open, not overdue
    fx.event("Task Started", "2026-07-05", user="uA", object="t1")
    fx.event("Task Started", "2026-08-01", user="uA", object="t3")  # at AT: not before
    fx.event("Task Completed", "2026-08-01", partner="A", object="t4")  # at AT: still open at AT
    fx.event("Task Completed", "2026-07-31 23:59:59", partner="A", object="t5")
    fx.event("Task Cancelled", "2026-07-20", partner="A", object="t6")
    fx.event("Reminder Sent", "2026-07-21", partner="A", object="t1", manual=True)
    fx.event("Reminder Sent", "2026-07-25 09:30", partner="A", object="t1")
    fx.event("Reminder Sent", "2026-08-01", partner="A", object="t1")  # at AT: not counted
    fx.event("Reminder Sent", "2026-07-21", partner="B", object="t7")
    return fx


def test_open_tasks_fields_and_order(task_program):
    engine = task_program.hub().engine
    tasks = open_tasks(engine.table, engine.execute, "A", AT)
    # open at AT: t0 t1 t2 t3 t4 t10 (t5 completed and t6 cancelled before AT, t7 and t9 are B's,
    # t8 assigned at AT). Overdue first by due: t2 (07-15 10:00), t0 and t1 (07-20, by id), t4 (07-31);
    # then t10 (08-01, not < AT), t3 (08-10)
    assert [t["task"] for t in tasks] == ["t2", "t0", "t1", "t4", "t10", "t3"]
    by_id = {t["task"]: t for t in tasks}
    assert by_id["t1"] == {
        "task": "t1",
        "kind": "compliance",
        "title": None,  # no title property
        "assigned_at": at("2026-07-01"),
        "due": at("2026-07-20"),
        "overdue": True,
        "days_overdue": 12,  # 07-20 -> 08-01
        "started": True,
        "last_reminder_at": at("2026-07-25 09:30"),
        "reminders": 2,  # 07-21 and 07-25; the one at AT is not before AT
    }
    assert (by_id["t0"]["kind"], by_id["t0"]["title"]) == ("training", "Finish the sales training")
    assert by_id["t2"]["title"] is None
    # t2: assigned 06-15 10:00 + 30 days = 07-15 10:00; AT - due = 16 days 14 hours -> 16 whole days
    assert by_id["t2"]["due"] == at("2026-07-15 10:00")
    assert (by_id["t2"]["days_overdue"], by_id["t2"]["reminders"], by_id["t2"]["last_reminder_at"]) == (16, 0, None)
    assert not by_id["t2"]["started"]
    # t4: 07-01 + 30 days = 07-31, completed exactly at AT: open and 1 day overdue
    assert (by_id["t4"]["due"], by_id["t4"]["overdue"], by_id["t4"]["days_overdue"]) == (at("2026-07-31"), True, 1)
    assert (by_id["t10"]["overdue"], by_id["t10"]["days_overdue"]) == (False, 0)
    assert (by_id["t3"]["overdue"], by_id["t3"]["days_overdue"], by_id["t3"]["started"]) == (False, 0, False)


def test_open_tasks_completion_before_the_instant_closes(task_program):
    engine = task_program.hub().engine
    later = open_tasks(engine.table, engine.execute, "A", AT + timedelta(seconds=1))
    # one second after AT: t4's completion at AT is now before; t8 (assigned at AT) is open, due 08-31;
    # t3's Task Started at AT now counts, and t1's reminder at AT makes 3
    assert [t["task"] for t in later] == ["t2", "t0", "t1", "t10", "t3", "t8"]
    by_id = {t["task"]: t for t in later}
    assert by_id["t3"]["started"]
    assert (by_id["t1"]["reminders"], by_id["t1"]["last_reminder_at"]) == (3, AT)
    assert (by_id["t10"]["overdue"], by_id["t10"]["days_overdue"]) == (True, 0)  # one second past due


def test_open_tasks_of_another_partner_and_aware_instants(task_program):
    engine = task_program.hub().engine
    # B: t7 (due 07-31) and t9 (its first Task Assigned names B; due 07-31, id after t7)
    b = open_tasks(engine.table, engine.execute, "B", AT)
    assert [(t["task"], t["reminders"], t["days_overdue"]) for t in b] == [("t7", 1, 1), ("t9", 0, 1)]
    # 02:00 at +02:00 is AT in UTC
    aware = datetime(2026, 8, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert open_tasks(engine.table, engine.execute, "A", aware) == open_tasks(engine.table, engine.execute, "A", AT)
    assert open_tasks(engine.table, engine.execute, "nobody", AT) == []


# --- unacknowledged_policies -------------------------------------------------------------------


@pytest.fixture
def policy_program(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B")
    fx.partner("C", offboarded="2026-07-31")  # offboarded before AT
    fx.partner("D", offboarded="2026-08-01")  # offboarded exactly at AT: still a partner at AT
    fx.partner("E", onboarded="2026-08-01")  # onboarded at AT, not before
    for p in "ABCDE":
        fx.user(f"u{p}", p)

    def publish(policy, ts, **required):
        fx.event("Policy Published", ts, object=policy, **required)  # program-wide: no partner

    def ack(policy, ts, user=None, partner=None):
        fx.event("Policy Acknowledged", ts, user=user, partner=partner, object=policy)

    publish("pol1", "2026-07-10", required=True)
    publish("pol2", "2026-03-01", required=True, title="Code of Conduct", name="coc")
    publish("pol3", "2026-07-01", required="true")  # a string, not JSON true: not required
    publish("pol4", "2026-07-01", required=False)
    publish("pol5", "2026-08-01", required=True)  # published at AT, not before
    publish("pol6", "2026-05-01", required=False)  # the first publication decides: not required
    publish("pol6", "2026-06-01", required=True)
    publish("pol7", "2026-07-20 12:00", required=True, title="  ")
    publish("pol8", "2026-06-01", required=True, name="Data Addendum")
    publish("pol8", "2026-06-02", title="Renamed later")  # only the first publication names it
    publish("pol9", "2026-07-01")  # no required property
    ack("pol1", "2026-07-05", user="uA")  # before the publication: counts
    ack("pol2", "2026-08-01", user="uA")  # at AT, not before
    ack("pol7", "2026-07-21", user="uB")  # B's user: not A's acknowledgement
    ack("pol8", "2026-07-01", partner="A")  # no user: does not count
    ack("pol2", "2026-07-01", user="uC")
    ack("pol1", "2026-07-15", user="uD")
    return fx


def test_unacknowledged_policies(policy_program):
    engine = policy_program.hub().engine
    a = unacknowledged_policies(engine.table, engine.execute, "A", AT)
    # required, published before AT: pol1 pol2 pol7 pol8; A acknowledged pol1 only (before publication)
    assert a == [
        {"policy": "pol2", "title": "Code of Conduct", "published_at": at("2026-03-01"),
         "days_since_published": 153},  # 31+30+31+30+31
        {"policy": "pol8", "title": "Data Addendum", "published_at": at("2026-06-01"),
         "days_since_published": 61},  # 30+31; its `name`, as it has no `title`
        {"policy": "pol7", "title": None, "published_at": at("2026-07-20 12:00"),
         "days_since_published": 11},  # 11 d 12 h; a blank title is no title
    ]
    b = unacknowledged_policies(engine.table, engine.execute, "B", AT)
    assert [p["policy"] for p in b] == ["pol2", "pol8", "pol1"]  # pol7 acknowledged by uB
    d = unacknowledged_policies(engine.table, engine.execute, "D", AT)
    assert [p["policy"] for p in d] == ["pol2", "pol8", "pol7"]  # D acknowledged pol1


def test_unacknowledged_policies_only_for_partners_at_the_instant(policy_program):
    engine = policy_program.hub().engine
    assert unacknowledged_policies(engine.table, engine.execute, "C", AT) == []  # offboarded 07-31
    assert unacknowledged_policies(engine.table, engine.execute, "E", AT) == []  # onboarded at AT
    assert unacknowledged_policies(engine.table, engine.execute, "nobody", AT) == []
    # a second after AT: E is a partner, pol5 (published at AT) is due; D is offboarded
    later = AT + timedelta(seconds=1)
    e = unacknowledged_policies(engine.table, engine.execute, "E", later)
    assert [p["policy"] for p in e] == ["pol2", "pol8", "pol1", "pol7", "pol5"]
    assert e[-1]["days_since_published"] == 0
    assert unacknowledged_policies(engine.table, engine.execute, "D", later) == []
    # A's acknowledgement of pol2 at AT is before `later`
    a = unacknowledged_policies(engine.table, engine.execute, "A", later)
    assert [p["policy"] for p in a] == ["pol8", "pol7", "pol5"]


# --- peer_stats and peer_position --------------------------------------------------------------


def test_peer_stats_even_count_up_and_down():
    values = [8, 1, 7, 2, 6, 3, 5, 4]
    # sorted 1..8: median (4 + 5) / 2 = 4.5; inclusive ranks (n - 1) p = 7 × 0.75 = 5.25 -> 6 + 0.25 = 6.25,
    # 7 × 0.25 = 1.75 -> 2 + 0.75 = 2.75
    assert peer_stats(values, "up") == PeerStats(8, 4.5, 6.25)
    assert peer_stats(values, "down") == PeerStats(8, 4.5, 2.75)


def test_peer_stats_odd_count_drops_none():
    values = [20, None, 1, 7, 30, None, 4, 10, 2]
    # kept: 1 2 4 7 10 20 30 (n 7): median 7; ranks 6 × 0.75 = 4.5 -> (10 + 20) / 2 = 15,
    # 6 × 0.25 = 1.5 -> (2 + 4) / 2 = 3
    assert peer_stats(values, "up") == PeerStats(7, 7.0, 15.0)
    assert peer_stats(values, "down") == PeerStats(7, 7.0, 3.0)


def test_peer_stats_too_few_peers():
    values = [3, 1, None, 2, 4]
    assert peer_stats(values, "up") == PeerStats(4, None, None)  # 4 values < 5
    # with min_peers 4: median (2 + 3) / 2 = 2.5; 3 × 0.75 = 2.25 -> 3 + 0.25 = 3.25
    assert peer_stats(values, "up", min_peers=4) == PeerStats(4, 2.5, 3.25)
    assert peer_stats([], "up", min_peers=0) == PeerStats(0, None, None)
    assert peer_stats([None, 3], "down", min_peers=1) == PeerStats(1, 3.0, 3.0)
    with pytest.raises(ValueError, match="direction"):
        peer_stats(values, "sideways")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        peer_stats(values, "up").n = 9  # type: ignore[misc]


def test_peer_position():
    up = peer_stats(range(1, 9), "up")  # median 4.5, top quartile 6.25
    assert peer_position(6.25, up, "up") == "top quartile"  # reaching the mark is enough
    assert peer_position(6.2, up, "up") == "above median"
    assert peer_position(4.5, up, "up") == "above median"
    assert peer_position(4.4, up, "up") == "below median"
    down = peer_stats(range(1, 9), "down")  # median 4.5, top quartile 2.75: lower is better
    assert peer_position(2.75, down, "down") == "top quartile"
    assert peer_position(3, down, "down") == "above median"
    assert peer_position(5, down, "down") == "below median"
    assert peer_position(None, up, "up") is None
    assert peer_position(3, peer_stats([1, 2, 3], "up"), "up") is None  # too few peers: no figures


# --- the partner page: titled lists and the health panel's caps (real HTTP through the app) ---------------


def test_partner_page_shows_titles_and_the_cap_rows(tmp_path):
    from tests.test_health import AS_OF, CAPS, build_caps
    from tests.test_insight_web import served, signed_in

    build_caps(tmp_path).hub().close()
    config = tmp_path / "health.yaml"
    config.write_text(CAPS)
    hub, client = served(tmp_path / "hub.duckdb", AS_OF, health=config)
    with client:
        signed_in(client)
        k = client.get("/api/v1/partners/K").json()
        # open at July 1: k1 (due May 21), k2 (Jun 1), k3 (Jun 10, cancelled exactly at July 1), k6 (May 1)
        assert [(t["task"], t["title"], t["kind"], t["days_overdue"]) for t in k["tasks"]] == [
            ("k6", None, "general", 61), ("k1", "Upload the signed DPA", "compliance", 41),
            ("k2", None, "compliance", 30), ("k3", None, "compliance", 21)]
        caps = {c["kind"]: (c["applied"], c["lowered"]) for c in k["health"]["caps"]}
        assert caps == {"overdue_compliance": (True, True), "unacknowledged_policy": (False, False),
                        "inactivity": (False, False)}
        assert k["health"]["level"] == "watch" and k["health"]["score"] == 100
        page = client.get("/partners/K").text
        assert re.search(r'data-task="k1"><td>Upload the signed DPA <small><code>k1</code>', page)
        row = re.search(r'<tr class="cap applied hurting" data-cap="overdue_compliance">.*?</tr>', page, re.S)
        assert row and "3 compliance tasks overdue by more than 14 days, oldest 41 days" in row.group(0)
        assert "<b>applied</b>" in row.group(0)
        assert 'data-cap="inactivity"><td>Activity gate</td><td>active in the last 30 days</td>' in page
        assert "level capped at watch: 3 compliance tasks overdue, oldest 41 days" in page
        lp = client.get("/api/v1/partners/L").json()
        assert [(p["policy"], p["title"], p["days_since_published"]) for p in lp["policies"]] == [
            ("pol1", "Code of Conduct", 30), ("pol2", None, 14)]
        assert re.search(r'data-policy="pol1"><td>Code of Conduct <small><code>pol1</code>',
                         client.get("/partners/L").text)
    hub.close()
