"""The collector's write-ahead spool: numbered segment files of length-prefixed, checksummed records.

A record is `<payload length><crc32 of the payload>` (two little-endian uint32) and the payload. One writer
thread appends what many requests hand it and fsyncs once per group, so a request is acknowledged once its
record is on disk. A torn tail (a crash in the middle of an append, never acknowledged) fails its length or
its checksum and ends the segment for readers. Each start of a writer opens a new segment, so a torn tail is
never followed by records. Segments are kept: they are the replayable raw record of what arrived.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

HEADER = struct.Struct("<II")
MAX_RECORD = 64 << 20  # a longer claimed length is damage, not a record
SEGMENT = re.compile(r"^(\d{8})\.wal$")


@dataclass(frozen=True, order=True)
class Position:
    """A place in the spool: a segment number and a byte offset in it."""

    segment: int
    offset: int


@dataclass
class SpooledRequest:
    """One request as spooled: its accepted messages (JSON text) and its refused (field, reason, raw JSON)."""

    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str | None, str, str]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """A header line with the counts, then one line per message (JSON text holds no raw newline)."""
        lines = [json.dumps([len(self.accepted), len(self.refused)]), *self.accepted,
                 *(json.dumps(list(r), ensure_ascii=False) for r in self.refused)]
        return "\n".join(lines).encode("utf-8", "surrogatepass")

    @classmethod
    def from_bytes(cls, payload: bytes) -> SpooledRequest:
        """The request a payload of `to_bytes` holds."""
        header, *lines = payload.decode("utf-8", "surrogatepass").split("\n")
        accepted, refused = json.loads(header)
        return cls(lines[:accepted], [tuple(json.loads(line)) for line in lines[accepted:accepted + refused]])


def encode_record(payload: bytes) -> bytes:
    """The bytes appended for one record."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def segment_path(directory: Path, number: int) -> Path:
    """The file of segment `number`."""
    return directory / f"{number:08d}.wal"


def segment_numbers(directory: Path) -> list[int]:
    """The segments in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := SEGMENT.match(p.name)))


def read_records(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(offset after the record, payload) of each whole record from `start` up to `end` (the file's end when
    None); stops at a torn or damaged record."""
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        while end is None or pos + HEADER.size <= end:
            header = fh.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            length, crc = HEADER.unpack(header)
            after = pos + HEADER.size + length
            if length > MAX_RECORD or (end is not None and after > end):
                return
            payload = fh.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return
            pos = after
            yield pos, payload


@dataclass
class _Pending:
    record: bytes
    done: Future[Position]


class SpoolWriter:
    """Appends records from any thread; one thread writes what arrived meanwhile and fsyncs once per group.
    `submit` returns a future holding the record's end position once it is durable."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 << 20) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._queue: list[_Pending] = []
        self._cond = threading.Condition()
        self._closed = False
        self._fd = -1
        self.durable = Position(0, 0)
        self._thread = threading.Thread(target=self._run, name="partnerkpi-spool", daemon=True)

    def start(self, first: int = 1) -> SpoolWriter:
        """Open a new segment, numbered after the existing ones and at least `first`, and start the thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = segment_numbers(self.directory)
        self._open(max(numbers[-1] + 1 if numbers else 1, first))
        self._thread.start()
        return self

    @property
    def waiting(self) -> int:
        """Requests handed in and not yet durable."""
        return len(self._queue)

    def submit(self, payload: bytes) -> Future[Position]:
        """Queue a record; the future resolves once it is fsynced (or fails with the write's error)."""
        pending = _Pending(encode_record(payload), Future())
        with self._cond:
            if self._closed:
                raise RuntimeError("the spool is closed")
            self._queue.append(pending)
            self._cond.notify()
        return pending.done

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the segment."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self, number: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(segment_path(self.directory, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.fsync(self._fd)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name is durable too
        finally:
            os.close(dir_fd)
        self.durable = Position(number, 0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                group, self._queue = self._queue, []
                if not group and self._closed:
                    return
            self._write(group)

    def _write(self, group: list[_Pending]) -> None:
        offset = self.durable.offset
        ends = []
        for pending in group:
            offset += len(pending.record)
            ends.append(offset)
        try:
            data = memoryview(b"".join(p.record for p in group))
            while data:
                data = data[os.write(self._fd, data):]
            os.fdatasync(self._fd)
        except OSError as exc:
            for pending in group:
                pending.done.set_exception(exc)
            # the segment's tail is now unknown: later records go to a fresh segment
            self._open(self.durable.segment + 1)
            return
        segment = self.durable.segment
        self.durable = Position(segment, offset)
        for pending, end in zip(group, ends, strict=True):
            pending.done.set_result(Position(segment, end))
        if offset >= self.segment_bytes:
            self._open(segment + 1)
