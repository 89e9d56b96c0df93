"""Authentication: sessions, CSRF, sign-in rate limiting and API tokens, through a real app."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings
from partnerkpi.web import auth, create_app
from partnerkpi.web.auth import Actor, require_actor_api, require_actor_page, require_admin
from partnerkpi.web.routes import auth as signin_routes
from tests.web_fixtures import build_program, form_token, sign_in

ANALYST = ("ana@example.com", "analyst-pass")
PARTNER = ("pat@r1.example", "partner-pass")
ADMIN = ("root@example.com", "admin-pass1")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 8, 1, 9))


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    """The tiny program with an analyst, an admin and a partner user of R1 (built once, copied per test)."""
    db = build_program(tmp_path_factory.mktemp("auth"))
    with Hub.open(db) as hub:
        creds = Credentials(hub.store)
        creds.add_user(*ANALYST, "analyst")
        creds.add_user(*PARTNER, "partner", "R1")
        creds.add_user(*ADMIN, "admin")
    return db


@pytest.fixture
def hub(program, tmp_path, clock):
    db = tmp_path / "hub.duckdb"
    shutil.copyfile(program, db)
    opened = Hub.open(db, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def client(hub, tmp_path):
    app = create_app(Settings(db=str(tmp_path / "hub.duckdb")), hub=hub)
    app.include_router(signin_routes.router)

    @app.get("/test/whoami")
    def whoami(actor: Annotated[Actor, Depends(require_actor_api)]) -> dict:
        return {**asdict(actor), "internal": actor.internal, "scope_partner": actor.scope_partner}

    @app.post("/test/whoami")
    def whoami_post(actor: Annotated[Actor, Depends(require_actor_api)]) -> dict:
        return asdict(actor)

    @app.get("/test/page")
    def page(actor: Annotated[Actor, Depends(require_actor_page)]) -> dict:
        return asdict(actor)

    @app.get("/test/admin")
    def admin(actor: Annotated[Actor, Depends(require_admin)]) -> dict:
        return asdict(actor)

    @app.post("/test/act", dependencies=[Depends(auth.check_csrf)])
    def act() -> dict:
        return {"done": True}

    with TestClient(app, follow_redirects=False) as c:
        yield c


def whoami_with_session(client: TestClient, session_id: str):
    """GET /test/whoami with the given session cookie in the client's jar."""
    client.cookies.set(auth.SESSION_COOKIE, session_id)
    return client.get("/test/whoami")


def session_csrf(client: TestClient) -> str:
    """The session's CSRF token, as a form rendered for this session would carry it."""
    session = client.app.state.sessions.get(client.cookies.get(auth.SESSION_COOKIE), datetime(2026, 8, 1, 9))
    return session.csrf_token


