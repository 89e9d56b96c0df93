"""Ingest rules (KPI-SPEC §1-§2) seen through the KPIs: duplicates, rejected rows, inheritance, offsets."""

from __future__ import annotations

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, value


def test_duplicate_event_id_counted_once_and_first_row_wins(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.event("Escalation Raised", "2026-07-10", partner="A", id="dup")
    fx.event("Escalation Raised", "2026-08-05", partner="A", id="dup")  # repeat: the first row wins
    fx.event("Escalation Raised", "2026-07-11", partner="A", id="other")
    rows = fx.scorecard(kpis=["escalations"], end=SEPTEMBER)
    summary = fx.summaries["events"]
    # 3 lines read: 2 stored; the repeat differs (another date), so it is kept aside as a conflict
    assert (summary.rows_read, summary.accepted, summary.duplicates, summary.rejected) == (3, 2, 0, 1)
    assert value(rows, "escalations", "2026-07").value == 2  # "dup" (Jul 10) + "other"
    assert value(rows, "escalations", "2026-08").value == 0  # the repeat (Aug 5) was never stored


def test_rejected_events_do_not_move_the_kpi_and_do_not_claim_their_id(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("D", type="reseller")
    fx.partner("B", type="referral").partner("C", type="referral")
    fx.user("uA", "A").user("uB", "B").user("uC", "C")
    fx.event("Logged In", "2026-07-03", user="uA", partner="D", id="bad1")  # not uA's partner: rejected
    fx.event("Logged In", "2026-07-03", partner="Z", id="bad2")  # unknown partner: rejected
    fx.event("Logged In", "2026-07-03", user="nobody", id="bad3")  # unknown user: rejected
    fx.event("Logged In", "2026-07-04", user="uB", id="ok1")  # no partner_id: takes uB's partner B
    fx.event("Logged In", "2026-07-05", partner="Z", user="uC", id="re")  # rejected ...
    fx.event("Logged In", "2026-07-05", user="uC", id="re")  # ... so the corrected copy is stored
    rows = fx.scorecard(kpis=["active_partner_rate"], by="type")
    summary = fx.summaries["events"]
    # 6 read; accepted ok1 and the second "re" = 2; rejected bad1 bad2 bad3 and the first "re" = 4
    assert (summary.rows_read, summary.accepted, summary.duplicates, summary.rejected) == (6, 2, 0, 4)
    whole = value(rows, "active_partner_rate", "2026-07")
    # partners A B C D = 4; active: B (inherited), C (corrected copy) = 2 -> 50; A and D stay inactive
    assert whole.value == pytest.approx(50.0)
    assert (whole.numerator, whole.denominator) == (2, 4)
    assert whole.band == "moderate"
    # the inherited partner also puts the event in B's segment
    assert value(rows, "active_partner_rate", "2026-07", {"type": "referral"}).value == pytest.approx(100.0)
    assert value(rows, "active_partner_rate", "2026-07", {"type": "reseller"}).value == 0.0


def test_timestamps_with_offsets_are_converted_to_utc(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.event("Escalation Raised", "2026-08-01T01:30:00+02:00", partner="A")  # Jul 31 23:30Z: July
    fx.event("Escalation Raised", "2026-07-31T23:00:00", partner="A")  # no offset: UTC, July
    fx.event("Escalation Raised", "2026-07-01T01:00:00+02:00", partner="A")  # Jun 30 23:00Z: June
    july = value(fx.scorecard(kpis=["escalations"]), "escalations", "2026-07")
    assert july.value == 2
    assert july.previous == 1
