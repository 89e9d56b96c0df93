"""Who is asking: an `Actor` resolved once per request, from a session cookie or an API token.

Pages depend on `require_actor_page` (anonymous → 303 to /signin?next=...), the JSON API on
`require_actor_api` (a Bearer API token, or the session cookie for same-origin fetches; anonymous →
401), both through web/deps.py, which builds the request's Reader from `actor.scope_partner`.
Admin-only routes depend on `require_admin` (pages) or `require_admin_api`. Forms that change state
carry a hidden `csrf_token` field (fetches may send the `X-CSRF-Token` header instead) checked by
`check_csrf`.

Sessions and the sign-in rate limiter live in memory on `app.state` (one server process owns the DB).
Every time comes from the hub's clock.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request

from partnerkpi.credentials import ID_CHARS, PREFIXES, Principal
from partnerkpi.errors import PartnerKPIError
from partnerkpi.web.state import AppState, state

SESSION_COOKIE = "pk_session"
SIGNIN_CSRF_COOKIE = "pk_signin_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
IDLE = timedelta(hours=8)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5  # per (client IP, email)
MAX_FAILURES_PER_IP = 20
MAX_TRACKED = 10_000  # (IP, email) keys kept before old ones are swept
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BAD_CREDENTIALS = "wrong email or password"


class NotAuthenticated(PartnerKPIError):
    """No valid credentials: missing, unknown, revoked and expired all look the same."""

    http_status = 401
    headers = {"WWW-Authenticate": "Bearer"}

    def __init__(self) -> None:
        super().__init__("missing, unknown, revoked or expired credentials",
                         hint="sign in at /signin, or send 'Authorization: Bearer <API token>'")


class Forbidden(PartnerKPIError):
    """Signed in, but this request is refused (missing CSRF token, not an admin)."""

    http_status = 403


# -- the actor ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Actor(Principal):
    """A signed-in principal and the scope of what it may read."""

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The actor of a verified principal."""
        return cls(principal.email, principal.role, principal.partner_id if not principal.internal else None)

    @property
    def admin(self) -> bool:
        """True for admins (they manage users)."""
        return self.role == "admin"

    @property
    def home(self) -> str:
        """Where the actor lands after signing in: the scorecard, or a partner user's own partner page."""
        return "/" if self.internal else f"/partners/{quote(self.partner_id or '', safe='')}"

    @property
    def scope_partner(self) -> str | None:
        """The one partner this actor may see; None for internal users (every partner)."""
        return None if self.internal else self.partner_id


# -- sessions -----------------------------------------------------------------------------------------
@dataclass
class Session:
    """A server-side session: who, its CSRF token, and when it expires unless used again."""

    actor: Actor
    csrf_token: str
    expires_at: datetime


class SessionStore:
    """Sessions by their random id, kept in memory; each use extends the idle expiry."""

    def __init__(self, idle: timedelta = IDLE) -> None:
        self.idle = idle
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, actor: Actor, now: datetime) -> str:
        """A new session for `actor`; returns its id (the cookie value)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            for stale in [t for t, s in self._sessions.items() if s.expires_at <= now]:
                del self._sessions[stale]
            self._sessions[token] = Session(actor, secrets.token_urlsafe(32), now + self.idle)
        return token

    def get(self, token: str | None, now: datetime) -> Session | None:
        """The live session of `token` (its expiry moved on), or None when unknown or expired."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires_at <= now:
                del self._sessions[token]
                return None
            session.expires_at = now + self.idle
            return session

    def delete(self, token: str | None) -> None:
        """End a session (signing out); unknown ids are ignored."""
        with self._lock:
            self._sessions.pop(token or "", None)

    def drop_user(self, email: str) -> int:
        """End every session of a user (when the user is removed); returns how many."""
        with self._lock:
            gone = [t for t, s in self._sessions.items() if s.actor.email == email]
            for token in gone:
                del self._sessions[token]
        return len(gone)


def sessions(app: FastAPI) -> SessionStore:
    """The app's session store, made on first use."""
    store = getattr(app.state, "sessions", None)
    if store is None:
        store = app.state.sessions = SessionStore()
    return store


