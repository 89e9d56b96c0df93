"""Partner work on the hub: tasks and onboarding, approvals, support, deals, coordination, costs, surveys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from partnerkpi.demo import story
from partnerkpi.demo.events import Ops, iso, json_object, money, quoted
from partnerkpi.demo.world import DAY, HOUR, MINUTE, World, business_time, exp_duration

TASK_KINDS = ("onboarding", "compliance", "deal", "training", "general")
REGULAR_KIND_WEIGHTS = (0.25, 0.25, 0.20, 0.30)
ONBOARDING_TASKS = 4
TASK_TITLES = (  # per kind (TASK_KINDS), a few titles each, the same number
    ("Complete the partner profile", "Sign the partner agreement", "Set up deal registration", "Invite your team"),
    ("Upload the signed data-processing addendum", "Renew the anti-bribery certificate",
     "Confirm export-control screening", "Submit proof of insurance"),
    ("Update the Q-end forecast", "Register the open opportunity", "Attach the customer PO",
     "Confirm the deal's end user"),
    ("Finish the sales certification", "Complete the product training", "Pass the security awareness course",
     "Attend the onboarding webinar"),
    ("Review the marketing kit", "Update the company logo", "Confirm billing contacts", "Answer the partner survey"),
)
STALE_DAYS = (21.0, 45.0)
"""A task still open this many days after its due date (drawn per task) is withdrawn (Task Cancelled)."""
CHASE_DAYS = (10.0, 20.0)
"""...and before that, this many days after its due date, chased by a call and often an escalation."""
REJECT_REASONS = ("missing_document", "incorrect_details", "expired_certificate", "wrong_format")
APPROVAL_KINDS = ("discount", "mdf", "deal_registration", "co_marketing", "certification")
TOPICS = (
    "login_access", "deal_registration", "pricing", "commissions", "marketing_funds", "certification",
    "product_question", "billing", "api_integration", "portal_navigation",
)
CHANNELS = ("email", "call", "meeting")
CHANNEL_WEIGHTS = (0.60, 0.25, 0.15)
DEAL_SIZE_BY_TIER = np.array([2.0, 1.0, 0.55])
PIPELINE_DAYS = 120
SURVEY_RESPONSE = 0.35
"""Share of a partner's users who answer a quarterly survey wave."""


def partner_months(w: World, active_only: bool = False) -> tuple[np.ndarray, ...]:
    """(partner, month, window start, window end) of every partner-month with a live window."""
    mask = w.in_month & w.live
    if active_only:
        mask &= w.active
    p, m = np.nonzero(mask)
    return p, m, w.win_lo[p, m], w.win_hi[p, m]


def active_share(w: World) -> np.ndarray:
    """Per month, active partners over partners in the month (never 0, to divide by)."""
    return np.maximum(w.active.sum(0), 1) / np.maximum(w.in_month.sum(0), 1)


def tasks(rng: np.random.Generator, w: World, ops: Ops) -> None:
    """Regular tasks every month and onboarding tasks for partners that join during the range."""
    p, m, lo, hi = partner_months(w)
    n = rng.poisson(story.lerp(story.TASKS_PER_PARTNER, w.cal.progress[m]))
    partner = np.repeat(p, n)
    assigned = business_time(rng, np.repeat(lo, n), np.repeat(hi, n))
    kind = rng.choice(np.arange(1, 5), len(partner), p=REGULAR_KIND_WEIGHTS)
    due = assigned + rng.choice(np.array([7, 14, 21, 30]), len(partner)) * DAY
    new = np.nonzero(w.onboarded >= w.cal.start)[0]
    o_partner = np.repeat(new, ONBOARDING_TASKS)
    step = np.tile(np.arange(ONBOARDING_TASKS), len(new))
    o_assigned = w.created[w.first_user[o_partner]] + ((10 + step) * MINUTE)
    partner = np.concatenate([o_partner, partner])
    assigned = np.concatenate([o_assigned, assigned])
    due = np.concatenate([o_assigned + 21 * DAY, due])
    kind = np.concatenate([np.zeros(len(o_partner), np.int64), kind])
    completed = _task_lifecycle(rng, w, ops, partner, assigned, due, kind)
    done = completed[: len(o_partner)].reshape(-1, ONBOARDING_TASKS)
    finished = np.where((done >= 0).all(1), done.max(1) + (rng.uniform(1, 20, len(new)) * HOUR), -1)
    ops.add("Onboarding Completed", np.where(finished < w.horizon(new), finished, -1), new)


