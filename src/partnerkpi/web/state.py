"""What the routes of one app share: the hub, the lock that serialises writes to its store, a cache of
computed results and the KPI rows kept between data changes; `state(request)` hands it to a route (a FastAPI
dependency)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fastapi import Request

from partnerkpi.credentials import Credentials
from partnerkpi.engine.results import LiveResults
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertScheduler
from partnerkpi.settings import Settings

CACHE_ENTRIES = 64
LIVE_AFTER_ENV = "PARTNERKPI_LIVE_AFTER_MS"
LIVE_AFTER_MS = 200.0  # the pages' budget: a view slower to compute is served from its last result, then redone



def live_after_seconds() -> float:
    """How long a view may take to compute before a data change serves its last result while a fresh one is
    computed in the background (`$PARTNERKPI_LIVE_AFTER_MS`, default the pages' 200 ms budget; `inf` turns
    it off: every read after a change waits for the fresh result)."""
    raw = os.environ.get(LIVE_AFTER_ENV, "").strip()
    try:
        return float(raw) / 1000 if raw else LIVE_AFTER_MS / 1000
    except ValueError:
        raise UsageError(f"{LIVE_AFTER_ENV}={raw!r} is not a number of milliseconds",
                         hint=f"e.g. {LIVE_AFTER_ENV}=200, or inf to always wait for fresh results") from None


Refresh = Callable[[Callable[[], None]], None]  # takes a computation to run once the request is done
Served = Callable[[float], None]  # told the age in seconds of a last result served in place of a fresh one


@dataclass
class ResultCache:
    """Computed results by (data version, what was asked), so requests that share a computation do it once;
    the least recently used entries go first. Safe to share between threads: a result is made outside the
    cache's lock, once however many requests ask for it at the same time (the others wait for that one).

    Stale-while-revalidate, as PostHog and Metabase serve insights under changing data: the latest result of
    each `family` (what was asked, whatever the data version) is kept with what it cost. When the data has
    changed and that result took longer than `live_after` seconds to compute, a read gets it at once and the
    fresh one is computed after the request (`refresh`), one per family at a time and not before the last one
    has been served as long as it took to make, while other reads keep getting the last one.
    Cheap results are always computed fresh. `clear` forgets them all (a person's upload or override shows
    at once)."""

    entries: dict[tuple, Any] = field(default_factory=dict)
    size: int = CACHE_ENTRIES
    live_after: float = field(default_factory=live_after_seconds)
    latest: dict[tuple, tuple[Any, float, float]] = field(default_factory=dict)  # family -> (result, cost, made at)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _making: dict[tuple, threading.Event] = field(default_factory=dict, repr=False)
    _refreshing: set[tuple] = field(default_factory=set, repr=False)  # families computed fresh after a request
    _cleared: int = field(default=0, repr=False)  # how many times `clear` ran

    def get(self, key: tuple, make: Callable[[], Any], *, family: tuple | None = None,
            refresh: Refresh | None = None, served: Served | None = None) -> Any:
        """The cached result of `key`, made by `make()` the first time (or, with a `family` and a `refresh`,
        the family's last result while `refresh` is handed the fresh computation; `served` is told its age)."""
        while True:
            with self._lock:
                if key in self.entries:
                    self.entries[key] = value = self.entries.pop(key)  # now the most recently used
                    return value
                made = self._making.get(key)
                stale = self.latest.get(family) if family is not None and refresh is not None else None
                if stale is not None and stale[1] >= self.live_after:
                    value, cost, at = stale
                    if made is None and family not in self._refreshing and time.monotonic() - at >= cost:
                        # this read starts the family's one fresh computation, once its last result has been
                        # served as long as it took to make (so a stream keeps at most half the CPU busy)
                        self._making[key] = threading.Event()
                        self._refreshing.add(family)
                        refresh(lambda: self._make(key, make, family, refreshing=True))
                    if served is not None:
                        served(time.monotonic() - at)
                    return value
                mine = made is None
                if mine:
                    made = self._making[key] = threading.Event()
            if not mine:
                made.wait()  # type: ignore[union-attr]
                continue  # the maker's result, or (when it failed) this request makes it
            return self._make(key, make, family)

    def _make(self, key: tuple, make: Callable[[], Any], family: tuple | None, refreshing: bool = False) -> Any:
        """Make `key` (whose `_making` event the caller set), keep it and wake whoever waits for it."""
        try:
            started, cleared = time.monotonic(), self._cleared
            value = make()
            with self._lock:
                while len(self.entries) >= self.size:
                    self.entries.pop(next(iter(self.entries)))
                self.entries[key] = value
                if family is not None and cleared == self._cleared:  # made before a clear: never served stale
                    now = time.monotonic()
                    self.latest[family] = (value, now - started, now)
            return value
        finally:
            with self._lock:
                made = self._making.pop(key)
                if refreshing:
                    self._refreshing.discard(family)
            made.set()

    def clear(self) -> None:
        """Forget every result (e.g. after an override: health scores computed before it are stale)."""
        with self._lock:
            self.entries.clear()
            self.latest.clear()
            self._cleared += 1


@dataclass
class AppState:
    """What the routes share: the hub, and the lock that serialises writes to its store."""

    hub: Hub
    settings: Settings = field(default_factory=Settings)
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    results: ResultCache = field(default_factory=ResultCache)
    alerts: AlertScheduler | None = None  # evaluates the alert rules on a schedule and after new data
    mailer: AlertScheduler | None = None  # fires the report subscriptions that are due, once a minute

    def __post_init__(self) -> None:
        if self.hub.results is None:  # KPI rows kept between data changes, shared by every request's snapshot
            self.hub.results = LiveResults()

    def new_data(self) -> None:
        """Say that data arrived (an upload, a collector flush): the alert rules are evaluated soon."""
        if self.alerts is not None:
            self.alerts.poke()

    def watch(self) -> None:
        """Evaluate the alert rules now: on a snapshot, outside the write lock, which is taken only to store
        firings and resolves (the collector's loader never waits for an evaluation)."""
        from partnerkpi.insights.watch import run_watch

        with self.hub.job_lock("alerts") as ours:
            if not ours:  # another server process evaluates them right now
                return
            snapshot = self.hub.snapshot()
            try:
                run_watch(self.hub, self.settings, reader=snapshot, write_lock=self.write_lock)
            finally:
                snapshot.close_snapshot()

    def send_due_reports(self) -> None:
        """Fire the report subscriptions that are due (under the write lock: rendering reads the store and the
        run log is written). One try per recipient here: a failure stays `failed` in the log for a resend,
        rather than holding the lock through the retries' waits."""
        from partnerkpi.delivery.runs import Retry, open_subscriptions

        with self.write_lock, self.hub.job_lock("subscriptions") as ours:
            if ours:  # else another server process sends them right now
                open_subscriptions(self.hub, self.settings.mail, retry=Retry(attempts=1)).run_due()

    @cached_property
    def credentials(self) -> Credentials:
        """Users, API tokens and write keys in the hub's store (made on first use, which creates their
        tables when missing); shared by sign-in and the collector."""
        return Credentials(self.hub.store, clock=self.hub.clock)


def state(request: Request) -> AppState:
    """The app's shared state (a FastAPI dependency)."""
    return request.app.state.partnerkpi
