"""A collector speaking Segment's HTTP tracking API: `POST /v1/identify|group|track|page|screen|alias|batch`.

The write key comes as the HTTP Basic username (empty password) or as `writeKey` in the body. Each
request's messages get a server-side `receivedAt` and are appended, with the messages the collector itself
refuses (oversize inside a batch, not an object, neither `userId` nor `anonymousId`) and their reasons, to
the write-ahead spool beside the database (`ingest/spool.py`); the request is acknowledged once that append
is fsynced. The loader thread (`ingest/loader.py`) imports spooled requests in batches through the usual
rules. Past a bounded backlog a request gets 503 with `Retry-After`, which Segment's SDKs honour.

Segment dedupes on messageId per source, and a write key's name is its source: the collector stores a
message under `<source>/<messageId>` (`scoped_id`), so two partners' senders may use the same messageId while
a retry of one sender's message stays a duplicate. Files keep the global event_id rule.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from partnerkpi.credentials import WriteKey
from partnerkpi.hub import Hub
from partnerkpi.ingest.loader import Loader
from partnerkpi.ingest.spool import SpooledRequest, SpoolWriter
from partnerkpi.settings import CollectorSettings
from partnerkpi.web.openapi import CollectorError, CollectorOk, errors
from partnerkpi.web.state import AppState, state

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
CALLS = ("identify", "group", "track", "page", "screen", "alias")
NEEDS_USER = ("identify", "group", "track", "page", "screen")

router = APIRouter(prefix="/v1", tags=["collector"])

UNAUTHORIZED = {
    "success": False,
    "code": "invalid_write_key",
    "message": "the write key is missing, unknown, revoked or expired",
    "hint": "send a write key made with `partnerkpi keys create NAME` as the HTTP Basic username, "
    "with an empty password, or as writeKey in the body",
}


class BadRequest(Exception):
    """A request refused as a whole (400), the way Segment refuses it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Refused:
    """A message the collector keeps aside: its position, blamed field, reason and raw JSON text."""

    position: int
    field: str | None
    reason: str
    raw: str


@dataclass
class Parsed:
    """One request's messages (JSON text), ready to spool, and the ones the collector refused."""

    messages: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    def spooled(self) -> SpooledRequest:
        """The request as the spool keeps it."""
        return SpooledRequest(self.messages, [(r.field, r.reason, r.raw) for r in self.refused])


def _bad(code: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"success": False, "code": code, "message": message}, status_code=status)


async def _read_body(request: Request) -> bytes:
    """The body, decompressed when gzip'd; a BadRequest past the batch limit (read no further)."""
    chunks, size = [], 0
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    too_large = BadRequest("too_large", f"the request is over {MAX_BATCH_BYTES // 1024} KB; send smaller batches")
    async for chunk in request.stream():
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, MAX_BATCH_BYTES + 1 - size)
            except zlib.error:
                raise BadRequest("invalid_body", "the body is not valid gzip") from None
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _basic_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user.partition(":")[0] or None


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid_json", "the body is not valid JSON") from None


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="microseconds") + "Z"


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ESCAPED = json.JSONEncoder(separators=(",", ":")).encode


def _dump_sized(message: Any) -> tuple[str, int]:
    """Compact JSON text of `message` and its size in UTF-8 bytes."""
    text = _COMPACT(message)
    if text.isascii():
        return text, len(text)
    try:
        return text, len(text.encode())
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON) has no UTF-8: keep it escaped
        text = _ESCAPED(message)
        return text, len(text)


def _dump(message: Any) -> str:
    return _dump_sized(message)[0]


def scoped_id(source: str, message_id: Any) -> str:
    """The event id a message is stored under: its messageId (as the Segment importer reads it) within its
    source; `/` and `%` in the source name are escaped, so no two (source, messageId) pairs share one."""
    scope = source.replace("%", "%25").replace("/", "%2F")
    return f"{scope}/{message_id if isinstance(message_id, str) else _COMPACT(message_id)}"


