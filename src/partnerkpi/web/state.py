"""What the routes of one app share: the hub, the lock that serialises writes to its store, a cache of
computed results and the KPI rows kept between data changes; `state(request)` hands it to a route (a FastAPI
dependency)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from fastapi import Request

from partnerkpi.credentials import Credentials
from partnerkpi.engine.results import LiveResults
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertScheduler
from partnerkpi.settings import Settings

log = logging.getLogger(__name__)

CACHE_ENTRIES = 64
LATEST_FAMILIES = 256  # last results kept for serving stale (most are small; the per-partner rows are the big ones)
LIVE_AFTER_ENV = "PARTNERKPI_LIVE_AFTER_MS"
LIVE_AFTER_MS = 0.0  # after a data change every view with a last result serves it at once, then is redone



def live_after_seconds() -> float:
    """How long a view may take to compute before a data change serves its last result while a fresh one is
    computed in the background (`$PARTNERKPI_LIVE_AFTER_MS`, default 0: any view; 200 would serve only views
    slower than the pages' budget stale; `inf` turns it off: every read after a change waits for the fresh
    result)."""
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
    Cheap results are always computed fresh (by default every result counts as slow: `live_after` 0). A
    family's latest result also answers its own key once `entries` has let it go (the warm views outlive the
    LRU; `families` of them are kept). `clear` forgets them all (a person's upload or override shows at
    once)."""

    entries: dict[tuple, Any] = field(default_factory=dict)
    size: int = CACHE_ENTRIES
    live_after: float = field(default_factory=live_after_seconds)
    families: int = LATEST_FAMILIES
    latest: dict[tuple, tuple[tuple, Any, float, float]] = field(default_factory=dict)  # family -> (key, result,
    #                                                                                   cost, made at)
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
                last = self.latest.get(family) if family is not None else None
                if last is not None and last[0] == key:  # pushed out of `entries`, still its family's latest
                    self._keep(key, last[1])
                    return last[1]
                stale = last if refresh is not None else None
                if stale is not None and stale[2] >= self.live_after:
                    _, value, cost, at = stale
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
                self._keep(key, value)
                if family is not None and cleared == self._cleared:  # made before a clear: never served stale
                    now = time.monotonic()
                    self.latest.pop(family, None)
                    while len(self.latest) >= self.families:  # the least recently made family goes first
                        self.latest.pop(next(iter(self.latest)))
                    self.latest[family] = (key, value, now - started, now)
            return value
        finally:
            with self._lock:
                made = self._making.pop(key)
                if refreshing:
                    self._refreshing.discard(family)
            made.set()

    def _keep(self, key: tuple, value: Any) -> None:
        """Keep `value` as the most recently used entry (under the lock), the least recently used going first."""
        self.entries.pop(key, None)
        while len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = value

    def clear(self) -> None:
        """Forget every result (e.g. after an override: health scores computed before it are stale)."""
        with self._lock:
            self.entries.clear()
            self.latest.clear()
            self._cleared += 1


class Stale(Protocol):
    """What the refresher runs: a request's computations of the results it served stale, on its snapshot."""

    def refresh(self) -> None: ...

    def discard(self) -> None: ...


class Refresher:
    """The server's one background worker for results served stale: the requests hand it their fresh
    computations (`Reader.done`) and it runs them one request after another, in the order they came. One
    worker, not a thread per request, so under a stream the refreshes take at most one core and the
    requests and the collector's loader keep the other (a thread each made several heavy refreshes run at
    once and the cheap views computed in a request wait seconds behind them). The alert run takes turns with
    the refreshes (`busy`): it computes every partner's health too."""

    def __init__(self) -> None:
        self.busy = threading.Lock()  # held while a job runs; other background work (the alert run) takes it too
        self._jobs: queue.SimpleQueue[Stale | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def submit(self, job: Stale) -> None:
        """Run `job.refresh()` after the jobs before it (after `stop`, `job.discard()` at once)."""
        with self._lock:
            if self._stopped:
                job.discard()
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="partnerkpi-refresh", daemon=True)
                self._thread.start()
            self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stopped:
                job.discard()
                continue
            try:
                with self.busy:
                    job.refresh()
            except Exception:  # the next request that needs it computes it again and reports the failure
                log.exception("refreshing results in the background failed")

    def stop(self, wait: float = 5.0) -> None:
        """Discard the jobs not started yet and wait up to `wait` seconds for the one running."""
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
            self._jobs.put(None)
        if thread is not None:
            thread.join(wait)


@dataclass
class AppState:
    """What the routes share: the hub, and the lock that serialises writes to its store."""

    hub: Hub
    settings: Settings = field(default_factory=Settings)
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    results: ResultCache = field(default_factory=ResultCache)
    refresher: Refresher = field(default_factory=Refresher)  # computes the results served stale, one at a time
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
        firings and resolves (the collector's loader never waits for an evaluation), and in turn with the
        refreshes of results served stale (so the two heavy background jobs share one core)."""
        from partnerkpi.insights.watch import run_watch

        with self.hub.job_lock("alerts") as ours, self.refresher.busy:  # not beside a refresh: one core for both
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
