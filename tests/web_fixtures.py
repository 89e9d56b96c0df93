"""A tiny hand-made program served by the web app, for the API and page tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from tests.kpi_fixtures import Fixture


def build_program(directory: Path) -> Path:
    """Three resellers and one agency; June: R1 active; July: R1, R2 and A1 active; the data covers July (a
    checkpoint event on its last day, which no KPI counts). Returns the DB path."""
    fx = Fixture(directory)
    for pid, kind in (("R1", "reseller"), ("R2", "reseller"), ("R3", "reseller"), ("A1", "agency")):
        fx.partner(pid, onboarded="2026-01-01", type=kind)
        fx.user(f"u{pid}", pid)
    fx.event("Logged In", "2026-06-10 09:00", user="uR1")
    for user in ("uR1", "uR2", "uA1"):
        fx.event("Logged In", "2026-07-10 09:00", user=user)
    fx.event("Data Checkpoint", "2026-07-31 12:00")
    fx.hub().close()
    return directory / "hub.duckdb"


def client_for(db: Path, user: tuple[str, str] | None = None) -> Iterator[TestClient]:
    """A TestClient (lifespan on) of create_app over the DB file, signed in as `user` (by default an
    analyst, added when missing)."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub
    from partnerkpi.settings import Settings
    from partnerkpi.web import create_app

    if user is None:
        user = ANALYST
        with Hub.open(db) as hub:
            creds = Credentials(hub.store)
            if all(u.email != ANALYST[0] for u in creds.list_users()):
                creds.add_user(*ANALYST, "analyst")
    with TestClient(create_app(Settings(db=str(db)))) as client:
        assert sign_in(client, *user).status_code == 303
        yield client


# Users of the tiny program (added by `add_users`).
ANALYST = ("ana@example.com", "analyst-pass")
ADMIN = ("root@example.com", "admin-pass1")
PARTNER_R1 = ("pat@r1.example", "partner-pass")
PARTNER_A1 = ("alex@a1.example", "partner-pass")


def add_users(db: Path) -> None:
    """An analyst, an admin, and a partner user for each of R1 and A1."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    with Hub.open(db) as hub:
        creds = Credentials(hub.store)
        creds.add_user(*ANALYST, "analyst")
        creds.add_user(*ADMIN, "admin")
        creds.add_user(*PARTNER_R1, "partner", "R1")
        creds.add_user(*PARTNER_A1, "partner", "A1")


def form_token(html: str, name: str = "csrf_token") -> str:
    """The value of a hidden form field (the CSRF token by default) in a rendered page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str, next: str = "/"):
    """Sign in through the real form (its CSRF token included); returns the POST's response."""
    page = client.get("/signin")
    return client.post("/signin", data={"email": email, "password": password, "next": next,
                                        "csrf_token": form_token(page.text)}, follow_redirects=False)
