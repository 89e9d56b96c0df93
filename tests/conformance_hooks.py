"""Schemathesis hooks for the rules of the API that JSON Schema cannot state (each is in its parameter's
descriptions, and the server refuses a request breaking them with a 400 that names the rule):

- a range: `to` after `from`, at most 1000 periods of the grain (a rule across two parameters);
- a health override's `expires_at`: after today by the server's clock (a rule against the clock);
- impact's `around`: a date inside the data's range (a rule against the data; outside it most dates answer 404,
  some a 400 from the period arithmetic).

A positive case that breaks one is repaired (the range or `around` dropped, so the defaults apply; the expiry moved
to a later day); negative cases are left alone. Imported by tests/test_api_conformance.py and, through the `hooks`
setting, by `st run` in reliability/schemathesis_run.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import schemathesis

from partnerkpi.engine.periods import Grain, parse_day, periods_between
from partnerkpi.errors import UsageError

LATER = timedelta(days=30)
DATA = (date(2026, 6, 1), date(2026, 8, 1))  # the months the tiny program's events cover (tests/web_fixtures.py)


def answerable_range(query: dict[str, Any]) -> bool:
    """True when the query gives no range, or both ends of one that the server's period arithmetic accepts."""
    given = [query.get("from"), query.get("to")]
    if all(v in (None, "") for v in given):
        return True
    try:
        start, end = (parse_day(v, "day") if isinstance(v, str) else None for v in given)
        grain = Grain.parse(str(query.get("grain") or "month"))
        return start is not None and end is not None and bool(periods_between(grain, start, end))
    except UsageError:
        return False


def _in_data(text: Any) -> bool:
    try:
        return DATA[0] <= date.fromisoformat(text) < DATA[1]
    except (TypeError, ValueError):
        return True  # absent, empty or not a date: nothing to repair


def _future(text: Any) -> bool:
    try:
        return date.fromisoformat(text) > datetime.now(UTC).date() + timedelta(days=1)
    except (TypeError, ValueError):
        return True  # not a date: the schema refuses it, nothing to repair


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Repair a positive case that breaks a rule the schema cannot state."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    if isinstance(case.query, dict) and not answerable_range(case.query):
        case.query = {k: v for k, v in case.query.items() if k not in ("from", "to")}
    impact = case.operation.path == "/api/v1/impact"
    if impact and isinstance(case.query, dict) and not _in_data(case.query.get("around")):
        case.query = {k: v for k, v in case.query.items() if k != "around"}
    body = case.body
    if case.operation.path.endswith("/health-override") and isinstance(body, dict) and not _future(
            body.get("expires_at")):
        case.body = {**body, "expires_at": (datetime.now(UTC).date() + LATER).isoformat()}
    return case
