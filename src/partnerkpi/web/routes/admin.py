"""User management for admins: the /admin/users page and its JSON twin under /api/v1/users."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from partnerkpi.credentials import MIN_PASSWORD, ROLES, User
from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.web.auth import Actor, check_csrf, sessions
from partnerkpi.web.deps import Admin, AdminApi, St, templates
from partnerkpi.web.openapi import ADMIN_ERRORS, EMAIL_PATTERN, Instant, errors
from partnerkpi.web.state import AppState

router = APIRouter()

DONE = {"added": "User {user} added; they can sign in now.", "removed": "User {user} removed and signed out."}


class UnknownUser(UsageError):
    """No user has this email."""

    http_status = 404


class OwnAccount(PartnerKPIError):
    """An admin asked to remove the account the request is made with."""

    http_status = 409

    def __init__(self) -> None:
        super().__init__("you cannot remove your own account",
                         hint="ask another admin to remove it, so there is always an admin left")


class UserOut(BaseModel):
    """A user as listed (never the password hash)."""

    email: str
    role: str
    partner_id: str | None
    created_at: Instant


class NewUser(BaseModel):
    """A user to add; a partner user names its partner, internal users do not."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"properties": {"role": {"enum": ["admin", "analyst"]},
                        "partner_id": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 0}]}}},
        {"properties": {"role": {"const": "partner"}, "partner_id": {"type": "string", "minLength": 1}},
         "required": ["partner_id"]},
    ]})

    email: str = Field(examples=["ana@example.com"], json_schema_extra={"pattern": EMAIL_PATTERN})
    password: str = Field(description=f"at least {MIN_PASSWORD} characters",
                          json_schema_extra={"minLength": MIN_PASSWORD})
    role: Literal["admin", "analyst", "partner"]
    partner_id: str | None = Field(default=None, description="the partner of a partner user (required for one)")


# -- the one place that changes users -----------------------------------------------------------------
def add_user(st: AppState, email: str, password: str, role: str, partner_id: str | None) -> UserOut:
    """Add a user (under the store's write lock) and return it as listed."""
    with st.write_lock:
        principal = st.credentials.add_user(email, password, role, partner_id or None)
    return _user_out(st, principal.email)


def remove_user(request: Request, st: AppState, actor: Actor, email: str) -> str:
    """Remove a user and end their sessions; an admin cannot remove themselves. Returns the email removed."""
    email = email.strip().lower()
    if email == actor.email:
        raise OwnAccount()
    with st.write_lock:
        if not any(u.email == email for u in st.credentials.list_users()):
            raise UnknownUser(f"there is no user {email}", hint="pick a user from the list of users")
        st.credentials.remove_user(email)
    sessions(request.app).drop_user(email)
    return email


def _user_out(st: AppState, email: str) -> UserOut:
    user = next(u for u in st.credentials.list_users() if u.email == email)
    return _out(user)


def _out(user: User) -> UserOut:
    return UserOut(email=user.email, role=user.role, partner_id=user.partner_id, created_at=user.created_at)


# -- the page -----------------------------------------------------------------------------------------
def _page(request: Request, st: AppState, *, status: int = 200, error: PartnerKPIError | None = None,
          form: dict[str, str] | None = None, done: str | None = None, user: str | None = None) -> HTMLResponse:
    notice = DONE[done].format(user=user or "") if done in DONE else None
    context = {"users": st.credentials.list_users(), "roles": ROLES, "error": error, "notice": notice,
               "form": form or {"role": "analyst"}, "page": "admin"}
    return templates().TemplateResponse(request, "admin_users.html", context, status_code=status,
                                        headers={"Cache-Control": "no-store"})


@router.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
def users_page(request: Request, st: St, actor: Admin, done: str | None = None, user: str | None = None) -> Response:
    """Every user, a remove button for each, and a form to add one."""
    return _page(request, st, done=done, user=user)


@router.post("/admin/users", dependencies=[Depends(check_csrf)], include_in_schema=False)
def users_add(
    request: Request, st: St, actor: Admin,
    email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "", partner_id: Annotated[str, Form()] = "",
) -> Response:
    """Add a user from the form; bad input shows the form again with the problem and how to fix it."""
    try:
        added = add_user(st, email, password, role, partner_id.strip())
    except PartnerKPIError as exc:
        form = {"email": email, "role": role, "partner_id": partner_id}  # never the password
        return _page(request, st, status=400, error=exc, form=form)
    return RedirectResponse("/admin/users?" + urlencode({"done": "added", "user": added.email}), status_code=303)


@router.post("/admin/users/remove", dependencies=[Depends(check_csrf)], include_in_schema=False)
def users_remove(request: Request, st: St, actor: Admin, email: Annotated[str, Form()] = "") -> Response:
    """Remove a user (and end their sessions)."""
    try:
        removed = remove_user(request, st, actor, email)
    except PartnerKPIError as exc:
        return _page(request, st, status=400, error=exc)
    return RedirectResponse("/admin/users?" + urlencode({"done": "removed", "user": removed}), status_code=303)


# -- the JSON twin ------------------------------------------------------------------------------------
@router.get("/api/v1/users", response_model=list[UserOut], tags=["admin"], responses=ADMIN_ERRORS)
def list_users(st: St, actor: AdminApi) -> list[UserOut]:
    """Every user, by email (admins only)."""
    return [_out(u) for u in st.credentials.list_users()]


@router.post("/api/v1/users", response_model=UserOut, status_code=201, tags=["admin"],
             responses=errors(400, 401, 403, 404, 409, 422, 503))
def create_user(body: NewUser, st: St, actor: AdminApi) -> UserOut:
    """Add a user (admins only); a partner user needs `partner_id`."""
    return add_user(st, body.email, body.password, body.role, body.partner_id)


@router.delete("/api/v1/users/{email}", status_code=204, response_class=Response, tags=["admin"],
               responses=errors(401, 403, 404, 409, 422, 503))
def delete_user(email: str, request: Request, st: St, actor: AdminApi) -> Response:
    """Remove a user, revoke their API tokens and end their sessions (admins only)."""
    remove_user(request, st, actor, email)
    return Response(status_code=204)
