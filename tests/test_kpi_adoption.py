"""Adoption KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.kpi_fixtures import AUGUST, JULY, SEPTEMBER, Fixture, value

# --- portal_usage_rate -------------------------------------------------------------------------


def test_portal_usage_rate_counts_active_users_of_partners_in_period(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B")
    fx.partner("X", offboarded="2026-06-30")  # not in July: offboarded before start
    fx.user("a1", "A").user("a2", "A").user("b1", "B")
    fx.user("x1", "X")
    fx.user("a3", "A", deactivated="2026-06-01")  # not in July: deactivated before start
    fx.event("Logged In", "2026-07-02 09:00", user="a1")
    fx.event("Page Viewed", "2026-07-31 23:59:59", user="a2", path="/deals")
    fx.event("Task Completed", "2026-07-10", user="b1", object="t1")  # not an activity event
    fx.event("Logged In", "2026-08-01", user="b1")  # August, not July
    fx.event("Logged In", "2026-07-05", user="x1")  # partner not in P: not in the numerator
    fx.event("Logged In", "2026-07-05", user="a3")  # user not in P: not in the numerator
    rows = fx.scorecard(kpis=["portal_usage_rate"], end=SEPTEMBER)

    july = value(rows, "portal_usage_rate", "2026-07")
    # active users in P {a1, a2} = 2; partners in P {A, B} = 2 -> 100 * 2 / 2 = 100 (> 70: strong)
    assert july.value == pytest.approx(100.0)
    assert (july.numerator, july.denominator, july.n) == (2, 2, 2)
    assert july.band == "strong"
    assert july.unit == "%"
    august = value(rows, "portal_usage_rate", "2026-08")
    # August: active {b1} = 1; partners in P {A, B} = 2 (X offboarded in June) -> 50 (moderate)
    assert august.value == pytest.approx(50.0)
    assert (august.numerator, august.denominator) == (1, 2)
    assert august.band == "moderate"


@pytest.mark.parametrize(
    ("active_users", "partners", "expected", "band"),
    [
        (1, 2, 50.0, "moderate"),  # 100 * 1 / 2 = 50 exactly: moderate (50 <= v <= 70)
        (7, 10, 70.0, "moderate"),  # 100 * 7 / 10 = 70 exactly: moderate
        (49, 99, 4900 / 99, "low"),  # 100 * 49 / 99 = 49.49...: just below 50, low
        (3, 2, 150.0, "strong"),  # several users per partner: 100 * 3 / 2 = 150 (> 100 allowed)
    ],
)
def test_portal_usage_rate_band_edges(tmp_path, active_users, partners, expected, band):
    fx = Fixture(tmp_path)
    for i in range(partners):
        fx.partner(f"P{i:03d}")
    for i in range(active_users):  # all active users belong to the first partner
        fx.user(f"u{i:03d}", "P000")
        fx.event("Logged In", "2026-07-15", user=f"u{i:03d}")
    july = value(fx.scorecard(kpis=["portal_usage_rate"]), "portal_usage_rate", "2026-07")
    assert july.value == pytest.approx(expected)
    assert july.band == band


# --- active_partner_rate -----------------------------------------------------------------------


def test_active_partner_rate_boundaries_and_previous(tmp_path):
    fx = Fixture(tmp_path)
    for p in ("A", "B", "E", "F", "G", "H"):
        fx.partner(p)
    fx.partner("C", offboarded="2026-07-01")  # offboarded exactly at start: in July
    fx.partner("D", onboarded="2026-08-01")  # onboarded exactly at end: not in July
    for p in ("A", "B", "D", "G", "H"):
        fx.user(f"u{p}", p)
    fx.event("Logged In", "2026-06-30 23:59:59", user="uA")  # June
    fx.event("Logged In", "2026-07-31 23:59:59", user="uA")  # July
    fx.event("Logged In", "2026-08-01", user="uB")  # exactly the end of July: August
    fx.event("Logged In", "2026-07-15", user="uD")  # D not in July: not in the numerator
    fx.event("Document Viewed", "2026-07-10", partner="E", object="doc1")  # activity with no user
    fx.event("Webinar Joined", "2026-07-10", partner="F")  # custom event without a user: not activity
    fx.event("Webinar Joined", "2026-07-11", user="uG")  # custom event with a user: activity
    fx.event("Task Completed", "2026-07-12", user="uH", object="t1")  # not activity
    rows = fx.scorecard(kpis=["active_partner_rate"], end=SEPTEMBER)

    july = value(rows, "active_partner_rate", "2026-07")
    # partners in July: A B C E F G H = 7 (D out); active: A, E, G = 3 -> 300 / 7 = 42.857 (low)
    assert july.value == pytest.approx(300 / 7)
    assert (july.numerator, july.denominator, july.n) == (3, 7, 7)
    assert july.band == "low"
    # previous = June, computed although June is before the range:
    # partners in June: A B C E F G H = 7 (C offboarded Jul 1 >= Jun 1); active: A -> 100 / 7
    assert july.previous == pytest.approx(100 / 7)
    assert july.change == pytest.approx(300 / 7 - 100 / 7)  # 28.571

    august = value(rows, "active_partner_rate", "2026-08")
    # partners in August: A B D E F G H = 7 (C offboarded Jul 1 < Aug 1); active: B -> 100 / 7
    assert august.value == pytest.approx(100 / 7)
    assert (august.numerator, august.denominator) == (1, 7)
    assert august.previous == pytest.approx(300 / 7)
    assert august.change == pytest.approx(100 / 7 - 300 / 7)  # -28.571


@pytest.mark.parametrize(
    ("active", "partners", "expected", "band"),
    [
        (2, 4, 50.0, "moderate"),  # 100 * 2 / 4 = 50 exactly: moderate
        (7, 10, 70.0, "moderate"),  # 100 * 7 / 10 = 70 exactly: moderate, not strong
        (49, 99, 4900 / 99, "low"),  # 49.49...: just below 50
        (71, 100, 71.0, "strong"),  # 71: above 70
        (0, 3, 0.0, "low"),  # nobody active: 0, not null (the denominator is 3)
    ],
)
def test_active_partner_rate_band_edges(tmp_path, active, partners, expected, band):
    fx = Fixture(tmp_path)
    for i in range(partners):
        fx.partner(f"P{i:03d}")
        if i < active:
            fx.user(f"u{i:03d}", f"P{i:03d}")
            fx.event("Logged In", "2026-07-15", user=f"u{i:03d}")
    july = value(fx.scorecard(kpis=["active_partner_rate"]), "active_partner_rate", "2026-07")
    assert july.value == pytest.approx(expected)
    assert (july.numerator, july.denominator) == (active, partners)
    assert july.band == band


def test_active_partner_rate_null_without_partners(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-08-01")  # nobody is in July
    july = value(fx.scorecard(kpis=["active_partner_rate"]), "active_partner_rate", "2026-07")
    # 0 / 0 -> null, not 0; no band for a null value
    assert july.value is None
    assert july.n == 0
    assert july.band is None


# --- login_frequency ---------------------------------------------------------------------------


def test_login_frequency(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("u1", "A").user("u2", "A").user("u3", "A")
    for ts in ("2026-07-01", "2026-07-10 08:00", "2026-07-31 23:59:59"):
        fx.event("Logged In", ts, user="u1")
    fx.event("Logged In", "2026-07-20", user="u2")
    fx.event("Logged In", "2026-08-01", user="u2")  # August
    fx.event("Page Viewed", "2026-07-20", user="u3", path="/")  # activity, but not a login
    rows = fx.scorecard(kpis=["login_frequency"], end=SEPTEMBER)
    july = value(rows, "login_frequency", "2026-07")
    # Logged In in July: u1 x3 + u2 x1 = 4; users with a login: u1, u2 = 2 -> 4 / 2 = 2.0
    assert july.value == pytest.approx(2.0)
    assert (july.numerator, july.denominator, july.n) == (4, 2, 2)
    assert july.band is None  # no bands for this KPI
    august = value(rows, "login_frequency", "2026-08")
    assert august.value == pytest.approx(1.0)  # u2 x1 / 1 user


def test_login_frequency_null_without_logins(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("u1", "A")
    fx.event("Page Viewed", "2026-07-20", user="u1", path="/")
    july = value(fx.scorecard(kpis=["login_frequency"]), "login_frequency", "2026-07")
    assert july.value is None  # 0 logins / 0 users: null
    assert july.n == 0


# --- first_login_rate --------------------------------------------------------------------------


def test_first_login_rate(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.partner("B", offboarded="2026-07-20")  # not at end
    fx.user("u1", "A", created="2026-03-01")
    fx.user("u2", "A", created="2026-07-10")
    fx.user("u3", "A", created="2026-07-31")
    fx.user("u4", "A", deactivated="2026-07-31 23:59:59")  # not at end
    fx.user("u5", "A", deactivated="2026-08-01")  # deactivated exactly at end: still at end
    fx.user("u6", "A", created="2026-08-01")  # created exactly at end: not at end
    fx.user("u7", "B")  # partner not at end
    fx.event("Logged In", "2026-04-01", user="u1")  # long before the range: counts
    fx.event("Logged In", "2026-08-01", user="u2")  # not before end
    fx.event("Logged In", "2026-07-02", user="u4")
    fx.event("Logged In", "2026-07-05", user="u5")
    fx.event("Logged In", "2026-07-05", user="u7")
    july = value(fx.scorecard(kpis=["first_login_rate"]), "first_login_rate", "2026-07")
    # users at end: u1 u2 u3 u5 = 4; with a login before end: u1, u5 = 2 -> 50
    assert july.value == pytest.approx(50.0)
    assert (july.numerator, july.denominator, july.n) == (2, 4, 4)
    assert july.band is None  # only the two usage KPIs have bands


# --- time_to_first_action ----------------------------------------------------------------------


def test_time_to_first_action_median_of_even_count(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-06-01")
    fx.partner("B", onboarded="2026-07-01")
    fx.partner("C", onboarded="2026-07-10")
    fx.partner("D", onboarded="2026-05-01")
    fx.partner("E", onboarded="2026-07-01")
    fx.partner("F", onboarded="2026-07-01")
    for p in "ABCDEF":
        fx.user(f"u{p}", p)
    fx.event("Logged In", "2026-07-03", partner="A", user="uA")  # 32 days
    fx.event("Logged In", "2026-07-02 12:00", user="uB")  # partner inherited from the user: 1.5 days
    fx.event("Logged In", "2026-07-05", user="uC")  # before onboarding: -5 days, clipped to 0
    fx.event("Logged In", "2026-06-20", user="uD")  # D's first-ever activity is in June: not July
    fx.event("Logged In", "2026-07-20", user="uD")
    fx.event("Logged In", "2026-08-01", user="uE")  # August
    fx.event("Task Assigned", "2026-07-02", partner="F", object="t1")  # not activity
    fx.event("Logged In", "2026-07-20", user="uF")  # 19 days
    july = value(fx.scorecard(kpis=["time_to_first_action"]), "time_to_first_action", "2026-07")
    # July: A 32, B 1.5, C 0, F 19 -> sorted 0, 1.5, 19, 32 -> median (1.5 + 19) / 2 = 10.25
    assert july.value == pytest.approx(10.25)
    assert july.n == 4
    assert july.numerator is None and july.denominator is None  # a median, not a ratio
    assert july.unit == "days"


def test_time_to_first_action_clipped_at_zero(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("C", onboarded="2026-07-10").user("uC", "C")
    fx.event("Logged In", "2026-07-05", user="uC")  # 5 days before onboarding
    july = value(fx.scorecard(kpis=["time_to_first_action"]), "time_to_first_action", "2026-07")
    assert july.value == 0.0  # max(0, -5) = 0
    assert july.n == 1


# --- stickiness --------------------------------------------------------------------------------


def test_stickiness_month_counts_every_calendar_day(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("u1", "A").user("u2", "A").user("u3", "A")
    fx.event("Logged In", "2026-07-01 08:00", user="u1")
    fx.event("Page Viewed", "2026-07-01 09:00", user="u1", path="/")  # same day: still 1 on Jul 1
    fx.event("Logged In", "2026-07-02 08:00", user="u1")
    fx.event("Logged In", "2026-07-31 23:59:59", user="u2")
    fx.event("Logged In", "2026-08-01", user="u3")  # August
    july = value(fx.scorecard(kpis=["stickiness"]), "stickiness", "2026-07")
    # daily active users: Jul 1 -> 1, Jul 2 -> 1, Jul 31 -> 1, 28 other days -> 0: sum 3 over 31 days
    # mean 3/31; active users in July: u1, u2 = 2 -> 100 * (3/31) / 2 = 150/31 = 4.839
    assert july.value == pytest.approx(150 / 31)
    assert july.numerator == pytest.approx(3 / 31)
    assert july.denominator == 2
    assert july.n == 2


def test_stickiness_iso_week_boundaries(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.user("u1", "A").user("u2", "A")
    fx.event("Logged In", "2026-07-06", user="u2")  # Monday 00:00:00: first instant of W28
    fx.event("Logged In", "2026-07-07 10:00", user="u2")  # Tuesday W28
    fx.event("Logged In", "2026-07-12 23:59:59", user="u1")  # Sunday 23:59:59: last second of W28
    fx.event("Logged In", "2026-07-13", user="u1")  # Monday 00:00:00: W29
    # start on a Wednesday: the first period is the ISO week containing it (Mon 2026-07-06)
    rows = fx.scorecard(kpis=["stickiness"], grain="week", start=date(2026, 7, 8), end=date(2026, 7, 14))
    w28 = value(rows, "stickiness", "2026-W28")
    assert (w28.period_start, w28.period_end) == (datetime(2026, 7, 6), datetime(2026, 7, 13))
    # W28: daily active Mon 1 (u2), Tue 1 (u2), Sun 1 (u1) = 3 over 7 days; active users 2
    # -> 100 * (3/7) / 2 = 150/7 = 21.43
    assert w28.value == pytest.approx(150 / 7)
    assert w28.denominator == 2
    w29 = value(rows, "stickiness", "2026-W29")
    # W29: Mon 1 (u1) over 7 days; active users 1 -> 100 * (1/7) / 1 = 14.29
    assert w29.value == pytest.approx(100 / 7)
    assert w29.denominator == 1
    assert {r.period for r in rows} == {"2026-W28", "2026-W29"}


def test_stickiness_null_without_active_users(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("u1", "A")
    july = value(fx.scorecard(kpis=["stickiness"], start=JULY, end=AUGUST), "stickiness", "2026-07")
    assert july.value is None  # no active users: null
    assert july.n == 0
