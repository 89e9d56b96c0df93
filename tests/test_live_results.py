"""KPI rows kept between data changes (engine/results.py) equal rows computed from scratch, after random
appends: late events, duplicates, events of today, a new partner with its user."""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from partnerkpi.clock import FixedClock
from partnerkpi.demo import generate
from partnerkpi.engine.periods import Grain, periods_between
from partnerkpi.engine.result import KpiRow
from partnerkpi.engine.results import Appended, DataVersion, LiveResults
from partnerkpi.hub import PER_PARTNER, Hub
from partnerkpi.insights.health import health_scores, load_config
from partnerkpi.web.kept import LastActive, LiveHealth
from partnerkpi.web.state import ResultCache
from tests.kpi_fixtures import Fixture

END = date(2026, 7, 1)
CLOCK = FixedClock(datetime(2030, 1, 1))
RANGES = [("month", date(2026, 3, 1), END), ("week", date(2026, 5, 4), date(2026, 6, 29))]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """A small generated program (12 partners, 4 months) as DataFrames."""
    out = tmp_path_factory.mktemp("demo")
    files = generate(out, partners=12, months=4, seed=3, end=END, events_target=4000)
    return {name: pd.read_parquet(getattr(files, name)) for name in ("partners", "users", "events")}


class Feed:
    """Imports DataFrames as Parquet files into a hub, one file per call."""

    def __init__(self, hub: Hub, folder: Path) -> None:
        self.hub, self.folder, self.n = hub, folder, 0

    def load(self, kind: str, frame: pd.DataFrame) -> None:
        self.n += 1
        path = self.folder / f"{self.n:03d}-{kind}.parquet"
        frame.to_parquet(path, index=False)
        self.hub.import_files([path], kind=kind)


def _kept_and_fresh(hub: Hub, by: str | None, ranges=RANGES) -> list[tuple[list[KpiRow], list[KpiRow]]]:
    fresh = replace(hub, results=None)
    return [(hub.scorecard(grain, start, end, by=by), fresh.scorecard(grain, start, end, by=by))
            for grain, start, end in ranges]


def _same(kept: list[KpiRow], fresh: list[KpiRow]) -> bool:
    """Equal rows; floats to 1e-9 relative (DuckDB sums doubles in no fixed order, so two runs from scratch
    can differ in the last bits)."""
    assert len(kept) == len(fresh)
    for a, b in zip(kept, fresh, strict=True):
        for name, x in vars(a).items():
            y = getattr(b, name)
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (a, b)
            else:
                assert x == y, (name, a, b)
    return True


def _new_partner(demo: dict[str, pd.DataFrame], rng: random.Random) -> tuple[pd.DataFrame, ...]:
    """A partner onboarded in May with one user and a copy of another user's events, under new ids."""
    partner = demo["partners"].iloc[[0]].assign(partner_id="NEW-P", onboarded_at=pd.Timestamp("2026-05-02"),
                                               offboarded_at=pd.NaT)
    users = demo["users"]
    user = users.iloc[[rng.randrange(len(users))]]
    events = demo["events"][demo["events"].user_id == user.user_id.iloc[0]]
    new_user = user.assign(user_id="NEW-U", partner_id="NEW-P", created_at=pd.Timestamp("2026-05-02"))
    copied = events[events.ts >= pd.Timestamp("2026-05-03")].assign(
        user_id="NEW-U", partner_id="NEW-P", event_id=lambda f: "new-" + f.event_id.astype(str))
    return partner.drop(columns=[c for c in partner.columns if c.startswith("Unnamed")]), new_user, copied


