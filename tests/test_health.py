"""The health score (insights/health/), computed by hand on a tiny program."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from partnerkpi.clock import FixedClock
from partnerkpi.errors import UsageError
from partnerkpi.insights.health import (
    HealthConfigError,
    add_override,
    health_scores,
    history_start,
    list_overrides,
    load_config,
    parse_config,
    remove_override,
    score_of,
)
from tests.kpi_fixtures import Fixture, iso

AS_OF = datetime(2026, 7, 1)

# Round numbers so that every figure below can be checked by hand.
CONFIG = """
neutral_score: 50
reason_below: 60
levels:
  - {name: healthy, min: 70}
  - {name: watch, min: 40}
  - {name: at_risk, min: 0}
at_risk_levels: [at_risk]
components:
  recency: {measure: days_since_activity, weight: 40, points: [[0, 100], [40, 0]], kpi: active_partner_rate}
  logins: {measure: login_trend, recent_days: 30, baseline_days: 30, weight: 20, points: [[-100, 0], [0, 100]],
           kpi: login_frequency}
  tasks: {measure: task_completion, window_days: 90, weight: 20, points: [[0, 0], [100, 100]],
          kpi: task_completion_rate}
  overdue: {measure: overdue_compliance, weight: 10, points: [[0, 100], [2, 0]], kpi: overdue_compliance_tasks}
  satisfaction: {measure: satisfaction, window_days: 180, weight: 10, points: [[0, 0], [10, 100]]}
"""
SECOND = """
levels: [{name: ok, min: 50}, {name: bad, min: 0}]
at_risk_levels: [bad]
components:
  support: {measure: support_trend, recent_days: 30, baseline_days: 90, weight: 1, points: [[0, 100], [4, 0]]}
  access: {measure: access_hygiene, weight: 1, points: [[0, 100], [1, 0]], kpi: orphaned_grants}