def _task_lifecycle(
    rng: np.random.Generator, w: World, ops: Ops, p: np.ndarray, assigned: np.ndarray, due: np.ndarray,
    kind: np.ndarray,
) -> np.ndarray:
    n = len(p)
    e = w.cal.progress_at(assigned)
    faded = w.decline(p, assigned)
    onboarding = kind == 0
    horizon = w.horizon(p)
    ids = ops.new_ids("task", n)
    attempt = rng.random(n) < (
        np.where(onboarding, 0.97, story.lerp(story.TASK_ATTEMPT, e)) * (1.0 - 0.8 * faded)
    )
    start_days = story.lerp(story.TASK_START_DAYS, e) * np.where(onboarding, 1.5, 1.0)
    started = np.where(attempt, assigned + exp_duration(rng, start_days, DAY, n) + MINUTE, -1)
    started = w.place_activity(rng, p, started, due + 20 * DAY)
    abandon = ~onboarding & (rng.random(n) < _towards(story.lerp(story.TASK_ABANDON, e), 0.5, faded))
    submitted = np.where((started >= 0) & ~abandon, started + exp_duration(rng, 1.5, DAY, n) + HOUR, -1)
    submitted = w.place_activity(rng, p, submitted, due + 40 * DAY)
    review_days = story.lerp(story.REVIEW_DAYS, e)
    reviewed = np.where(submitted >= 0, submitted + exp_duration(rng, review_days, DAY, n) + HOUR, -1)
    reviewed = np.where(reviewed < horizon, reviewed, -1)
    rejected = (reviewed >= 0) & (rng.random(n) < story.lerp(story.TASK_REJECT, e))
    resubmitted = np.where(rejected, reviewed + exp_duration(rng, 2.0, DAY, n) + HOUR, -1)
    resubmitted = w.place_activity(rng, p, resubmitted, due + 60 * DAY)
    rereviewed = np.where(resubmitted >= 0, resubmitted + exp_duration(rng, review_days, DAY, n) + HOUR, -1)
    completed = np.where(rejected, rereviewed, reviewed)
    completed = np.where(completed < horizon, completed, -1)

    last = np.maximum.reduce([assigned, started, submitted, reviewed, resubmitted])
    still_open = completed < 0
    # The program team does not let work rot: a task still open weeks after its due date is escalated
    # (a call, an escalation), then withdrawn; so at any instant no task is more than STALE_DAYS[1] days overdue.
    cancel_at = np.maximum(due + (rng.uniform(*STALE_DAYS, n) * DAY).astype(np.int64), last + DAY)
    cancelled = np.where(still_open & (cancel_at < horizon), cancel_at, -1)
    chase = due + (rng.uniform(*CHASE_DAYS, n) * DAY).astype(np.int64)
    chased = still_open & (chase < np.minimum(cancel_at, horizon)) & (chase > last)
    ops.add("Coordination Logged", np.where(chased, chase, -1), p, prop='{"channel":"call"}')
    ops.add("Escalation Raised", np.where(chased & (rng.random(n) < 0.6), chase + 2 * HOUR, -1), p)
    closing = np.maximum(w.offboarded[p] - (rng.uniform(1, 24, n) * HOUR).astype(np.int64), last + MINUTE)
    closing_ok = still_open & (cancelled < 0) & (w.offboarded[p] < w.cal.end) & (closing < w.offboarded[p])
    cancelled = np.where(closing_ok, closing, cancelled)

    variant = rng.integers(0, len(TASK_TITLES[0]), n)
    titles = np.array(TASK_TITLES)[kind, variant]
    task_prop = ops.props.pool(json_object({
        "kind": quoted(pa.array(np.array(TASK_KINDS)[kind])), "title": quoted(pa.array(titles, pa.string())),
        "due_at": quoted(iso(due)),
    }))
    ops.add("Task Assigned", assigned, p, kind="task", number=ids, prop=task_prop)
    user = w.pick_user(rng, p, started)
    ops.preamble(rng, started, p, user)
    ops.add("Task Started", started, p, user, kind="task", number=ids)
    verdicts = ['{"outcome":"accepted"}', '{"outcome":"rejected"}']
    for ts, review, bounced in ((submitted, reviewed, rejected), (resubmitted, rereviewed, None)):
        user = w.pick_user(rng, p, ts)
        ops.preamble(rng, ts, p, user)
        ops.add("Task Submitted", ts, p, user, kind="task", number=ids)
        sub = ops.new_ids("sub", n)
        document = (kind == 1) & (ts >= 0)
        ops.add("Compliance Document Submitted", np.where(document, ts + 1_000_000, -1), p, user, "sub", sub)
        verdict = ops.props.choice(verdicts, np.zeros(n, np.int64) if bounced is None else bounced)
        ops.add("Compliance Document Reviewed", np.where(document, review, -1), p, -1, "sub", sub, verdict)
    reason = ops.props.choice([f'{{"reason":"{r}"}}' for r in REJECT_REASONS], rng.integers(0, 4, n))
    ops.add("Task Rejected", np.where(rejected, reviewed, -1), p, kind="task", number=ids, prop=reason)
    ops.add("Task Completed", completed, p, kind="task", number=ids)
    ops.add("Task Cancelled", cancelled, p, kind="task", number=ids)
    for offset in (-2 * DAY, 3 * DAY, 10 * DAY):
        at = due + offset + (rng.uniform(-3, 3, n) * HOUR).astype(np.int64)
        pending = (at > assigned) & ((submitted < 0) | (submitted > at)) & (at < horizon)
        pending &= ((completed < 0) | (completed > at)) & ((cancelled < 0) | (cancelled > at))
        manual = rng.random(n) < story.lerp(story.MANUAL_REMINDER, w.cal.progress_at(at))
        prop = ops.props.choice(['{"manual":false}', '{"manual":true}'], manual)
        ops.add("Reminder Sent", np.where(pending, at, -1), p, kind="task", number=ids, prop=prop)
    return completed


