"""The collector's loader: a thread moving spooled requests into the store in batches, off the request path.

Each batch goes through the importer (same rules, dedupe on messageId, rejected rows, import log) as one
Segment JSON Lines file under `<spool>/batches/`; the messages the collector refused are logged as a second
import, and the spool position the batch reaches is written to `collector_checkpoint`, all in the import's
one transaction. So a crash anywhere leaves either the whole batch and its checkpoint, or neither: on start
the loader goes on from the checkpoint, and nothing is lost or loaded twice. The batch file is removed once
loaded; the spool segments stay as the raw record.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from partnerkpi.clock import Clock
from partnerkpi.ingest.importer import import_files
from partnerkpi.ingest.spool import Position, SpooledRequest, read_records, segment_numbers, segment_path
from partnerkpi.settings import CollectorSettings, TimeBounds
from partnerkpi.store import Store

log = logging.getLogger(__name__)
FAILURE_PAUSE = 2.0  # seconds before a failed load is tried again
# Loaded rows are folded into the database file (a DuckDB CHECKPOINT) at most this often. Until then DuckDB
# cannot answer the reads every request makes (the latest instant, the row count, the last arrival) from the
# file's statistics and scans the whole events table instead: 8 ms become 50 ms at 10M events, far more on a
# busy machine. A checkpoint of a batch's rows takes about 10 ms there.
CHECKPOINT_EVERY = 0.2


@dataclass
class Batch:
    """Spooled requests read from the checkpoint on: their messages and where the batch ends in the spool."""

    end: Position
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str | None, str, str]] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Messages in the batch, accepted and refused."""
        return len(self.accepted) + len(self.refused)


def read_batch(wal: Path, start: Position, limit: Position, most: int) -> Batch:
    """The requests spooled from `start` up to `limit` (the writer's durable end), at least one and about
    `most` messages; segments before the limit's are read to their last whole record."""
    batch = Batch(start)
    for number in segment_numbers(wal):
        if number < start.segment or number > limit.segment:
            continue
        offset = start.offset if number == start.segment else 0
        stop = limit.offset if number == limit.segment else None
        for after, payload in read_records(segment_path(wal, number), offset, stop):
            request = SpooledRequest.from_bytes(payload)
            batch.accepted += request.accepted
            batch.refused += request.refused
            batch.end = Position(number, after)
            if batch.events >= most:
                return batch
    return batch