"""


def build(tmp_path: Path) -> Fixture:
    """A (active, falling logins, late tasks), B (silent since January), C (new), D (offboarded), E (too new)."""
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2025-11-01").partner("B").partner("C", onboarded="2026-06-20")
    fx.partner("D", offboarded="2026-06-30").partner("E", onboarded="2026-07-01")
    fx.user("a1", "A", created="2025-11-01").user("a2", "A", created="2025-11-01")
    fx.user("a3", "A", created="2025-11-01", deactivated="2026-06-01").user("b1", "B").user("d1", "D")
    # a2's answer (2025-12-01) is the first activity event: the history starts there
    fx.event("Survey Responded", "2025-12-01", user="a2", score=6)  # older than 180 days: ignored
    fx.event("Logged In", "2026-01-15", user="b1")
    for day in ("2026-05-10", "2026-05-11", "2026-05-12", "2026-05-13"):  # baseline [May 2, Jun 1): 4
        fx.event("Logged In", day, user="a1")
    fx.event("Logged In", "2026-06-21", user="a1")  # recent [Jun 1, Jul 1): 1; the last activity
    fx.event("Survey Responded", "2026-03-01", user="a1", score=4)
    fx.event("Survey Responded", "2026-06-01", user="a1", score=8)  # a1's latest answer
    fx.event("Logged In", "2026-06-29", user="d1")  # D is not in the program at July 1
    tasks = [  # (task, kind, assigned, due, completed, cancelled)
        ("t1", "general", "2026-04-01", "2026-05-01", "2026-04-20", None),  # due in window, on time
        ("t2", "general", "2026-05-01", "2026-06-01", "2026-06-05", None),  # late
        ("t3", "general", "2026-05-01", "2026-06-10", None, "2026-06-01"),  # cancelled before due: out
        ("t4", "general", "2026-02-01", "2026-03-01", "2026-02-10", None),  # due before the 90 days: out
        ("t5", "compliance", "2026-05-01", "2026-06-15", None, None),  # overdue at July 1
        ("t6", "compliance", "2026-06-01", "2026-07-15", None, None),  # not due yet
        ("t7", "compliance", "2026-05-01", "2026-06-01", "2026-07-02", None),  # done after July 1: overdue
    ]
    for task, kind, assigned, due, completed, cancelled in tasks:
        fx.event("Task Assigned", assigned, partner="A", object=task, kind=kind, due_at=f"{due}T00:00:00Z")
        if completed:
            fx.event("Task Completed", completed, partner="A", object=task)
        if cancelled:
            fx.event("Task Cancelled", cancelled, partner="A", object=task)
    for i, day in enumerate(("2026-03-10", "2026-04-10", "2026-05-10", "2026-06-05", "2026-06-06", "2026-06-07")):
        fx.event("Support Requested", day, user="a1", object=f"k{i}", topic="billing")
    fx.event("Access Granted", "2026-02-01", user="a3", object="g1", role="viewer")  # held by a deactivated user
    fx.event("Access Granted", "2026-02-01", user="a3", object="g2", role="viewer")
    fx.event("Access Revoked", "2026-05-01", partner="A", object="g2")  # revoked: fine
    fx.event("Access Granted", "2026-02-01", user="a1", object="g3", role="viewer")  # an active user: fine
    return fx


@pytest.fixture
def fx(tmp_path):
    return build(tmp_path)


def config(text: str = CONFIG):
    return parse_config(text, "test.yaml")


def by_id(scores):
    return {s.partner_id: s for s in scores}


def test_components_scores_contributions_and_reasons(fx):
    hub = fx.hub()
    assert history_start(hub) == datetime(2025, 12, 1)
    scores = by_id(health_scores(hub, AS_OF, config()))
    assert sorted(scores) == ["A", "B", "C"]  # D offboarded before July 1, E onboarded exactly at it
    a = scores["A"]
    got = {c.name: (c.measured, c.score, c.weight, c.contribution) for c in a.components}
    # recency: last activity Jun 21 -> 10 days -> 100 - 10 * 100 / 40 = 75; 40 * 75 / 100 = 30
    assert got["recency"] == pytest.approx((10.0, 75.0, 40, 30.0))
    # logins: 1 in [Jun 1, Jul 1) vs 4 in [May 2, Jun 1) -> -75 % -> 25; 20 * 25 / 100 = 5
    assert got["logins"] == pytest.approx((-75.0, 25.0, 20, 5.0))
    # tasks due in [Apr 2, Jul 1): t1 (on time), t2 (late), t5 (open), t7 (late) -> 1 / 4 = 25 % -> 25 -> 5
    assert got["tasks"] == pytest.approx((25.0, 25.0, 20, 5.0))
    # overdue compliance at July 1: t5 and t7 -> 2 -> 0
    assert got["overdue"] == pytest.approx((2.0, 0.0, 10, 0.0))
    # satisfaction: a1's latest answer 8 (a2's is older than 180 days) -> 80 -> 8
    assert got["satisfaction"] == pytest.approx((8.0, 80.0, 10, 8.0))
    assert a.score == pytest.approx(48.0) and a.computed_score == pytest.approx(48.0)  # 30 + 5 + 5 + 0 + 8
    assert a.level == "watch"  # 40 <= 48 < 70
    # below 60, worst loss first: logins 20 * 75 = tasks 20 * 75 (by name), then overdue 10 * 100
    assert a.reasons == (
        "logins down 75 % over 30 days (1 in the last 30 days vs 4 per 30 days before)",
        "1 of 4 tasks due in the last 90 days done on time (25 %)",
        "2 overdue compliance tasks",
    )
    assert a.reason_text == "; ".join(a.reasons)


def test_a_breached_cap_is_not_said_twice_by_its_component(fx):
    with_caps = CONFIG + """caps:
  - {kind: overdue_compliance, grace_days: 14, max_level: watch}
