"""Sign-in and sign-out: the form, the password check that starts a session, and the end of it."""

from __future__ import annotations

import math
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from partnerkpi.web.auth import (
    BAD_CREDENTIALS,
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    Actor,
    Session,
    _same,
    check_csrf,
    current_session,
    limiter,
    sessions,
)
from partnerkpi.web.deps import St, templates

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else "/" (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _form(request: Request, status: int, *, next: str, email: str = "", error: str | None = None,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    token = request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    context: dict[str, Any] = {"csrf_token": token, "next": safe_next(next), "email": email, "error": error,
                               "page": "signin"}
    response = templates().TemplateResponse(request, "signin.html", context, status_code=status,
                                            headers={"Cache-Control": "no-store", **(headers or {})})
    _set_cookie(request, response, SIGNIN_CSRF_COOKIE, token)
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in form (with its pre-session CSRF token, also set as a cookie)."""
    return _form(request, 200, next=next)


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    st: St,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password; on success start a session and go to `next` (a local path) or /."""
    if not _same(csrf_token, request.cookies.get(SIGNIN_CSRF_COOKIE)):
        return _form(request, 403, next=next, email=email,
                     error="The sign-in form expired or came from another site. Please sign in again.")
    ip, now = _client(request), st.hub.clock()
    wait = limiter(request.app).retry_after(ip, email, now)
    if wait is not None:
        return _form(request, 429, next=next, email=email, headers={"Retry-After": str(wait)},
                     error=f"Too many failed sign-ins. Try again in {math.ceil(wait / 60)} minute(s).")
    principal = st.credentials.verify_password(email, password)
    if principal is None:
        limiter(request.app).fail(ip, email, now)
        return _form(request, 401, next=next, email=email, error=f"{BAD_CREDENTIALS.capitalize()}.")
    limiter(request.app).succeed(ip, email)
    store = sessions(request.app)
    store.delete(request.cookies.get(SESSION_COOKIE))  # a fresh id at every sign-in: no session fixation
    actor = Actor.of(principal)
    target = safe_next(next)
    response = RedirectResponse(actor.home if target == "/" else target, status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, store.create(actor, now))
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request, session: Annotated[Session | None, Depends(current_session)]) -> Response:
    """End the session (CSRF-checked) and go to the sign-in form."""
    if session is not None:
        await check_csrf(request, session)
        sessions(request.app).delete(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