def approvals(rng: np.random.Generator, w: World, ops: Ops) -> None:
    """Approval requests from active partners and the program team's decisions."""
    p, m, lo, hi = partner_months(w, active_only=True)
    rate = story.lerp(story.APPROVALS_PER_PARTNER, w.cal.progress[m]) / active_share(w)[m]
    n = rng.poisson(rate)
    p, lo, hi, m = np.repeat(p, n), np.repeat(lo, n), np.repeat(hi, n), np.repeat(m, n)
    k = len(p)
    ts = business_time(rng, lo, hi)
    user = w.pick_user(rng, p, ts)
    ids = ops.new_ids("appr", k)
    ops.preamble(rng, ts, p, user)
    kind = ops.props.choice([f'{{"kind":"{a}"}}' for a in APPROVAL_KINDS], rng.integers(0, 5, k))
    ops.add("Approval Requested", ts, p, user, "appr", ids, kind)
    median = story.lerp(story.APPROVAL_DAYS, w.cal.progress[m]) * DAY
    decided = ts + (rng.lognormal(0.0, 0.6, k) * median).astype(np.int64) + HOUR
    outcome = ops.props.choice(['{"outcome":"approved"}', '{"outcome":"rejected"}'], rng.random(k) < 0.18)
    ops.add("Approval Decided", np.where(decided < w.horizon(p), decided, -1), p, -1, "appr", ids, outcome)


