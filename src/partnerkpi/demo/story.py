"""The demo's story in numbers: a low-usage portal, a revamp, and what changes after it.

Every rate the generator uses is a pair (before the revamp, six months after it); in between the
value moves linearly, month by month, as partners discover the new portal.
"""

from __future__ import annotations

from datetime import date

import numpy as np

DEFAULT_END = date(2026, 11, 1)
"""Fixed default end of the range (exclusive), so the same seed gives byte-identical files."""

REVAMP_MONTH_OF_24 = 10
"""The revamp goes live at the start of this (0-based) month of a 24-month range, scaled to others."""

RAMP_MONTHS = 6
"""Months the adoption takes to reach its new level after the revamp."""

ACTIVE_SHARE = (0.45, 0.80)
"""Share of the partners in a month that are active: before the revamp, six months after it."""

REVENUE_UPLIFT = 0.15
"""Partner-sourced revenue per partner after the revamp versus before it."""

CHURN_LEAD_DAYS = (60.0, 120.0)
"""A fading partner's decline starts this many days before its offboarding (drawn per partner)."""

FADING_SHARE = 0.95
"""Share of churners that fade before leaving; the others leave abruptly (acquired, contract not renewed)."""

FADE_DEPTH = (0.85, 1.0)
"""How far a fading partner declines (drawn per partner): 1 is the full churn behaviour of each rate."""

FADE_SKIP = 0.9
"""At full decline, the chance that a fading partner does not use the hub at all in a month."""

SOURING_LEAD_DAYS = 60
"""A fading partner's survey answers sour this many days before its use of the hub declines (unhappy, then gone)."""

FADE_SETTLE = 0.1
"""The share of the lead over which the decline sets in; it then holds until the partner leaves."""

ACTIVE_SIZE_EXPONENT = 1.3
"""How much a partner's user count raises its chance to be active in a month (weight = users ** this)."""

NEW_PARTNER_SHARE = 0.35
"""Share of partners onboarded during the range; the others joined in the four years before it."""


def revamp_index(months: int) -> int:
    """The 0-based month of the range in which the revamp goes live."""
    return max(0, min(months - 1, round(months * REVAMP_MONTH_OF_24 / 24)))


def revamp_date(end: date = DEFAULT_END, months: int = 24) -> date:
    """The day the revamped portal goes live for a range of `months` months ending at `end`."""
    first = np.datetime64(f"{end.year:04d}-{end.month:02d}", "M") - months + revamp_index(months)
    return date.fromisoformat(str(first.astype("datetime64[D]")))


def adoption(months: int) -> np.ndarray:
    """Per month of the range, how far the revamp's effect has gone: 0 before it, 1 from six months on."""
    m = np.arange(months, dtype=np.float64)
    return np.clip((m - revamp_index(months) + 1) / RAMP_MONTHS, 0.0, 1.0)


def lerp(pair: tuple[float, float], progress: np.ndarray | float) -> np.ndarray:
    """The value between (before, after) at the given adoption progress."""
    before, after = pair
    return before + (after - before) * np.asarray(progress, dtype=np.float64)


# Rates per month, as (before the revamp, after it).
USER_ACTIVE_PROB = (0.83, 0.95)  # a live user of an active partner uses the hub that month
DORMANT_WAKE = (0.0, 0.5)  # the same, times this, for users that never used the old portal
SESSIONS_PER_USER = (2.0, 4.0)  # extra sessions per active user-month (Poisson mean, at scale 1)
EVENTS_PER_SESSION = (2.5, 4.5)  # extra events after the login and the first page (Poisson mean)
GAP_SECONDS = (110.0, 150.0)  # mean gap between two events of a session
DOC_VIEWED = (0.17, 0.22)  # share of in-session events
DOC_DOWNLOADED = (0.07, 0.10)
ANNOUNCEMENT_SHARE = (0.08, 0.12)

TASKS_PER_PARTNER = (1.4, 1.6)
TASK_ATTEMPT = (0.85, 0.95)
TASK_START_DAYS = (2.0, 1.2)
TASK_ABANDON = (0.12, 0.05)
TASK_REJECT = (0.22, 0.09)
REVIEW_DAYS = (1.5, 0.6)
MANUAL_REMINDER = (0.75, 0.20)
APPROVALS_PER_PARTNER = (0.35, 0.45)
APPROVAL_DAYS = (5.0, 2.0)
SUPPORT_PER_PARTNER = (0.85, 0.45)
RESOLVE_HOURS = (36.0, 16.0)
ESCALATION = (0.08, 0.04)
COORDINATION_PER_PARTNER = (2.6, 0.9)
DEALS_PER_PARTNER = (2.0, 2.0)  # many mid-size deals: revenue per partner-month steady enough to measure
SURVEY_SCORE = (7.0, 8.3)
POLICY_ACK = (0.70, 0.95)
REVOKE_ON_OFFBOARDING = (0.80, 0.95)
REVOKE_HOURS = (60.0, 8.0)
REVIEW_COMPLETION = (0.55, 0.93)
INCIDENTS_PER_PARTNER = (0.02, 0.008)
CHURN_HAZARD = (0.011, 0.006)
