"""Whole-database copies: the server's snapshots, `partnerkpi backup` and `partnerkpi restore`.

A copy is made in one transaction (`COPY FROM DATABASE`), so it never holds half an import. A backup file
is an ordinary DuckDB file holding partnerkpi's canonical tables; restore checks that before it replaces
anything, and replaces the target in one rename.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from partnerkpi.errors import UsageError

# The canonical tables every partnerkpi store has (KPI-SPEC §2): a file without them is not ours.
STORE_TABLES = ("partners", "users", "events", "rejected_rows", "imports")
# How long a copy waits for the readers that saw it attached to let go of it (see `copy_database`).
SETTLE_SECONDS = 300.0


class BackupError(UsageError):
    """A backup cannot be made where asked, or a file cannot be restored (not a partnerkpi database)."""


@dataclass(frozen=True)
class StoreFile:
    """A checked partnerkpi database file and the row counts of its canonical tables."""

    path: Path
    counts: dict[str, int]


def copy_database(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Copy the database `con` works on, in one transaction, to the new DuckDB file `target` (the caller holds
    the write lock, if there is one).

    While the copy is attached, a read on another cursor of the same database that lists the catalog (e.g.
    information_schema) takes the copy into its transaction: DETACH then leaves the copy open, its data in its
    WAL, until that read ends, and only then writes it into the file. So the copy is finished only once its WAL
    is gone; it is attached under a name of its own, so such a read never sees two databases by one name."""
    source = con.execute("SELECT current_database()").fetchone()[0]
    alias = f"partnerkpi_copy_{uuid.uuid4().hex[:12]}"
    con.execute(f"ATTACH '{_quoted(target)}' AS {alias} (READ_WRITE)")
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f'COPY FROM DATABASE "{source}" TO {alias}')
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute(f"DETACH {alias}")
    _settle(target)


def _settle(target: Path, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until the copy at `target` is written into its file (its WAL gone)."""
    wal = Path(f"{target}.wal")
    deadline = time.monotonic() + timeout
    while wal.exists():
        if time.monotonic() > deadline:
            raise BackupError(f"the copy {target} is still held by a running read after {timeout:.0f} s",
                              hint="run the backup again when the long reads have finished")
        time.sleep(0.02)


def copy_file(db: Path, target: Path) -> None:
    """Copy the DuckDB file `db`, which no process writes, to the new file `target` (opened read-only: a WAL
    left by a crash is applied in the copy, and `db` is left as it is)."""
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise BackupError(f"cannot open {db}: {exc}", hint="check the path, and that no other process writes it"
                          ) from exc
    try:
        copy_database(con, target)
    finally:
        con.close()


def check_store(path: Path) -> StoreFile:
    """The file at `path` as a partnerkpi database, with its row counts; a BackupError when it is not one."""
    if not path.is_file():
        raise BackupError(f"there is no file at {path}", hint="give the path of a file `partnerkpi backup` wrote")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise BackupError(f"{path} is not a DuckDB database ({str(exc).splitlines()[0]})",
                          hint="give the path of a file `partnerkpi backup` wrote") from exc
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = [t for t in STORE_TABLES if t not in tables]
        if missing:
            raise BackupError(f"{path} is a DuckDB file but not a partnerkpi database (no table "
                              f"{', '.join(missing)})", hint="give the path of a file `partnerkpi backup` wrote")
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in STORE_TABLES}
    finally:
        con.close()
    return StoreFile(path, counts)


def new_file(path: Path, force: bool, what: str) -> None:
    """Refuse to write over an existing `path` unless `force`; its directory must exist."""
    if not path.parent.is_dir():
        raise UsageError(f"the directory of {path} does not exist", hint=f"create {path.parent} first")
    if path.exists() and not force:
        raise BackupError(f"{path} exists; {what} does not overwrite it", hint="give a new path, or add --force")


def partial(path: Path) -> Path:
    """Where a copy to `path` is written before it is renamed into place (same directory: the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def install(copy: Path, target: Path) -> None:
    """Move the finished `copy` to `target` in one rename; a WAL of the file it replaces goes first (it belongs
    to the old database and would be replayed into the new one)."""
    Path(f"{target}.wal").unlink(missing_ok=True)
    os.replace(copy, target)


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
