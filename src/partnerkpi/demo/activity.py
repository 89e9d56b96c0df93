"""Hub sessions: which users of the active partners log in each month, and their clicks, minutes apart."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from partnerkpi.demo import story
from partnerkpi.demo.events import CODE, KIND, PAGE_PROPS, Batch, Props
from partnerkpi.demo.world import HOUR, US, World, business_time

DOCUMENTS = 240
PAGE_WEIGHTS = np.array([3, 8, 6, 2, 5, 2, 3, 1, 4, 2, 2, 2, 1, 2, 2, 1], np.float64)
SESSION_ROOM = 90 * 60 * US
MAX_GAP_SECONDS = 15 * 60  # well under the 30-minute session gap, so a session stays one session


@dataclass(frozen=True)
class Volume:
    """How much hub activity to generate: session rate and session length multipliers."""

    scale: float = 1.0
    stretch: float = 1.0


@dataclass(frozen=True)
class SessionPlan:
    """Active user-months, sorted by month: the window, session rate and session length of each."""

    month: np.ndarray
    user: np.ndarray
    partner: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    sessions: np.ndarray  # extra sessions per month (Poisson mean) at scale 1
    length: np.ndarray  # extra events per session (Poisson mean)
    offsets: np.ndarray  # rows of month m: offsets[m]:offsets[m + 1]

    @property
    def room(self) -> np.ndarray:
        """The most sessions each user-month's window holds (one per 90 minutes, at least one)."""
        return np.maximum(1, (self.hi - self.lo) // SESSION_ROOM)

    def expected_events(self, scale: float) -> float:
        """About how many session events an activity scale gives."""
        return float((np.minimum(1.0 + self.sessions * scale, self.room) * (2.0 + self.length)).sum())

    def volume_for(self, target: int) -> Volume:
        """The volume whose expected session events come closest to `target` (at least one session a month).

        More sessions first; once the windows are full (benchmark sizes), longer sessions of faster clicks.
        """
        full = float((self.room * (2.0 + self.length)).sum())
        if target >= full:
            return Volume(scale=float(np.max(self.room)), stretch=target / full if full else 1.0)
        lo, hi = 0.0, 1.0
        while self.expected_events(hi) < target:
            hi *= 2
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.expected_events(mid) < target else (lo, mid)
        return Volume(scale=hi)


def plan_sessions(rng: np.random.Generator, w: World) -> SessionPlan:
    """Pick each active partner's active users per month (at least one) and their session rates."""
    cal = w.cal
    parts: list[tuple[np.ndarray, ...]] = []
    for m in range(cal.months):
        users = np.nonzero(w.active[w.user_partner, m])[0]
        p = w.user_partner[users]
        lo = np.maximum(cal.bounds[m], w.created[users])
        hi = np.minimum(np.minimum(cal.bounds[m + 1], w.deactivated[users]), np.minimum(w.offboarded[p], cal.end))
        faded = w.decline(p, hi)
        chance = story.lerp(story.USER_ACTIVE_PROB, cal.progress[m]) * (1.0 - 0.65 * faded)
        chance = chance * np.where(w.dormant[users], story.lerp(story.DORMANT_WAKE, cal.progress[m]), 1.0)
        on = (hi - lo >= HOUR) & (rng.random(len(users)) < chance)
        has = np.bincount(p[on], minlength=w.partners) > 0
        on |= (users == w.first_user[p]) & ~has[p]
        users, p, lo, hi, faded = users[on], p[on], lo[on], hi[on], faded[on]
        rate = story.lerp(story.SESSIONS_PER_USER, cal.progress[m]) * w.user_intensity[users]
        rate = rate * (1.0 - 0.85 * faded)
        length = story.lerp(story.EVENTS_PER_SESSION, cal.progress[m]) * (1.0 - 0.3 * faded)
        parts.append((np.full(len(users), m), users, p, lo, hi, rate, np.broadcast_to(length, rate.shape)))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    offsets = np.searchsorted(cols[0], np.arange(cal.months + 1))
    return SessionPlan(*cols, offsets=offsets)


def month_sessions(
    rng: np.random.Generator,
    w: World,
    plan: SessionPlan,
    m: int,
    volume: Volume,
    props: Props,
    announcements: tuple[np.ndarray, np.ndarray],
) -> Batch:
    """All session events of month m: a login, a landing page, then pages, documents, announcements.

    Events that would fall after the user's window have ts -1 (the writer leaves them out).
    """
    rows = slice(plan.offsets[m], plan.offsets[m + 1])
    n_sessions = np.minimum(1 + rng.poisson(plan.sessions[rows] * volume.scale), plan.room[rows])
    user = np.repeat(plan.user[rows], n_sessions)
    partner = np.repeat(plan.partner[rows], n_sessions)
    hi = np.repeat(plan.hi[rows], n_sessions)
    start = _session_starts(rng, np.repeat(plan.lo[rows], n_sessions), hi, n_sessions)
    length = (2.0 + plan.length[rows]) * volume.stretch - 2.0
    n_events = 2 + rng.poisson(np.repeat(length, n_sessions))
    session = np.repeat(np.arange(len(start)), n_events)
    first = np.cumsum(n_events) - n_events
    n = int(n_events.sum())
    progress = w.cal.progress[m]
    mean_gap = story.lerp(story.GAP_SECONDS, progress) / volume.stretch
    gap = rng.standard_exponential(n, dtype=np.float32) * np.float32(mean_gap)
    gaps = ((np.minimum(gap, MAX_GAP_SECONDS) + 5) * US).astype(np.int64)
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    ts = start[session] + elapsed - elapsed[first][session]

    viewed, downloaded = story.lerp(story.DOC_VIEWED, progress), story.lerp(story.DOC_DOWNLOADED, progress)
    seen = story.lerp(story.ANNOUNCEMENT_SHARE, progress)
    r = rng.random(n, dtype=np.float32)
    code = np.full(n, CODE["Page Viewed"], np.int8)
    code[r < viewed + downloaded + seen] = CODE["Announcement Viewed"]
    code[r < viewed + downloaded] = CODE["Document Downloaded"]
    code[r < viewed] = CODE["Document Viewed"]
    code[first + 1] = CODE["Page Viewed"]
    code[first] = CODE["Logged In"]

    okind = np.full(n, -1, np.int8)
    onum = np.zeros(n, np.int64)
    doc = (code == CODE["Document Viewed"]) | (code == CODE["Document Downloaded"])
    onum[doc] = 1 + _draw(rng, 1.0 / np.arange(1, DOCUMENTS + 1) ** 0.9, int(doc.sum()))
    okind[doc] = KIND["doc"]
    ann_ts, ann_ids = announcements
    ann = np.nonzero(code == CODE["Announcement Viewed"])[0]
    pick = np.searchsorted(ann_ts, ts[ann], side="right") - rng.geometric(0.55, len(ann))
    known = pick >= 0
    code[ann[~known]] = CODE["Page Viewed"]
    onum[ann[known]] = ann_ids[pick[known]]
    okind[ann[known]] = KIND["ann"]

    prop = np.full(n, props.const("{}"), np.int64)
    page = code == CODE["Page Viewed"]
    prop[page] = props.choice(PAGE_PROPS, _draw(rng, PAGE_WEIGHTS, int(page.sum())))
    ts[ts >= hi[session]] = -1  # past the user's window: left out when written
    return Batch(ts, code, partner[session], user[session], okind, onum, prop)


def _session_starts(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    """Session starts spread over the window, one per equal slot, so sessions stay apart at any volume.

    Slots of half a day or more keep office hours; shorter slots (benchmark volumes) start the session
    in the first half of its slot.
    """
    index = np.arange(len(lo)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    slot = (hi - lo) / np.repeat(per_row, per_row)
    slot_lo = lo + (index * slot).astype(np.int64)
    slot_hi = slot_lo + slot.astype(np.int64)
    office = business_time(rng, slot_lo, slot_hi)
    early = slot_lo + (rng.random(len(lo)) * 0.5 * slot).astype(np.int64)
    return np.where(slot >= 12 * HOUR, office, early)


def _draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n indexes drawn with the given weights, through a 4096-slot lookup table (fast for millions)."""
    counts = np.round(weights / weights.sum() * 4096).astype(np.int64)
    table = np.repeat(np.arange(len(weights)), np.maximum(counts, 1))
    return table[rng.integers(0, len(table), n)]
