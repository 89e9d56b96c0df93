"""POST /api/v1/snapshot: a consistent copy of the database, for read commands run beside the server.

Only local callers may ask: the request carries the secret of the server's `<db>.server` marker (mode
0600, so only the server's user reads it). Sign-in, tokens and cookies do not count here, and the route
is left out of the OpenAPI document (it is not part of the public API).
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel

from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.local_server import SECRET_HEADER, SNAPSHOT_PATH, own_secret
from partnerkpi.store.backup import copy_database
from partnerkpi.web.state import AppState, state

router = APIRouter()


class LocalOnly(PartnerKPIError):
    """The snapshot was asked for without this server's local secret."""

    http_status = 403


class SnapshotIn(BaseModel):
    path: str


class SnapshotOut(BaseModel):
    path: str
    seconds: float


def _target(text: str) -> Path:
    path = Path(text)
    if not path.is_absolute() or path.suffix != ".duckdb":
        raise UsageError("the snapshot path must be an absolute path of a .duckdb file", hint=str(path))
    if path.exists() or not path.parent.is_dir():
        raise UsageError("the snapshot path must be a new file in an existing directory", hint=str(path))
    return path


@router.post(SNAPSHOT_PATH, response_model=SnapshotOut, include_in_schema=False)
def snapshot(
    body: SnapshotIn,
    st: Annotated[AppState, Depends(state)],
    secret: Annotated[str | None, Header(alias=SECRET_HEADER)] = None,
) -> SnapshotOut:
    """Copy the whole database to `path` in one transaction (under the write lock, so no import is half
    in it)."""
    expected = own_secret(st.settings.db)
    if not expected or not secret or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise LocalOnly("snapshots are for local commands that hold this server's secret",
                        hint="run the command on the server's machine, as the server's user")
    path = _target(body.path)
    started = time.perf_counter()
    with st.write_lock:
        copy_database(st.hub.store.con, path)
    return SnapshotOut(path=str(path), seconds=round(time.perf_counter() - started, 3))

