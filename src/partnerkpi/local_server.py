"""The running server's marker, `<db>.server`, and the snapshots it writes for read commands.

DuckDB lets one process hold a file for writing, and then nobody else may open it, not even read-only. So
`partnerkpi serve` writes `<db>.server` (mode 0600): its URL, pid and a local secret. A read command that
finds a live server there asks it (POST /api/v1/snapshot, authorised by that secret alone) to copy the
database, in one transaction, to a new file the command chose; the command reads the copy and deletes it.
Only someone who can read the marker (the server's own user) can ask for a copy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from partnerkpi.errors import StoreError

SECRET_HEADER = "X-PartnerKPI-Local-Secret"
SNAPSHOT_PATH = "/api/v1/snapshot"


@dataclass(frozen=True)
class ServerMarker:
    """What `<db>.server` says: where the server listens, its process, and the secret of local callers."""

    url: str
    pid: int
    secret: str | None  # None in markers of servers older than the snapshot endpoint


def marker_path(db: str | os.PathLike[str]) -> Path:
    """`<db>.server`, beside the DuckDB file."""
    return Path(f"{os.fspath(db)}.server")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def read_marker(db: str | os.PathLike[str]) -> ServerMarker | None:
    """The marker of the live server that owns `db`; None without one, or when its process is gone."""
    try:
        info = json.loads(marker_path(db).read_text())
        marker = ServerMarker(str(info["url"]), int(info["pid"]), info.get("secret"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return marker if marker.pid > 0 and _alive(marker.pid) else None


def write_marker(db: str | os.PathLike[str], url: str) -> Path:
    """Name this process as the server of `db`, with a fresh local secret; readable by this user only."""
    marker = marker_path(db)
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    body = json.dumps({"url": url, "pid": os.getpid(), "secret": secrets.token_urlsafe(32),
                       "started_at": datetime.now(UTC).isoformat(timespec="seconds")})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    tmp.replace(marker)
    return marker


def remove_marker(marker: Path) -> None:
    """Remove the marker if this process wrote it (a newer server's marker stays)."""
    try:
        if json.loads(marker.read_text()).get("pid") == os.getpid():
            marker.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def own_secret(db: str | os.PathLike[str]) -> str | None:
    """The local secret in the marker this process wrote for `db` (None if it wrote none)."""
    try:
        info = json.loads(marker_path(db).read_text())
    except (OSError, ValueError):
        return None
    return info.get("secret") if isinstance(info, dict) and info.get("pid") == os.getpid() else None


@contextmanager
def snapshot_from(marker: ServerMarker, db: str) -> Iterator[Path]:
    """A consistent copy of the database the server at `marker` owns, in a private temporary directory
    that is removed afterwards."""
    import httpx

    if not marker.secret:
        raise StoreError(
            f"the partnerkpi server at {marker.url} (pid {marker.pid}) owns {db} and cannot share a snapshot "
            "(it predates snapshots)", hint="restart the server, or stop it and run this again")
    directory = Path(tempfile.mkdtemp(prefix="partnerkpi-snapshot-"))
    path = directory / "snapshot.duckdb"
    try:
        try:
            response = httpx.post(f"{marker.url}{SNAPSHOT_PATH}", json={"path": str(path)},
                                  headers={SECRET_HEADER: marker.secret}, timeout=httpx.Timeout(None, connect=10))
        except httpx.TransportError as exc:
            raise StoreError(
                f"the partnerkpi server at {marker.url} (pid {marker.pid}) owns {db} but does not answer: {exc}",
                hint=f"wait until it has started, or stop it (`kill {marker.pid}`) and run this again") from exc
        if not response.is_success:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text
            raise StoreError(
                f"the partnerkpi server at {marker.url} (pid {marker.pid}) owns {db} and could not share a "
                f"snapshot ({response.status_code}): {str(message)[:300]}",
                hint=f"stop the server (`kill {marker.pid}`) and run this again")
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
