"""Partner lifecycle (PostHog's states at partner level) and stickiness, computed by hand on tiny programs."""

from __future__ import annotations

from datetime import date

import pytest

from partnerkpi.errors import UsageError
from partnerkpi.insights.lifecycle import lifecycle, stickiness
from tests.kpi_fixtures import Fixture

JUNE, NOVEMBER = date(2026, 6, 1), date(2026, 11, 1)


def build_lifecycle_program(fx: Fixture) -> Fixture:
    """Months May..October 2026 (• active, · in the program but not active):

        A reseller      May ·  Jun •  Jul •  Aug ·  Sep ·  Oct •
        B reseller      May •  Jun •  Jul •  Aug •  Sep •  Oct •
        H reseller      May ·  Jun ·  Jul ·  Aug •  Sep ·  Oct •
        C distributor   onboarded Jul 15;     Aug •  Sep •  Oct ·
        D distributor   May •  Jun •  offboarded Jul 20
        E agency        only non-activity events
        F reseller      offboarded May 31; its user still logs in in June (not in the program: not counted)
        G reseller      onboarded Nov 15 (after the range)
    """
    fx.partner("A").partner("B").partner("H")
    fx.partner("C", onboarded="2026-07-15", type="distributor")
    fx.partner("D", offboarded="2026-07-20", type="distributor")
    fx.partner("E", type="agency")
    fx.partner("F", offboarded="2026-05-31")
    fx.partner("G", onboarded="2026-11-15")
    for p in "ABCDEFGH":
        fx.user(p.lower(), p)
    fx.event("Logged In", "2026-06-03 09:00", user="a")
    fx.event("Page Viewed", "2026-07-31 23:59:59", user="a", path="/deals")
    fx.event("Document Viewed", "2026-10-20", user="a", object="doc1")
    for month in ("05", "06", "07", "08", "09", "10"):
        fx.event("Logged In", f"2026-{month}-10 10:00", user="b")
    fx.event("Logged In", "2026-09-30 23:59:59", user="b")  # the last second of September
    fx.event("Logged In", "2026-08-14", user="h")
    fx.event("Support Requested", "2026-10-02", user="h", object="t1", topic="billing")
    fx.event("Logged In", "2026-08-01", user="c")  # midnight: August
    fx.event("Task Started", "2026-09-05", user="c", object="task1")
    fx.event("Logged In", "2026-05-20", user="d")  # before the range: D is not new in June
    fx.event("Logged In", "2026-06-20", user="d")
    fx.event("Task Completed", "2026-08-05", user="e", object="task2")  # not an activity event
    fx.event("Logged In", "2026-06-05", user="f")  # F left the program in May
    return fx


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    fx = build_lifecycle_program(Fixture(tmp_path_factory.mktemp("lifecycle")))
    yield fx
    fx.hub().close()


def counts(row):
    return (row.new, row.returning, row.resurrecting, row.dormant)


def test_program_states_per_month(program):
    result = lifecycle(program.hub(), "month", JUNE, NOVEMBER)
    # June: B returning (active in May); A new; D was first active in May, so returning; F not in the program
    assert counts(result.row("2026-06")) == (1, 2, 0, 0)
    # July: A and B returning; D (active in June, not in July) dormant
    assert counts(result.row("2026-07")) == (0, 2, 0, 1)
    # August: C new (onboarded in July, first activity in August), H new; B returning; A dormant
    assert counts(result.row("2026-08")) == (2, 1, 0, 1)
    # September: B, C returning; H dormant (A was already dormant: not again)
    assert counts(result.row("2026-09")) == (0, 2, 0, 1)
    # October: A and H resurrecting; B returning; C dormant
    assert counts(result.row("2026-10")) == (0, 1, 2, 1)
    assert [r.period for r in result.rows] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]


def test_the_story_of_one_partner_and_the_ids(program):
    result = lifecycle(program.hub(), "month", JUNE, NOVEMBER, ids=True)
    story = {r.period: [s for s, ids in r.ids.items() if "A" in ids] for r in result.rows}
    assert story == {"2026-06": ["new"], "2026-07": ["returning"], "2026-08": ["dormant"], "2026-09": [],
                     "2026-10": ["resurrecting"]}
    assert result.row("2026-10").ids == {"new": [], "returning": ["B"], "resurrecting": ["A", "H"], "dormant": ["C"]}
    assert result.to_json()["rows"][4]["ids"]["resurrecting"] == ["A", "H"]