def parse_request(call: str, body: Any, received_at: datetime, source: str | None = None) -> Parsed:
    """Split a decoded request into messages to import and messages refused with a reason; with a `source`
    (the write key's name) each messageId is scoped to it."""
    if not isinstance(body, dict):
        raise BadRequest("invalid_body", "the body must be a JSON object")
    if call == "batch":
        items = body.get("batch")
        if not isinstance(items, list):
            raise BadRequest("invalid_batch", "a batch request needs `batch`, a list of messages")
        if len(items) > MAX_BATCH_EVENTS:
            raise BadRequest("too_many_events", f"a batch holds at most {MAX_BATCH_EVENTS} messages, "
                             f"this one has {len(items)}; send smaller batches")
        shared_context = body.get("context") if isinstance(body.get("context"), dict) else {}
        sent_at = body.get("sentAt")
    else:
        if _dump_sized(body)[1] > MAX_EVENT_BYTES:
            raise BadRequest("too_large", f"a message is limited to {MAX_EVENT_BYTES // 1024} KB")
        items = [{**{k: v for k, v in body.items() if k != "writeKey"}, "type": call}]
        shared_context, sent_at = {}, None
    parsed = Parsed()
    received = _iso(received_at)
    for position, item in enumerate(items, 1):
        if not isinstance(item, dict):
            parsed.refused.append(Refused(position, None, "the message is not a JSON object; send one object "
                                          "per message", _dump(item)))
            continue
        message = dict(item)
        if shared_context:
            own = message.get("context") if isinstance(message.get("context"), dict) else {}
            message["context"] = {**shared_context, **own}
        if sent_at is not None and message.get("sentAt") is None:
            message["sentAt"] = sent_at
        if message.get("messageId") in (None, ""):
            message["messageId"] = f"api-{uuid.uuid4()}"
        if source is not None:
            message["messageId"] = scoped_id(source, message["messageId"])
        message["receivedAt"] = received
        if message.get("timestamp") in (None, "") and message.get("originalTimestamp") in (None, ""):
            # as Segment does: with no time given, the event happened when it arrived (sentAt: no skew to correct)
            message["timestamp"] = message.get("sentAt") or received
        raw, size = _dump_sized(message)
        if size > MAX_EVENT_BYTES:
            parsed.refused.append(Refused(position, None, f"the message is over {MAX_EVENT_BYTES // 1024} KB "
                                          "(Segment's limit per message); trim its properties or traits", raw))
        elif message.get("type") in NEEDS_USER and not (message.get("userId") or message.get("anonymousId")):
            parsed.refused.append(Refused(position, "userId", "neither userId nor anonymousId is given; every "
                                          "Segment call needs one of them", raw))
        else:
            parsed.messages.append(raw)
    return parsed


def spool_dir(hub: Hub) -> Path:
    """Where the collector's raw record lives: `<db>.spool/` beside the database (its imports are the arrivals
    the data watermark counts)."""
    return hub.spool_dir()


class KeyCache:
    """Write keys checked in the last `ttl` seconds and what they were (None: invalid): a revoked key stops
    working within `ttl`, and a busy sender costs one store lookup per `ttl`, not one per request."""

    def __init__(self, ttl: float, size: int = 1024) -> None:
        self.ttl, self.size = ttl, size
        self.entries: dict[str, tuple[WriteKey | None, float]] = {}

    def get(self, key: str) -> tuple[WriteKey | None] | None:
        """(the key, or None when invalid) as last checked, or None when that is older than `ttl`."""
        entry = self.entries.get(key)
        return (entry[0],) if entry is not None and time.monotonic() - entry[1] < self.ttl else None

    def put(self, key: str, found: WriteKey | None) -> None:
        """Remember a check."""
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[key] = (found, time.monotonic())


@dataclass
class Collector:
    """The app's collector: the spool writer, the loader behind it, the write-key cache and the limits."""

    writer: SpoolWriter
    loader: Loader
    keys: KeyCache
    settings: CollectorSettings
    turned_away: int = 0  # requests answered 503
    inflight: int = 0  # requests inside `collect` now (read on the event loop's thread only)
    scratch: Path | None = None  # the spool of an in-memory store, removed at stop (the store goes too)

    @classmethod
    def start(cls, hub: Hub, settings: CollectorSettings, write_lock: threading.Lock,
              on_loaded: Callable[[], None]) -> Collector:
        """Open a new spool segment, replay what the store's checkpoint does not cover, and start loading."""
        spool = spool_dir(hub)
        memory = hub.store.path == ":memory:"
        if memory:  # a spool of its own: another in-memory store must not replay it
            spool = spool / f"memory-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        loaded = hub.store.checkpoints.position()  # a spool removed by hand must not restart below it
        writer = SpoolWriter(spool / "wal", segment_bytes=settings.segment_bytes).start(loaded[0] + 1 if loaded else 1)

        def refresh() -> None:
            with write_lock:
                hub.prepare()

        loader = Loader(hub.store, spool, lambda: writer.durable, lock=write_lock, clock=hub.clock,
                        bounds=hub.bounds, settings=settings, refresh=refresh, on_loaded=on_loaded).start()
        return cls(writer, loader, KeyCache(settings.key_cache), settings, scratch=spool if memory else None)

    def stop(self) -> None:
        """Finish the appends under way, load what is spooled, and stop both threads."""
        self.writer.close()
        self.loader.stop()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def overloaded(self, events: int) -> bool:
        """True when taking `events` more would pass the backlog bound or too many requests wait for the spool."""
        return (self.loader.pending + events > self.settings.max_backlog
                or self.writer.waiting >= self.settings.max_waiting)

    def busy(self, message: str) -> JSONResponse:
        """The 503 a client retries after `retry_after` seconds."""
        self.turned_away += 1
        return JSONResponse({"success": False, "code": "overloaded", "message": message,
                             "hint": f"send the request again in {self.settings.retry_after} s"},
                            status_code=503, headers={"Retry-After": str(self.settings.retry_after)})


