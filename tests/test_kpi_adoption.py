"""Adoption KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.kpi_fixtures import AUGUST, JULY, SEPTEMBER, Fixture, value

# --- portal_usage_rate and active_users_per_partner (KPI-SPEC v2) -------------------------------

USAGE = ["portal_usage_rate", "active_users_per_partner"]


def _usage_program(tmp_path) -> Fixture:
    """A tiny program for both usage KPIs; the populations are worked out in the tests below."""
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B", type="agency")
    fx.partner("C")  # in P, but no users at all
    fx.partner("X", offboarded="2026-06-30")  # offboarded before July starts: out of July and August
    fx.partner("L", onboarded="2026-08-15")  # onboarded after July ends: out of July, in August
    fx.user("a1", "A").user("a2", "A").user("a5", "A").user("a6", "A")
    fx.user("a3", "A", deactivated="2026-07-15")  # deactivated mid-July: in July, out of August
    fx.user("a4", "A", deactivated="2026-06-01")  # deactivated before July
    fx.user("b1", "B")
    fx.user("b2", "B", created="2026-08-01")  # created exactly at July's end: out of July
    fx.user("x1", "X")
    fx.user("l1", "L", created="2026-07-01")  # its partner is onboarded after July
    fx.event("Logged In", "2026-07-02 09:00", user="a1")
    fx.event("Page Viewed", "2026-07-31 23:59:59", user="a2", path="/deals")
    fx.event("Logged In", "2026-07-10", user="a3")  # before its deactivation
    fx.event("Document Downloaded", "2026-07-20", user="a6", object="doc1")
    fx.event("Document Downloaded", "2026-07-21", user="a6", object="doc2")  # a6 counts once
    fx.event("Task Completed", "2026-07-10", user="b1", object="t1")  # not an activity event
    fx.event("Logged In", "2026-08-01", user="b1")  # exactly at July's end: August
    fx.event("Logged In", "2026-07-05", user="a4")  # user not in July: not in the numerator
    fx.event("Logged In", "2026-07-05", user="x1")  # partner not in July: not in the numerator
    fx.event("Logged In", "2026-07-20", user="l1")  # partner not in July: not in the numerator
    return fx  # a5 never does anything


def test_usage_rate_is_a_share_of_users_and_per_partner_divides_by_partners(tmp_path):
    rows = _usage_program(tmp_path).scorecard(kpis=USAGE, end=SEPTEMBER)

    # July: partners in P {A, B, C} = 3 (X offboarded Jun 30 < Jul 1; L onboarded Aug 15 >= Aug 1).
    # Users in P {a1, a2, a3, a5, a6, b1} = 6 (a4 deactivated before start, b2 created at end, x1 and
    # l1 belong to partners not in P). Active {a1, a2, a3, a6} = 4 (a5 idle, b1 no activity event).
    july = value(rows, "portal_usage_rate", "2026-07")
    assert july.value == pytest.approx(100 * 4 / 6)  # 66.67: moderate
    assert (july.numerator, july.denominator, july.n) == (4, 6, 6)
    assert (july.unit, july.band) == ("%", "moderate")
    per_partner = value(rows, "active_users_per_partner", "2026-07")
    assert per_partner.value == pytest.approx(4 / 3)  # no x 100
    assert (per_partner.numerator, per_partner.denominator, per_partner.n) == (4, 3, 3)
    assert (per_partner.unit, per_partner.band) == ("users per partner", None)

    # August: partners in P {A, B, C, L} = 4. Users in P {a1, a2, a5, a6, b1, b2, l1} = 7 (a3 deactivated
    # Jul 15 < Aug 1). Active {b1} = 1 -> 100 / 7 = 14.29 (low) and 1 / 4 = 0.25 per partner.
    august = value(rows, "portal_usage_rate", "2026-08")
    assert august.value == pytest.approx(100 / 7)
    assert (august.numerator, august.denominator, august.band) == (1, 7, "low")
    assert august.previous == pytest.approx(100 * 4 / 6)
    assert august.change == pytest.approx(100 / 7 - 100 * 4 / 6)
    per_partner = value(rows, "active_users_per_partner", "2026-08")
    assert per_partner.value == pytest.approx(0.25)
    assert (per_partner.numerator, per_partner.denominator) == (1, 4)
    assert per_partner.previous == pytest.approx(4 / 3)


def test_usage_kpis_for_one_partner_and_one_segment(tmp_path):
    rows = _usage_program(tmp_path).scorecard(kpis=USAGE, by="partner_id")
    # Partner A in July: users in P {a1, a2, a3, a5, a6} = 5, active 4 -> 80 (strong); 4 active users.
    a = value(rows, "portal_usage_rate", "2026-07", {"partner_id": "A"})
    assert (a.value, a.numerator, a.denominator, a.band) == (pytest.approx(80.0), 4, 5, "strong")
    assert value(rows, "active_users_per_partner", "2026-07", {"partner_id": "A"}).value == pytest.approx(4.0)
    # Partner C has no users: its share is null (0 / 0), its active users per partner 0 / 1 = 0.
    c = value(rows, "portal_usage_rate", "2026-07", {"partner_id": "C"})
    assert (c.value, c.n, c.band) == (None, 0, None)
    c = value(rows, "active_users_per_partner", "2026-07", {"partner_id": "C"})
    assert (c.value, c.numerator, c.denominator, c.n) == (0.0, 0, 1, 1)

    by_type = _usage_program(tmp_path / "t").scorecard(kpis=USAGE, by="type")
    # agency = {B}: users {b1}, nobody active in July -> 0 % (low, not null) and 0 per partner.
    agency = value(by_type, "portal_usage_rate", "2026-07", {"type": "agency"})
    assert (agency.value, agency.numerator, agency.denominator, agency.band) == (0.0, 0, 1, "low")
    # reseller = {A, C} (X and L are resellers too, but not in July): 4 active of 5 users; 4 / 2 partners.
    reseller = value(by_type, "portal_usage_rate", "2026-07", {"type": "reseller"})
    assert (reseller.numerator, reseller.denominator) == (4, 5)
    assert value(by_type, "active_users_per_partner", "2026-07", {"type": "reseller"}).value == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("active_users", "users", "expected", "band"),
    [
        (1, 2, 50.0, "moderate"),  # 100 * 1 / 2 = 50 exactly: moderate (50 <= v <= 70)
        (7, 10, 70.0, "moderate"),  # 100 * 7 / 10 = 70 exactly: moderate, not strong
        (49, 99, 4900 / 99, "low"),  # 100 * 49 / 99 = 49.49...: just below 50, low
        (5, 7, 500 / 7, "strong"),  # 71.43: above 70
        (3, 3, 100.0, "strong"),  # everyone active: 100, the top of the share
        (0, 3, 0.0, "low"),  # users but nobody active: 0, not null
    ],
)
def test_portal_usage_rate_band_edges(tmp_path, active_users, users, expected, band):
    fx = Fixture(tmp_path)
    fx.partner("P").partner("Q")  # two partners share the users: the share does not depend on partners
    for i in range(users):
        fx.user(f"u{i:03d}", "P" if i % 2 else "Q")
        if i < active_users:
            fx.event("Logged In", "2026-07-15", user=f"u{i:03d}")
    rows = fx.scorecard(kpis=USAGE)
    july = value(rows, "portal_usage_rate", "2026-07")
    assert july.value == pytest.approx(expected)
    assert (july.numerator, july.denominator, july.band) == (active_users, users, band)
    # the same active users over the 2 partners
    assert value(rows, "active_users_per_partner", "2026-07").value == pytest.approx(active_users / 2)


def test_partners_without_users_give_a_null_share_and_zero_per_partner(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B")
    fx.partner("Z", onboarded="2026-09-01")
    fx.user("z1", "Z")  # its partner is in no period of the range
    rows = fx.scorecard(kpis=USAGE)
    # July: partners in P {A, B} = 2, users in P none -> 0 / 0 is null; 0 active users / 2 partners = 0.
    share = value(rows, "portal_usage_rate", "2026-07")
    assert (share.value, share.numerator, share.denominator, share.n, share.band) == (None, 0, 0, 0, None)
    per_partner = value(rows, "active_users_per_partner", "2026-07")
    assert (per_partner.value, per_partner.numerator, per_partner.denominator, per_partner.n) == (0.0, 0, 2, 2)


def test_usage_kpis_without_partners_are_null(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-08-01")  # nobody is in July
    fx.user("a1", "A")
    rows = fx.scorecard(kpis=USAGE)
    assert [value(rows, k, "2026-07").value for k in USAGE] == [None, None]


USER_KPIS = """
- id: deal_page_reach
  name: Deal Page Reach
  category: adoption
  unit: "%"
  direction: up
  compute: {kind: user_share, events: [Page Viewed], where: {path: /deals}}
  definition: Share of partner users who opened the deals page in the period.
  business_insights: Shows whether deal registration happens on the hub.
  measurement_approach: Page Viewed events with the deals path.
  formula: 100 x users in P with a Page Viewed of /deals in P / users in P
  trend_analysis: Rises around quarter ends.
  diagnostic_questions: ["Who never opens the deals page?"]
  improvement_levers: [Link the deals page from every e-mail.]
  visualization: Line chart.
  risk_warnings: [Bots opening the page inflate it.]
  tools: [partnerkpi]
  integration_points: [CRM]
  change_impact: More deal page users usually means more registered deals.