def test_signin_sets_an_httponly_samesite_session_cookie(client):
    response = sign_in(client, *ANALYST, next="/kpis/active_partner_rate?grain=week")
    assert response.status_code == 303
    assert response.headers["location"] == "/kpis/active_partner_rate?grain=week"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("pk_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert len(cookie.split(";")[0].removeprefix("pk_session=")) >= 43
    assert client.get("/test/whoami").json() == {
        "email": "ana@example.com", "role": "analyst", "partner_id": None, "internal": True, "scope_partner": None}


def test_partner_actor_carries_its_partner_scope(client):
    sign_in(client, *PARTNER)
    assert client.get("/test/whoami").json() == {
        "email": "pat@r1.example", "role": "partner", "partner_id": "R1", "internal": False, "scope_partner": "R1"}


def test_wrong_password_and_unknown_email_get_identical_responses(client):
    wrong = sign_in(client, ANALYST[0], "not-the-password")
    unknown = sign_in(client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "pk_session" not in wrong.cookies and "pk_session" not in unknown.cookies
    strip = {"ana@example.com": "EMAIL", "nobody@example.com": "EMAIL"}
    bodies = [re.sub("|".join(map(re.escape, strip)), "EMAIL", r.text) for r in (wrong, unknown)]
    assert bodies[0] == bodies[1] and "Wrong email or password." in bodies[0]


def test_the_sixth_failure_within_15_minutes_gets_429_until_the_window_passes(client, clock):
    for _ in range(5):
        assert sign_in(client, ANALYST[0], "bad-password").status_code == 401
        clock.now += timedelta(minutes=1)
    limited = sign_in(client, *ANALYST)  # even the right password waits
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) == 10 * 60  # now 9:05; the 9:00 failure leaves the window at 9:15
    assert "pk_session" not in limited.cookies
    assert sign_in(client, PARTNER[0], "bad-password").status_code == 401  # another email is not blocked
    clock.now += timedelta(minutes=10)
    assert sign_in(client, *ANALYST).status_code == 303


def test_per_ip_limit_across_emails(client):
    for i in range(auth.MAX_FAILURES_PER_IP):
        assert sign_in(client, f"guess{i}@example.com", "bad-password").status_code == 401
    assert sign_in(client, *ANALYST).status_code == 429


def test_only_failures_count(client):
    for _ in range(8):
        assert sign_in(client, *ANALYST).status_code == 303


def test_signin_without_the_csrf_token_is_refused(client):
    client.get("/signin")
    response = client.post("/signin", data={"email": ANALYST[0], "password": ANALYST[1]})
    assert response.status_code == 403 and "pk_session" not in response.cookies
    # a cross-site post carries no pre-session cookie: the token alone is not enough
    token = form_token(client.get("/signin").text)
    client.cookies.clear()
    response = client.post("/signin", data={"email": ANALYST[0], "password": ANALYST[1], "csrf_token": token})
    assert response.status_code == 403


def test_state_changing_posts_need_the_session_csrf_token(client):
    sign_in(client, *ANALYST)
    assert client.post("/test/act").status_code == 403
    assert client.post("/test/act", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/test/act", data={"csrf_token": session_csrf(client)}).json() == {"done": True}
    assert client.post("/test/act", headers={auth.CSRF_HEADER: session_csrf(client)}).status_code == 200
    # cookie-authenticated API writes need the header too; GETs do not
    assert client.post("/test/whoami").status_code == 403
    assert client.post("/test/whoami", headers={auth.CSRF_HEADER: session_csrf(client)}).status_code == 200


def test_bearer_token_works_and_bad_tokens_all_get_the_same_401(client, hub, clock):
    creds = Credentials(hub.store, clock=clock)
    good = creds.create_token(PARTNER[0])
    revoked = creds.create_token(PARTNER[0])
    creds.revoke(revoked)
    expiring = creds.create_token(ANALYST[0], expires_days=1)
    response = client.get("/test/whoami", headers={"Authorization": f"Bearer {good}"})
    assert response.json()["scope_partner"] == "R1"
    assert client.get("/test/whoami", headers={"Authorization": f"Bearer {expiring}"}).status_code == 200
    clock.now += timedelta(days=2)
    answers = [client.get("/test/whoami", headers={"Authorization": f"Bearer {secret}"})
               for secret in (revoked, expiring, "pk_api_unknownsecret", "garbage")]
    answers.append(client.get("/test/whoami"))
    answers.append(whoami_with_session(client, "made-up"))
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["error"] == "missing, unknown, revoked or expired credentials"


def test_bearer_token_needs_no_csrf(client, hub, clock):
    token = Credentials(hub.store, clock=clock).create_token(ADMIN[0])
    assert client.post("/test/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_signout_invalidates_the_session(client):
    sign_in(client, *ANALYST)
    old = client.cookies.get("pk_session")
    assert client.post("/signout").status_code == 403  # CSRF-checked
    assert client.get("/test/whoami").status_code == 200
    response = client.post("/signout", data={"csrf_token": session_csrf(client)})
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert client.get("/test/whoami").status_code == 401
    assert whoami_with_session(client, old).status_code == 401


def test_sessions_expire_when_idle(client, clock):
    sign_in(client, *ANALYST)
    clock.now += timedelta(hours=7)
    assert client.get("/test/whoami").status_code == 200  # use moves the expiry on
    clock.now += timedelta(hours=7)
    assert client.get("/test/whoami").status_code == 200
    clock.now += timedelta(hours=8, seconds=1)
    assert client.get("/test/whoami").status_code == 401


def test_signin_gives_a_fresh_session_id(client):
    sign_in(client, *ANALYST)
    first = client.cookies.get("pk_session")
    sign_in(client, *PARTNER)
    assert client.cookies.get("pk_session") != first
    assert whoami_with_session(client, first).status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "http:/evil", "javascript:alert(1)", "evil.example", "/\x0a/evil"])
def test_next_outside_the_site_is_ignored(client, target):
    response = sign_in(client, *ANALYST, next=target)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_pages_redirect_anonymous_visitors_to_signin_and_back(client):
    response = client.get("/test/page?grain=week")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Ftest%2Fpage%3Fgrain%3Dweek"
    form = client.get(response.headers["location"])
    assert form_token(form.text, "next") == "/test/page?grain=week"
    assert 'name="password"' in form.text and "Sign in" in form.text
    assert "<script>" not in client.get("/signin", params={"next": '/x"><script>alert(1)</script>'}).text
    assert sign_in(client, *ANALYST, next="/test/page?grain=week").headers["location"] == "/test/page?grain=week"
    assert client.get("/test/page").json()["email"] == ANALYST[0]


def test_admin_only(client):
    sign_in(client, *ANALYST)
    assert client.get("/test/admin").status_code == 403
    sign_in(client, *ADMIN)
    assert client.get("/test/admin").json()["role"] == "admin"


def test_removed_users_lose_their_sessions(client):
    sign_in(client, *PARTNER)
    assert auth.sessions(client.app).drop_user(PARTNER[0]) == 1
    assert client.get("/test/whoami").status_code == 401


def test_limiter_forgets_failures_that_left_the_window(monkeypatch):
    monkeypatch.setattr(auth, "MAX_TRACKED", 3)
    limiter, start = auth.SignInLimiter(), datetime(2026, 8, 1, 9)
    for i in range(4):
        limiter.fail(f"10.0.0.{i}", "a@example.com", start)
    limiter.fail("10.0.0.9", "a@example.com", start + timedelta(minutes=16))
    assert len(limiter._failures) == 2  # only the new (IP, email) and IP keys remain
