"""The backtest (insights/backtest.py): AUC, precision, recall and lead time by hand, and on the demo."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from partnerkpi.insights.backtest import auc, backtest, metrics, quarter_ends
from partnerkpi.insights.health import parse_config
from tests.kpi_fixtures import Fixture


def test_auc_by_hand():
    # pairs (positive, negative): (.9, .8) yes, (.9, .2) yes, (.3, .8) no, (.3, .2) yes -> 3 / 4
    assert auc([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert auc([0.1, 0.2, 0.3], [1, 0, 0]) == 0.0
    assert auc([0.3, 0.2, 0.1], [1, 0, 0]) == 1.0


def test_auc_counts_ties_half():
    # the positive .5 ties two negatives (.5 each) and beats one (1): (0.5 + 0.5 + 1) / 3
    assert auc([0.5, 0.5, 0.5, 0.1], [1, 0, 0, 0]) == pytest.approx(2 / 3)
    assert auc([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.5)
    # a 0/1 flag: positives flagged 1 of 2, negatives flagged 1 of 3 -> (1 * 2 + 0.5 * (1 + 1 + 2)) / 6... by pairs:
    # flagged pos vs [1, 0, 0] -> .5 + 1 + 1; unflagged pos vs [1, 0, 0] -> 0 + .5 + .5 -> 3.5 / 6
    assert auc([1, 0, 1, 0, 0], [1, 1, 0, 0, 0]) == pytest.approx(3.5 / 6)


def test_auc_needs_both_classes():
    assert auc([0.1, 0.2], [1, 1]) is None
    assert auc([], []) is None
    with pytest.raises(ValueError):
        auc([0.1], [1, 0])


def test_precision_recall_and_lead_time_by_hand():
    m = metrics(risk=[5, 4, 3, 2, 1], flags=[True, True, False, False, True], labels=[1, 0, 1, 0, 0],
                lead=[10.0, None, 40.0, None, None])
    # flagged 3, churned 2, flagged churners 1 -> precision 1/3, recall 1/2; lead time of the flagged churner: 10
    assert (m.pairs, m.churned, m.flagged, m.true_positives) == (5, 2, 3, 1)
    assert m.precision == pytest.approx(1 / 3) and m.recall == pytest.approx(0.5) and m.lead_days == 10.0
    # risk 5 and 3 for the churners vs 4, 2, 1: (1 + 1 + 1) + (0 + 1 + 1) -> 5 / 6
    assert m.auc == pytest.approx(5 / 6)
    none = metrics(risk=[1, 2], flags=[False, False], labels=[0, 0], lead=[None, None])
    assert (none.precision, none.recall, none.lead_days, none.auc) == (None, None, None, None)


def test_quarter_ends_need_history_before_and_a_whole_next_quarter():
    assert quarter_ends(datetime(2024, 11, 1), datetime(2026, 11, 1)) == [
        datetime(2025, 1, 1), datetime(2025, 4, 1), datetime(2025, 7, 1), datetime(2025, 10, 1),
        datetime(2026, 1, 1), datetime(2026, 4, 1), datetime(2026, 7, 1),
    ]
    # history from exactly a quarter start: that start has nothing before it; next quarter ending at the end is in
    assert quarter_ends(datetime(2025, 1, 1), datetime(2025, 10, 1)) == [datetime(2025, 4, 1), datetime(2025, 7, 1)]
    assert quarter_ends(datetime(2025, 1, 1), datetime(2025, 9, 30)) == [datetime(2025, 4, 1)]


RECENCY_ONLY = """
levels: [{name: healthy, min: 70}, {name: watch, min: 40}, {name: at_risk, min: 0}]
at_risk_levels: [at_risk]
components:
  recency: {measure: days_since_activity, weight: 1, points: [[0, 100], [60, 0]]}