- id: document_readers_per_partner
  name: Document Readers per Partner
  category: adoption
  unit: users per partner
  direction: up
  compute: {kind: users_per_partner, events: [Document Viewed, Document Downloaded]}
  definition: Partner users who read a document in the period, per partner in the period.
  business_insights: Shows how far enablement content reaches into partner teams.
  measurement_approach: Document events with a user.
  formula: users in P with a Document Viewed or Downloaded in P / partners in P
  trend_analysis: Rises after content launches.
  diagnostic_questions: ["Which partners read nothing?"]
  improvement_levers: [Announce new documents on the hub.]
  visualization: Line chart.
  risk_warnings: [Automatic downloads inflate it.]
  tools: [partnerkpi]
  integration_points: [Content management system]
  change_impact: More readers usually means fewer support questions.
"""


def test_user_kpis_of_the_two_user_kinds_with_named_events_and_where(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(USER_KPIS)
    fx = Fixture(tmp_path, catalog_paths=[path])
    fx.partner("A").partner("B").partner("C")
    for u, p in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B")):
        fx.user(u, p)
    fx.user("c1", "C", deactivated="2026-06-01")  # not in July
    fx.event("Page Viewed", "2026-07-03", user="a1", path="/deals")
    fx.event("Page Viewed", "2026-07-04", user="a1", path="/deals")  # a1 counts once
    fx.event("Page Viewed", "2026-07-03", user="a2", path="/home")  # another page: not counted
    fx.event("Page Viewed", "2026-07-05", user="c1", path="/deals")  # not a user in P
    fx.event("Document Viewed", "2026-07-06", user="a2", object="d1")
    fx.event("Document Downloaded", "2026-07-07", user="b1", object="d1")
    fx.event("Document Viewed", "2026-07-08", partner="B", object="d2")  # no user: nobody to count
    fx.event("Document Viewed", "2026-08-02", user="b2", object="d1")  # August
    rows = fx.scorecard(kpis=["deal_page_reach", "document_readers_per_partner"])
    # users in P {a1, a2, b1, b2} = 4; on /deals {a1} -> 100 * 1 / 4 = 25
    reach = value(rows, "deal_page_reach", "2026-07")
    assert (reach.value, reach.numerator, reach.denominator) == (pytest.approx(25.0), 1, 4)
    # readers {a2, b1} = 2; partners in P {A, B, C} = 3 (C is in P although its only user is not)
    readers = value(rows, "document_readers_per_partner", "2026-07")
    assert (readers.value, readers.numerator, readers.denominator) == (pytest.approx(2 / 3), 2, 3)


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
