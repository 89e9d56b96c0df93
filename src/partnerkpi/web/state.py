"""What the routes of one app share: the hub, the lock that serialises writes to its store, a cache of
computed results and the KPI rows kept between data changes; `state(request)` hands it to a route (a FastAPI
dependency)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fastapi import Request

from partnerkpi.credentials import Credentials
from partnerkpi.engine.results import LiveResults
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertScheduler
from partnerkpi.settings import Settings

CACHE_ENTRIES = 64


@dataclass
class ResultCache:
    """Computed results by (data version, what was asked), so requests that share a computation do it once;
    the least recently used entries go first. Safe to share between threads: a result is made outside the
    cache's lock, once however many requests ask for it at the same time (the others wait for that one)."""

    entries: dict[tuple, Any] = field(default_factory=dict)
    size: int = CACHE_ENTRIES
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _making: dict[tuple, threading.Event] = field(default_factory=dict, repr=False)

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The cached result of `key`, made by `make()` the first time."""
        while True:
            with self._lock:
                if key in self.entries:
                    self.entries[key] = value = self.entries.pop(key)  # now the most recently used
                    return value
                made = self._making.get(key)
                mine = made is None
                if mine:
                    made = self._making[key] = threading.Event()
            if not mine:
                made.wait()  # type: ignore[union-attr]
                continue  # the maker's result, or (when it failed) this request makes it
            try:
                value = make()
                with self._lock:
                    while len(self.entries) >= self.size:
                        self.entries.pop(next(iter(self.entries)))
                    self.entries[key] = value
                return value
            finally:
                with self._lock:
                    del self._making[key]
                made.set()  # type: ignore[union-attr]

    def clear(self) -> None:
        """Forget every result (e.g. after an override: health scores computed before it are stale)."""
        with self._lock:
            self.entries.clear()


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
