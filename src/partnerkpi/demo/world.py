"""The demo's partners and users, the calendar, and which partner is active in which month.

Instants are int64 microseconds since the epoch (naive UTC); `NEVER` stands for a null instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from partnerkpi.demo import story

US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEVER = np.int64(2**62)

PARTNER_TYPES = ("reseller", "distributor", "agency", "supplier", "referral")
TYPE_WEIGHTS = (0.35, 0.12, 0.15, 0.18, 0.20)
TIERS = ("gold", "silver", "bronze")
TIER_WEIGHTS = (0.15, 0.35, 0.50)
TIER_ENGAGEMENT = np.array([1.4, 1.0, 0.8])
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_WEIGHTS = (0.40, 0.30, 0.20, 0.10)
ROLES = ("admin", "sales", "marketing", "finance", "technical")
ROLE_WEIGHTS = (0.10, 0.35, 0.20, 0.15, 0.20)
USER_COUNT_WEIGHTS = (0.12, 0.20, 0.20, 0.16, 0.12, 0.09, 0.06, 0.05)  # 1 to 8 users

_NAME_HEADS = (
    "North", "Blue", "Bright", "Iron", "Silver", "Cedar", "Summit", "Harbor", "Atlas", "Nova", "Pioneer",
    "Red", "Granite", "Swift", "Evergreen", "Lumen", "Vertex", "Orbit", "Keystone", "Meridian", "Quantum",
    "Crest", "Falcon", "Horizon", "Oak", "River", "Sterling", "Triad", "Union", "Zenith",
)
_NAME_CORES = (
    "Data", "Cloud", "Logic", "Works", "Systems", "Networks", "Digital", "Labs", "Partners", "Solutions",
    "Tech", "Media", "Supply", "Commerce", "Analytics", "Security", "Software", "Consulting", "Integrations",
)
_NAME_TAILS = ("Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Group", "Co.", "AG", "Pty Ltd", "BV")
_FIRST = (
    "Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jada", "Kofi", "Lena", "Marco",
    "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
)
_LAST = (
    "Adams", "Baker", "Costa", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Khan",
    "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber", "Young", "Zhang",
)


@dataclass(frozen=True)
class Calendar:
    """The range: `months` month boundaries ending at `end` (exclusive), and the revamp month."""

    bounds: np.ndarray  # int64 us, months + 1 boundaries
    revamp: int
    progress: np.ndarray  # story.adoption per month

    @classmethod
    def build(cls, end: date, months: int) -> Calendar:
        """The calendar of the `months` months before `end` (the first day of a month)."""
        if end.day != 1:
            raise ValueError(f"end must be the first day of a month, got {end.isoformat()}")
        if months < 1:
            raise ValueError(f"months must be at least 1, got {months}")
        last = np.datetime64(f"{end.year:04d}-{end.month:02d}", "M")
        bounds = (last - months + np.arange(months + 1)).astype("datetime64[us]").astype(np.int64)
        return cls(bounds, story.revamp_index(months), story.adoption(months))

    @property
    def months(self) -> int:
        """How many months the range has."""
        return len(self.bounds) - 1

    @property
    def start(self) -> np.int64:
        """The first instant of the range."""
        return self.bounds[0]

    @property
    def end(self) -> np.int64:
        """The end of the range (exclusive)."""
        return self.bounds[-1]

    def month_of(self, ts: np.ndarray) -> np.ndarray:
        """The month index of each instant: -1 before the range, `months` from its end on."""
        return np.searchsorted(self.bounds, ts, side="right") - 1

    def progress_at(self, ts: np.ndarray) -> np.ndarray:
        """The revamp's adoption progress at each instant (0 before the range, last value after it)."""
        return self.progress[np.clip(self.month_of(ts), 0, self.months - 1)]


