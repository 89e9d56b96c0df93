"""Admins manage users (the /admin/users page and its JSON twin), the signed-in header, and HTML error pages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings
from partnerkpi.web import create_app
from tests.web_fixtures import ADMIN, ANALYST, PARTNER_A1, PARTNER_R1, add_users, build_program, form_token, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
NEW = ("new@example.com", "new-user-pass")


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    """The tiny program and its four users (built once, copied per test)."""
    db = build_program(tmp_path_factory.mktemp("admin"))
    add_users(db)
    return db


@pytest.fixture
def hub(program, tmp_path):
    db = tmp_path / "hub.duckdb"
    shutil.copyfile(program, db)
    opened = Hub.open(db)
    yield opened
    opened.close()


@pytest.fixture
def client(hub, tmp_path):
    app = create_app(Settings(db=str(tmp_path / "hub.duckdb")), hub=hub)
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def admin(client) -> TestClient:
    """The client, signed in as the admin."""
    assert sign_in(client, *ADMIN).status_code == 303
    return client


def bearer(hub: Hub, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {Credentials(hub.store).create_token(email)}"}


def emails(hub: Hub) -> set[str]:
    return {u.email for u in Credentials(hub.store).list_users()}


def add_form(client: TestClient, **fields: str):
    """POST the add-user form with the CSRF token of the freshly rendered page."""
    token = form_token(client.get("/admin/users").text)
    return client.post("/admin/users", data={"csrf_token": token, **fields})


def remove_form(client: TestClient, email: str):
    token = form_token(client.get("/admin/users").text)
    return client.post("/admin/users/remove", data={"csrf_token": token, "email": email})


# -- the page -----------------------------------------------------------------------------------------
def test_admin_page_lists_every_user_without_hashes(admin):
    page = admin.get("/admin/users")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for email in (ADMIN[0], ANALYST[0], PARTNER_R1[0], PARTNER_A1[0]):
        assert email in page.text
    assert "<td>R1</td>" in page.text and "<td>A1</td>" in page.text
    assert "argon2" not in page.text
    assert page.text.count('action="/admin/users/remove"') == 3  # everyone but the admin themselves
    assert 'name="partner_id"' in page.text and 'name="password"' in page.text


def test_admin_adds_a_user_who_can_then_sign_in(admin, hub):
    response = add_form(admin, email=NEW[0], password=NEW[1], role="partner", partner_id="R2")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users?done=added&user=new%40example.com"
    shown = admin.get(response.headers["location"])
    assert "User new@example.com added" in shown.text and "<td>R2</td>" in shown.text
    assert sign_in(admin, *NEW).status_code == 303
    assert admin.get("/admin/users").status_code == 403  # signed in as the new partner user now
    assert next(u for u in Credentials(hub.store).list_users() if u.email == NEW[0]).partner_id == "R2"


def test_admin_removes_a_user_and_ends_their_sessions(admin, hub):
    partner = TestClient(admin.app, follow_redirects=False)
    assert sign_in(partner, *PARTNER_R1).status_code == 303
    assert partner.get("/api/v1/users").status_code == 403  # signed in, just not an admin
    response = remove_form(admin, PARTNER_R1[0])
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/users?done=removed")
    assert PARTNER_R1[0] not in emails(hub)
    assert "removed and signed out" in admin.get(response.headers["location"]).text
    assert partner.get("/api/v1/users").status_code == 401  # the session is gone
    assert sign_in(partner, *PARTNER_R1).status_code == 401


@pytest.mark.parametrize("token", [None, "forged"])
def test_forms_without_the_session_csrf_token_are_refused(admin, hub, token):
    data = {"email": NEW[0], "password": NEW[1], "role": "analyst"} | ({"csrf_token": token} if token else {})
    assert admin.post("/admin/users", data=data).status_code == 403
    removal = {"email": ANALYST[0]} | ({"csrf_token": token} if token else {})
    assert admin.post("/admin/users/remove", data=removal).status_code == 403
    assert NEW[0] not in emails(hub) and ANALYST[0] in emails(hub)


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"email": NEW[0], "password": NEW[1], "role": "partner"}, 400, "a partner user needs a partner"),
        ({"email": ANALYST[0], "password": NEW[1], "role": "analyst"}, 400,
         "a user with email ana@example.com exists already"),
        ({"email": NEW[0], "password": "Xq7zK", "role": "analyst"}, 400, "shorter than 8 characters"),
        ({"email": NEW[0], "password": NEW[1], "role": "partner", "partner_id": "ZZ"}, 400,
         "partner &#39;ZZ&#39; does not exist"),
    ],
)
def test_bad_input_shows_the_form_again_with_the_problem(admin, hub, fields, status, message):
    before = emails(hub)
    response = add_form(admin, **fields)
    assert response.status_code == status
    assert message in response.text and "How to fix:" in response.text
    assert f'value="{fields["email"]}"' in response.text  # the form keeps what was typed...
    assert fields["password"] not in response.text  # ...but never the password
    assert emails(hub) == before


def test_an_admin_cannot_remove_themselves(admin, hub):
    response = remove_form(admin, ADMIN[0].upper())
    assert response.status_code == 400 and "you cannot remove your own account" in response.text
    assert ADMIN[0] in emails(hub)
    assert admin.get("/admin/users").status_code == 200  # still signed in


def test_removing_an_unknown_user_says_so(admin):
    response = remove_form(admin, "ghost@example.com")
    assert response.status_code == 400 and "there is no user ghost@example.com" in response.text


@pytest.mark.parametrize("user", [ANALYST, PARTNER_R1])
def test_only_admins_manage_users(client, hub, user):
    sign_in(client, *user)
    page = client.get("/admin/users", headers=HTML)
    assert page.status_code == 403
    token = form_token(page.text)  # the header's sign-out form carries the session's CSRF token
    assert client.post("/admin/users", data={"csrf_token": token, "email": NEW[0], "password": NEW[1],
                                             "role": "admin"}).status_code == 403
    assert client.post("/admin/users/remove", data={"csrf_token": token, "email": ADMIN[0]}).status_code == 403
    assert client.get("/api/v1/users").status_code == 403
    assert client.get("/api/v1/users", headers=bearer(hub, user[0])).status_code == 403
    assert client.delete(f"/api/v1/users/{ADMIN[0]}", headers=bearer(hub, user[0])).status_code == 403
    assert NEW[0] not in emails(hub) and ADMIN[0] in emails(hub)


def test_anonymous_visitors_are_sent_to_signin_or_get_401(client):
    response = client.get("/admin/users", headers=HTML)
    assert response.status_code == 303 and response.headers["location"] == "/signin?next=%2Fadmin%2Fusers"
    assert client.get("/api/v1/users").status_code == 401


# -- the JSON twin ------------------------------------------------------------------------------------
def test_json_twin_lists_creates_and_deletes_users_with_an_admin_token(client, hub):
    auth = bearer(hub, ADMIN[0])
    listed = client.get("/api/v1/users", headers=auth)
    assert listed.status_code == 200
    assert [u["email"] for u in listed.json()] == sorted([ADMIN[0], ANALYST[0], PARTNER_R1[0], PARTNER_A1[0]])
    assert all(set(u) == {"email", "role", "partner_id", "created_at"} for u in listed.json())
    created = client.post("/api/v1/users", headers=auth,
                          json={"email": " New@Example.com", "password": NEW[1], "role": "partner", "partner_id": "A1"})
    assert created.status_code == 201
    assert {k: v for k, v in created.json().items() if k != "created_at"} == {
        "email": NEW[0], "role": "partner", "partner_id": "A1"}
    assert "argon2" not in listed.text + created.text and "password" not in created.text
    assert sign_in(client, *NEW).status_code == 303
    assert client.delete(f"/api/v1/users/{NEW[0]}", headers=auth).status_code == 204
    assert client.get("/api/v1/users").status_code == 401  # the new user's session ended with the removal
    assert NEW[0] not in emails(hub)
    assert client.delete(f"/api/v1/users/{NEW[0]}", headers=auth).status_code == 404


def test_json_twin_reports_bad_input_as_json(client, hub):
    auth = bearer(hub, ADMIN[0])
    response = client.post("/api/v1/users", headers={**auth, **HTML},
                           json={"email": NEW[0], "password": NEW[1], "role": "partner"})
    assert response.status_code == 400 and response.json()["error"] == "a partner user needs a partner"
    assert client.post("/api/v1/users", headers=auth,
                       json={"email": NEW[0], "password": NEW[1], "role": "owner"}).status_code == 422
    own = client.delete(f"/api/v1/users/{ADMIN[0]}", headers=auth)
    assert own.status_code == 409 and own.json()["error"] == "you cannot remove your own account"
    assert emails(hub) == {ADMIN[0], ANALYST[0], PARTNER_R1[0], PARTNER_A1[0]}


def test_openapi_lists_the_user_routes_but_not_the_admin_page(client):
    assert sign_in(client, *ANALYST).status_code == 303
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]["/api/v1/users"]) == {"get", "post"}
    assert set(doc["paths"]["/api/v1/users/{email}"]) == {"delete"}
    assert doc["paths"]["/api/v1/users"]["get"]["tags"] == ["admin"]
    assert "/admin/users" not in doc["paths"]
    assert set(doc["components"]["schemas"]["UserOut"]["properties"]) == {"email", "role", "partner_id", "created_at"}


# -- the header ---------------------------------------------------------------------------------------
def test_header_of_an_admin_shows_who_and_the_admin_nav(admin):
    page = admin.get("/admin/users").text
    assert f"{ADMIN[0]} <small>admin</small>" in page and ">Sign out</button>" in page
    assert '<a href="/admin/users" aria-current="page">Admin</a>' in page
    assert 'href="/partners"' in page and 'href="/data"' in page


@pytest.mark.parametrize(
    ("user", "role", "present", "absent"),
    [
        (ANALYST, "analyst", ['href="/"', 'href="/partners"', 'href="/catalog"', 'href="/data"'],
         ['href="/admin/users"']),
        (PARTNER_R1, "partner", ['class="brand" href="/partners/R1"', ">My partner</a>", 'href="/catalog"'],
         ['href="/data"', 'href="/admin/users"', ">Scorecard<"]),
    ],
)
def test_header_nav_follows_the_actor(client, user, role, present, absent):
    sign_in(client, *user)
    page = client.get("/admin/users", headers=HTML).text  # the 403 page still has the signed-in header
    assert f"{user[0]} <small>{role}</small>" in page and ">Sign out</button>" in page
    for text in present:
        assert text in page, text
    for text in absent:
        assert text not in page, text


def test_the_header_sign_out_form_signs_out(admin):
    token = form_token(admin.get("/admin/users").text)
    response = admin.post("/signout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert admin.get("/admin/users").status_code == 303


# -- error pages --------------------------------------------------------------------------------------
def test_unknown_page_gets_a_friendly_html_404(client):
    response = client.get("/no/such/page", headers=HTML)
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "there is no page at /no/such/page" in response.text and "Not Found" in response.text
    assert '<a href="/">' in response.text
    assert "Sign out" not in response.text and "<nav>" not in response.text  # anonymous: just the brand


@pytest.mark.parametrize(("path", "headers"), [("/no/such/page", {"Accept": "application/json"}),
                                               ("/no/such/page", {}), ("/api/v1/nothing", HTML),
                                               ("/v1/nothing", HTML)])
def test_api_and_non_browser_requests_keep_json_errors(client, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_partnerkpi_errors_render_as_pages_for_browsers_and_json_otherwise(client):
    sign_in(client, *ANALYST)
    page = client.get("/admin/users", headers=HTML)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "only admins may do this" in page.text and "How to fix: ask an admin" in page.text
    assert f"{ANALYST[0]} <small>analyst</small>" in page.text
    assert client.get("/admin/users").json() == {"error": "only admins may do this", "hint": "ask an admin"}


def test_a_401_keeps_its_www_authenticate_header(client):
    response = client.get("/api/v1/users", headers=HTML)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "missing, unknown, revoked or expired credentials"


def test_method_not_allowed_is_a_page_too(client):
    response = client.get("/signout", headers=HTML)
    assert response.status_code == 405 and "Method Not Allowed" in response.text
    assert response.headers["allow"] == "POST"