def support(rng: np.random.Generator, w: World, ops: Ops) -> np.ndarray:
    """Support tickets (more before the revamp and before churn), resolutions and escalations."""
    p, m, lo, hi = partner_months(w, active_only=True)
    faded = w.decline(p, hi)
    rate = story.lerp(story.SUPPORT_PER_PARTNER, w.cal.progress[m]) / active_share(w)[m]
    n = rng.poisson(rate * (1.0 + 4.0 * faded))
    p, m, faded = np.repeat(p, n), np.repeat(m, n), np.repeat(faded, n)
    k = len(p)
    ts = business_time(rng, np.repeat(lo, n), np.repeat(hi, n))
    user = w.pick_user(rng, p, ts)
    ids = ops.new_ids("tkt", k)
    pain = rng.integers(0, len(TOPICS), w.partners)
    topic = np.where(rng.random(k) < 0.45, pain[p], rng.integers(0, len(TOPICS), k))
    ops.preamble(rng, ts, p, user)
    asked = ops.props.choice([f'{{"topic":"{t}"}}' for t in TOPICS], topic)
    ops.add("Support Requested", ts, p, user, "tkt", ids, asked)
    median = story.lerp(story.RESOLVE_HOURS, w.cal.progress[m]) * HOUR
    resolved = ts + (rng.lognormal(0.0, 0.8, k) * median).astype(np.int64)
    horizon = w.horizon(p)
    ops.add("Support Resolved", np.where(resolved < horizon, resolved, -1), p, -1, "tkt", ids)
    escalate = rng.random(k) < _towards(story.lerp(story.ESCALATION, w.cal.progress[m]), 0.25, faded)
    raised = ts + (rng.uniform(1, 7, k) * DAY).astype(np.int64)
    ops.add("Escalation Raised", np.where(escalate & (raised < horizon), raised, -1), p)
    return _per_partner_month(w, p, m)


def deals(rng: np.random.Generator, w: World, ops: Ops) -> None:
    """Deal registrations and closings; revenue per partner rises by story.REVENUE_UPLIFT after the revamp."""
    p, m, lo, hi = partner_months(w, active_only=True)
    e = w.cal.progress[m]
    rate = story.lerp(story.DEALS_PER_PARTNER, e) * (1 + story.REVENUE_UPLIFT * e) / active_share(w)[m]
    n = rng.poisson(rate)
    # The pipeline at the start: deals registered in the months before the range close during it.
    start = w.cal.start
    earlier = np.nonzero(w.onboarded < start - PIPELINE_DAYS * DAY)[0]
    n_earlier = rng.poisson(story.DEALS_PER_PARTNER[0] * PIPELINE_DAYS / 30.4, len(earlier))
    p = np.concatenate([np.repeat(earlier, n_earlier), np.repeat(p, n)])
    lo = np.concatenate([np.full(n_earlier.sum(), start - PIPELINE_DAYS * DAY), np.repeat(lo, n)])
    hi = np.concatenate([np.full(n_earlier.sum(), start), np.repeat(hi, n)])
    k = len(p)
    ts = business_time(rng, lo, hi)
    user = w.pick_user(rng, p, ts)
    ids = ops.new_ids("deal", k)
    cents = (DEAL_SIZE_BY_TIER[w.tier[p]] * rng.lognormal(np.log(6_300.0), 0.45, k) * 100).astype(np.int64)
    ops.preamble(rng, ts, p, user)
    ops.add("Deal Registered", ts, p, user, "deal", ids, ops.props.pool(json_object({"amount": money(cents)})))
    closed = ts + (rng.lognormal(np.log(40.0), 0.5, k) * DAY).astype(np.int64)
    won = (rng.random(k) < 0.55) & (closed >= start) & (closed < w.horizon(p))
    final = cents * rng.uniform(0.85, 1.05, k)
    # Calibrate the measured uplift (closed amount per partner-month, after vs before) to the story's.
    after = w.cal.month_of(closed) >= w.cal.revamp
    pm_before, pm_after = w.in_month[:, : w.cal.revamp].sum(), w.in_month[:, w.cal.revamp :].sum()
    before_sum, after_sum = final[won & ~after].sum(), final[won & after].sum()
    if pm_before and pm_after and before_sum > 0 and after_sum > 0:
        measured = (after_sum / pm_after) / (before_sum / pm_before)
        final = np.where(after, final * (1 + story.REVENUE_UPLIFT) / measured, final)
    amount = ops.props.pool(json_object({"amount": money(np.round(final[won]))}))
    ops.add("Deal Closed", closed[won], p[won], -1, "deal", ids[won], amount)


