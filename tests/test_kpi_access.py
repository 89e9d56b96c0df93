"""Access and security KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, value

# --- inactive_partners_with_access -------------------------------------------------------------


def test_inactive_partners_with_access_90_day_window(tmp_path):
    fx = Fixture(tmp_path)
    for p in "ABCDFGH":
        fx.partner(p)
    fx.partner("E", offboarded="2026-06-01")  # offboarded partners are included
    for p in "ABCDEFGH":
        fx.user(f"u{p}", p)

    def grant(obj, user, ts="2026-01-10"):
        fx.event("Access Granted", ts, user=user, object=obj, role="admin")

    # end = Aug 1; window [end - 90 d, end) = [May 3, Aug 1)
    grant("gA", "uA")
    fx.event("Logged In", "2026-05-03", user="uA")  # exactly at the window start: active
    grant("gB", "uB")
    fx.event("Logged In", "2026-05-02 23:59:59", user="uB")  # 1 s before the window: inactive
    grant("gC", "uC")
    fx.event("Access Revoked", "2026-07-31", partner="C", object="gC")  # no open grant
    grant("gD", "uD", ts="2026-08-01")  # granted at end, not before: no grant at end
    grant("gE", "uE")  # offboarded, open grant, no activity
    grant("gF", "uF")
    fx.event("Access Revoked", "2026-08-01", partner="F", object="gF")  # revoked at end: still open
    grant("gH", "uH")
    fx.event("Logged In", "2026-08-01", user="uH")  # at end: outside [May 3, Aug 1)
    # G: no grant at all
    july = value(
        fx.scorecard(kpis=["inactive_partners_with_access"]), "inactive_partners_with_access", "2026-07"
    )
    # holding a grant at end: A B E F H; inactive in the window: B E F H = 4
    assert july.value == 4
    assert july.n == 4
    assert july.numerator is None and july.denominator is None  # a count
    assert july.band is None


# --- access_review_completion_rate -------------------------------------------------------------


def test_access_review_completion_rate(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")

    def schedule(review, **due):
        fx.event("Access Review Scheduled", "2026-06-01", partner="A", object=review, grant_id="g1", **due)

    def complete(review, ts):
        fx.event("Access Review Completed", ts, partner="A", object=review, decision="keep")

    schedule("rv1", due_at="2026-07-10T00:00:00Z")
    complete("rv1", "2026-07-09")  # before due
    schedule("rv2", due_at="2026-07-20T12:00:00Z")
    complete("rv2", "2026-07-20 12:00")  # exactly at due: counts
    schedule("rv3", due_at="2026-07-25T00:00:00Z")
    complete("rv3", "2026-07-26")  # late
    schedule("rv4", due_at="2026-07-31T23:59:59Z")  # never completed
    schedule("rv5", due_at="2026-08-01T00:00:00Z")  # due in August
    schedule("rv6")  # no due_at: ignored
    complete("rv6", "2026-07-06")
    # reading: an unparseable due_at is treated like a missing one: the review is ignored
    schedule("rv8", due_at="soon")
    schedule("rv7", due_at="2026-06-30T00:00:00Z")  # due in June
    complete("rv7", "2026-06-29")
    rows = fx.scorecard(kpis=["access_review_completion_rate"], end=SEPTEMBER)
    july = value(rows, "access_review_completion_rate", "2026-07")
    # due in July: rv1 rv2 rv3 rv4 = 4; completed at or before due: rv1, rv2 = 2 -> 50
    assert july.value == pytest.approx(50.0)
    assert (july.numerator, july.denominator, july.n) == (2, 4, 4)
    # June: rv7 on time -> 100; previous 100, change -50
    assert july.previous == pytest.approx(100.0)
    assert july.change == pytest.approx(-50.0)
    august = value(rows, "access_review_completion_rate", "2026-08")
    assert august.value == 0.0  # rv5 not completed: 0 / 1
    assert august.n == 1


# --- time_to_revoke_hours ----------------------------------------------------------------------


def test_time_to_revoke_hours(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("P1").partner("P4").partner("P5").partner("P6").partner("P7")
    fx.partner("P2", offboarded="2026-07-05")
    fx.partner("P3", offboarded="2026-07-15")
    fx.user("u1", "P1", deactivated="2026-07-01")
    fx.user("u2", "P2", deactivated="2026-07-10")  # partner offboarded earlier (Jul 5)
    fx.user("u4", "P4")
    fx.user("u5", "P5", deactivated="2026-07-25")
    fx.user("u6", "P6", deactivated="2026-06-20")
    fx.user("u7", "P7", deactivated="2026-07-01 12:00")

    def grant(obj, user=None, partner=None):
        fx.event("Access Granted", "2026-01-10", user=user, partner=partner, object=obj, role="member")

    def revoke(obj, partner, ts):
        fx.event("Access Revoked", ts, partner=partner, object=obj)

    grant("g1", user="u1")
    revoke("g1", "P1", "2026-07-01 06:00")  # 6 h after deactivation
    grant("g2", user="u2")
    revoke("g2", "P2", "2026-07-06")  # offboarded = min(Jul 10, Jul 5) = Jul 5: 24 h
    grant("g3", partner="P3")  # no user: the partner's offboarding alone
    revoke("g3", "P3", "2026-07-17 12:00")  # Jul 15 -> Jul 17 12:00: 60 h
    grant("g4", user="u4")
    revoke("g4", "P4", "2026-07-20")  # holder never offboarded: out
    grant("g5", user="u5")
    # reading: offboarded "before the revocation" is strict, a revocation at the same instant is left out
    revoke("g5", "P5", "2026-07-25")
    grant("g6", user="u6")
    revoke("g6", "P6", "2026-08-01")  # revoked in August: Jun 20 -> Aug 1 = 42 d = 1008 h
    grant("g7", user="u7")
    revoke("g7", "P7", "2026-07-02")  # 12 h after deactivation
    revoke("g7", "P7", "2026-07-30")  # not the first revocation: ignored
    rows = fx.scorecard(kpis=["time_to_revoke_hours"], end=SEPTEMBER)
    july = value(rows, "time_to_revoke_hours", "2026-07")
    # July: g1 6, g2 24, g3 60, g7 12 -> sorted 6, 12, 24, 60 -> median (12 + 24) / 2 = 18
    assert july.value == pytest.approx(18.0)
    assert july.n == 4
    assert july.unit == "hours"
    august = value(rows, "time_to_revoke_hours", "2026-08")
    assert august.value == pytest.approx(1008.0)
    assert august.n == 1


# --- orphaned_grants ---------------------------------------------------------------------------


def test_orphaned_grants(tmp_path):
    fx = Fixture(tmp_path)
    for p in ("P1", "P2", "P4", "P5", "P7", "P8"):
        fx.partner(p)
    fx.partner("P3", offboarded="2026-07-20")
    fx.partner("P6", offboarded="2026-06-01")
    fx.user("u1", "P1", deactivated="2026-07-15")
    fx.user("u2", "P2", deactivated="2026-08-01")  # at end, not before
    fx.user("u3", "P3")  # active user of an offboarded partner
    fx.user("u4", "P4", deactivated="2026-07-10")
    fx.user("u5", "P5", deactivated="2026-07-10")
    fx.user("u7", "P7").user("u9", "P7", deactivated="2026-07-01")
    fx.user("u8", "P8", deactivated="2026-06-01")

    def grant(obj, ts="2026-01-10", user=None, partner=None):
        fx.event("Access Granted", ts, user=user, partner=partner, object=obj, role="member")

    grant("o1", user="u1")  # holder deactivated Jul 15: orphan
    grant("o2", user="u2")  # deactivated exactly at end: not before end
    grant("o3", user="u3")  # partner offboarded Jul 20: orphan
    grant("o4", user="u4")
    fx.event("Access Revoked", "2026-07-12", partner="P4", object="o4")  # closed
    grant("o5", user="u5")
    fx.event("Access Revoked", "2026-08-01", partner="P5", object="o5")  # revoked at end: open: orphan
    grant("o6", partner="P6")  # no user, partner offboarded Jun 1: orphan
    grant("o7", user="u7")  # active holder
    grant("o8", ts="2026-08-01", user="u8")  # granted at end: not open before end
    grant("o9", user="u9")  # the first Access Granted names the holder: u9, deactivated: orphan
    grant("o9", ts="2026-02-01", user="u7")  # later grant event for o9: does not change the holder
    july = value(fx.scorecard(kpis=["orphaned_grants"]), "orphaned_grants", "2026-07")
    # orphans at Aug 1: o1 o3 o5 o6 o9 = 5
    assert july.value == 5
    assert july.n == 5
    assert july.unit == "grants"


# --- access_incidents --------------------------------------------------------------------------


def test_access_incidents(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="referral")
    fx.event("Security Incident Reported", "2026-07-01", partner="A", object="i1", category="access")
    fx.event("Security Incident Reported", "2026-07-31 23:59:59", partner="A", object="i2", category="access")
    fx.event("Security Incident Reported", "2026-07-10", partner="A", object="i3", category="Access")  # case
    fx.event("Security Incident Reported", "2026-07-11", partner="B", object="i4", category="phishing")
    fx.event("Security Incident Reported", "2026-07-12", object="i5", category="access")  # no partner
    fx.event("Security Incident Reported", "2026-08-01", partner="B", object="i6", category="access")  # Aug
    rows = fx.scorecard(kpis=["access_incidents"], by="type")
    whole = value(rows, "access_incidents", "2026-07")
    assert whole.value == 3  # i1, i2, i5
    assert whole.n == 3
    assert value(rows, "access_incidents", "2026-07", {"type": "reseller"}).value == 2  # i1, i2
    referral = value(rows, "access_incidents", "2026-07", {"type": "referral"})
    assert referral.value == 0  # a count over nothing is 0, not null
    assert referral.n == 0
