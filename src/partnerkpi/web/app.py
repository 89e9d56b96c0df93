"""`create_app(settings)`: the one FastAPI app. It owns the DuckDB file (one writer per file) for its life."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partnerkpi.errors import PartnerKPIError
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertScheduler
from partnerkpi.settings import Settings
from partnerkpi.web.credentials import Credentials
from partnerkpi.web.empty import NoDataYet, empty_view

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

    def new_data(self) -> None:
        """Say that data arrived (an upload, a collector flush): the alert rules are evaluated soon."""
        if self.alerts is not None:
            self.alerts.poke()

    def watch(self) -> None:
        """Evaluate the alert rules now (under the write lock: the run stores firings and resolves)."""
        from partnerkpi.insights.watch import run_watch

        with self.write_lock:
            run_watch(self.hub, self.settings)

    @cached_property
    def credentials(self) -> Credentials:
        """Users, API tokens and write keys in the hub's store (made on first use, which creates their
        tables when missing); shared by sign-in and the collector."""
        return Credentials(self.hub.store, clock=self.hub.clock)


def wants_html(request: Request) -> bool:
    """True for a browser's page request (an error then gets an HTML page); API paths always get JSON."""
    if request.url.path.startswith(("/api/", "/v1/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str, hint: str | None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """A friendly error page; it reads nothing from the hub, so it also works for anonymous visitors."""
    from partnerkpi.web.pages import templates

    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    context = {"status": status, "title": title, "message": message, "hint": hint, "page": "error"}
    return templates().TemplateResponse(request, "error.html", context, status_code=status, headers=headers)


def import_prompt(request: Request, exc: NoDataYet) -> Response:
    """The "import your data" state of a data page (HTML) or its JSON twin, both 200."""
    from partnerkpi.web.pages import templates

    view = empty_view(exc, request.app.state.partnerkpi.settings.db, str(request.base_url))
    if wants_html(request):
        return templates().TemplateResponse(request, "empty.html", {"view": view, "page": "empty"})
    return JSONResponse(view.model_dump())


def validation_message(exc: RequestValidationError) -> tuple[str, str]:
    """A request's invalid values as one sentence and a hint, in the words of the project's errors."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path", "filters"))
        value = error.get("input")
        shown = f" '{value}'" if isinstance(value, str | int | float) else ""
        parts.append(f"{where or 'the request'}{shown}: {error.get('msg', 'invalid').lower()}")
    return "invalid value: " + "; ".join(parts), "fix the values named and send the request again"


def create_app(settings: Settings, *, hub: Hub | None = None) -> FastAPI:
    """The app for `settings`; a given `hub` is used as it is (and not closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = hub is None
        opened = hub or Hub.open(
            settings.db, catalog_paths=settings.catalog_paths, memory_limit=settings.memory_limit,
            targets_path=settings.targets,
            bounds=settings.time_bounds,
        )
        app.state.partnerkpi = st = AppState(opened, settings)
        if not opened.store.read_only:
            st.alerts = AlertScheduler(settings.alert_interval, st.watch).start()
        try:
            yield
        finally:
            if st.alerts is not None:
                st.alerts.stop()
            if own:
                opened.close()

    app = FastAPI(
        title="partnerkpi",
        version="0.1.0",
        description="KPIs of a partner hub: scorecards, KPI stories, partners, data quality, and a "
        "Segment-compatible collector.",
        lifespan=lifespan,
        openapi_url=None,  # served below to signed-in callers only
        docs_url=None,  # Swagger UI and ReDoc load their assets from a CDN: off (no third-party hosts)
        redoc_url=None,
    )

    @app.exception_handler(PartnerKPIError)
    async def partnerkpi_error(request: Request, exc: PartnerKPIError) -> Response:
        if isinstance(exc, NoDataYet):
            return import_prompt(request, exc)
        headers = getattr(exc, "headers", None)  # e.g. WWW-Authenticate on a 401
        if wants_html(request):
            return error_page(request, exc.http_status, exc.message, exc.hint, headers)
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        message, hint = validation_message(exc)
        if wants_html(request):
            return error_page(request, 422, message, hint)
        return JSONResponse({"error": message, "hint": hint}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        redirect = exc.status_code < 400 or any(k.lower() == "location" for k in exc.headers or {})
        if redirect or not wants_html(request):  # e.g. require_actor_page's 303 to /signin
            return await http_exception_handler(request, exc)
        message, hint = str(exc.detail), None
        if exc.status_code == 404:
            hint = "check the address, or start again from the home page"
            if message == HTTPStatus.NOT_FOUND.phrase:  # Starlette's unknown route
                message = f"there is no page at {request.url.path}"
        return error_page(request, exc.status_code, message, hint, exc.headers)

    from partnerkpi.web import admin, admin_tokens, api, auth, collector, imports, insight_routes, pages, snapshot
    from partnerkpi.web.subscriptions import router as subscriptions_router

    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(admin_tokens.router)
    app.include_router(subscriptions_router)
    app.include_router(collector.router)
    app.include_router(api.router)
    app.include_router(imports.router)
    app.include_router(snapshot.router)
    app.include_router(insight_routes.api)
    app.include_router(insight_routes.pages)
    app.include_router(pages.router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(auth.require_actor_api)])
    def openapi(request: Request) -> JSONResponse:
        """The OpenAPI document of the JSON API, for a session or a Bearer API token (anonymous: 401)."""
        return JSONResponse(request.app.openapi())

    return app


def state(request: Request) -> AppState:
    """The app's shared state (a FastAPI dependency)."""
    return request.app.state.partnerkpi