"""
    a = by_id(health_scores(fx.hub(), AS_OF, config(with_caps)))["A"]
    # t5 (16 days) and t7 (30 days) are past the 14-day grace; A is at watch (48) already, so the cap lowers
    # nothing and says the breach; the overdue component would say "2 overdue compliance tasks" again
    assert a.level == "watch" and a.caps[0].applied and not a.caps[0].lowered
    assert a.reasons == (
        a.caps[0].reason,
        "logins down 75 % over 30 days (1 in the last 30 days vs 4 per 30 days before)",
        "1 of 4 tasks due in the last 90 days done on time (25 %)",
    )
    assert "2 compliance tasks overdue, oldest 30 days" in a.caps[0].reason


def test_no_data_is_neutral_and_said(fx):
    scores = by_id(health_scores(fx.hub(), AS_OF, config()))
    b = scores["B"]
    comps = {c.name: c for c in b.components}
    assert comps["recency"].measured == pytest.approx(167.0) and comps["recency"].score == 0  # since Jan 15
    assert comps["logins"].measured is None and comps["logins"].score == 50
    assert "no data: no logins in the 30 days before" in comps["logins"].detail
    assert comps["tasks"].measured is None and "no data: no task due" in comps["tasks"].detail
    assert comps["satisfaction"].measured is None
    # (40 * 0 + 20 * 50 + 20 * 50 + 10 * 100 + 10 * 50) / 100 = 35 -> at_risk; only measured values give reasons
    assert b.score == pytest.approx(35.0)
    assert b.level == "at_risk"
    assert b.reasons == ("no activity for 167 days",)
    # C: onboarded Jun 20, no activity: 11 days since onboarding -> 72.5; no baseline to compare logins
    c = scores["C"]
    assert c.components[0].measured == pytest.approx(11.0)
    assert "no activity in 11 days of history" in c.components[0].detail
    assert c.score == pytest.approx((40 * 72.5 + 20 * 50 + 20 * 50 + 10 * 100 + 10 * 50) / 100)  # 64
    assert c.level == "watch"


def test_support_trend_and_access_hygiene(fx):
    a = by_id(health_scores(fx.hub(), AS_OF, config(SECOND)))["A"]
    support, access = a.components
    # 3 in [Jun 1, Jul 1) vs 3 in [Mar 3, Jun 1) = 1 per 30 days -> 2 extra -> 100 - 2 * 25 = 50
    assert (support.measured, support.score) == pytest.approx((2.0, 50.0))
    assert support.detail == "3 in the last 30 days vs 1 per 30 days before"
    # g1 held by a3, deactivated Jun 1; g2 revoked; g3 held by an active user -> 1 -> 0
    assert (access.measured, access.score) == (1.0, 0.0)
    assert a.score == pytest.approx(25.0) and a.level == "bad"
    assert a.reasons == ("1 grant still held by deactivated users", "support requests up: 3 in the last 30 days vs "
                         "1 per 30 days before")


BREADTH = """
neutral_score: 50
levels: [{name: ok, min: 50}, {name: bad, min: 0}]
at_risk_levels: [bad]
components:
  breadth: {measure: active_user_days, window_days: 30, weight: 1, points: [[0, 0], [10, 100]], kpi: portal_usage_rate}
