"""The partner scope (`Hub.scoped`): what one partner may read, and nothing more."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from partnerkpi.access import MIN_PEERS, OutOfScope, PartnerScope, UnknownPartnerError
from partnerkpi.engine.periods import Grain
from tests.kpi_fixtures import AUGUST, JULY, Fixture, iso

CANARY = "ZEBRA-CANARY"

# July 2026 revenue (partner_revenue, up): A 250; its reseller peers B..F 100, 200, 300, 400, 500;
# G, H, I are distributors and only G closes a deal (50), so G's peers H and I hold 0 and 0.
REVENUE = {"A": 250, "B": 100, "C": 200, "D": 300, "E": 400, "F": 500, "G": 50}


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    fx = Fixture(tmp_path_factory.mktemp("access"))
    for pid in "ABCDEF":
        fx.partner(pid, type="reseller", name=f"{CANARY} Ltd" if pid == "B" else None)
    for pid in "GHI":
        fx.partner(pid, type="distributor")
    for pid in "ABCDEFGHI":
        fx.user(f"u{pid}", pid)
        fx.event("Logged In", "2026-07-02 09:00", user=f"u{pid}", partner=pid)
    for pid, amount in REVENUE.items():
        fx.event("Deal Closed", "2026-07-15", partner=pid, user=f"u{pid}", object=f"d{pid}", amount=amount)
    fx.event("Task Assigned", "2026-07-01", partner="A", object="tA", kind="compliance",
             due_at=iso("2026-07-20"), title="Send the Q3 plan")
    fx.event("Task Assigned", "2026-07-01", partner="B", object="tB", kind="compliance",
             due_at=iso("2026-07-20"), title=f"{CANARY} secret task")
    fx.event("Policy Published", "2026-07-05", object="pol1", required=True, title="Code of Conduct")
    fx.event("Policy Acknowledged", "2026-07-06", partner="B", user="uB", object="pol1")
    fx.event("Logged In", "2026-07-31 12:00", user="uA", partner="A")  # the data reaches 07-31: now = 08-01
    return fx.hub()


def test_a_scope_refuses_program_wide_reads(program):
    scope = program.scoped("A")
    assert isinstance(scope, PartnerScope)
    for read in (lambda: scope.scorecard(Grain.MONTH, JULY, AUGUST), lambda: scope.store, lambda: scope.engine,
                 lambda: scope.imports(), lambda: scope.rejected(), lambda: scope.partners_list()):
        with pytest.raises((OutOfScope, AttributeError)) as refused:
            read()
        # every Hub read is refused as out of scope; a name the Hub does not have is a plain AttributeError
        assert refused.type is OutOfScope or "partners_list" in str(refused.value)
        if refused.type is OutOfScope:
            assert refused.value.http_status == 403
    assert [p["partner_id"] for p in scope.partners()] == ["A"]
    assert scope.watermark() == datetime(2026, 8, 1)  # neutral: how far the data reaches


def test_another_partners_id_is_unknown(program):
    scope = program.scoped("A")
    with pytest.raises(UnknownPartnerError) as other:
        scope.partner("B")
    with pytest.raises(UnknownPartnerError) as missing:
        scope.partner("NOPE")
    assert other.value.http_status == missing.value.http_status == 404
    assert str(other.value).replace("'B'", "'X'") == str(missing.value).replace("'NOPE'", "'X'")
    with pytest.raises(UnknownPartnerError):
        program.scoped("NOPE")


def test_peers_aggregated_from_five_and_suppressed_below(program):
    figures = program.scoped("A").figures(Grain.MONTH, JULY, AUGUST, "type")
    assert figures.peer_group == "type = reseller"
    own = {r.kpi: r for r in figures.rows}
    assert own["partner_revenue"].value == 250 and own["partner_revenue"].segment == {}
    stats = figures.peers[("partner_revenue", "2026-07")]
    # B..F: 100, 200, 300, 400, 500: the median is 300; the top quartile (up: the 75th percentile, inclusive
    # method, position 0.75 x 4 = 3) is 400.
    assert (stats.n, stats.median, stats.top_quartile) == (MIN_PEERS, 300, 400)
    # G's peers are H and I (0 and 0): two, fewer than five, so no figure leaves the scope.
    g = program.scoped("G").figures(Grain.MONTH, JULY, AUGUST, "type").peers[("partner_revenue", "2026-07")]
    assert (g.n, g.median, g.top_quartile) == (2, None, None)


def test_tasks_policies_activity_of_the_partner_only(program):
    scope = program.scoped("A")
    (task,) = scope.open_tasks()
    # due 07-20, the data's now 08-01: 12 days overdue
    assert (task["task"], task["title"], task["overdue"], task["days_overdue"]) == ("tA", "Send the Q3 plan", True, 12)
    assert [p["title"] for p in scope.unacknowledged_policies()] == ["Code of Conduct"]
    assert program.scoped("B").unacknowledged_policies() == []  # B acknowledged it
    assert scope.last_active() == datetime(2026, 7, 31, 12, 0)
    assert {k.partner_page for k in scope.kpis()} == {"everyone"}


def test_the_canary_of_b_never_reaches_as_scope(program):
    scope = program.scoped("A")
    outputs = [scope.partners(), scope.partner(), scope.open_tasks(), scope.unacknowledged_policies(),
               scope.last_active(), scope.figures(Grain.MONTH, JULY, AUGUST, "type"),
               scope.figures(Grain.QUARTER, date(2026, 7, 1), date(2026, 10, 1), None)]
    assert CANARY not in repr(outputs)
    assert CANARY in repr(program.scoped("B").partner())  # the canary is really there
