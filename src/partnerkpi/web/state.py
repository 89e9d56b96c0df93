"""What the routes of one app share: the hub, the lock that serialises writes to its store, and a cache of
computed results; `state(request)` hands it to a route (a FastAPI dependency)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fastapi import Request

from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertScheduler
from partnerkpi.settings import Settings

CACHE_ENTRIES = 16


@dataclass
class ResultCache:
    """Computed results by (data version, what was asked), so requests that share a computation do it once;
    the oldest entries go first. Callers hold the app's lock."""

    entries: dict[tuple, Any] = field(default_factory=dict)

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The cached result of `key`, made by `make()` the first time."""
        if key not in self.entries:
            while len(self.entries) >= CACHE_ENTRIES:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = make()
        return self.entries[key]


@dataclass
class AppState:
    """What the routes share: the hub, and the lock that serialises writes to its store."""

    hub: Hub
    settings: Settings = field(default_factory=Settings)
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    results: ResultCache = field(default_factory=ResultCache)
    alerts: AlertScheduler | None = None  # evaluates the alert rules on a schedule and after new data
    mailer: AlertScheduler | None = None  # fires the report subscriptions that are due, once a minute

    def new_data(self) -> None:
        """Say that data arrived (an upload, a collector flush): the alert rules are evaluated soon."""
        if self.alerts is not None:
            self.alerts.poke()

    def watch(self) -> None:
        """Evaluate the alert rules now (under the write lock: the run stores firings and resolves)."""
        from partnerkpi.insights.watch import run_watch

        with self.write_lock, self.hub.job_lock("alerts") as ours:
            if ours:  # else another server process evaluates them right now
                run_watch(self.hub, self.settings)

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