def business_time(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A random instant in [lo, hi) for each pair, moved into office hours on weekdays where it fits."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, np.int64), np.asarray(hi, np.int64))
    t = lo + (rng.random(lo.shape) * (hi - lo)).astype(np.int64)
    day = t - t % DAY
    weekday = (day // DAY + 3) % 7
    weekend_shift = np.where((weekday >= 5) & (rng.random(t.shape) < 0.85), (weekday - 4) * DAY, 0)
    hour = rng.normal(13.0, 2.6, t.shape)
    hour = np.where((hour >= 7.0) & (hour < 20.0), hour, rng.uniform(8.0, 18.0, t.shape))
    moved = day - weekend_shift + (hour * HOUR).astype(np.int64)
    return np.where((moved >= lo) & (moved < hi), moved, t)


def exp_duration(rng: np.random.Generator, mean: np.ndarray | float, unit: int, n: int) -> np.ndarray:
    """Exponential durations with the given mean, in microseconds."""
    return (rng.exponential(1.0, n) * np.asarray(mean) * unit).astype(np.int64)


@dataclass
class World:
    """Partners, users and the partner-month activity plan that every generator respects."""

    cal: Calendar
    onboarded: np.ndarray
    offboarded: np.ndarray  # NEVER when not offboarded
    engagement: np.ndarray
    tier: np.ndarray  # index into TIERS
    churn_from: np.ndarray  # start of the decline before offboarding, NEVER for partners that stay or leave abruptly
    fade_full: np.ndarray  # the instant the decline reaches its depth (NEVER with churn_from)
    fade_depth: np.ndarray  # 0..1: how far the partner declines (0 for partners that do not fade)
    first_user: np.ndarray  # the partner's primary (admin) user; its users are contiguous from there
    user_count: np.ndarray
    user_partner: np.ndarray
    created: np.ndarray
    deactivated: np.ndarray  # NEVER when still active
    dormant: np.ndarray  # users that never used the old portal (some wake up after the revamp)
    user_role: np.ndarray
    user_intensity: np.ndarray
    partner_table: pa.Table
    user_table: pa.Table
    in_month: np.ndarray  # [partner, month]: the partner is in the month's population (KPI-SPEC §4)
    win_lo: np.ndarray  # [partner, month]: the partner's live window in the month
    win_hi: np.ndarray
    active: np.ndarray  # [partner, month]: the partner has activity events in the month
    next_active: np.ndarray  # [partner, month]: the first active month from there on (months if none)

    @property
    def partners(self) -> int:
        """How many partners there are."""
        return len(self.onboarded)

    @property
    def live(self) -> np.ndarray:
        """[partner, month]: the partner has at least an hour of live window in the month."""
        return self.win_hi - self.win_lo >= HOUR

    def decline(self, partner: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """0..1 per instant: how far its partner has faded on the way out (0 outside a decline)."""
        return fade(self.churn_from[partner], self.fade_full[partner], self.fade_depth[partner], ts)

    def horizon(self, partner: np.ndarray) -> np.ndarray:
        """The first instant at which the partner can no longer have events."""
        return np.minimum(self.offboarded[partner], self.cal.end)

    def pick_user(self, rng: np.random.Generator, partner: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """A random hub user of each partner that is live at `ts`, else the partner's primary user."""
        k = self.first_user[partner] + (rng.random(len(partner)) * self.user_count[partner]).astype(np.int64)
        ok = (self.created[k] <= ts) & (ts < self.deactivated[k]) & ~self.dormant[k]
        return np.where(ok, k, self.first_user[partner]).astype(np.int64)

    def place_activity(
        self, rng: np.random.Generator, partner: np.ndarray, ts: np.ndarray, deadline: np.ndarray
    ) -> np.ndarray:
        """Move each action into a month where its partner is active (the next one if needed); -1 if none."""
        months = self.cal.months
        m = self.cal.month_of(ts)
        mc = np.clip(m, 0, months - 1)
        ok = (
            (m >= 0) & (m < months) & self.active[partner, mc]
            & (ts >= self.win_lo[partner, mc]) & (ts < self.win_hi[partner, mc])
        )
        nxt = self.next_active[partner, np.clip(np.where(m < 0, 0, m + 1), 0, months)]
        nc = np.clip(nxt, 0, months - 1)
        later = business_time(rng, self.win_lo[partner, nc], self.win_hi[partner, nc])
        out = np.where(ok, ts, np.where(nxt < months, later, -1))
        return np.where((ts < 0) | (out > deadline), -1, out)


def build_world(rng: np.random.Generator, cal: Calendar, partners: int) -> World:
    """Draw the partners, their users, churn, and the partner-month activity plan."""
    if partners < 1:
        raise ValueError(f"partners must be at least 1, got {partners}")
    # The decline before churn draws from its own stream, so the program's partners, users and activity
    # plan stay those of the same seed without it.
    fade_rng = rng.spawn(1)[0]
    p = _draw_partners(rng, fade_rng, cal, partners)
    u = _draw_users(rng, cal, p)
    return World(cal=cal, **p, **u, **_plan_activity(rng, fade_rng, cal, p, u))


def _draw_partners(rng: np.random.Generator, fade_rng: np.random.Generator, cal: Calendar, n: int) -> dict:
    start, end = int(cal.start), int(cal.end)
    new = rng.random(n) < story.NEW_PARTNER_SHARE
    old_onb = business_time(rng, np.full(n, start - 4 * 365 * DAY), np.full(n, start - 30 * DAY))
    month = rng.integers(0, cal.months, n)
    new_onb = business_time(rng, cal.bounds[month], np.minimum(cal.bounds[month + 1], end - DAY))
    onboarded = np.sort(np.where(new, new_onb, old_onb))
    tier = rng.choice(len(TIERS), n, p=TIER_WEIGHTS)
    engagement = rng.lognormal(0.0, 0.6, n) * TIER_ENGAGEMENT[tier]
    offboarded = np.full(n, NEVER, np.int64)
    hazard_scale = np.clip(engagement ** -0.7, 0.3, 3.0)
    for m in range(cal.months):
        lo, hi = cal.bounds[m], cal.bounds[m + 1]
        can = (offboarded == NEVER) & (onboarded + 120 * DAY <= lo)
        hazard = story.lerp(story.CHURN_HAZARD, cal.progress[m]) * hazard_scale
        leave = can & (rng.random(n) < hazard)
        offboarded[leave] = business_time(rng, np.full(leave.sum(), lo + DAY), np.full(leave.sum(), hi - DAY))
    # Most churners fade first: a decline that starts 2-4 months before they leave and sets in within a week
    # or two, to a depth of their own; the others leave with no trail.
    fading = (offboarded < NEVER) & (fade_rng.random(n) < story.FADING_SHARE)
    lead = (fade_rng.uniform(*story.CHURN_LEAD_DAYS, n) * DAY).astype(np.int64)
    churn_from = np.where(fading, offboarded - lead, NEVER)
    fade_full = np.where(fading, churn_from + (story.FADE_SETTLE * lead).astype(np.int64), NEVER)
    fade_depth = np.where(fading, fade_rng.uniform(*story.FADE_DEPTH, n), 0.0)
    kind = rng.choice(len(PARTNER_TYPES), n, p=TYPE_WEIGHTS)
    region = rng.choice(len(REGIONS), n, p=REGION_WEIGHTS)
    names = _company_names(rng, n)
    width = max(4, len(str(n)))
    table = pa.table(
        {
            "partner_id": [f"p-{i + 1:0{width}d}" for i in range(n)],
            "name": names,
            "type": pa.array(np.array(PARTNER_TYPES)[kind]),
            "tier": pa.array(np.array(TIERS)[tier]),
            "region": pa.array(np.array(REGIONS)[region]),
            "onboarded_at": _timestamps(onboarded),
            "offboarded_at": _timestamps(offboarded),
        }
    )
    return {
        "onboarded": onboarded, "offboarded": offboarded, "engagement": engagement, "tier": tier,
        "churn_from": churn_from, "fade_full": fade_full, "fade_depth": fade_depth, "partner_table": table,
    }


def _draw_users(rng: np.random.Generator, cal: Calendar, p: dict) -> dict:
    onb, off = p["onboarded"], p["offboarded"]
    n_p = len(onb)
    counts = rng.choice(len(USER_COUNT_WEIGHTS), n_p, p=USER_COUNT_WEIGHTS) + 1
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    partner = np.repeat(np.arange(n_p), counts)
    n = len(partner)
    rank = np.arange(n) - first[partner]
    primary = rank == 0
    horizon = np.minimum(off[partner], cal.end)
    later = onb[partner] + (rng.exponential(90.0, n) * rank * DAY).astype(np.int64)
    spread = onb[partner] + (rng.random(n) * (horizon - DAY - onb[partner])).astype(np.int64)
    created = np.where(later < horizon - DAY, later, spread)
    created = business_time(rng, created, np.minimum(created + DAY, horizon - HOUR))
    created = np.where(primary, onb[partner] + (rng.uniform(5, 90, n) * MINUTE).astype(np.int64), created)
    role = np.where(primary, 0, rng.choice(len(ROLES), n, p=ROLE_WEIGHTS))
    lo = np.maximum(created + 30 * DAY, cal.start)
    leaves = ~primary & (rng.random(n) < 0.18) & (lo < horizon - DAY)
    deactivated = np.where(leaves, business_time(rng, lo, np.maximum(lo + 1, horizon - DAY)), NEVER)
    deactivated = np.minimum(deactivated, off[partner])
    dormant = ~primary & (rng.random(n) < 0.12)
    intensity = rng.lognormal(0.0, 0.5, n)
    ids = [f"u-{i + 1:0{max(5, len(str(n)))}d}" for i in range(n)]
    partner_ids = p["partner_table"].column("partner_id").to_pylist()
    names = p["partner_table"].column("name").to_pylist()
    firsts = rng.integers(0, len(_FIRST), n)
    lasts = rng.integers(0, len(_LAST), n)
    emails = []
    for i in range(n):
        domain = "".join(ch for ch in "".join(names[partner[i]].split(" ")[:2]).lower() if ch.isalnum())
        local = f"{_FIRST[firsts[i]].lower()}.{_LAST[lasts[i]].lower()}{'' if rank[i] == 0 else rank[i] + 1}"
        emails.append(f"{local}@{domain}{partner[i] + 1}.example")
    table = pa.table(
        {
            "user_id": ids,
            "partner_id": pa.array(partner_ids).take(pa.array(partner)),
            "email": emails,
            "role": pa.array(np.array(ROLES)[role]),
            "created_at": _timestamps(created),
            "deactivated_at": _timestamps(deactivated),
        }
    )
    return {
        "first_user": first, "user_count": counts.astype(np.int64), "user_partner": partner,
        "created": created, "deactivated": deactivated, "dormant": dormant, "user_role": role,
        "user_intensity": intensity, "user_table": table,
    }


def _plan_activity(rng: np.random.Generator, fade_rng: np.random.Generator, cal: Calendar, p: dict, u: dict) -> dict:
    """Choose the active partners of each month: exactly the story's share, favouring engaged partners."""
    onboarded, offboarded, n = p["onboarded"], p["offboarded"], len(p["onboarded"])
    b = cal.bounds
    in_month = (onboarded[:, None] < b[None, 1:]) & (offboarded[:, None] >= b[None, :-1])
    win_lo = np.maximum(b[None, :-1], u["created"][u["first_user"]][:, None])
    win_hi = np.minimum(np.minimum(b[None, 1:], offboarded[:, None]), cal.end)
    live = in_month & (win_hi - win_lo >= HOUR)
    share = story.lerp(story.ACTIVE_SHARE, cal.progress) + rng.uniform(-0.012, 0.012, cal.months)
    new_boost = np.where((b[None, :-1] - onboarded[:, None]) < 60 * DAY, 25.0, 1.0)
    faded = fade(p["churn_from"][:, None], p["fade_full"][:, None], p["fade_depth"][:, None], win_hi)
    # Larger partners are likelier to use the hub in a month, so the share of users in active partners
    # exceeds the share of active partners (portal_usage_rate, a share of users, tells the same story).
    size = u["user_count"][:, None].astype(np.float64) ** story.ACTIVE_SIZE_EXPONENT
    weight = p["engagement"][:, None] * size * new_boost * (1.0 - 0.7 * faded)
    keys = np.log(rng.random((n, cal.months))) / weight  # weighted sampling without replacement
    # A fading partner as a whole stops coming, however many users it has (its size would outweigh the
    # weight alone): it skips a month with a chance that grows with its decline.
    keys[~live | (fade_rng.random((n, cal.months)) < story.FADE_SKIP * faded)] = -np.inf
    active = np.zeros((n, cal.months), bool)
    for m in range(cal.months):
        k = min(int(round(share[m] * in_month[:, m].sum())), int(live[:, m].sum()))
        if k > 0:
            active[np.argsort(-keys[:, m], kind="stable")[:k], m] = True
    next_active = np.full((n, cal.months + 1), cal.months, np.int64)
    for m in range(cal.months - 1, -1, -1):
        next_active[:, m] = np.where(active[:, m], m, next_active[:, m + 1])
    return {
        "in_month": in_month, "win_lo": win_lo, "win_hi": win_hi, "active": active, "next_active": next_active,
    }


def fade(start: np.ndarray, full: np.ndarray, depth: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """0..1 per instant: the decline from `start` rising linearly to `depth` at `full` (0 when start is NEVER)."""
    span = np.maximum(np.asarray(full, np.float64) - start, 1.0)
    return depth * np.clip((np.asarray(ts, np.float64) - start) / span, 0.0, 1.0)


def _company_names(rng: np.random.Generator, n: int) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    heads = rng.integers(0, len(_NAME_HEADS), n)
    cores = rng.integers(0, len(_NAME_CORES), n)
    tails = rng.integers(0, len(_NAME_TAILS), n)
    for h, c, t in zip(heads, cores, tails, strict=True):
        name = f"{_NAME_HEADS[h]} {_NAME_CORES[c]} {_NAME_TAILS[t]}"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{_NAME_HEADS[h]} {_NAME_CORES[c]} {seen[name]} {_NAME_TAILS[t]}")
    return out


def _timestamps(values: np.ndarray) -> pa.Array:
    """Naive UTC timestamp[us] with NEVER as null."""
    values = np.asarray(values, np.int64)
    return pa.array(values, mask=values >= NEVER, type=pa.int64()).cast(pa.timestamp("us"))
