"""`create_app(settings)`: the one FastAPI app. It owns the DuckDB file (one writer per file) for its life.

The app imports the routers of web/routes/; they share what they need through web/deps.py, never through here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partnerkpi.errors import PartnerKPIError
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertScheduler
from partnerkpi.settings import Settings
from partnerkpi.store import Store
from partnerkpi.web.auth import require_actor_api
from partnerkpi.web.deps import templates
from partnerkpi.web.empty import NoDataYet, empty_view
from partnerkpi.web.logs import RequestLog
from partnerkpi.web.openapi import install as install_openapi
from partnerkpi.web.partner_views import sort_choices
from partnerkpi.web.routes import ROUTERS
from partnerkpi.web.routes.collector import Collector
from partnerkpi.web.state import AppState
from partnerkpi.web.warm import start_warming


def wants_html(request: Request) -> bool:
    """True for a browser's page request (an error then gets an HTML page); API paths always get JSON."""
    if request.url.path.startswith(("/api/", "/v1/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str, hint: str | None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """A friendly error page; it reads nothing from the hub, so it also works for anonymous visitors."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    context = {"status": status, "title": title, "message": message, "hint": hint, "page": "error"}
    return templates().TemplateResponse(request, "error.html", context, status_code=status, headers=headers)


def import_prompt(request: Request, exc: NoDataYet) -> Response:
    """The "import your data" state of a data page (HTML) or its JSON twin, both 200."""
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


SUBSCRIPTION_TICK = 60.0  # seconds: cron's resolution is a minute
WARM_STOP_SECONDS = 5.0


def create_app(settings: Settings, *, hub: Hub | None = None, warm: bool = False) -> FastAPI:
    """The app for `settings`; a given `hub` is used as it is (and not closed at shutdown). With `warm`, the
    default views are computed in the background after start (web/warm.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = hub is None
        opened = hub or Hub.open(
            settings.db, catalog_paths=settings.catalog_paths, memory_limit=settings.memory_limit,
            targets_path=settings.targets,
            bounds=settings.time_bounds,
        )
        app.state.partnerkpi = st = AppState(opened, settings)
        app.state.collector = None
        if not opened.store.read_only:
            st.alerts = AlertScheduler(settings.alert_interval, st.watch).start()
            st.mailer = AlertScheduler(SUBSCRIPTION_TICK, st.send_due_reports).start()
            if type(opened.store) is Store:  # the loader writes DuckDB; PostgreSQL and lakes have no collector yet
                app.state.collector = Collector.start(opened, settings.collector, st.write_lock, st.new_data)
        warming = start_warming(st) if warm else None
        app.state.warming = warming[0] if warming is not None else None  # /readyz waits for it
        try:
            yield
        finally:
            if warming is not None:
                warming[1].set()
                warming[0].join(WARM_STOP_SECONDS)  # a view being computed finishes, or dies with the process
            st.refresher.stop()
            if app.state.collector is not None:
                app.state.collector.stop()
            for scheduler in (st.alerts, st.mailer):
                if scheduler is not None:
                    scheduler.stop()
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

    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app, {"sort": sort_choices})
    app.add_middleware(RequestLog)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_actor_api)])
    def openapi(request: Request) -> JSONResponse:
        """The OpenAPI document of the JSON API, for a session or a Bearer API token (anonymous: 401)."""
        return JSONResponse(request.app.openapi())

    return app
