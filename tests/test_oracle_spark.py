"""A handful of the hand-computed KPI tests, run through `partnerkpi scorecard` on Spark over a lake exported
from their fixture (tests/oracle_spark.py). The whole set runs the same way with
`pytest -p tests.oracle_spark tests/test_kpi_*.py`: there, tests whose range runs past the fixture's last
event fail, as the CLI does not compute periods the data does not reach (`Hub.covered_range`)."""

from __future__ import annotations

import pytest

from tests import oracle_spark
from tests import test_kpi_adoption as adoption
from tests import test_kpi_engagement as engagement
from tests import test_kpi_experience as experience
from tests import test_kpi_outcomes as outcomes
from tests import test_kpi_rows as kpi_rows
from tests.kpi_fixtures import Fixture

CASES = [
    adoption.test_usage_rate_is_a_share_of_users_and_per_partner_divides_by_partners,
    adoption.test_active_partner_rate_boundaries_and_previous,
    adoption.test_time_to_first_action_median_of_even_count,
    adoption.test_stickiness_iso_week_boundaries,
    engagement.test_document_access_frequency_per_active_partner_with_segments,
    experience.test_repeat_question_rate_90_day_lookback,
    outcomes.test_cost_to_serve_per_partner,
    kpi_rows.test_previous_and_change_null_when_the_period_before_is_null,
]


@pytest.fixture
def on_spark(spark, monkeypatch):
    """Fixture.scorecard answered by the CLI on Spark (the session fixture starts the JVM once)."""
    monkeypatch.setattr(Fixture, "scorecard", oracle_spark.spark_scorecard)


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("test_") for c in CASES])
def test_hand_computed_kpis_through_the_cli_on_spark(on_spark, tmp_path, case):
    case(tmp_path)
