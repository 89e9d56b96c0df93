"""What the OpenAPI document promises, in one place: the error model and the status codes each kind of route
can answer, UTC instants, the security schemes, the values some parameters take from the data, and the 405
(with `Allow`) for a method a path does not have.

Routers declare `responses=errors(...)`; `install(app)` adds the rest to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The store keeps naive UTC instants; JSON says so with a "Z" (RFC 3339 `date-time` needs the offset).
Instant = Annotated[datetime, AfterValidator(_utc)]

DAY_PATTERN = r"^(?:(?:19|20|21)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])|2200-01-01)$"


def optional_day(schema: dict[str, Any]) -> None:
    """An optional day parameter: a date in engine.periods' EARLIEST_DAY .. LATEST_DAY, or empty (not given, as
    an HTML form sends it)."""
    schema.pop("type", None)
    schema["anyOf"] = [{"type": "string", "format": "date", "pattern": DAY_PATTERN},
                       {"type": "string", "maxLength": 0}, {"type": "null"}]


# Python's str.isspace() characters: a value the code strips must be matched by the same set in the schema.
_WS = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"[^{_WS}]"  # a text that is not all whitespace (unanchored: somewhere in it)
EMAIL_PATTERN = rf"^[{_WS}]*[^@{_WS}][\s\S]*@[\s\S]*[^@{_WS}][{_WS}]*$"  # credentials._normal_email's rule


class ErrorOut(BaseModel):
    """Every refusal of the JSON API: what went wrong, and how to fix it."""

    error: str
    hint: str | None


class CollectorError(BaseModel):
    """A refusal of the Segment-compatible collector, in Segment's shape."""

    success: Literal[False]
    code: str
    message: str
    hint: str | None = None


class CollectorOk(BaseModel):
    """The collector's acknowledgement: the messages are durably spooled."""

    success: Literal[True]


WHY = {
    400: "The request names something invalid (a value, a period, a page): the error says what and how to fix it",
    401: "Missing, unknown, revoked or expired credentials",
    403: "Not allowed for this actor (not an admin), or a cookie request without its CSRF token",
    404: "No such object, or one this actor may not see (both answer alike)",
    409: "Conflicts with the current state (e.g. the caller's own account or token)",
    422: "A value the schema refuses: the error names it",
    429: "Too many requests: send again after Retry-After seconds",
    503: "The store is busy or read-only: send again later",
}


def errors(*codes: int, model: type[BaseModel] = ErrorOut) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the status codes a route can answer besides success, each with the error model."""
    return {code: {"model": model, "description": WHY[code]} for code in codes}


API_ERRORS = errors(401, 422, 503)  # every JSON API route: credentials, the schema's values, the store
READ_ERRORS = errors(400, 401, 404, 422, 503)  # reads of the data: bad ranges and periods, unknown ids
ADMIN_ERRORS = errors(401, 403, 422, 503)


# -- 405 with the methods the path really has ---------------------------------------------------------------
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """Every method some route answers on the request's path (Starlette names only the first route's)."""
    return [method for method in METHODS
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)]


API_PREFIXES = ("/api/", "/v1/")


async def _as_page(request: Request, exc: StarletteHTTPException) -> Response:
    """A page request's error: the app's own handler of HTTP errors (an error page for browsers)."""
    return await request.app.exception_handlers[StarletteHTTPException](request, exc)


async def method_not_allowed(request: Request, exc: StarletteHTTPException) -> Response:
    """405 for a method the path does not have (OPTIONS included), with `Allow` listing the ones it does."""
    allow = ", ".join(allowed_methods(request.app, request.scope))
    if not request.url.path.startswith(API_PREFIXES):
        return await _as_page(request, StarletteHTTPException(405, headers={**(exc.headers or {}), "Allow": allow}))
    body = ErrorOut(error=f"{request.method} is not allowed on {request.url.path}", hint=f"use one of: {allow}")
    return JSONResponse(body.model_dump(), status_code=405, headers={"Allow": allow})


async def malformed_body(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's 400 for a body it cannot parse, in the error model."""
    if not request.url.path.startswith(API_PREFIXES):
        return await _as_page(request, exc)
    body = ErrorOut(error=str(exc.detail).lower(), hint="send a well-formed body of the documented media type")
    return JSONResponse(body.model_dump(), status_code=400, headers=exc.headers)


# -- the document -------------------------------------------------------------------------------------------
SECURITY_SCHEMES = {
    "apiToken": {"type": "http", "scheme": "bearer",
                 "description": "An API token (`partnerkpi tokens create EMAIL`); a signed-in browser's session "
                                "cookie also works"},
    "writeKey": {"type": "http", "scheme": "basic",
                 "description": "A Segment write key as the username, with an empty password (or `writeKey` "
                                "in the body)"},
}

# Query parameters whose values come from the data: the document lists the ones the server has now.
Choices = Callable[[Any], list[str]]


DATA_CHOICES: dict[str, Choices] = {"by": lambda hub: hub.traits(), "peers_by": lambda hub: hub.traits()}


def _levels(hub: Any) -> list[str]:
    from partnerkpi.insights.health.config import load_config

    return [level.name for level in load_config(catalog=hub.catalog).levels]


# Body fields whose values come from the configuration: (component, property) -> its current values.
CONFIG_CHOICES: dict[tuple[str, str], Choices] = {("NewOverride", "level"): _levels}


def _security(path: str) -> list[dict[str, list[str]]]:
    """The scheme a path needs: an API token under /api/, a write key under /v1/, none elsewhere (the
    health checks /healthz and /readyz, the only other paths in the document)."""
    if path.startswith("/api/"):
        return [{"apiToken": []}]
    if path.startswith("/v1/"):
        return [{"writeKey": []}]
    return []


def document(app: FastAPI, data_choices: dict[str, Choices] = DATA_CHOICES) -> dict[str, Any]:
    """The OpenAPI document: the routes' own, with the security schemes and the data's current choices."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    st = getattr(app.state, "partnerkpi", None)
    choices = _data_choices(st.hub, data_choices) if st is not None else {}
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            operation["security"] = _security(path)
            for parameter in operation.get("parameters", []):
                values = choices.get(parameter["name"]) if parameter["in"] == "query" else None
                if values:
                    _restrict(parameter["schema"], values)
    if st is not None:
        schemas = doc["components"].get("schemas", {})
        for (component, field), make in CONFIG_CHOICES.items():
            if component in schemas:
                _restrict(schemas[component]["properties"][field], make(st.hub))
    return doc


def _data_choices(hub: Any, data_choices: dict[str, Choices]) -> dict[str, list[str]]:
    """The data's current values of each parameter, read through a snapshot as requests read."""
    try:
        snapshot = hub.snapshot()
    except Exception:  # noqa: BLE001 (the hub is closed: app shut down) the document, without the data's values
        return {}
    try:
        return {name: sorted(set(make(snapshot))) for name, make in data_choices.items()}
    finally:
        snapshot.close_snapshot()


def _restrict(schema: dict[str, Any], values: list[str]) -> None:
    """Put `enum` on the string branch of a (possibly nullable) parameter schema."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch["enum"] = values


def install(app: FastAPI, choices: dict[str, Choices] | None = None) -> None:
    """Serve `document` as the app's OpenAPI (built per request: the data's choices change with imports), with
    `choices` for more query parameters, and answer 405 with a complete `Allow`."""
    every = {**DATA_CHOICES, **(choices or {})}
    app.openapi = lambda: document(app, every)  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)  # type: ignore[arg-type]
    app.add_exception_handler(400, malformed_body)  # type: ignore[arg-type]
