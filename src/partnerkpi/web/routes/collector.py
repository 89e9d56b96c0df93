"""A collector speaking Segment's HTTP tracking API: `POST /v1/identify|group|track|page|screen|alias|batch`.

The write key comes as the HTTP Basic username (empty password) or as `writeKey` in the body. Each
request's messages get a server-side `receivedAt`, are written to one Segment JSON Lines spool file
beside the database, and are imported through the hub in one transaction under the app's write lock;
the request is acknowledged only once they are committed. Spool files are kept as the replayable raw
record. Messages the collector itself refuses (oversize inside a batch, not an object, neither
`userId` nor `anonymousId`) go to a second spool file and to `rejected_rows` with their reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from partnerkpi.hub import Hub
from partnerkpi.ingest import fingerprint
from partnerkpi.ingest.importer import ImportSummary
from partnerkpi.ingest.mapping import load_mapping
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
    """One request's messages, ready to spool, and the ones the collector refused."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


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


def _dump(message: Any) -> str:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON) has no UTF-8: keep it escaped
        text = json.dumps(message, separators=(",", ":"))
    return text


def parse_request(call: str, body: Any, received_at: datetime) -> Parsed:
    """Split a decoded request into messages to import and messages refused with a reason."""
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
        if len(_dump(body).encode()) > MAX_EVENT_BYTES:
            raise BadRequest("too_large", f"a message is limited to {MAX_EVENT_BYTES // 1024} KB")
        items = [{**{k: v for k, v in body.items() if k != "writeKey"}, "type": call}]
        shared_context, sent_at = {}, None
    parsed = Parsed()
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
        message.setdefault("messageId", None)
        if message["messageId"] in (None, ""):
            message["messageId"] = f"api-{uuid.uuid4()}"
        message["receivedAt"] = _iso(received_at)
        if message.get("timestamp") in (None, "") and message.get("originalTimestamp") in (None, ""):
            # as Segment does: with no time given, the event happened when it arrived (sentAt: no skew to correct)
            message["timestamp"] = message.get("sentAt") or message["receivedAt"]
        raw = _dump(message)
        if len(raw.encode()) > MAX_EVENT_BYTES:
            parsed.refused.append(Refused(position, None, f"the message is over {MAX_EVENT_BYTES // 1024} KB "
                                          "(Segment's limit per message); trim its properties or traits", raw))
        elif message.get("type") in NEEDS_USER and not (message.get("userId") or message.get("anonymousId")):
            parsed.refused.append(Refused(position, "userId", "neither userId nor anonymousId is given; every "
                                          "Segment call needs one of them", raw))
        else:
            parsed.messages.append(message)
    return parsed


def spool_dir(hub: Hub) -> Path:
    """Where the collector's raw record lives: `<db>.spool/` beside the database (its imports are the arrivals
    the data watermark counts)."""
    return hub.spool_dir()


def _write_lines(path: Path, messages: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(m + "\n" for m in messages)


def commit_request(hub: Hub, parsed: Parsed, received_at: datetime) -> list[ImportSummary]:
    """Spool a request's messages and import them (the caller holds the write lock); rejections are kept."""
    base = spool_dir(hub) / f"{received_at:%Y-%m-%d}" / f"{received_at:%H%M%S%f}-{uuid.uuid4().hex[:12]}"
    written: list[Path] = []
    try:
        summaries = []
        if parsed.messages:
            accepted = base.with_name(base.name + ".segment.jsonl")
            _write_lines(accepted, [_dump(m) for m in parsed.messages])
            written.append(accepted)
            summaries = hub.import_files([accepted], kind="segment")
        if parsed.refused:
            refused = base.with_name(base.name + ".refused.jsonl")
            _write_lines(refused, [r.raw for r in parsed.refused])
            written.append(refused)
            _store_refused(hub, refused, parsed.refused, received_at)
    except BaseException:
        for path in written:  # a spool file always holds committed messages: a retry sends them again
            path.unlink(missing_ok=True)
        raise
    return summaries


def _store_refused(hub: Hub, path: Path, refused: list[Refused], received_at: datetime) -> None:
    """One import entry for the refused messages, with each kept in rejected_rows (line = spool line)."""
    source = os.fspath(path)
    fp = fingerprint(source, "segment", load_mapping(None))
    hub.store.imports.log_refused(source, "segment", fp, received_at, hub.clock(),
                                  [(r.field, r.reason, r.raw) for r in refused])


async def collect(call: str, request: Request, app_state: AppState) -> JSONResponse:
    """Authenticate, check and commit one Segment call; 200 only once its messages are stored."""
    hub = app_state.hub
    try:
        body = await _read_body(request)
        key = _basic_key(request)
        decoded: Any = None
        if key is None:
            decoded = _parse_json(body)
            key = decoded.get("writeKey") if isinstance(decoded, dict) else None
        creds = app_state.credentials
        if not isinstance(key, str) or await run_in_threadpool(creds.verify_write_key, key) is None:
            return JSONResponse(UNAUTHORIZED, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="partnerkpi collector"'})
        if decoded is None:
            decoded = _parse_json(body)
        received_at = hub.clock()
        parsed = parse_request(call, decoded, received_at)
    except BadRequest as exc:
        return _bad(exc.code, exc.message)

    def commit() -> None:
        with app_state.write_lock:
            commit_request(hub, parsed, received_at)

    await run_in_threadpool(commit)
    app_state.new_data()
    return JSONResponse({"success": True})


def _route(call: str):
    async def endpoint(request: Request, app_state: Annotated[AppState, Depends(state)]) -> JSONResponse:
        return await collect(call, request, app_state)

    endpoint.__name__ = f"collect_{call}"
    return endpoint


_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
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
        openapi_extra=_BODY, response_model=None,
        responses={400: {"description": "invalid JSON or over a size limit"},
                   401: {"description": "missing, unknown, revoked or expired write key"}})
