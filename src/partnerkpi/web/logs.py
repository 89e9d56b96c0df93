"""Request ids and one JSON line per request.

`RequestLog` (ASGI middleware) keeps the caller's `X-Request-ID` when it is a plain token, else makes one,
returns it on the response, and logs one JSON line to the `partnerkpi.requests` logger: ts, request_id,
method, path (never the query string, which may carry tokens), status, ms and the actor's kind (never a
secret). `partnerkpi serve --log-json` writes those lines to stderr (`log_to_stderr`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
LOGGER = "partnerkpi.requests"
_PLAIN = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # anything else (spaces, quotes, newlines) could forge a log line

log = logging.getLogger(LOGGER)


def request_id(given: str | None) -> str:
    """The caller's request id when it is a plain token of at most 128 characters, else a new one."""
    return given if given is not None and _PLAIN.fullmatch(given) else uuid.uuid4().hex


def actor_kind(scope: Scope) -> str:
    """Who asked, by kind: the signed-in user's role, "api_token", "write_key" (the collector) or "anonymous"."""
    state = scope.get("state") or {}
    actor = state.get("actor")
    if actor is not None:
        return str(actor.role)
    if state.get("token_id"):
        return "api_token"
    if Headers(scope=scope).get("authorization", "").lower().startswith("basic "):
        return "write_key"
    return "anonymous"


def stale_age(scope: Scope) -> float | None:
    """Seconds since the oldest last result the request's reader served in place of a fresh one (web/state:
    stale-while-revalidate); None when everything it served was computed for the data as it is."""
    return getattr(scope.get("state", {}).get("reader"), "stale_age", None)


class RequestLog:
    """ASGI middleware: the request id on every response, an `Age` header (seconds, as caches send it) on one
    that holds a last result computed before the data changed, and one JSON line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, adding its id to the response and logging it once done."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})  # so what the routes put on request.state is seen here afterwards
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                if (age := stale_age(scope)) is not None:
                    headers["Age"] = str(int(age))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(json.dumps({
                    "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "request_id": rid, "method": scope["method"], "path": scope["path"], "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1), "actor": actor_kind(scope),
                    **({"stale_s": round(age, 1)} if (age := stale_age(scope)) is not None else {})}))


def log_to_stderr() -> None:
    """Write the request lines to stderr, one JSON object a line (`partnerkpi serve --log-json`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