"""


def test_breadth_counts_distinct_user_days_of_activity(fx):
    fx.event("Logged In", "2026-06-05 09:00", user="a1")  # a1 already asked for support on Jun 5: the same day
    fx.event("Document Viewed", "2026-06-05 10:00", user="a2")  # a second user on that day: one more
    fx.event("Logged In", "2026-05-31 23:00", user="a2")  # before the window [Jun 1, Jul 1)
    fx.partner("F", onboarded="2026-06-11").user("f1", "F", created="2026-06-11")
    fx.event("Logged In", "2026-06-12", user="f1").event("Page Viewed", "2026-06-20", user="f1")
    scores = by_id(health_scores(fx.hub(), AS_OF, config(BREADTH)))
    # A: a1 on Jun 1 (survey), 5, 6, 7 (support), 21 (login); a2 on Jun 5; task events have no user -> 6
    (a,) = scores["A"].components
    assert (a.measured, a.score) == pytest.approx((6.0, 60.0))
    assert a.detail == "6 user-days of activity in the last 30 days (2 users)" and a.reason is None
    # B: silent since January -> 0 -> 0, said as a reason
    (b,) = scores["B"].components
    assert (b.measured, b.score) == (0.0, 0.0)
    assert scores["B"].reasons == ("little use: 0 user-days of activity in the last 30 days (0 users)",)
    # F: onboarded Jun 11, 20 days covered: 2 user-days -> 3 per 30 days -> 30
    (f,) = scores["F"].components
    assert (f.measured, f.score) == pytest.approx((3.0, 30.0))
    assert f.detail == "2 user-days of activity in the last 30 days (1 user), 3 per 30 days"
    # C: onboarded Jun 20, 11 days covered (less than half the window) -> no data, neutral 50
    (c,) = scores["C"].components
    assert c.measured is None and c.score == 50
    assert c.detail == "no data: too little history for 30 days of use (neutral score 50)"


def test_the_inactivity_cap_is_not_said_again_by_breadth(fx):
    with_cap = BREADTH + "caps: [{kind: inactivity, grace_days: 30, max_level: bad}]\n"
    b = by_id(health_scores(fx.hub(), AS_OF, config(with_cap)))["B"]
    # silent since Jan 15: the cap says so; breadth's "little use: 0 user-days ..." would say it again
    assert b.components[0].reason is not None
    assert b.reasons == ("no activity for 167 days",)


def test_score_of_is_piecewise_linear_and_flat_beyond_the_ends():
    points = ((7, 100), (30, 70), (60, 40))
    assert score_of(points, 0) == 100  # below the first point
    assert score_of(points, 7) == 100
    assert score_of(points, 18.5) == pytest.approx(85.0)  # halfway between 7 and 30
    assert score_of(points, 45) == pytest.approx(55.0)
    assert score_of(points, 365) == 40  # beyond the last point


@pytest.mark.parametrize(("score", "level"), [
    (100, "healthy"), (70, "healthy"), (69.999, "watch"), (40, "watch"), (39.999, "at_risk"), (0, "at_risk"),
])
def test_level_edges_are_inclusive_at_their_min(score, level):
    assert config().level_of(score) == level


def test_default_config_loads_and_names_catalog_kpis(fx):
    cfg = load_config(catalog=fx.hub().catalog)
    assert sum(c.weight for c in cfg.components.values()) == 100
    assert [lv.name for lv in cfg.levels] == ["healthy", "watch", "at_risk"]
    assert all(c.kpi in fx.hub().catalog for c in cfg.components.values())


def test_config_problems_name_file_and_key(tmp_path, fx):
    bad = tmp_path / "health.yaml"
    bad.write_text("""
levels: [{name: ok, min: 50}, {name: bad, min: 10}]
at_risk_levels: [bad]
components:
  recency: {measure: days_since_activity, weight: -1, points: [[10, 100], [5, 0]]}
  mood: {measure: horoscope, weight: 1, points: [[0, 0]]}