"""


def test_backtest_by_hand(tmp_path):
    fx = Fixture(tmp_path)
    for p, off in (("P1", None), ("P2", "2026-05-15"), ("P3", "2026-08-20"), ("P4", None)):
        fx.partner(p, onboarded="2025-12-01", offboarded=off)
        fx.user(p.lower(), p, created="2025-12-01")
    for day in ("2026-01-10", "2026-03-25", "2026-06-25", "2026-09-30"):  # history: Jan 10 to Sep 30
        fx.event("Logged In", day, user="p1")
    fx.event("Logged In", "2026-02-01", user="p2")
    fx.event("Logged In", "2026-03-20", user="p3")
    fx.event("Logged In", "2026-01-15", user="p4")
    result = backtest(fx.hub(), parse_config(RECENCY_ONLY, "test.yaml"))
    # quarter ends after Jan 10 whose next quarter ends by Oct 1: Apr 1 and Jul 1
    assert [q.as_of for q in result.quarters] == [datetime(2026, 4, 1), datetime(2026, 7, 1)]
    q1, q2 = result.quarters
    # Apr 1: P1 7 days (88.3), P2 59 days (1.7, churns May 15: 44 days), P3 12 days (80), P4 76 days (0)
    assert (q1.model.pairs, q1.model.churned, q1.model.flagged, q1.model.true_positives) == (4, 1, 2, 1)
    assert q1.model.lead_days == 44.0
    # Jul 1: P2 gone; P1 6 days (90), P3 103 days (0, churns Aug 20: 50 days), P4 167 days (0)
    assert (q2.model.pairs, q2.model.churned, q2.model.flagged, q2.model.true_positives) == (3, 1, 2, 1)
    m = result.model
    assert (m.pairs, m.churned, m.flagged, m.precision, m.recall) == (7, 2, 4, 0.5, 1.0)
    assert m.lead_days == pytest.approx((44 + 50) / 2)
    # churners' scores 1.7 and 0 vs the others' 88.3, 80, 0, 90, 0 (lower = riskier):
    # 1.7 beats 3 and loses 2; 0 beats 3 and ties 2 -> (3 + 4) / 10
    assert m.auc == pytest.approx(0.7)
    # naive: no login in [Mar 2, Apr 1): P2, P4; in [Jun 1, Jul 1): P3, P4
    n = result.naive
    assert (n.flagged, n.true_positives, n.precision, n.recall) == (4, 2, 0.5, 1.0)
    assert n.auc == pytest.approx(0.8)  # each churner: 3 wins, 2 ties -> 8 / 10
    # at the naive budget (2 a quarter), the lowest scores: P4, P2; then P3, P4 (ties by id) -> 2 of 2
    assert result.recall_at_naive_budget == 1.0
    data = json.loads(result.to_json())
    assert data["model"]["auc"] == pytest.approx(0.7) and data["quarters"][0]["as_of"] == "2026-04-01"


@pytest.mark.slow
def test_demo_at_risk_flag_beats_the_naive_rule(tmp_path):
    """On a seed the weights were not tuned on (bench/calibrate_health.py tunes on 11 and 12)."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    files = generate(tmp_path / "demo", partners=300, months=24, seed=7)
    with Hub.open(tmp_path / "hub.duckdb") as hub:
        hub.import_files([files.partners, files.users, files.events])
        result = backtest(hub)
    print(f"\n{result.to_json()}")
    assert len(result.quarters) == 7
    m, n = result.model, result.naive
    # Seed 7 measured 0.806 (bench/calibrate_health.py, none tuned on: 0.820 on seed 21, 0.852 on 42, 0.802 on 99,
    # 0.827 on 5, 0.785 on 3); the target is 0.78 on seeds not tuned on. ~42 churners a seed make the
    # AUC waver by about ±0.03, so the floor is the target itself, 0.026 under seed 7's figure.
    assert m.auc >= 0.78
    # The claim: better ranking (AUC) and better precision of the flag than the naive rule, with a lead time of
    # over a month; the naive rule's own recall is higher: it flags ~40 % of partners.
    assert m.auc > n.auc + 0.05
    assert m.precision > n.precision
    assert result.recall_at_naive_budget >= 0.7
    assert m.lead_days > 30
