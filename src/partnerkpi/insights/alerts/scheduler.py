"""The alert schedule: a daemon thread that runs alerts every interval and soon after new data."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from partnerkpi.errors import UsageError

log = logging.getLogger(__name__)


class AlertScheduler:
    """Calls `run` every `interval_seconds` on a daemon thread, and after `poke()` (an import or a
    collector flush) but at most once per `min_gap_seconds` (a busy collector does not evaluate the rules
    after every request), until `stop()`; a failing run is logged and the next one still happens."""

    def __init__(self, interval_seconds: float, run: Callable[[], object], min_gap_seconds: float = 30.0) -> None:
        if interval_seconds <= 0:
            raise UsageError("the alert interval must be positive", hint="e.g. 300 seconds")
        self.interval = interval_seconds
        self.min_gap = min_gap_seconds
        self.run = run
        self.runs = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="partnerkpi-alerts", daemon=True)

    def start(self) -> AlertScheduler:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Run soon (new data arrived); pokes during a run make one more run, not one each."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for a run in progress to finish (by default for as long as it takes:
        the store is closed after this, and closing it under a running query aborts the process)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        last: float | None = None
        while True:
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            gap = min(self.min_gap, self.interval) - (time.monotonic() - last) if last is not None else 0.0
            if gap > 0 and self._stop.wait(gap):
                return
            self._wake.clear()
            try:
                self.run()
            except Exception as exc:  # keep the schedule alive; the error is logged and kept for the UI
                self.errors += 1
                self.last_error = exc
                log.exception("scheduled alert run failed")
            finally:
                self.runs += 1
                last = time.monotonic()