""")
    with pytest.raises(HealthConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert f"{bad}: components.recency.weight" in text
    assert f"{bad}: components.recency.points" in text and "strictly increasing" in text
    assert f"{bad}: components.mood.measure" in text
    assert f"{bad}: levels" in text and "min 0" in text
    bad.write_text(CONFIG.replace("at_risk_levels: [at_risk]", "at_risk_levels: [doomed]")
                   .replace("kpi: login_frequency", "kpi: login_frequence"))
    with pytest.raises(HealthConfigError) as err:
        load_config(bad, catalog=fx.hub().catalog)
    assert err.value.problems == [
        f"{bad}: at_risk_levels: 'doomed' is not a level (levels: healthy, watch, at_risk)",
        f"{bad}: components.logins.kpi: unknown KPI 'login_frequence'",
    ]


def test_override_in_force_then_expired(fx):
    hub = fx.hub()
    hub.clock = FixedClock(datetime(2026, 6, 15))
    cfg = config()
    o = add_override(hub, "B", level="healthy", reason="renewal signed", expires_at=datetime(2026, 8, 1),
                     created_by="kim", config=cfg)
    assert (o.override_id, o.created_at, o.created_by) == (1, datetime(2026, 6, 15), "kim")
    b = by_id(health_scores(hub, AS_OF, cfg))["B"]
    assert (b.level, b.computed_level, b.score) == ("healthy", "at_risk", pytest.approx(35.0))
    assert b.override is not None and b.override.reason == "renewal signed"
    assert by_id(health_scores(hub, AS_OF, cfg, overrides=False))["B"].level == "at_risk"
    # a score override: the level follows the score; the newest override in force wins
    add_override(hub, "B", score=55, reason="call booked", expires_at=datetime(2026, 7, 2), config=cfg)
    b = by_id(health_scores(hub, AS_OF, cfg))["B"]
    assert (b.score, b.level, b.override.override_id) == (55.0, "watch", 2)
    # expiry is a wall-calendar date: judged at the clock, whatever instant the data is scored at
    hub.clock = FixedClock(datetime(2026, 7, 2))  # override 2 expires now (exclusive): override 1 is left
    assert by_id(health_scores(hub, AS_OF, cfg))["B"].override.override_id == 1
    hub.clock = FixedClock(datetime(2026, 8, 1))  # at the expiry instant (exclusive) and after it: ignored
    later = by_id(health_scores(hub, AS_OF, cfg))["B"]
    assert later.override is None and later.level == later.computed_level
    assert [o.override_id for o in list_overrides(hub, at=datetime(2026, 7, 5))] == [1]
    assert list_overrides(hub, at=datetime(2026, 8, 1)) == []
    assert len(list_overrides(hub, include_expired=True)) == 2
    assert remove_override(hub, 1) is True and remove_override(hub, 1) is False


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"level": "healthy", "score": 80}, "either a level or a score"),
    ({}, "either a level or a score"),
    ({"level": "great"}, "unknown level 'great'"),
    ({"score": 120}, "not in 0..100"),
    ({"level": "watch", "expires_at": datetime(2026, 6, 1)}, "not in the future"),
    ({"level": "watch", "reason": " "}, "needs a reason"),
    ({"level": "watch", "partner_id": "Z"}, "unknown partner 'Z'"),
])
def test_override_validation(fx, kwargs, message):
    hub = fx.hub()
    hub.clock = FixedClock(datetime(2026, 6, 15))
    args = {"partner_id": "B", "reason": "why", "expires_at": datetime(2026, 8, 1), **kwargs}
    with pytest.raises(UsageError, match=message):
        add_override(hub, args.pop("partner_id"), config=config(), **args)


# --- caps: gates on the level -----------------------------------------------------------------------
# One component that every partner but T scores 100 on, so the level is decided by the caps alone.
CAPS = CONFIG[CONFIG.index("levels:"):CONFIG.index("components:")] + """
components:
  access: {measure: access_hygiene, weight: 1, points: [[0, 100], [1, 0]]}
caps:
  - {kind: overdue_compliance, grace_days: 14, max_level: watch}
  - {kind: unacknowledged_policy, grace_days: 14, max_level: watch}
  - {kind: inactivity, grace_days: 30, max_level: watch}
