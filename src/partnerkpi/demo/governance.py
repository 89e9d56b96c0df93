"""Program-wide content and governance: announcements, policies, access grants and reviews, incidents, audits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from partnerkpi.demo import story
from partnerkpi.demo.events import Ops, iso, json_object, object_ids, quoted
from partnerkpi.demo.world import DAY, HOUR, MINUTE, NEVER, World, business_time, exp_duration

POLICY_TITLES = (
    "Partner Code of Conduct", "Data Protection Addendum", "Anti-Bribery Policy", "Brand Usage Guidelines",
    "Security Requirements for Partners", "Export Control Policy", "Deal Registration Rules", "MDF Policy",
)
GRANT_ROLES = ("admin", "editor", "viewer", "deal_desk", "mdf_manager")
ROLE_GRANT = np.array([0, 1, 1, 2, 1])  # the grant role of each user role (world.ROLES)
INCIDENT_CATEGORIES = ("access", "phishing", "malware", "data_handling")
ACCESS_INCIDENT_SHARE = (0.55, 0.30)  # the rest: phishing, malware, data handling in equal parts
AUDIT_AREAS = ("partner_access", "data_handling", "documentation", "training")
OTHER_AUDIT_WEIGHTS = (0.0, 0.40, 0.35, 0.25)
SEVERITIES = ("low", "medium", "high")


def announcements(rng: np.random.Generator, w: World, ops: Ops) -> tuple[np.ndarray, np.ndarray]:
    """Program-wide announcements, two to five a month; returns their times and numbers, in time order."""
    b = w.cal.bounds
    n = 2 + np.minimum(rng.poisson(1.0, w.cal.months), 3)
    m = np.repeat(np.arange(w.cal.months), n)
    ts = np.sort(business_time(rng, b[m], b[m + 1]))
    ids = ops.new_ids("ann", len(ts))
    ops.add("Announcement Published", ts, kind="ann", number=ids)
    return ts, ids


def policies(rng: np.random.Generator, w: World, ops: Ops) -> None:
    """A policy every quarter (most required); partners acknowledge them, new partners at onboarding."""
    b = w.cal.bounds
    months = np.arange(1, w.cal.months, 3)
    published = business_time(rng, b[months], b[months + 1])
    required = (rng.random(len(months)) < 0.7) | (np.arange(len(months)) == 0)
    if len(months) > 1 and required.all():
        required[-1] = False  # a program always has some optional reading
    ids = ops.new_ids("pol", len(months))
    year = published.astype("datetime64[us]").astype("datetime64[Y]").astype(np.int64) + 1970
    titles = [f"{POLICY_TITLES[i % len(POLICY_TITLES)]} {y}" for i, y in enumerate(year)]
    flag = ops.props.pool(json_object({
        "title": quoted(pa.array(titles, pa.string())),
        "required": pa.array(np.where(required, "true", "false"), pa.string()),
    }))
    ops.add("Policy Published", published, kind="pol", number=ids, prop=flag)
    p = np.tile(np.arange(w.partners), len(months))
    pol = np.repeat(np.arange(len(months)), w.partners)
    base = np.maximum(published[pol], w.onboarded[p] + DAY)
    e = w.cal.progress_at(base)
    faded = w.decline(p, base)
    chance = np.where(required[pol], story.lerp(story.POLICY_ACK, e), 0.3)
    chance = chance * (1.0 - 0.5 * faded)
    ts = np.where(rng.random(len(p)) < chance, base + exp_duration(rng, 8.0, DAY, len(p)) + HOUR, -1)
    ts = w.place_activity(rng, p, ts, base + 75 * DAY)
    # A required policy still unread a month on: the program team chases it (an email); most partners then
    # read it when they are next on the hub, the others are escalated.
    chase = base + (rng.uniform(25, 35, len(p)) * DAY).astype(np.int64)
    chased = required[pol] & ((ts < 0) | (ts > chase)) & (chase < w.horizon(p))
    ops.add("Coordination Logged", np.where(chased, chase, -1), p, prop='{"channel":"email"}')
    late = chase + exp_duration(rng, 7.0, DAY, len(p)) + HOUR
    late = np.where(chased & (ts < 0) & (rng.random(len(p)) < 0.9 - 0.6 * faded), late, -1)
    late = w.place_activity(rng, p, late, w.horizon(p))
    ts = np.where(late >= 0, late, ts)
    raised = chase + (rng.uniform(14, 21, len(p)) * DAY).astype(np.int64)
    ops.add("Escalation Raised", np.where(chased & (ts < 0) & (raised < w.horizon(p)), raised, -1), p)
    user = w.pick_user(rng, p, ts)
    ops.preamble(rng, ts, p, user)
    ops.add("Policy Acknowledged", ts, p, user, "pol", ids[pol])


def access(rng: np.random.Generator, w: World, ops: Ops) -> dict[str, np.ndarray]:
    """Grants for every user, revocations after offboarding (slow or forgotten before the revamp), reviews."""
    cal, n_u = w.cal, len(w.created)
    user = np.arange(n_u)
    holder_end = np.minimum(np.minimum(w.deactivated, w.offboarded[w.user_partner]), cal.end)
    extra = (rng.random(n_u) < 0.12) & (holder_end - np.maximum(w.created, cal.start) > 2 * DAY)
    extra_at = business_time(rng, np.maximum(w.created, cal.start) + DAY, holder_end)
    u = np.concatenate([user, user[extra]])
    granted = np.concatenate([w.created + (rng.uniform(1, 20, n_u) * MINUTE).astype(np.int64), extra_at[extra]])
    role = np.concatenate([ROLE_GRANT[w.user_role], 3 + rng.integers(0, 2, extra.sum())])
    p = w.user_partner[u]
    k = len(u)
    ids = ops.new_ids("grant", k)
    holder_off = np.minimum(w.deactivated[u], w.offboarded[p])
    role_change = np.concatenate([np.zeros(n_u, bool), rng.random(extra.sum()) < 0.4])
    revoked = np.where(role_change, granted + exp_duration(rng, 120.0, DAY, k) + DAY, NEVER)
    revoked = np.where(revoked < np.minimum(holder_off, cal.end), revoked, NEVER)
    gone = (holder_off < cal.end) & (revoked == NEVER)
    e = cal.progress_at(holder_off)
    prompt = rng.random(k) < story.lerp(story.REVOKE_ON_OFFBOARDING, e)
    delay = (rng.lognormal(0.0, 0.9, k) * story.lerp(story.REVOKE_HOURS, e) * HOUR).astype(np.int64)
    revoked = np.where(gone & prompt, holder_off + delay + MINUTE, revoked)
    revoked = _reviews(rng, w, ops, p, ids, granted, revoked, holder_off)
    role_text = ops.props.choice([f'{{"role":"{r}"}}' for r in GRANT_ROLES], role)
    ops.add("Access Granted", granted, p, u, "grant", ids, role_text)
    ops.add("Access Revoked", np.where(revoked < cal.end, revoked, -1), p, u, "grant", ids)
    return {"partner": p, "granted": granted, "revoked": revoked, "holder_off": holder_off}


def _reviews(
    rng: np.random.Generator, w: World, ops: Ops, p: np.ndarray, grant: np.ndarray, granted: np.ndarray,
    revoked: np.ndarray, holder_off: np.ndarray,
) -> np.ndarray:
    """Quarterly access reviews of open grants; a completed review revokes an offboarded holder's grant."""
    cal = w.cal
    revoked = revoked.copy()
    for m in range(0, cal.months, 3):
        sched = business_time(rng, np.full(len(p), cal.bounds[m]), np.full(len(p), cal.bounds[m] + 3 * DAY))
        due_in = (rng.choice(np.array([14, 30]), len(p)) * DAY).astype(np.int64)
        due = sched + due_in
        due_text = quoted(iso(due))
        open_ = (granted < sched) & (sched < revoked) & (w.onboarded[p] <= sched) & (sched < w.offboarded[p])
        rows = np.nonzero(open_)[0]
        if not len(rows):
            continue
        ids = ops.new_ids("rev", len(rows))
        text = json_object({"due_at": due_text.take(rows), "grant_id": quoted(object_ids("grant", grant[rows]))})
        ops.add("Access Review Scheduled", sched[rows], p[rows], -1, "rev", ids, ops.props.pool(text))
        e = cal.progress[m]
        done = sched[rows] + exp_duration(rng, 0.45 * due_in[rows] / DAY, DAY, len(rows)) + HOUR
        done_ok = (rng.random(len(rows)) < story.lerp(story.REVIEW_COMPLETION, e)) & (done < w.horizon(p[rows]))
        revoke = (holder_off[rows] < done) | (rng.random(len(rows)) < 0.04)
        decision = ops.props.choice(['{"decision":"keep"}', '{"decision":"revoke"}'], revoke)
        ops.add("Access Review Completed", np.where(done_ok, done, -1), p[rows], -1, "rev", ids, decision)
        at = done + (rng.uniform(1, 24, len(rows)) * HOUR).astype(np.int64)
        revoked[rows] = np.where(done_ok & revoke, np.minimum(revoked[rows], at), revoked[rows])
    return revoked