def coordination(rng: np.random.Generator, w: World, ops: Ops) -> np.ndarray:
    """Manual touches by the program team (emails, calls, meetings), falling after the revamp."""
    p, m, lo, hi = partner_months(w)
    faded = w.decline(p, hi)
    n = rng.poisson(story.lerp(story.COORDINATION_PER_PARTNER, w.cal.progress[m]) * (1.0 + 0.6 * faded))
    p, m = np.repeat(p, n), np.repeat(m, n)
    ts = business_time(rng, np.repeat(lo, n), np.repeat(hi, n))
    channel = rng.choice(len(CHANNELS), len(p), p=CHANNEL_WEIGHTS)
    ops.add("Coordination Logged", ts, p, prop=ops.props.choice([f'{{"channel":"{c}"}}' for c in CHANNELS], channel))
    return _per_partner_month(w, p, m)


def costs(rng: np.random.Generator, w: World, ops: Ops, tickets: np.ndarray, touches: np.ndarray) -> None:
    """Monthly cost lines per partner: platform, support, account management, onboarding, MDF."""
    p, m, lo, hi = partner_months(w)
    k = len(p)
    onboarding = w.cal.month_of(w.onboarded[p]) == m
    lines = {
        "platform": np.full(k, 15_000) * rng.uniform(0.9, 1.1, k),
        "support": tickets[p, m] * 4_500 * rng.uniform(0.8, 1.2, k),
        "account_management": touches[p, m] * 3_000 * rng.uniform(0.8, 1.2, k),
        "onboarding": onboarding * 60_000 * rng.uniform(0.8, 1.2, k),
        "mdf": (rng.random(k) < 0.08) * rng.uniform(50_000, 300_000, k),
    }
    for category, cents in lines.items():
        ts = lo + (rng.uniform(0.85, 0.99, k) * (hi - lo)).astype(np.int64)
        text = json_object({"amount": money(np.round(cents)), "category": f'"{category}"'})
        ops.add("Cost Recorded", np.where(cents > 0, ts, -1), p, prop=ops.props.pool(text))


def surveys(rng: np.random.Generator, w: World, ops: Ops) -> None:
    """A quarterly satisfaction survey; scores rise after the revamp and fall before churn."""
    for m in range(1, w.cal.months, 3):
        wave = w.cal.bounds[m] + 7 * DAY
        p = w.user_partner
        live = (w.created <= wave) & (wave < w.deactivated) & (w.onboarded[p] <= wave) & (wave < w.offboarded[p])
        users = np.nonzero(live & ~w.dormant & (rng.random(len(p)) < SURVEY_RESPONSE))[0]
        p = w.user_partner[users]
        k = len(users)
        ts = wave + exp_duration(rng, 5.0, DAY, k) + HOUR
        ts = w.place_activity(rng, p, ts, np.full(k, wave + 30 * DAY))
        ts = np.where((ts >= w.created[users]) & (ts < w.deactivated[users]), ts, -1)
        soured = w.decline(p, ts + story.SOURING_LEAD_DAYS * DAY)
        mean = _towards(story.lerp(story.SURVEY_SCORE, w.cal.progress_at(ts)), 4.0, soured)
        score = np.clip(np.round(rng.normal(mean, 1.8)), 0, 10).astype(np.int64)
        ops.preamble(rng, ts, p, users)
        ops.add("Survey Responded", ts, p, users, prop=ops.props.choice([f'{{"score":{s}}}' for s in range(11)], score))


def _towards(normal: np.ndarray | float, churning: float, faded: np.ndarray) -> np.ndarray:
    """A rate moved from its normal value towards its value at a churner's full decline."""
    return normal + (churning - normal) * faded


def _per_partner_month(w: World, p: np.ndarray, m: np.ndarray) -> np.ndarray:
    counts = np.bincount(p * w.cal.months + m, minlength=w.partners * w.cal.months)
    return counts.reshape(w.partners, w.cal.months)