def test_active_states_add_up_to_the_active_partner_rate_numerator(program):
    hub = program.hub()
    result = lifecycle(hub, "month", JUNE, NOVEMBER)
    rows = hub.scorecard("month", JUNE, NOVEMBER, kpis=["active_partner_rate"])
    assert [r.numerator for r in rows] == [result.row(r.period).active for r in rows] == [3, 2, 3, 2, 3]
    # returning + dormant = the partners active the period before
    for before, now in zip(result.rows, result.rows[1:], strict=False):
        assert now.returning + now.dormant == before.active


def test_by_segment_has_a_row_for_every_period_and_value(program):
    result = lifecycle(program.hub(), "month", JUNE, NOVEMBER, by="type")
    assert len(result.rows) == 5 * 4  # program, agency, distributor, reseller
    reseller = [counts(result.row(p, {"type": "reseller"})) for p in ("2026-06", "2026-07", "2026-08", "2026-09",
                                                                       "2026-10")]
    assert reseller == [(1, 1, 0, 0), (0, 2, 0, 0), (1, 1, 0, 1), (0, 1, 0, 1), (0, 1, 2, 0)]
    distributor = [counts(result.row(p, {"type": "distributor"})) for p in ("2026-06", "2026-07", "2026-08",
                                                                             "2026-09", "2026-10")]
    assert distributor == [(0, 1, 0, 0), (0, 0, 0, 1), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 0, 1)]
    assert all(counts(result.row(p.period, {"type": "agency"})) == (0, 0, 0, 0) for p in result.rows[:5])
    assert counts(result.row("2026-10")) == (0, 1, 2, 1)  # the program rows come too
    body = result.to_json()
    assert body["by"] == "type" and body["rows"][-1]["segment"] == {"type": "reseller"}


def test_unknown_trait_is_a_usage_error(program):
    with pytest.raises(UsageError, match="unknown partner trait 'colour'"):
        lifecycle(program.hub(), "month", JUNE, NOVEMBER, by="colour")


def test_weeks_across_a_year_end(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2025-01-01").user("a", "A", created="2025-01-01")
    fx.event("Logged In", "2025-12-23", user="a")  # 2025-W52
    fx.event("Logged In", "2026-01-04 23:59", user="a")  # Sunday: 2026-W01 (which starts Monday Dec 29)
    fx.event("Logged In", "2026-01-14", user="a")  # 2026-W03
    result = lifecycle(fx.hub(), "week", date(2025, 12, 22), date(2026, 1, 19))
    assert [(r.period, counts(r)) for r in result.rows] == [
        ("2025-W52", (1, 0, 0, 0)),
        ("2026-W01", (0, 1, 0, 0)),
        ("2026-W02", (0, 0, 0, 1)),
        ("2026-W03", (0, 0, 1, 0)),
    ]


def test_stickiness_over_the_last_three_months(program):
    hub = program.hub()
    sticky = stickiness(hub, "month", JUNE, NOVEMBER, n=3)
    assert [p.label for p in sticky.periods] == ["2026-08", "2026-09", "2026-10"]
    # in the program in Aug..Oct: A (Oct: 1), B (3), C (Aug, Sep: 2), H (Aug, Oct: 2), E (never: 0);
    # not D (offboarded in July), F (in May) or G (onboarded in November)
    assert sticky.histogram() == {0: 1, 1: 1, 2: 2, 3: 1}
    body = sticky.to_json()
    assert body["n"] == 3 and body["segments"][0]["partners"] == 5
    by_type = stickiness(hub, "month", JUNE, NOVEMBER, n=3, by="type")
    assert by_type.histogram({"type": "reseller"}) == {0: 0, 1: 1, 2: 1, 3: 1}
    assert by_type.histogram({"type": "distributor"}) == {0: 0, 1: 0, 2: 1, 3: 0}
    assert by_type.histogram({"type": "agency"}) == {0: 1, 1: 0, 2: 0, 3: 0}
    assert by_type.histogram() == sticky.histogram()


def test_stickiness_over_the_whole_range(program):
    sticky = stickiness(program.hub(), "month", JUNE, NOVEMBER)
    # June..October; in the program: A (Jun, Jul, Oct: 3), B (5), C (2), D (Jun: 1), E (0), H (2)
    assert sticky.n == 5
    assert sticky.histogram() == {0: 1, 1: 1, 2: 2, 3: 1, 4: 0, 5: 1}
