"""`create_app(settings)`: the one FastAPI app. It owns the DuckDB file (one writer per file) for its life."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from partnerkpi.errors import PartnerKPIError
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings
from partnerkpi.web.credentials import Credentials


@dataclass
class AppState:
    """What the routes share: the hub, and the lock that serialises writes to its store."""

    hub: Hub
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def credentials(self) -> Credentials:
        """Users, API tokens and write keys in the hub's store (made on first use, which creates their
        tables when missing); shared by sign-in and the collector."""
        return Credentials(self.hub.store, clock=self.hub.clock)


def create_app(settings: Settings, *, hub: Hub | None = None) -> FastAPI:
    """The app for `settings`; a given `hub` is used as it is (and not closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = hub is None
        opened = hub or Hub.open(
            settings.db, catalog_paths=settings.catalog_paths, memory_limit=settings.memory_limit
        )
        app.state.partnerkpi = AppState(opened)
        try:
            yield
        finally:
            if own:
                opened.close()

    app = FastAPI(
        title="partnerkpi",
        version="0.1.0",
        description="KPIs of a partner hub: scorecards, KPI stories, partners, data quality, and a "
        "Segment-compatible collector.",
        lifespan=lifespan,
    )

    @app.exception_handler(PartnerKPIError)
    async def partnerkpi_error(request: Request, exc: PartnerKPIError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "hint": exc.hint},
            status_code=exc.http_status,
            headers=getattr(exc, "headers", None),  # e.g. WWW-Authenticate on a 401
        )

    from partnerkpi.web import api, auth, collector, pages

    app.include_router(auth.router)
    app.include_router(collector.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    return app


def state(request: Request) -> AppState:
    """The app's shared state (a FastAPI dependency)."""
    return request.app.state.partnerkpi