async def _write_key(collector: Collector, app_state: AppState, key: str) -> WriteKey | None:
    cached = collector.keys.get(key)
    if cached is not None:
        return cached[0]
    found = await run_in_threadpool(app_state.credentials.verify_write_key, key)
    collector.keys.put(key, found)
    return found


async def collect(call: str, request: Request, app_state: AppState) -> JSONResponse:
    """Authenticate, check and spool one Segment call; 200 once its messages are durably spooled. Past
    `max_inflight` requests under way, 503 at once, before the body is read."""
    collector: Collector | None = getattr(request.app.state, "collector", None)
    if collector is None:
        return _bad("read_only", "this server opened its database read-only and collects nothing", 503)
    if collector.inflight >= collector.settings.max_inflight:
        return collector.busy("too many requests are under way")
    collector.inflight += 1
    try:
        return await _collect(call, request, app_state, collector)
    finally:
        collector.inflight -= 1


async def _collect(call: str, request: Request, app_state: AppState, collector: Collector) -> JSONResponse:
    try:
        body = await _read_body(request)
        key = _basic_key(request)
        decoded: Any = None
        if key is None:
            decoded = _parse_json(body)
            key = decoded.get("writeKey") if isinstance(decoded, dict) else None
        write_key = await _write_key(collector, app_state, key) if isinstance(key, str) else None
        if write_key is None:
            return JSONResponse(UNAUTHORIZED, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="partnerkpi collector"'})
        if decoded is None:
            decoded = _parse_json(body)
        parsed = parse_request(call, decoded, app_state.hub.clock(), source=write_key.name)
    except BadRequest as exc:
        return _bad(exc.code, exc.message)
    except ClientDisconnect:
        return collector.busy("the client went away while sending its request")
    events = len(parsed.messages) + len(parsed.refused)
    if events == 0:
        return JSONResponse({"success": True})
    if collector.overloaded(events):
        return collector.busy("the collector is behind on loading what it received")
    if await request.is_disconnected():  # nobody would hear the answer: do not keep the messages
        return collector.busy("the client went away before its messages were spooled")
    try:
        await asyncio.wrap_future(collector.writer.submit(parsed.spooled().to_bytes()))
    except (OSError, RuntimeError):
        return collector.busy("the spool cannot be written just now")
    collector.loader.added(events)
    return JSONResponse({"success": True})


def _route(call: str):
    async def endpoint(request: Request, app_state: Annotated[AppState, Depends(state)]) -> JSONResponse:
        return await collect(call, request, app_state)

    endpoint.__name__ = f"collect_{call}"
    return endpoint


class BacklogOut(BaseModel):
    """Events acknowledged and not loaded yet, events loaded since the server started, and the backlog bound."""

    pending: int
    loaded: int
    limit: int


COLLECTOR_ERRORS = errors(400, 401, 503, model=CollectorError)


@router.get("/backlog", summary="What the collector holds and has not loaded yet",
            responses={200: {"model": BacklogOut}, 401: COLLECTOR_ERRORS[401]})
async def backlog(request: Request, app_state: Annotated[AppState, Depends(state)]) -> JSONResponse:
    """Events acknowledged and not yet in the store (`pending`), and events loaded since the server started,
    for the write key's sender or a monitor; the same 401 as the calls without a valid write key."""
    collector: Collector | None = getattr(request.app.state, "collector", None)
    key = _basic_key(request)
    if collector is None or key is None or await _write_key(collector, app_state, key) is None:
        return JSONResponse(UNAUTHORIZED, status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="partnerkpi collector"'})
    return JSONResponse({"pending": collector.loader.pending, "loaded": collector.loader.loaded,
                         "limit": collector.settings.max_backlog})


def _body(call: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if call == "batch":
        schema |= {"required": ["batch"], "properties": {"batch": {"type": "array", "maxItems": MAX_BATCH_EVENTS}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_DOCS = {
    "identify": "A user and their traits (partner user: traits.partner_id or context.groupId names the partner).",
    "group": "A partner (groupId) and its traits: name, type, tier, region, ...",
    "track": "An event (event, properties); context.groupId may name the partner.",
    "page": "A page view, stored as a Page Viewed event.",
    "screen": "Accepted as Segment does; kept as a rejected row (partnerkpi has no use for screens).",
    "alias": "Accepted as Segment does; kept as a rejected row (partnerkpi has no use for aliases).",
    "batch": f"Up to {MAX_BATCH_EVENTS} messages, {MAX_BATCH_BYTES // 1024} KB in all; `context` is merged "
    "into each.",
}
for _call in (*CALLS, "batch"):
    router.add_api_route(
        f"/{_call}", _route(_call), methods=["POST"], summary=f"Segment {_call}", description=_DOCS[_call],
        openapi_extra=_body(_call), response_model=None,
        responses={200: {"model": CollectorOk, "description": "The messages are durably spooled"},
                   **COLLECTOR_ERRORS})