class Loader:
    """Loads what the spool writer made durable into the store, every `batch_ms` or `batch_events` events,
    under the app's write lock; `refresh()` brings the rollups up to date at most every `refresh_every` seconds
    while events keep coming (and once they stop), then `on_loaded()` says new data arrived."""

    def __init__(self, store: Store, spool: Path, durable: Callable[[], Position], *, lock: threading.Lock,
                 clock: Clock, bounds: TimeBounds, settings: CollectorSettings,
                 refresh: Callable[[], None], on_loaded: Callable[[], None]) -> None:
        self.store, self.durable, self.lock = store, durable, lock
        self.wal, self.batches = spool / "wal", spool / "batches"
        self.clock, self.bounds, self.settings = clock, bounds, settings
        self.refresh, self.on_loaded = refresh, on_loaded
        saved = store.checkpoints.position()
        self.position = Position(*saved) if saved else Position(0, 0)
        self.pending = 0  # events acknowledged and not yet loaded
        self.loaded = 0  # events loaded since start
        self.failure: str | None = None  # why the last load failed, until one succeeds (readiness reports it)
        self._count = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._unrefreshed = 0
        self._refreshed_at = time.monotonic()
        self._checkpointed_at = 0.0
        self._thread = threading.Thread(target=self._run, name="partnerkpi-loader", daemon=True)

    def start(self) -> Loader:
        """Count what the checkpoint does not cover (replayed first), then start the thread."""
        self.added(read_batch(self.wal, self.position, self.durable(), 1 << 62).events)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Load what is durable, then stop the thread."""
        self._stop = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def added(self, events: int) -> None:
        """Note `events` newly acknowledged; a full batch wakes the loader early."""
        with self._count:
            self.pending += events
            full = self.pending >= self.settings.batch_events
        if full:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.settings.batch_ms / 1000)
            self._wake.clear()
            stopping = self._stop
            try:
                self.load_available(announce=not stopping)
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
                log.exception("the collector's loader failed; it tries again in %s s", FAILURE_PAUSE)
                time.sleep(FAILURE_PAUSE)
                continue
            self.failure = None
            if stopping:
                return

    def load_available(self, *, announce: bool = True) -> int:
        """Load every durable batch past the checkpoint, refreshing the rollups when due (and `on_loaded()` when
        `announce`); returns how many messages were loaded."""
        total, limit = 0, self.durable()
        while (batch := read_batch(self.wal, self.position, limit, self.settings.batch_events)).end != self.position:
            self.load(batch)
            total += batch.events
        idle = self.durable() == limit  # nothing arrived meanwhile
        if self._unrefreshed and (idle or time.monotonic() - self._refreshed_at >= self.settings.refresh_every):
            self.refresh()
            self._unrefreshed, self._refreshed_at = 0, time.monotonic()
            if announce:
                self.on_loaded()
        return total

    def load(self, batch: Batch) -> None:
        """Import one batch, its refused messages and the checkpoint in one transaction."""
        name = f"{batch.end.segment:08d}-{batch.end.offset:012d}"
        with self.lock:
            if batch.accepted:
                self.batches.mkdir(parents=True, exist_ok=True)
                path = self.batches / f"{name}.segment.jsonl"
                with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
                    fh.writelines(line + "\n" for line in batch.accepted)
                [summary] = import_files(self.store, [path], kind="segment", clock=self.clock, bounds=self.bounds,
                                         in_transaction=lambda import_id: self._finish(batch, name, import_id))
                if summary.skipped_same_file:  # these very bytes were loaded before: only the rest is new
                    self._in_transaction(lambda: self._finish(batch, name, summary.import_id))
                path.unlink()
                self._unrefreshed += summary.accepted
            else:
                self._in_transaction(lambda: self._finish(batch, name, None))
            self._checkpoint()
        self.position = batch.end
        with self._count:
            self.pending = max(self.pending - batch.events, 0)
            self.loaded += batch.events

    def _checkpoint(self) -> None:
        """Fold what was loaded into the database file when `CHECKPOINT_EVERY` has passed (skipped while another
        connection has a write under way: the next batch tries again)."""
        if time.monotonic() - self._checkpointed_at < CHECKPOINT_EVERY:
            return
        try:
            self.store.con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            log.debug("no checkpoint after a load: %s", exc)
        self._checkpointed_at = time.monotonic()

    def _in_transaction(self, work: Callable[[], None]) -> None:
        con = self.store.con
        con.begin()
        try:
            work()
            con.commit()
        except BaseException:
            con.rollback()
            raise

    def _finish(self, batch: Batch, name: str, import_id: int | None) -> None:
        """Inside the batch's transaction: log its refused messages as an import of their own, and the checkpoint."""
        now = self.clock()
        if batch.refused:
            imports = self.store.imports
            refused_id = imports.next_id()
            source = os.fspath(self.batches / f"{name}.refused.jsonl")
            digest = hashlib.sha256("\n".join(raw for _, _, raw in batch.refused).encode(errors="surrogatepass"))
            imports.reject([(refused_id, source, "segment", line, blamed, reason, raw, now)
                            for line, (blamed, reason, raw) in enumerate(batch.refused, 1)])
            imports.record(refused_id, source=source, kind="segment", fingerprint=digest.hexdigest(),
                           started_at=now, finished_at=now, rows_read=len(batch.refused), accepted=0,
                           duplicates=0, rejected=len(batch.refused))
        self.store.checkpoints.advance(batch.end.segment, batch.end.offset, import_id, now)
