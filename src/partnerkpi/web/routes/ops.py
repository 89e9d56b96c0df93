"""GET /healthz and /readyz, for a process supervisor and a load balancer: no sign-in, no data.

/healthz says the process answers; /readyz that it can do its work: the store answers, the default views are
computed after the start (so the first view is fast), the collector's loader is not failing, and its backlog is
under the bound past which the collector turns requests away.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from partnerkpi.web.state import AppState, state

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class Check(BaseModel):
    """One readiness check: its name, whether it passed, and in words what it found."""

    name: str
    ok: bool
    detail: str


class Readiness(BaseModel):
    """Whether the server can take work, each check, and the reasons it cannot (empty when ready)."""

    ready: bool
    checks: list[Check]
    reasons: list[str]


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    """200 while the process serves requests; reads nothing."""
    return Health()


def _store_check(st: AppState) -> Check:
    try:
        st.hub.store.ping()
    except Exception as exc:  # any failure of the database means: not ready, and why
        return Check(name="store", ok=False, detail=f"the database does not answer: {type(exc).__name__}: {exc}")
    return Check(name="store", ok=True, detail="the database answers")


def _collector_checks(request: Request) -> list[Check]:
    collector = getattr(request.app.state, "collector", None)
    if collector is None:
        return [Check(name="collector", ok=True, detail="no collector on this server (read-only or not DuckDB)")]
    failure = collector.loader.failure
    loader = Check(name="loader", ok=failure is None,
                   detail="loading" if failure is None else f"the last load failed: {failure}")
    pending, bound = collector.loader.pending, collector.settings.max_backlog
    waiting = collector.writer.waiting
    backlog = Check(name="backlog", ok=not collector.overloaded(1),
                    detail=f"{pending} events to load (bound {bound}), {waiting} requests waiting for the spool "
                    f"(bound {collector.settings.max_waiting})")
    return [loader, backlog]


def _warm_check(request: Request) -> Check:
    warming = getattr(request.app.state, "warming", None)
    if warming is not None and warming.is_alive():
        return Check(name="warm", ok=False, detail="computing the default views after the start (web/warm.py)")
    return Check(name="warm", ok=True, detail="the default views are computed")


@router.get("/readyz", response_model=Readiness, summary="Readiness: the store answers and the collector keeps up",
            responses={503: {"model": Readiness, "description": "Not ready: `reasons` says why"}})
def readyz(request: Request, st: Annotated[AppState, Depends(state)]) -> Readiness | JSONResponse:
    """200 when every check passes, else 503 with the failed checks as reasons."""
    checks = [_store_check(st), _warm_check(request), *_collector_checks(request)]
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    result = Readiness(ready=not reasons, checks=checks, reasons=reasons)
    if reasons:
        return JSONResponse(result.model_dump(), status_code=503)
    return result
