"""A tiny hand-made program served by the web app, for the API and page tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from tests.kpi_fixtures import Fixture


def build_program(directory: Path) -> Path:
    """Three resellers and one agency; June: R1 active; July: R1, R2 and A1 active. Returns the DB path."""
    fx = Fixture(directory)
    for pid, kind in (("R1", "reseller"), ("R2", "reseller"), ("R3", "reseller"), ("A1", "agency")):
        fx.partner(pid, onboarded="2026-01-01", type=kind)
        fx.user(f"u{pid}", pid)
    fx.event("Logged In", "2026-06-10 09:00", user="uR1")
    for user in ("uR1", "uR2", "uA1"):
        fx.event("Logged In", "2026-07-10 09:00", user=user)
    fx.hub().close()
    return directory / "hub.duckdb"


def client_for(db: Path) -> Iterator[TestClient]:
    """A TestClient (lifespan on) of create_app over the DB file."""
    from partnerkpi.settings import Settings
    from partnerkpi.web import create_app

    with TestClient(create_app(Settings(db=str(db)))) as client:
        yield client