"""


def build_caps(tmp_path: Path) -> Fixture:
    """G/H: a compliance task overdue exactly 14 days / 14 days and a second; K: three overdue, oldest 41 days;
    L: a required policy unread for 30 days; M: read it before it was published; N: joined after it;
    Q/R: last active exactly 30 days / 30 days and a second ago; S: never active; T: low score and unread."""
    fx = Fixture(tmp_path)
    for p in "GHKLMNQRT":
        fx.partner(p, onboarded="2026-06-20" if p == "N" else "2026-01-01").user(f"u{p}", p)
    fx.partner("S", onboarded="2026-06-25")
    fx.user("t2", "T", deactivated="2026-03-01")
    fx.event("Access Granted", "2026-02-01", user="t2", object="g1", role="viewer")  # T: an orphaned grant
    for p in "GHKLMNT":
        fx.event("Logged In", "2026-06-30", user=f"u{p}")
    fx.event("Logged In", "2026-06-01", user="uQ")  # exactly 30 days before July 1
    fx.event("Logged In", "2026-05-31 23:59:59", user="uR")
    fx.event("Policy Published", "2026-06-01", object="pol1", required=True, title="Code of Conduct")
    fx.event("Policy Published", "2026-06-17", object="pol2", required=True)  # exactly 14 days: no breach yet
    fx.event("Policy Published", "2026-01-10", object="pol3", required=False, title="Optional reading")
    for p in "MQR":  # before the publication: counts (and keeps Q's and R's last activity as it is)
        fx.event("Policy Acknowledged", "2026-05-01", user=f"u{p}", object="pol1")
    for p in "GHK":
        fx.event("Policy Acknowledged", "2026-06-05", user=f"u{p}", object="pol1")
    fx.event("Policy Acknowledged", "2026-06-25", user="uN", object="pol1")
    tasks = [  # (task, partner, kind, due, completed, cancelled)
        ("g1", "G", "compliance", "2026-06-17 00:00:00", None, None),  # overdue exactly 14 days: within grace
        ("h1", "H", "compliance", "2026-06-16 23:59:59", None, None),  # 14 days and a second
        ("k1", "K", "compliance", "2026-05-21", None, None),  # 41 days
        ("k2", "K", "compliance", "2026-06-01", None, None),  # 30 days
        ("k3", "K", "compliance", "2026-06-10", None, "2026-07-01"),  # cancelled at July 1: still open
        ("k4", "K", "compliance", "2026-05-01", "2026-06-20", None),  # completed: closed
        ("k5", "K", "compliance", "2026-05-01", None, "2026-06-25"),  # cancelled: closed
        ("k6", "K", "general", "2026-05-01", None, None),  # not a compliance task
    ]
    for task, partner, kind, due, completed, cancelled in tasks:
        title = {"title": "Upload the signed DPA"} if task == "k1" else {}
        fx.event("Task Assigned", "2026-04-01", partner=partner, object=task, kind=kind, due_at=iso(due), **title)
        if completed:
            fx.event("Task Completed", completed, partner=partner, object=task)
        if cancelled:
            fx.event("Task Cancelled", cancelled, partner=partner, object=task)
    return fx


@pytest.fixture
def caps_fx(tmp_path):
    return build_caps(tmp_path)


def test_caps_gate_the_level_with_the_reason(caps_fx):
    scores = by_id(health_scores(caps_fx.hub(), AS_OF, config(CAPS)))
    assert all(h.computed_score == 100 for p, h in scores.items() if p != "T")
    levels = {p: h.level for p, h in scores.items()}
    assert levels == {"G": "healthy", "H": "watch", "K": "watch", "L": "watch", "M": "healthy", "N": "healthy",
                      "Q": "healthy", "R": "watch", "S": "watch", "T": "at_risk"}
    assert scores["H"].reasons == ("level capped at watch: 1 compliance task overdue, oldest 14 days",)
    # k1 (41 days), k2 (30 days), k3 (21 days, cancelled exactly at July 1); k4, k5 closed, k6 not compliance
    assert scores["K"].reasons == ("level capped at watch: 3 compliance tasks overdue, oldest 41 days",)
    assert scores["L"].reasons == ("level capped at watch: required policy 'Code of Conduct' unacknowledged for "
                                   "30 days",)
    assert scores["R"].reasons == ("level capped at watch: no activity for 30 days",)
    # S joined June 25 and has done nothing (the history starts at the first activity, May 1)
    assert scores["S"].reasons == ("level capped at watch: no activity at all in 6 days",)
    # the score stays the weighted sum; the level is capped
    assert (scores["K"].score, scores["K"].computed_level, scores["K"].capped) == (100, "watch", True)
    assert not scores["G"].capped and scores["G"].reasons == ()


def test_caps_in_the_component_table_whether_applied_or_not(caps_fx):
    scores = by_id(health_scores(caps_fx.hub(), AS_OF, config(CAPS)))
    g = {c.kind: (c.applied, c.lowered, c.detail) for c in scores["G"].caps}
    assert g == {
        "overdue_compliance": (False, False, "no compliance task overdue by more than 14 days"),
        "unacknowledged_policy": (False, False, "no required policy unacknowledged for more than 14 days"),
        "inactivity": (False, False, "active in the last 30 days"),
    }
    # T scores 0 (an orphaned grant): the unread policy is a breach, but the level was already lower
    t = {c.kind: c for c in scores["T"].caps}["unacknowledged_policy"]
    assert (t.applied, t.lowered, t.max_level) == (True, False, "watch")
    assert scores["T"].reasons[0] == "required policy 'Code of Conduct' unacknowledged for 30 days"
    assert scores["T"].to_dict()["caps"][1]["reason"] == scores["T"].reasons[0]


def test_policy_grace_counts_from_the_later_of_publication_and_onboarding(caps_fx):
    hub = caps_fx.hub()
    # a second later, pol2 (published June 17, read by nobody) has waited 14 days and a second
    later = by_id(health_scores(hub, datetime(2026, 7, 1, 0, 0, 1), config(CAPS)))
    g = {c.kind: c for c in later["G"].caps}["unacknowledged_policy"]
    assert g.applied and g.detail == "required policy 'pol2' unacknowledged for 14 days"  # no title: the id
    # N joined June 20 (and read pol1 on June 25): its grace for pol2 runs from June 20 until July 4
    assert {c.kind: c.applied for c in later["N"].caps}["unacknowledged_policy"] is False
    n = by_id(health_scores(hub, datetime(2026, 7, 4, 0, 0, 1), config(CAPS)))["N"]
    assert n.reasons == ("level capped at watch: required policy 'pol2' unacknowledged for 14 days",)


def test_an_override_wins_over_a_cap_and_the_cap_stays_visible(caps_fx):
    hub = caps_fx.hub()
    hub.clock = FixedClock(datetime(2026, 6, 15))
    cfg = config(CAPS)
    add_override(hub, "K", level="healthy", reason="tasks handled by phone", expires_at=datetime(2026, 8, 1),
                 config=cfg)
    k = by_id(health_scores(hub, AS_OF, cfg))["K"]
    assert (k.level, k.computed_level) == ("healthy", "watch")
    assert k.reasons == ("level capped at watch: 3 compliance tasks overdue, oldest 41 days",)


def test_cap_problems_name_file_entry_and_field(tmp_path):
    bad = tmp_path / "health.yaml"
    bad.write_text(CAPS.replace("{kind: overdue_compliance, grace_days: 14", "{kind: overdue_tasks, grace_days: -1"))
    with pytest.raises(HealthConfigError) as err:
        load_config(bad)
    assert f"{bad}: caps.0.kind" in str(err.value) and f"{bad}: caps.0.grace_days" in str(err.value)
    bad.write_text(CAPS.replace("grace_days: 30, max_level: watch", "grace_days: 30, max_level: amber"))
    with pytest.raises(HealthConfigError) as err:
        load_config(bad)
    assert err.value.problems == [
        f"{bad}: caps.2.max_level: 'amber' is not a level (levels: healthy, watch, at_risk)"]


def test_default_config_caps_at_watch_after_14_days_and_30_idle_days(fx):
    cfg = load_config(catalog=fx.hub().catalog)
    assert [(c.kind, c.grace_days, c.max_level) for c in cfg.caps] == [
        ("overdue_compliance", 14, "watch"), ("unacknowledged_policy", 14, "watch"), ("inactivity", 30, "watch")]
