"""When a subscription fires: cron expressions read in a named time zone (cronsim, which follows Debian cron
around DST changes), and the reporting period a fire stands for. Instants in and out are naive UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from partnerkpi.engine.periods import Grain, label, period_start, shift
from partnerkpi.errors import UsageError

# A relative period names the last complete (or the running) period at the fire's local date.
RELATIVE_PERIODS: dict[str, tuple[Grain, int]] = {
    "last-week": (Grain.WEEK, -1), "last-month": (Grain.MONTH, -1), "last-quarter": (Grain.QUARTER, -1),
    "last-year": (Grain.YEAR, -1), "this-week": (Grain.WEEK, 0), "this-month": (Grain.MONTH, 0),
    "this-quarter": (Grain.QUARTER, 0), "this-year": (Grain.YEAR, 0),
}
MAX_FIRES = 10_000  # due_fires stops counting missed fires here (a minutely job left off for a week)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. Europe/Berlin)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"'{name}' is not a time zone", hint="use an IANA name like UTC or Europe/Berlin") from None


def check_cron(expr: str) -> str:
    """`expr` if it is a valid five-field cron expression."""
    if len(expr.split()) != 5:
        raise UsageError(f"'{expr}' is not a cron expression of five fields",
                         hint='write minute hour day-of-month month day-of-week, e.g. "0 7 * * 1" (Mondays 07:00)')
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise UsageError(f"'{expr}' is not a valid cron expression: {exc}",
                         hint='e.g. "0 7 * * 1" is Mondays at 07:00, "30 6 1 * *" the 1st of a month at 06:30',
                         ) from None
    return expr


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    """The first instant strictly after `after` (naive UTC) at which `expr` fires in zone `tz`, as naive UTC.
    A local time skipped by a spring-forward fires at the first minute after the gap; one repeated by a
    fall-back fires once, on its first occurrence (as Debian cron)."""
    local = after.replace(tzinfo=UTC).astimezone(zone(tz))
    for fire in CronSim(check_cron(expr), local):
        instant = fire.astimezone(UTC).replace(tzinfo=None)
        if instant > after:  # a local time read at the second pass of a fall-back can map to before `after`
            return instant
    raise UsageError(f"'{expr}' never fires", hint="check the day-of-month and month fields")  # pragma: no cover


def due_fires(expr: str, tz: str, since: datetime, now: datetime) -> list[datetime]:
    """The fire instants in (since, now], oldest first (naive UTC)."""
    fires: list[datetime] = []
    cursor = since
    while len(fires) < MAX_FIRES:
        cursor = next_fire(expr, tz, cursor)
        if cursor > now:
            break
        fires.append(cursor)
    return fires


def check_period(spec: str) -> str:
    """`spec` if it names a quarter, the period a report covers: last-quarter, this-quarter or a label (2026-Q3)."""
    from partnerkpi.engine.periods import parse_period_label

    hint = "a report covers a quarter: use last-quarter, this-quarter or a label like 2026-Q3"
    if spec in RELATIVE_PERIODS:
        grain = RELATIVE_PERIODS[spec][0]
    else:
        try:
            grain = parse_period_label(spec)[0]
        except UsageError:
            raise UsageError(f"'{spec}' is not a period", hint=hint) from None
    if grain is not Grain.QUARTER:
        raise UsageError(f"'{spec}' is not a quarter", hint=hint)
    return spec


def period_at(spec: str, fire: datetime, tz: str) -> str:
    """The period label `spec` means for a fire at `fire` (naive UTC), judged by the local date in `tz`."""
    if spec not in RELATIVE_PERIODS:
        return check_period(spec)
    grain, steps = RELATIVE_PERIODS[spec]
    day: date = fire.replace(tzinfo=UTC).astimezone(zone(tz)).date()
    return label(shift(period_start(day, grain), grain, steps), grain)


def whole_seconds(instant: datetime) -> datetime:
    """`instant` without its fraction of a second: fire instants are kept to the second."""
    return instant - timedelta(microseconds=instant.microsecond)
