"""Explainable partner health scores, Gainsight-style: weighted components, each measured, scored 0..100
and shown with its contribution; risk levels with the reasons in words. Manual overrides are in `overrides`.

The configuration (`defaults/health.yaml`, or the user's file) names the components. Each measures one
value per partner looking back from `as_of`, for all partners at once (ibis over the canonical tables):

- days_since_activity: days since the partner's last activity event before `as_of`; a partner with
  none counts from the later of its onboarding and the start of the history (its first activity event).
- login_trend: Logged In events of the last `recent_days` against the `baseline_days` before them, both
  as a rate per 30 days over the days the partner was onboarded and the history covers; the change in %.
  No data when the baseline window is less than half covered or holds no login.
- task_completion: of the partner's tasks due in the last `window_days` (not cancelled before due),
  the % completed at or before due. No data without such a task.
- overdue_compliance: compliance tasks at `as_of` past due, neither completed nor cancelled (a count).
- support_trend: Support Requested per `recent_days` in the last `recent_days` minus the same rate over
  the `baseline_days` before them (extra requests). No data when the baseline is less than half covered.
- satisfaction: the mean of each user's latest Survey Responded score (0..10) of the last `window_days`.
  No data without an answer.
- access_hygiene: grants open at `as_of` whose holder (a user) was deactivated before it (a count).

A component scores its value through `points` (piecewise linear, flat beyond the ends); one with no
data scores the config's `neutral_score` and says so. The score is Σ wᵢ·sᵢ / Σ wᵢ, and each component's
contribution is wᵢ·sᵢ / Σ wᵢ, so the contributions add up to the score.

The config's `caps` (see `health_caps`) are gates on the level: a partner with a compliance task overdue
past a grace period, a required policy unacknowledged past it, or no activity for a while, is at best at
the cap's `max_level` whatever its score; the reasons say so first ("level capped at watch: ...").
A manual override wins over a cap (a person decided, with a reason); the cap's reason stays visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from partnerkpi.catalog import Catalog
from partnerkpi.engine.derived import grants as derived_grants
from partnerkpi.engine.derived import is_activity, last_activity
from partnerkpi.engine.derived import tasks as derived_tasks
from partnerkpi.errors import ConfigError
from partnerkpi.insights.health_caps import CAP_QUERIES, CapConfig, CapResult, judge, policy_titles

if TYPE_CHECKING:
    from partnerkpi.insights.overrides import Override

DAY = timedelta(days=1)
Measure = Literal[
    "days_since_activity", "login_trend", "task_completion", "overdue_compliance", "support_trend",
    "satisfaction", "access_hygiene",
]


class HealthConfigError(ConfigError):
    """The health-score configuration has problems (file and key)."""

    subject = "the health-score configuration"


# -- configuration ----------------------------------------------------------------------------------
class ComponentConfig(BaseModel):
    """One component: what it measures, how a value maps to 0..100, its weight, the KPI of its levers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Measure
    weight: float = Field(gt=0)
    points: tuple[tuple[float, float], ...]
    label: str | None = None
    kpi: str | None = None
    recent_days: int = Field(30, gt=0)
    baseline_days: int = Field(60, gt=0)
    window_days: int = Field(90, gt=0)

    @field_validator("points")
    @classmethod
    def _points(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not points:
            raise ValueError("give at least one [value, score] point")
        if any(not 0 <= s <= 100 for _, s in points):
            raise ValueError("scores must lie in 0..100")
        if any(b[0] <= a[0] for a, b in pairwise(points)):
            raise ValueError("point values must be strictly increasing")
        return points


class Level(BaseModel):
    """A risk level: the scores >= `min` (inclusive) below the next better level's `min` (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    min: float = Field(ge=0, le=100)


class HealthConfig(BaseModel):
    """Components, levels (best first), the at-risk levels, the neutral score and the reason threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    components: dict[str, ComponentConfig] = Field(min_length=1)
    levels: tuple[Level, ...] = Field(min_length=1)
    at_risk_levels: tuple[str, ...] = Field(min_length=1)
    caps: tuple[CapConfig, ...] = ()
    neutral_score: float = Field(70, ge=0, le=100)
    reason_below: float = Field(60, ge=0, le=100)
    source: str = "built-in"

    @field_validator("levels")
    @classmethod
    def _levels(cls, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        if any(b.min >= a.min for a, b in pairwise(levels)):
            raise ValueError("list the levels from the best down, with strictly decreasing `min`")
        if levels[-1].min != 0:
            raise ValueError("the lowest level must have min 0, so that every score has a level")
        if len({lv.name for lv in levels}) != len(levels):
            raise ValueError("level names must be unique")
        return levels

    def level_of(self, score: float) -> str:
        """The level holding `score` (its `min` inclusive)."""
        return next((lv.name for lv in self.levels if score >= lv.min), self.levels[-1].name)

    def worse(self, a: str, b: str) -> str:
        """The worse of two levels (the one listed later)."""
        names = [lv.name for lv in self.levels]
        return a if names.index(a) >= names.index(b) else b


def load_config(path: str | Path | None = None, catalog: Catalog | None = None) -> HealthConfig:
    """The configuration in `path` (default: the built-in one); HealthConfigError lists every problem with
    its file and key. With a catalog, each component's `kpi` must be a catalog KPI id."""
    if path is None:
        name = "built-in health.yaml"
        text = resources.files("partnerkpi.insights").joinpath("defaults", "health.yaml").read_text("utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HealthConfigError([f"{name}: cannot read the file: {exc}"]) from None
    return parse_config(text, name, catalog)


def parse_config(text: str, source: str, catalog: Catalog | None = None) -> HealthConfig:
    """The configuration in YAML `text`, read from `source` (named in problems)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HealthConfigError([f"{source}: not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise HealthConfigError([f"{source}: expected a mapping with keys components, levels, at_risk_levels"])
    try:
        config = HealthConfig.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = [f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise HealthConfigError(problems) from None
    problems = [
        f"{source}: at_risk_levels: '{name}' is not a level (levels: {', '.join(lv.name for lv in config.levels)})"
        for name in config.at_risk_levels if name not in {lv.name for lv in config.levels}
    ]
    problems += [
        f"{source}: caps.{i}.max_level: '{cap.max_level}' is not a level "
        f"(levels: {', '.join(lv.name for lv in config.levels)})"
        for i, cap in enumerate(config.caps) if cap.max_level not in {lv.name for lv in config.levels}
    ]
    if catalog is not None:
        problems += [
            f"{source}: components.{name}.kpi: unknown KPI '{c.kpi}'"
            for name, c in config.components.items() if c.kpi is not None and c.kpi not in catalog
        ]
    if problems:
        raise HealthConfigError(problems)
    return config


def score_of(points: Sequence[tuple[float, float]], value: float) -> float:
    """`value` scored through `points`: linear between two points, the end score beyond either end."""
    if value <= points[0][0]:
        return float(points[0][1])
    for (x0, y0), (x1, y1) in pairwise(points):
        if value <= x1:
            return y0 + (y1 - y0) * (value - x0) / (x1 - x0)
    return float(points[-1][1])


# -- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComponentScore:
    """One component for one partner: the measured value (None: no data), its score, weight and
    contribution (weight × score / Σ weights), what was measured in words, and the reason when it hurts."""

    name: str
    label: str
    measured: float | None
    score: float
    weight: float
    contribution: float
    detail: str
    reason: str | None = None
    kpi: str | None = None

    @property
    def has_data(self) -> bool:
        return self.measured is not None


@dataclass(frozen=True)
class HealthScore:
    """A partner's health at `as_of`: the score and level (an override's when one is in force), the
    computed ones, the components, and the reasons (worst loss first)."""

    partner_id: str
    name: str | None
    traits: dict[str, Any]
    as_of: datetime
    score: float
    level: str
    computed_score: float
    computed_level: str
    components: tuple[ComponentScore, ...]
    reasons: tuple[str, ...]
    override: Override | None = None
    caps: tuple[CapResult, ...] = ()

    @property
    def capped(self) -> bool:
        """Whether any cap applied (the computed level is then at best the cap's `max_level`)."""
        return any(c.applied for c in self.caps)

    @property
    def hurting(self) -> list[ComponentScore]:
        """The components named in the reasons, worst loss (weight × (100 − score)) first."""
        return sorted((c for c in self.components if c.reason),
                      key=lambda c: (-c.weight * (100 - c.score), c.name))

    @property
    def reason_text(self) -> str:
        """The reasons in one line ("logins down 60 % ...; 3 overdue compliance tasks")."""
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = _iso(self.as_of)
        if self.override is not None:
            d["override"] = {**asdict(self.override), "expires_at": _iso(self.override.expires_at),
                             "created_at": _iso(self.override.created_at)}
        return d


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- measuring ----------------------------------------------------------------------------------------
def utc_instant(at: date | datetime) -> datetime:
    """A naive UTC datetime: a date is its midnight, an aware datetime is converted."""
    if not isinstance(at, datetime):
        return datetime(at.year, at.month, at.day)
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Context:
    """What the component queries read: the tables, the instant, and the start of the history."""

    table: Callable[[str], ir.Table]
    derived: Callable[[str], ir.Table]
    plan: Any
    as_of: datetime
    since: datetime | None


def _events(ctx: Context, name: str, start: datetime) -> ir.Table:
    e = ctx.table("events")
    return e.filter((e.event == name) & e.partner_id.notnull() & (e.ts >= start) & (e.ts < ctx.as_of))


def _q_recency(ctx: Context, c: ComponentConfig) -> ir.Table:
    return last_activity(ctx.table("events"), ctx.plan, ctx.as_of)


def _q_window_counts(event: str) -> Callable[[Context, ComponentConfig], ir.Table]:
    def query(ctx: Context, c: ComponentConfig) -> ir.Table:
        split = ctx.as_of - c.recent_days * DAY
        e = _events(ctx, event, split - c.baseline_days * DAY)
        return e.group_by("partner_id").aggregate(recent=e.count(where=e.ts >= split), base=e.count(where=e.ts < split))

    return query


def _q_tasks(ctx: Context, c: ComponentConfig) -> ir.Table:
    t = ctx.derived("derived_tasks")
    t = t.filter(
        t.partner_id.notnull() & (t.assigned_at < ctx.as_of) & (t.due >= ctx.as_of - c.window_days * DAY)
        & (t.due < ctx.as_of) & (t.cancelled_at.isnull() | (t.cancelled_at >= t.due))
    )
    on_time = t.completed_at.notnull() & (t.completed_at <= t.due)
    return t.group_by("partner_id").aggregate(due=t.count(), done=t.count(where=on_time))


def _q_overdue(ctx: Context, c: ComponentConfig) -> ir.Table:
    t, at = ctx.derived("derived_tasks"), ctx.as_of
    t = t.filter(
        t.partner_id.notnull() & (t.kind == "compliance") & (t.assigned_at < at) & (t.due < at)
        & (t.completed_at.isnull() | (t.completed_at >= at)) & (t.cancelled_at.isnull() | (t.cancelled_at >= at))
    )
    return t.group_by("partner_id").aggregate(n=t.count())


def _q_satisfaction(ctx: Context, c: ComponentConfig) -> ir.Table:
    s = _events(ctx, "Survey Responded", ctx.as_of - c.window_days * DAY)
    s = s.filter(s.user_id.notnull() & s.p_score.notnull() & (s.p_score >= 0) & (s.p_score <= 10))
    latest = ibis.window(group_by="user_id", order_by=[ibis.desc("ts"), ibis.desc("seq")])
    s = s.mutate(_rn=ibis.row_number().over(latest)).filter(lambda r: r._rn == 0)
    return s.group_by("partner_id").aggregate(mean=s.p_score.mean(), n=s.count())


def _q_access(ctx: Context, c: ComponentConfig) -> ir.Table:
    g, u, at = ctx.derived("derived_grants"), ctx.table("users"), ctx.as_of
    g = g.filter(g.holder.notnull() & (g.granted_at < at) & (g.revoked_at.isnull() | (g.revoked_at >= at)))
    gone = u.filter(u.deactivated_at.notnull() & (u.deactivated_at < at)).select(uid="user_id")
    g = g.join(gone, g.holder == gone.uid)
    return g.group_by(partner_id="holder_partner").aggregate(n=g.count())


QUERIES: dict[str, Callable[[Context, ComponentConfig], ir.Table]] = {
    "days_since_activity": _q_recency,
    "login_trend": _q_window_counts("Logged In"),
    "task_completion": _q_tasks,
    "overdue_compliance": _q_overdue,
    "support_trend": _q_window_counts("Support Requested"),
    "satisfaction": _q_satisfaction,
    "access_hygiene": _q_access,
}


# -- from raw figures to a measured value, in words (pure) ------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """A component's measured value (None: no data), what it is in words, and the reason text if it hurts."""

    value: float | None
    detail: str
    reason: str


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def _covered(lo: datetime, hi: datetime, start: datetime | None) -> float:
    """Days of [lo, hi) at or after `start`."""
    return max(0.0, _days(hi - max(lo, start))) if start is not None else _days(hi - lo)


def _n(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _plural(n: float, word: str) -> str:
    return f"{_n(n)} {word}{'' if n == 1 else 's'}"


def measure(c: ComponentConfig, raw: Mapping[str, Any], as_of: datetime, start: datetime | None) -> Measured:
    """The measured value of component `c` from its raw figures (columns of its query, None when the
    partner has no row); `start` is the later of the partner's onboarding and the start of the history."""
    def get(key: str, default: float = 0) -> Any:
        v = raw.get(key)
        return default if v is None or (isinstance(v, float) and math.isnan(v)) else v

    if c.measure == "days_since_activity":
        last = raw.get("last")
        if last is not None:
            days = _days(as_of - last)
            return Measured(days, f"last active {days:.0f} days ago", f"no activity for {days:.0f} days")
        days = _covered(as_of - 36500 * DAY, as_of, start)
        return Measured(days, f"no activity in {days:.0f} days of history", f"no activity at all in {days:.0f} days")
    if c.measure in ("login_trend", "support_trend"):
        split = as_of - c.recent_days * DAY
        recent_days = _covered(split, as_of, start)
        base_days = _covered(split - c.baseline_days * DAY, split, start)
        what = "logins" if c.measure == "login_trend" else "support requests"
        if base_days < c.baseline_days / 2 or recent_days <= 0:
            return Measured(None, f"no data: too little history to compare {what}", "")
        recent = get("recent") / recent_days * c.recent_days
        base = get("base") / base_days * c.recent_days
        compare = f"{_n(recent)} in the last {c.recent_days} days vs {_n(base)} per {c.recent_days} days before"
        if c.measure == "support_trend":
            extra = recent - base
            return Measured(extra, compare, f"support requests up: {compare}")
        if base == 0:
            return Measured(None, f"no data: no logins in the {c.baseline_days} days before to compare", "")
        change = 100 * (recent - base) / base
        way = "down" if change < 0 else "up"
        return Measured(change, f"logins {way} {abs(change):.0f} % ({compare})",
                        f"logins {way} {abs(change):.0f} % over {c.recent_days} days ({compare})")
    if c.measure == "task_completion":
        due, done = int(get("due")), int(get("done"))
        if due == 0:
            return Measured(None, f"no data: no task due in the last {c.window_days} days", "")
        pct = 100 * done / due
        text = f"{done} of {_plural(due, 'task')} due in the last {c.window_days} days done on time ({pct:.0f} %)"
        return Measured(pct, text, text)
    if c.measure == "overdue_compliance":
        n = int(get("n"))
        text = f"{_plural(n, 'overdue compliance task')}"
        return Measured(float(n), text, text)
    if c.measure == "satisfaction":
        n = int(get("n"))
        if n == 0:
            return Measured(None, f"no data: no survey answer in the last {c.window_days} days", "")
        mean = float(get("mean"))
        text = f"satisfaction {mean:.1f} of 10 (latest answers of {_plural(n, 'user')} in {c.window_days} days)"
        return Measured(mean, text, f"low {text}")
    n = int(get("n"))  # access_hygiene
    text = f"{_plural(n, 'grant')} still held by deactivated users"
    return Measured(float(n), text, text)


# -- the scores ---------------------------------------------------------------------------------------
def health_scores(
    hub: Any,
    as_of: date | datetime,
    config: HealthConfig | None = None,
    *,
    partners: Sequence[str] | None = None,
    overrides: bool = True,
) -> list[HealthScore]:
    """The health of every partner in the program at `as_of` (onboarded before it, not offboarded before
    it), by partner id; `partners` keeps only those; `overrides=False` ignores manual overrides."""
    from partnerkpi.insights.overrides import active_overrides  # overrides imports this module

    config = config or load_config(catalog=hub.catalog)
    as_of = utc_instant(as_of)
    engine = hub.engine
    materialized = engine.materialized or (lambda name: None)
    inline = {"derived_tasks": derived_tasks, "derived_grants": derived_grants}

    def derived(name: str) -> ir.Table:
        found = materialized(name)
        return found if found is not None else inline[name](table("events"), hub.plan)

    since = history_start(hub)
    tables: dict[str, ir.Table] = {}

    def table(name: str) -> ir.Table:  # each lookup reads the schema: once per call is enough
        return tables[name] if name in tables else tables.setdefault(name, engine.table(name))

    ctx = Context(table, derived, hub.plan, as_of, since)
    traits = [t for t in hub.traits() if t != "partner_id"]
    p = table("partners")
    p = p.filter((p.onboarded_at < as_of) & (p.offboarded_at.isnull() | (p.offboarded_at >= as_of)))
    if partners is not None:
        p = p.filter(p.partner_id.isin(list(partners)))
    joined = p.select("partner_id", "name", "onboarded_at", *traits)
    for i, c in enumerate(config.components.values()):
        q = QUERIES[c.measure](ctx, c)
        q = q.rename({f"c{i}__{col}": col for col in q.columns})
        joined = joined.left_join(q, joined.partner_id == q[f"c{i}__partner_id"]).drop(f"c{i}__partner_id")
    for i, cap in enumerate(config.caps):
        q = CAP_QUERIES[cap.kind](ctx, cap)
        q = q.rename({f"k{i}__{col}": col for col in q.columns})
        joined = joined.left_join(q, joined.partner_id == q[f"k{i}__partner_id"]).drop(f"k{i}__partner_id")
    df = engine.execute(joined.order_by("partner_id"))
    titles = (policy_titles(table, engine.execute)
              if any(c.kind == "unacknowledged_policy" for c in config.caps) else {})
    # An override's expiry is a date on the wall calendar, not in the data: judged at the clock, not at as_of.
    in_force = active_overrides(hub, utc_instant(hub.clock())) if overrides else {}
    out = []
    for row in df.to_dict("records"):
        onboarded = _py(row["onboarded_at"])
        start = max(onboarded, since) if since is not None and onboarded is not None else (onboarded or since)
        raws = [_prefixed(row, f"c{i}__") for i in range(len(config.components))]
        caps = tuple(judge(cap, _prefixed(row, f"k{i}__"), as_of, start, titles) for i, cap in enumerate(config.caps))
        out.append(
            _score_partner(config, row["partner_id"], row["name"], {t: _py(row[t]) for t in traits}, as_of, start,
                           raws, in_force.get(row["partner_id"]), caps)
        )
    return out


def _prefixed(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): _py(v) for k, v in row.items() if k.startswith(prefix)}


def _py(v: Any) -> Any:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v.item() if hasattr(v, "item") else v


def _score_partner(
    config: HealthConfig,
    partner_id: str,
    name: str | None,
    traits: dict[str, Any],
    as_of: datetime,
    start: datetime | None,
    raws: Sequence[Mapping[str, Any]],
    override: Override | None,
    caps: Sequence[CapResult] = (),
) -> HealthScore:
    total_weight = sum(c.weight for c in config.components.values())
    comps: list[ComponentScore] = []
    for (cname, c), raw in zip(config.components.items(), raws, strict=True):
        m = measure(c, raw, as_of, start)
        s = config.neutral_score if m.value is None else score_of(c.points, m.value)
        detail = m.detail if m.value is not None else f"{m.detail} (neutral score {_n(config.neutral_score)})"
        hurts = m.value is not None and s < config.reason_below
        comps.append(ComponentScore(cname, c.label or cname, m.value, s, c.weight, c.weight * s / total_weight,
                                    detail, m.reason if hurts else None, c.kpi))
    computed = sum(c.weight * c.score for c in comps) / total_weight
    computed_level = config.level_of(computed)
    settled = []
    for cap in caps:
        lowered = cap.applied and config.worse(computed_level, cap.max_level) != computed_level
        settled.append(cap.settle(lowered))
    for cap in caps:
        if cap.applied:
            computed_level = config.worse(computed_level, cap.max_level)
    score, level = computed, computed_level
    if override is not None:  # a person's judgment wins over the caps; their reasons stay listed
        score = override.score if override.score is not None else score
        level = override.level if override.level is not None else config.level_of(score)
    h = HealthScore(partner_id, name, traits, as_of, score, level, computed, computed_level, tuple(comps),
                    (), override, tuple(settled))
    # A breached cap already names what the component of the same measure would say in other words.
    said = {CAP_REPEATS.get(cap.kind) for cap in settled if cap.reason}
    repeated = {name for name, c in config.components.items() if c.measure in said}
    reasons = [c.reason for c in settled if c.reason] + [
        c.reason for c in h.hurting if c.reason and c.name not in repeated]
    return replace(h, reasons=tuple(dict.fromkeys(reasons)))  # a breach and a component can say the same


# The component measure whose reason a breached cap of each kind repeats.
CAP_REPEATS = {"overdue_compliance": "overdue_compliance", "inactivity": "days_since_activity"}


# -- activity, for the inactive list -------------------------------------------------------------------
def history_start(hub: Any) -> datetime | None:
    """The first activity event: before it the hub recorded no usage, so look-backs do not reach past it."""
    engine = hub.engine
    e = engine.table("events")
    e = e.filter(is_activity(e, hub.plan))
    return _py(engine.execute(e.aggregate(since=e.ts.min()))["since"].iloc[0])


def default_as_of(hub: Any) -> datetime:
    """When no date is given: the data's now (`Hub.now`: the watermark, or the clock if that is earlier)."""
    return hub.now()


__all__ = [
    "CapConfig", "CapResult", "ComponentConfig", "ComponentScore", "HealthConfig", "HealthConfigError",
    "HealthScore", "Level",
    "default_as_of", "health_scores", "history_start", "load_config", "measure", "parse_config",
    "score_of", "utc_instant",
]
