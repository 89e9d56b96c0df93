"""The program of the tenant-isolation proofs: partner A (P-ALPHA) and partner B (P-BRAVO) among six resellers,
B's data carrying a canary string, and one signed-in client per actor (admin, analyst, partner A, partner B,
anonymous), all over the real app and a real DuckDB file.

Q3 2026 is covered completely (a checkpoint on 2026-10-01), so the reports have a quarter to show.
"""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings
from partnerkpi.web import create_app
from tests.kpi_fixtures import Fixture
from tests.web_fixtures import form_token, sign_in

A, B = "P-ALPHA", "P-BRAVO"
PEERS = ("P-CHARLIE", "P-DELTA", "P-ECHO", "P-FOXTROT")
CANARY = "CANARY-9Q7Z"  # planted in B's data only; searched for case-insensitively
NOW = datetime(2026, 10, 2, 12)

ADMIN = ("root@corp.example", "admin-pass1")
ANALYST = ("ana@corp.example", "analyst-pass")
PARTNER_A = ("pat@alpha.example", "partner-pass")
PARTNER_B = (f"{CANARY.lower()}@bravo.example", "partner-pass")
PROBE = ("probe@corp.example", "probe-pass1")  # signs in through POST /signin during the matrix walk
ACTORS = ("admin", "analyst", "partner_a", "partner_b", "anonymous")
USERS = {"admin": ADMIN, "analyst": ANALYST, "partner_a": PARTNER_A, "partner_b": PARTNER_B}
OWN = {"admin": A, "analyst": A, "partner_a": A, "partner_b": B, "anonymous": A}
OTHER = {"partner_a": B, "partner_b": A}


def build(directory: Path) -> Path:
    """Write the program's files, import them and add the users; returns the DuckDB path."""
    fx = Fixture(directory)
    fx.partner(A, name="Alpha Systems", tier="silver")
    fx.partner(B, name=f"{CANARY} Holdings", tier="silver")
    for pid in PEERS:
        fx.partner(pid, name=f"Company {pid[2:].title()}")
    for pid in (A, B, *PEERS):
        user = f"{CANARY.lower()}-user" if pid == B else f"u-{pid.lower()}"
        fx.user(user, pid)
        for month in (7, 8, 9):
            fx.event("Logged In", f"2026-{month:02d}-10 09:00", user=user, partner=pid)
        fx.event("Deal Closed", "2026-08-15", partner=pid, user=user, object=f"deal-{pid}", amount=100,
                 note=f"{CANARY} deal note" if pid == B else "a deal")
    fx.event("Task Assigned", "2026-09-01 10:00", partner=A, object="t-alpha", kind="compliance",
             due_at="2026-09-20T00:00:00Z", title="Send the Q4 plan")
    fx.event("Task Assigned", "2026-09-01 10:00", partner=B, object=f"t-{CANARY}", kind="compliance",
             due_at="2026-09-20T00:00:00Z", title=f"{CANARY} secret task")
    fx.event("Data Checkpoint", "2026-10-01 12:00")
    hub = fx.hub()
    creds = Credentials(hub.store)
    creds.add_user(*ADMIN, "admin")
    creds.add_user(*ANALYST, "analyst")
    creds.add_user(*PROBE, "analyst")
    creds.add_user(*PARTNER_A, "partner", A)
    creds.add_user(*PARTNER_B, "partner", B)
    hub.close()
    return directory / "hub.duckdb"


@dataclass
class Program:
    """The running app, its hub, and one client per actor (the anonymous one holds no cookie)."""

    app: FastAPI
    hub: Hub
    clients: dict[str, TestClient]
    csrf: dict[str, str]
    tokens: dict[str, str]


def running(db: Path) -> Iterator[Program]:
    """Start the app over `db` (lifespan on) and sign every actor in; yields the Program."""
    hub = Hub.open(db, clock=FixedClock(NOW))
    app = create_app(Settings(db=str(db)), hub=hub)
    with TestClient(app) as anonymous:
        clients, csrf, tokens = {"anonymous": anonymous}, {}, {}
        for actor, (email, password) in USERS.items():
            client = TestClient(app)
            assert sign_in(client, email, password).status_code == 303
            clients[actor] = client
            csrf[actor] = form_token(client.get("/catalog").text)
            tokens[actor] = app.state.partnerkpi.credentials.create_token(email)
        yield Program(app, hub, clients, csrf, tokens)
    hub.close()


def canary_in(text: str) -> bool:
    """True when the canary is in `text`, in any case."""
    return re.search(re.escape(CANARY), text, re.IGNORECASE) is not None


def secrets_of(partner_id: str) -> list[str]:
    """What must not reach another partner: the partner's id and name, and for B the canary."""
    return {A: [A, "Alpha Systems"], B: [B, CANARY]}[partner_id]


def text_of(response) -> str:
    """Everything a response says, as text: a PDF through pdftotext, an XLSX's XML parts, a Parquet file's
    rows, anything else as sent."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/pdf"):
        done = subprocess.run(["pdftotext", "-", "-"], input=response.content, capture_output=True, check=True)
        return done.stdout.decode()
    if "spreadsheetml" in kind:
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            return "\n".join(book.read(name).decode() for name in book.namelist())
    if "parquet" in kind:
        import pyarrow.parquet as pq

        return repr(pq.read_table(io.BytesIO(response.content)).to_pylist())
    return response.text
