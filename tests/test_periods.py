"""Period arithmetic (KPI-SPEC §1): labels, boundaries, ranges."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerkpi.engine.periods import (
    Grain,
    label,
    parse_period_label,
    period_start,
    periods_between,
    shift,
)
from partnerkpi.errors import UsageError


@pytest.mark.parametrize(
    ("instant", "grain", "start", "text"),
    [
        (datetime(2026, 7, 5, 23, 59, 59), Grain.WEEK, datetime(2026, 6, 29), "2026-W27"),  # Sunday
        (datetime(2026, 7, 6, 0, 0, 0), Grain.WEEK, datetime(2026, 7, 6), "2026-W28"),  # Monday
        (datetime(2026, 1, 1), Grain.WEEK, datetime(2025, 12, 29), "2026-W01"),  # ISO year differs
        (datetime(2027, 1, 1), Grain.WEEK, datetime(2026, 12, 28), "2026-W53"),  # 2026 has 53 ISO weeks
        (datetime(2026, 7, 31, 23, 59, 59), Grain.MONTH, datetime(2026, 7, 1), "2026-07"),
        (datetime(2026, 9, 30), Grain.QUARTER, datetime(2026, 7, 1), "2026-Q3"),
        (datetime(2026, 10, 1), Grain.QUARTER, datetime(2026, 10, 1), "2026-Q4"),
        (datetime(2026, 12, 31), Grain.YEAR, datetime(2026, 1, 1), "2026"),
    ],
)
def test_period_of_an_instant(instant, grain, start, text):
    assert period_start(instant, grain) == start
    assert label(start, grain) == text


def test_range_runs_from_the_period_holding_from_while_periods_start_before_to():
    periods = periods_between(Grain.MONTH, date(2026, 7, 15), date(2026, 9, 2))
    assert [p.label for p in periods] == ["2026-07", "2026-08", "2026-09"]
    assert periods[0].start == datetime(2026, 7, 1) and periods[-1].end == datetime(2026, 10, 1)
    # --to exactly on a boundary is exclusive
    assert [p.label for p in periods_between(Grain.MONTH, date(2026, 7, 1), date(2026, 9, 1))] == [
        "2026-07",
        "2026-08",
    ]


def test_empty_range_is_a_usage_error_that_says_how_to_fix_it():
    with pytest.raises(UsageError, match="after --from"):
        periods_between(Grain.MONTH, date(2026, 9, 1), date(2026, 9, 1))


def test_unknown_grain_names_the_choices():
    with pytest.raises(UsageError, match="week, month, quarter, year"):
        Grain.parse("fortnight")


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    st.sampled_from(list(Grain)),
)
def test_every_instant_is_in_exactly_its_period_and_labels_round_trip(instant, grain):
    start = period_start(instant, grain)
    end = shift(start, grain)
    assert start <= instant < end
    assert period_start(end, grain) == end and period_start(end - timedelta(microseconds=1), grain) == start
    parsed_grain, parsed = parse_period_label(label(start, grain))
    assert (parsed_grain, parsed.start, parsed.end) == (grain, start, end)