def incidents(rng: np.random.Generator, w: World, ops: Ops) -> None:
    """Rare security incidents, many about access; fewer after the revamp."""
    mask = w.in_month & w.live
    p, m = np.nonzero(mask)
    hit = rng.random(len(p)) < story.lerp(story.INCIDENTS_PER_PARTNER, w.cal.progress[m])
    p, m = p[hit], m[hit]
    ts = business_time(rng, w.win_lo[p, m], w.win_hi[p, m])
    ids = ops.new_ids("inc", len(p))
    access_share = story.lerp(ACCESS_INCIDENT_SHARE, w.cal.progress[m])
    category = np.where(rng.random(len(p)) < access_share, 0, rng.integers(1, len(INCIDENT_CATEGORIES), len(p)))
    prop = ops.props.choice([f'{{"category":"{c}"}}' for c in INCIDENT_CATEGORIES], category)
    ops.add("Security Incident Reported", ts, p, -1, "inc", ids, prop)


def audits(rng: np.random.Generator, w: World, ops: Ops, grants: dict[str, np.ndarray]) -> None:
    """Quarterly audits: partners still holding grants of departed users get partner_access findings."""
    gp, granted, revoked, holder_off = grants["partner"], grants["granted"], grants["revoked"], grants["holder_off"]
    texts = [f'{{"area":"{a}","severity":"{s}"}}' for a in AUDIT_AREAS for s in SEVERITIES]
    for m in range(2, w.cal.months, 3):
        at = business_time(rng, np.full(w.partners, w.cal.bounds[m] + 10 * DAY), w.cal.bounds[m + 1])
        stale_grant = (granted < at[gp]) & (at[gp] < revoked) & (holder_off < at[gp] - 14 * DAY)
        stale = np.bincount(gp[stale_grant], minlength=w.partners) > 0
        live = (w.onboarded <= at) & (at < w.offboarded) & (at < w.cal.end)
        access_finding = live & stale & (rng.random(w.partners) < 0.6)
        other = live & ~access_finding & (rng.random(w.partners) < 0.04)
        area = np.where(access_finding, 0, rng.choice(len(AUDIT_AREAS), w.partners, p=OTHER_AUDIT_WEIGHTS))
        severity = np.where(
            access_finding, 1 + (rng.random(w.partners) < 0.4), rng.choice(3, w.partners, p=(0.6, 0.3, 0.1))
        )
        p = np.nonzero(access_finding | other)[0]
        ids = ops.new_ids("find", len(p))
        prop = ops.props.choice(texts, area[p] * len(SEVERITIES) + severity[p])
        ops.add("Audit Finding Recorded", at[p], p, -1, "find", ids, prop)
