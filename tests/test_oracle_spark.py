"""The hand-computed KPI tests through `partnerkpi scorecard` on Spark over a lake exported from their fixture
(tests/oracle_spark.py): a handful in this process on local-mode Spark, and every one of them by a pytest run
whose commands name the session's Spark Connect server (`--db 'sc://127.0.0.1:PORT?lake=…'`)."""

from __future__ import annotations

import os

import pytest

from tests import oracle_spark
from tests import test_kpi_adoption as adoption
from tests import test_kpi_engagement as engagement
from tests import test_kpi_experience as experience
from tests import test_kpi_outcomes as outcomes
from tests import test_kpi_rows as kpi_rows
from tests.kpi_fixtures import Fixture
from tests.test_oracle_backends import counted, kpi_test_count, pytest_run  # noqa: F401 (a fixture)

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


FULL_ENV = "PARTNERKPI_SPARK_CONFORMANCE"  # `make conformance` sets it: every KPI test on Spark takes 10–20 min


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.skipif(os.environ.get(FULL_ENV) != "full",
                    reason=f"every KPI test on Spark Connect takes 10-20 min: `make conformance` ({FULL_ENV}=full)")
def test_every_kpi_fixture_passes_through_the_command_line_on_spark_connect(spark_connect_url, kpi_test_count):  # noqa: F811
    env = {**os.environ, "PARTNERKPI_ORACLE": "cli-spark", oracle_spark.MASTER_ENV: spark_connect_url}
    env.pop("PARTNERKPI_DB", None)
    output = pytest_run(env=env)
    tail = output[-6000:]
    assert counted(output, "passed") == kpi_test_count, tail
    assert (counted(output, "failed"), counted(output, "skipped"), counted(output, "errors?")) == (0, 0, 0), tail