@pytest.mark.slow  # about 3 minutes: every KPI computed from scratch after each append
@pytest.mark.parametrize("seed", [1])
def test_kept_rows_equal_rows_from_scratch_after_random_appends(demo, tmp_path, seed):
    rng = random.Random(seed)
    events = demo["events"].sample(frac=1.0, random_state=seed)
    cutoff = pd.Timestamp("2026-06-10")
    later = events[events.ts >= cutoff].sort_values("ts")
    earlier = events[events.ts < cutoff]
    late = earlier.sample(frac=0.05, random_state=seed)  # arrive after the newer ones: late data
    base = earlier.drop(late.index)
    hub = Hub.open(tmp_path / "hub.duckdb", clock=CLOCK)
    hub.results = LiveResults()
    feed = Feed(hub, tmp_path)
    feed.load("partners", demo["partners"])
    feed.load("users", demo["users"])
    feed.load("events", base)
    for kept, fresh in _kept_and_fresh(hub, "type"):
        assert _same(kept, fresh)
    partner, user, copied = _new_partner(demo, rng)
    steps = [
        ("events", later.iloc[: len(later) // 2]),  # the stream, in order
        ("events", late.iloc[: len(late) // 2]),  # late events, weeks back
        ("events", pd.concat([base.sample(n=min(50, len(base)), random_state=seed),  # duplicates: stored none
                              later.iloc[len(later) // 2:], late.iloc[len(late) // 2:]])),
        ("partners", partner),
        ("users", user),
        ("events", copied),
    ]
    for kind, frame in steps:
        feed.load(kind, frame)
        for by in (None, PER_PARTNER):
            for kept, fresh in _kept_and_fresh(hub, by, RANGES[:1]):
                assert _same(kept, fresh), f"after {kind} ({len(frame)} rows), by {by}"
    for kept, fresh in _kept_and_fresh(hub, None, RANGES[1:]):
        assert _same(kept, fresh)
    assert any(r.segment.get(PER_PARTNER) == "NEW-P" for r in hub.scorecard("month", date(2026, 5, 1), END,
                                                                           by=PER_PARTNER))
    hub.close()


def _row(kpi: str, start: datetime, end: datetime, value: float) -> KpiRow:
    return KpiRow(kpi=kpi, period=f"{start:%Y-%m}", period_start=start, period_end=end, value=value)


class Counting:
    """A compute that records which periods it was asked for and answers 1.0 per period (2.0 once told)."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.value = 1.0

    def __call__(self, kpis, grain, periods, by):
        self.asked.append([p.label for p in periods])
        return [_row(k.id, p.start, p.end, self.value) for k in kpis for p in periods]


class Kpi:
    def __init__(self, kpi_id: str) -> None:
        self.id = kpi_id


MONTHS = periods_between(Grain.MONTH, date(2026, 1, 1), date(2026, 7, 1))
V1 = DataVersion("plan", 100, 100, "p/u")


def _appended(first: datetime, rows: int = 10):
    return lambda seq: Appended(rows, first, first, first)


def test_an_append_invalidates_the_period_of_its_first_event_and_every_later_one():
    results, compute = LiveResults(), Counting()
    results.sync(V1, _appended(datetime(2000, 1, 1)))
    kpis = [Kpi("a")]
    assert [r.value for r in results.rows(kpis, Grain.MONTH, MONTHS, None, compute)] == [1.0] * 6
    assert compute.asked == [["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]]
    compute.value = 2.0
    results.sync(replace(V1, rows=110, last_seq=110), _appended(datetime(2026, 4, 15, 9)))
    assert [r.value for r in results.rows(kpis, Grain.MONTH, MONTHS, None, compute)] == [1.0] * 3 + [2.0] * 3
    assert compute.asked[-1] == ["2026-04", "2026-05", "2026-06"]
    results.rows(kpis, Grain.MONTH, MONTHS, None, compute)
    assert len(compute.asked) == 2  # nothing new: all kept


def test_changed_partners_or_removed_rows_invalidate_everything():
    results, compute = LiveResults(), Counting()
    kpis = [Kpi("a")]
    results.sync(V1, _appended(datetime(2000, 1, 1)))
    results.rows(kpis, Grain.MONTH, MONTHS, None, compute)
    results.sync(replace(V1, entities="p2/u"), _appended(datetime(2030, 1, 1)))
    results.rows(kpis, Grain.MONTH, MONTHS, None, compute)
    assert len(compute.asked[-1]) == 6
    # 10 more arrival numbers but only 5 more rows: rows went missing, so not a plain append
    results.sync(replace(V1, entities="p2/u", rows=105, last_seq=110), _appended(datetime(2030, 1, 1), rows=10))
    results.rows(kpis, Grain.MONTH, MONTHS, None, compute)
    assert len(compute.asked) == 3 and len(compute.asked[-1]) == 6


def test_rows_computed_while_an_append_lands_are_not_kept_for_the_periods_it_reaches():
    results = LiveResults()
    results.sync(V1, _appended(datetime(2000, 1, 1)))
    kpis = [Kpi("a")]

    def compute(kpis, grain, periods, by):  # an append lands during the computation
        results.sync(replace(V1, rows=101, last_seq=101), _appended(datetime(2026, 5, 20), rows=1))
        return [_row(k.id, p.start, p.end, 1.0) for k in kpis for p in periods]

    results.rows(kpis, Grain.MONTH, MONTHS, None, compute)
    again = Counting()
    results.rows(kpis, Grain.MONTH, MONTHS, None, again)
    assert again.asked == [["2026-05", "2026-06"]]


def test_a_result_asked_for_by_many_requests_at_once_is_made_once():
    cache, made, gate = ResultCache(), [], threading.Event()

    def make():
        made.append(1)
        gate.wait(5)
        return "result"

    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(("k",), make))) for _ in range(4)]
    for t in threads:
        t.start()
    other = cache.get(("other",), lambda: "not waiting")  # another key is not held up by the first
    gate.set()
    for t in threads:
        t.join(5)
    assert other == "not waiting"
    assert got == ["result"] * 4 and made == [1]


def _append(hub: Hub, folder: Path, name: str, *events: dict) -> None:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"partner_id": None, "user_id": None, "object_id": None, "properties": {},
                                        **e}) + "\n" for e in events))
    hub.import_files([path], kind="events")


def test_kept_health_and_last_activity_equal_them_from_scratch_after_appends(tmp_path):
    fx = Fixture(tmp_path)
    for pid in ("A", "B", "C"):
        fx.partner(pid, onboarded="2026-01-01").user(f"u{pid}", pid)
    fx.event("Logged In", "2026-06-03 10:00", partner="A", user="uA")
    fx.event("Logged In", "2026-07-10 10:00", partner="B", user="uB")
    fx.event("Task Assigned", "2026-07-01 09:00", partner="C", object="t1", due_at="2026-07-08T00:00:00Z")
    hub = fx.hub()
    live, config, as_of = LiveHealth(), load_config(None, hub.catalog), datetime(2026, 8, 1)
    assert live.scores(hub, hub.data_version(), as_of, config) == health_scores(hub, as_of, config)
    last = LastActive()
    assert last.of(hub, hub.data_version()) == hub.last_active() == {
        "A": datetime(2026, 6, 3, 10), "B": datetime(2026, 7, 10, 10)}
    steps = [
        ({"A"}, [{"event_id": "n1", "ts": "2026-07-20T10:00:00Z", "event": "Logged In", "partner_id": "A",
                  "user_id": "uA"}]),
        (None, [{"event_id": "n2", "ts": "2026-07-21T10:00:00Z", "event": "Task Completed", "partner_id": "C",
                 "object_id": "t1"}]),  # an object: shared across partners
        (None, [{"event_id": "n3", "ts": "2026-05-01T10:00:00Z", "event": "Logged In", "partner_id": "B",
                 "user_id": "uB"}]),  # earlier than the first activity: look-backs change for everyone
    ]
    for i, (touched, events) in enumerate(steps):
        kept = live._kept
        _append(hub, tmp_path, f"step{i}", *events)
        version = hub.data_version()
        assert LiveHealth._touched(hub, kept, version, as_of, config) == (
            None if touched is None else frozenset(touched))
        assert live.scores(hub, version, as_of, config) == health_scores(hub, as_of, config)
        assert last.of(hub, version) == hub.last_active()
    assert hub.appended(0).partners is None
