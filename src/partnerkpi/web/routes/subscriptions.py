"""Report subscriptions for admins: the /admin/subscriptions page (next fire, the last run's outcome per
recipient, a "resend failed" button) and its JSON twin under /api/v1/subscriptions."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from partnerkpi.delivery.runs import Retry, Subscriptions, open_subscriptions
from partnerkpi.errors import PartnerKPIError
from partnerkpi.store.subscriptions import STATUSES, Delivery
from partnerkpi.web.auth import Actor, check_csrf, require_admin, require_admin_api
from partnerkpi.web.openapi import ADMIN_ERRORS, Instant, errors
from partnerkpi.web.state import AppState, state

router = APIRouter()

Admin = Annotated[Actor, Depends(require_admin)]
AdminApi = Annotated[Actor, Depends(require_admin_api)]
St = Annotated[AppState, Depends(state)]


def subscriptions(st: St) -> Subscriptions:
    """The app's subscriptions (a dependency: tests swap in their own renderer and sleeper). A request tries
    each recipient once: it never sleeps through a backoff while holding the write lock."""
    return open_subscriptions(st.hub, st.settings.mail, retry=Retry(attempts=1))


Subs = Annotated[Subscriptions, Depends(subscriptions)]


class DeliveryOut(BaseModel):
    """One recipient of one fire: its status and, when it did not go out, why."""

    edition: str
    recipient: str
    status: str
    attempts: int
    error: str | None
    sent_at: Instant | None


class LastRun(BaseModel):
    """The latest fire of a subscription: rows by status and every recipient's row."""

    fire_at: Instant
    counts: dict[str, int]
    recipients: list[DeliveryOut]


class SubscriptionOut(BaseModel):
    """A subscription as listed: its schedule, audience, next fire (UTC) and last run."""

    name: str
    cron: str
    tz: str
    period: str
    audience: str
    segment: str | None
    to: list[str]
    next_fire_at: Instant
    last_run: LastRun | None


class ResendOut(BaseModel):
    """The state of each fire a resend touched, rows by status."""

    fire_at: Instant
    counts: dict[str, int]


def _delivery(row: Delivery) -> DeliveryOut:
    return DeliveryOut(edition=row.edition, recipient=row.recipient, status=row.status, attempts=row.attempts,
                       error=row.last_error, sent_at=row.sent_at)


def listing(subs: Subs) -> list[SubscriptionOut]:
    """Every subscription with its next fire and the outcome of its latest fire per recipient."""
    last = subs.tables.last_counts()
    out = []
    for sub in subs.tables.all():
        run = None
        if sub.name in last:
            fire_at, counts = last[sub.name]
            rows = subs.tables.log(sub.name, fire_at=fire_at)
            run = LastRun(fire_at=fire_at, counts={s: counts.get(s, 0) for s in STATUSES},
                          recipients=[_delivery(r) for r in rows])
        out.append(SubscriptionOut(name=sub.name, cron=sub.cron, tz=sub.tz, period=sub.period, audience=sub.audience,
                                   segment=sub.segment, to=list(sub.to), next_fire_at=subs.next_fire(sub),
                                   last_run=run))
    return out


def resend(st: AppState, subs: Subscriptions, name: str) -> list[ResendOut]:
    """Deliver every pending or failed row of `name` (under the store's write lock)."""
    with st.write_lock:
        summaries = subs.resend(name)
    return [ResendOut(fire_at=s.fire_at, counts=s.counts) for s in summaries]


# -- the page -----------------------------------------------------------------------------------------
def _page(request: Request, subs: Subscriptions, *, status: int = 200, error: PartnerKPIError | None = None,
          notice: str | None = None) -> HTMLResponse:
    from partnerkpi.web.deps import templates

    context = {"subscriptions": listing(subs), "statuses": STATUSES, "error": error, "notice": notice,
               "page": "admin"}
    return templates().TemplateResponse(request, "admin_subscriptions.html", context, status_code=status,
                                        headers={"Cache-Control": "no-store"})


@router.get("/admin/subscriptions", response_class=HTMLResponse, include_in_schema=False)
def subscriptions_page(request: Request, subs: Subs, actor: Admin, resent: str | None = None) -> Response:
    """Every subscription, its next fire, its last run per recipient, and a resend button when one failed."""
    return _page(request, subs, notice=f"Resent what was pending or failed for {resent}." if resent else None)


@router.post("/admin/subscriptions/resend", dependencies=[Depends(check_csrf)], include_in_schema=False)
def subscriptions_resend(request: Request, st: St, subs: Subs, actor: Admin,
                         name: Annotated[str, Form()] = "") -> Response:
    """Resend what failed (or is still pending) for one subscription; what went out is not sent again."""
    try:
        resend(st, subs, name)
    except PartnerKPIError as exc:
        return _page(request, subs, status=400, error=exc)
    return RedirectResponse("/admin/subscriptions?" + urlencode({"resent": name}), status_code=303)


# -- the JSON twin ------------------------------------------------------------------------------------
@router.get("/api/v1/subscriptions", response_model=list[SubscriptionOut], tags=["admin"],
            responses=ADMIN_ERRORS)
def list_subscriptions(subs: Subs, actor: AdminApi) -> list[SubscriptionOut]:
    """Every subscription with its next fire (UTC) and its last run per recipient (admins only)."""
    return listing(subs)


@router.post("/api/v1/subscriptions/{name}/resend", response_model=list[ResendOut], tags=["admin"],
             responses=errors(401, 403, 404, 422, 503))
def resend_subscription(name: str, st: St, subs: Subs, actor: AdminApi) -> list[ResendOut]:
    """Deliver what is pending or failed for `name`; rows already sent are never sent again (admins only)."""
    return resend(st, subs, name)