# -- sign-in rate limiting ----------------------------------------------------------------------------
class SignInLimiter:
    """Counts failed sign-ins per (client IP, email) and per IP over a sliding window."""

    def __init__(self, window: timedelta = FAILURE_WINDOW, per_email: int = MAX_FAILURES_PER_EMAIL,
                 per_ip: int = MAX_FAILURES_PER_IP) -> None:
        self.window, self.per_email, self.per_ip = window, per_email, per_ip
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def _keys(self, ip: str, email: str) -> tuple[tuple[tuple[str, str], int], ...]:
        return ((ip, email.strip().lower()), self.per_email), ((ip, ""), self.per_ip)

    def retry_after(self, ip: str, email: str, now: datetime) -> int | None:
        """Seconds to wait when a limit is reached, else None."""
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(ip, email):
                times = self._failures.get(key)
                if times is None:
                    continue
                while times and times[0] <= now - self.window:
                    times.popleft()
                if not times:
                    del self._failures[key]
                elif len(times) >= limit:
                    wait = max(wait, (times[-limit] + self.window - now).total_seconds())
        return max(1, math.ceil(wait)) if wait > 0 else None

    def fail(self, ip: str, email: str, now: datetime) -> None:
        """Count a failed sign-in."""
        with self._lock:
            if len(self._failures) > MAX_TRACKED:  # many IPs or emails: forget what left the window
                for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]:
                    del self._failures[key]
            for key, _ in self._keys(ip, email):
                self._failures.setdefault(key, deque()).append(now)

    def succeed(self, ip: str, email: str) -> None:
        """Forget the failures of this (IP, email) pair (the per-IP count stays)."""
        with self._lock:
            self._failures.pop(self._keys(ip, email)[0][0], None)


def limiter(app: FastAPI) -> SignInLimiter:
    """The app's sign-in limiter, made on first use."""
    made = getattr(app.state, "signin_limiter", None)
    if made is None:
        made = app.state.signin_limiter = SignInLimiter()
    return made


# -- dependencies -------------------------------------------------------------------------------------
def current_session(request: Request, st: Annotated[AppState, Depends(state)]) -> Session | None:
    """The request's live session, if its cookie names one; also put on request.state for templates."""
    session = sessions(request.app).get(request.cookies.get(SESSION_COOKIE), st.hub.clock())
    if session is not None:
        request.state.actor = session.actor
        request.state.csrf_token = session.csrf_token
    return session


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def require_actor_api(
    request: Request,
    st: Annotated[AppState, Depends(state)],
    session: Annotated[Session | None, Depends(current_session)],
) -> Actor:
    """The actor of an API request: a Bearer API token, else the session cookie; 401 otherwise."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        principal = st.credentials.verify_api_token(secret.strip())
        if principal is None:
            raise NotAuthenticated()
        request.state.token_id = token_in_use(secret.strip())
        return Actor.of(principal)
    if session is None:
        raise NotAuthenticated()
    if request.method not in SAFE_METHODS and not _same(request.headers.get(CSRF_HEADER), session.csrf_token):
        raise Forbidden("a cookie-authenticated request that changes state needs the CSRF token",
                        hint=f"send the {CSRF_HEADER} header, or use an API token")
    return session.actor


def token_in_use(secret: str) -> str:
    """The public id of an API token, from its secret (the id is the secret's start)."""
    return secret[: len(PREFIXES["api"]) + ID_CHARS]


def require_actor_page(request: Request, session: Annotated[Session | None, Depends(current_session)]) -> Actor:
    """The actor of a page request; anonymous browsers are sent to /signin and back."""
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first", headers={"Location": f"/signin?next={quote(target, safe='')}"})
    return session.actor


def require_admin(actor: Annotated[Actor, Depends(require_actor_page)]) -> Actor:
    """An admin's page request (others get 403)."""
    if not actor.admin:
        raise Forbidden("only admins may do this", hint="ask an admin")
    return actor


def require_admin_api(actor: Annotated[Actor, Depends(require_actor_api)]) -> Actor:
    """An admin's API request (others get 403)."""
    if not actor.admin:
        raise Forbidden("only admins may do this", hint="use an admin's API token")
    return actor


async def check_csrf(request: Request, session: Annotated[Session | None, Depends(current_session)]) -> None:
    """Refuse (403) a state-changing form post whose csrf_token field (or header) is not the session's."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if session is None or not _same(given, session.csrf_token):
        raise Forbidden("the form's CSRF token is missing or wrong",
                        hint="reload the page and submit the form again")
