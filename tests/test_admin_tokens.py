"""Admins make and revoke API tokens and write keys in the UI and the JSON API while the server runs."""

from __future__ import annotations

import base64
import re
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import CollectorSettings, Settings
from partnerkpi.web import create_app
from tests.web_fixtures import ADMIN, ANALYST, add_users, build_program, form_token, sign_in


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    db = build_program(tmp_path_factory.mktemp("tokens"))
    add_users(db)
    return db


@pytest.fixture
def client(program, tmp_path):
    db = tmp_path / "hub.duckdb"
    shutil.copyfile(program, db)
    hub = Hub.open(db)
    app = create_app(Settings(db=str(db), alert_interval=3600), hub=hub)
    with TestClient(app, follow_redirects=False) as c:
        yield c
    hub.close()


@pytest.fixture
def admin(client) -> TestClient:
    assert sign_in(client, *ADMIN).status_code == 303
    return client


def admin_api(client: TestClient) -> dict[str, str]:
    """Bearer headers of an admin API token (cookie-authenticated API writes would need the CSRF header)."""
    token = client.app.state.partnerkpi.credentials.create_token(ADMIN[0], "tests")
    return {"Authorization": f"Bearer {token}"}


def secret_of(html: str) -> str:
    match = re.search(r'<code class="secret">([^<]+)</code>', html)
    assert match, html
    return match.group(1)


def test_an_admin_makes_an_api_token_in_the_page_that_works_until_revoked(admin):
    page = admin.get("/admin/tokens")
    made = admin.post("/admin/tokens", data={"csrf_token": form_token(page.text), "kind": "api",
                                              "email": ANALYST[0], "name": "reporting"})
    assert made.status_code == 201
    secret = secret_of(made.text)
    assert secret.startswith("pk_api_")
    assert secret not in admin.get("/admin/tokens").text  # shown once, never listed
    headers = {"Authorization": f"Bearer {secret}"}
    assert admin.get("/api/v1/kpis", headers=headers).status_code == 200
    [token] = [t for t in admin.get("/api/v1/tokens").json() if t["name"] == "reporting"]
    assert (token["kind"], token["email"], token["status"]) == ("api", ANALYST[0], "active")
    assert token["last_used_at"] is not None  # the call above used it
    page = admin.get("/admin/tokens")
    gone = admin.post("/admin/tokens/revoke", data={"csrf_token": form_token(page.text), "token_id": token["token_id"]})
    assert gone.status_code == 303
    assert admin.get("/api/v1/kpis", headers=headers).status_code == 401
    statuses = {t["token_id"]: t["status"] for t in admin.get("/api/v1/tokens").json()}
    assert statuses[token["token_id"]] == "revoked"


def test_a_write_key_made_through_the_api_lets_the_collector_in(admin):
    api = admin_api(admin)
    made = admin.post("/api/v1/tokens", json={"kind": "write_key", "name": "portal"}, headers=api)
    assert made.status_code == 201 and made.json()["kind"] == "write_key"
    key = made.json()["secret"]
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    track = {"userId": "uR1", "event": "Logged In", "messageId": "m-1", "timestamp": "2026-07-20T10:00:00Z"}
    assert admin.post("/v1/track", json=track, headers=auth).status_code == 200
    [listed] = [t for t in admin.get("/api/v1/tokens").json() if t["name"] == "portal"]
    assert key not in str(listed)
    assert admin.delete(f"/api/v1/tokens/{listed['token_id']}", headers=api).json()["status"] == "revoked"
    deadline = time.monotonic() + CollectorSettings().key_cache + 5  # the collector trusts a checked key that long
    while (status := admin.post("/v1/track", json={**track, "messageId": "m-2"}, headers=auth).status_code) == 200:
        assert time.monotonic() < deadline, "the revoked write key still works"
        time.sleep(0.1)
    assert status == 401


def test_bad_requests_say_what_to_fix(admin):
    page = admin.get("/admin/tokens")
    no_user = admin.post("/admin/tokens", data={"csrf_token": form_token(page.text), "kind": "api",
                                                "email": "nobody@example.com"})
    assert no_user.status_code == 400 and "there is no user nobody@example.com" in no_user.text
    api = admin_api(admin)
    no_name = admin.post("/api/v1/tokens", json={"kind": "write_key"}, headers=api)
    assert no_name.status_code == 400 and no_name.json()["hint"]
    forged = admin.post("/admin/tokens", data={"csrf_token": "forged", "kind": "write_key", "name": "x"})
    assert forged.status_code == 403
    assert admin.delete("/api/v1/tokens/nope", headers=api).status_code == 404
    assert admin.post("/api/v1/tokens", json={"kind": "write_key", "name": "x"}).status_code == 403  # no CSRF


def test_only_admins_see_or_make_tokens(client, program):
    assert sign_in(client, *ANALYST).status_code == 303
    assert client.get("/admin/tokens").status_code == 403
    assert client.get("/api/v1/tokens").status_code == 403
    assert client.post("/api/v1/tokens", json={"kind": "write_key", "name": "x"}).status_code == 403
    hub = client.app.state.partnerkpi.hub
    assert [t.name for t in Credentials(hub.store).list_tokens()] == []  # nothing was made


def test_an_admin_cannot_revoke_the_token_the_request_is_made_with(client):
    headers = admin_api(client)
    secret = headers["Authorization"].removeprefix("Bearer ")
    own = next(t["token_id"] for t in client.get("/api/v1/tokens", headers=headers).json() if t["name"] == "tests")
    assert secret.startswith(own)
    for given in (own, secret):
        r = client.delete(f"/api/v1/tokens/{given}", headers=headers)
        assert r.status_code == 409
        assert "authenticated with API token" in r.json()["error"] and "another session" in r.json()["hint"]
    assert client.get("/api/v1/tokens", headers=headers).status_code == 200  # still works
    other = admin_api(client)
    assert client.delete(f"/api/v1/tokens/{own}", headers=other).json()["status"] == "revoked"
    assert client.get("/api/v1/tokens", headers=headers).status_code == 401


def test_the_tokens_page_revokes_the_admins_own_api_token(admin):
    secret = admin.app.state.partnerkpi.credentials.create_token(ADMIN[0], "mine")
    page = admin.get("/admin/tokens")
    r = admin.post("/admin/tokens/revoke", data={"csrf_token": form_token(page.text), "token_id": secret[:15]})
    assert r.status_code == 303  # a session is another session than the token's
    assert admin.get("/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
