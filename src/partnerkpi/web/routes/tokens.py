"""API tokens and Segment write keys for admins, while the server runs (the CLI cannot open the file
then): the /admin/tokens page and its JSON twin under /api/v1/tokens. A secret is shown once, at creation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.web.auth import check_csrf
from partnerkpi.web.deps import Admin, AdminApi, St, templates
from partnerkpi.web.openapi import ADMIN_ERRORS, EMAIL_PATTERN, NOT_BLANK, Instant, errors
from partnerkpi.web.state import AppState

router = APIRouter()

Kind = Literal["api", "write_key"]


class TokenOut(BaseModel):
    """An API token or write key as listed (never the secret, which is stored hashed)."""

    token_id: str
    kind: str
    name: str | None
    email: str | None
    created_at: Instant
    expires_at: Instant | None
    revoked_at: Instant | None
    last_used_at: Instant | None
    status: str


class NewToken(BaseModel):
    """A token to make: an API token of a user (`email`), or a Segment write key (`name` required)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"properties": {"kind": {"const": "api"}, "email": {"type": "string", "pattern": EMAIL_PATTERN}},
         "required": ["email"]},
        {"properties": {"kind": {"const": "write_key"}, "name": {"type": "string", "pattern": NOT_BLANK}},
         "required": ["name"]},
    ]})

    kind: Kind
    email: str | None = Field(default=None, description="the user an API token acts as")
    name: str | None = Field(default=None, description="what it is for (required for a write key)")
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class CreatedToken(BaseModel):
    """The new secret: shown once, never again."""

    kind: Kind
    secret: str


# -- the one place that changes tokens ------------------------------------------------------------------
def create(st: AppState, new: NewToken) -> CreatedToken:
    """Make an API token or a write key (under the store's write lock)."""
    with st.write_lock:
        if new.kind == "api":
            if not new.email:
                raise UsageError("an API token needs the email of the user it acts as",
                                 hint="give the email of an existing user")
            secret = st.credentials.create_token(new.email, new.name or None, new.expires_days)
        else:
            secret = st.credentials.create_write_key(new.name or "", new.expires_days)
    return CreatedToken(kind=new.kind, secret=secret)


class RevokingOwnToken(PartnerKPIError):
    """The token to revoke is the one this request is authenticated with: the caller would lock itself out."""

    http_status = 409

    def __init__(self, token_id: str) -> None:
        super().__init__(f"this request is authenticated with API token {token_id}",
                         hint="revoke it from another session: the web page, or a request made with another token")


def revoke(st: AppState, token_id: str, in_use: str | None = None) -> TokenOut:
    """Revoke a token or write key by its id (or its secret, which starts with the id), never `in_use`, the
    token the request is made with."""
    given = token_id.strip()
    if in_use is not None and given.startswith(in_use):
        raise RevokingOwnToken(in_use)
    with st.write_lock:
        info = st.credentials.revoke(given)
    return _out(st, info)


def listed(st: AppState) -> list[TokenOut]:
    """Every token and write key, oldest first."""
    with st.write_lock:
        return [_out(st, t) for t in st.credentials.list_tokens()]


def _out(st: AppState, info) -> TokenOut:
    return TokenOut(**{k: getattr(info, k) for k in TokenOut.model_fields if k != "status"},
                    status=info.status(st.hub.clock()))


def _page(request: Request, st: AppState, *, status: int = 200, error: PartnerKPIError | None = None,
          created: CreatedToken | None = None, revoked: str | None = None) -> HTMLResponse:
    context = {"tokens": listed(st), "error": error, "created": created, "revoked": revoked,
               "users": st.credentials.list_users(), "page": "admin"}
    return templates().TemplateResponse(request, "admin_tokens.html", context, status_code=status,
                                        headers={"Cache-Control": "no-store"})


# -- the page -----------------------------------------------------------------------------------------------
@router.get("/admin/tokens", response_class=HTMLResponse, include_in_schema=False)
def tokens_page(request: Request, st: St, actor: Admin, revoked: str | None = None) -> Response:
    """Every API token and write key with its status, a revoke button each, and forms to make new ones."""
    return _page(request, st, revoked=revoked)


@router.post("/admin/tokens", dependencies=[Depends(check_csrf)], include_in_schema=False)
def tokens_create(
    request: Request, st: St, actor: Admin, kind: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
    expires_days: Annotated[str, Form()] = "",
) -> Response:
    """Make a token from the form; the page shows its secret once (not a redirect: no secret in a URL)."""
    try:
        days = int(expires_days) if expires_days.strip() else None
        new = NewToken(kind=kind, email=email or None, name=name or None, expires_days=days)  # type: ignore[arg-type]
        made = create(st, new)
    except (PartnerKPIError, ValueError) as exc:
        error = exc if isinstance(exc, PartnerKPIError) else UsageError(
            "the form is not valid", hint="choose a kind; expiry is a whole number of days from 1 to 3650")
        return _page(request, st, status=400, error=error)
    return _page(request, st, status=201, created=made)


@router.post("/admin/tokens/revoke", dependencies=[Depends(check_csrf)], include_in_schema=False)
def tokens_revoke(request: Request, st: St, actor: Admin, token_id: Annotated[str, Form()] = "") -> Response:
    """Revoke a token or write key."""
    try:
        revoke(st, token_id)  # a page request is a session, never an API token
    except PartnerKPIError as exc:
        return _page(request, st, status=400, error=exc)
    return RedirectResponse(f"/admin/tokens?revoked={token_id}", status_code=303)


# -- the JSON twin --------------------------------------------------------------------------------------------
@router.get("/api/v1/tokens", response_model=list[TokenOut], tags=["admin"], responses=ADMIN_ERRORS)
def list_tokens(st: St, actor: AdminApi) -> list[TokenOut]:
    """Every API token and write key with its status (never a secret)."""
    return listed(st)


@router.post("/api/v1/tokens", response_model=CreatedToken, status_code=201, tags=["admin"],
             responses=errors(400, 401, 403, 404, 422, 503))
def create_token(body: NewToken, st: St, actor: AdminApi) -> CreatedToken:
    """Make an API token of a user or a Segment write key; the secret is in this answer only."""
    return create(st, body)


@router.delete("/api/v1/tokens/{token_id}", response_model=TokenOut, tags=["admin"],
               responses=errors(401, 403, 404, 409, 422, 503))
def revoke_token(request: Request, token_id: str, st: St, actor: AdminApi) -> TokenOut:
    """Revoke an API token or write key: it stops working at once. The token the request is made with
    cannot revoke itself (409): use another token or the /admin/tokens page."""
    return revoke(st, token_id, getattr(request.state, "token_id", None))
