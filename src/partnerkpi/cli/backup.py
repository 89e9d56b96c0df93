"""`partnerkpi backup` and `restore`: a consistent copy of a DuckDB database, also while `partnerkpi serve` owns
it (the server writes the copy in one transaction, as it does for read commands), and putting one back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from partnerkpi.cli.common import DbOption, err
from partnerkpi.errors import NoDatabaseError, StoreError, UsageError
from partnerkpi.local_server import read_marker, snapshot_from
from partnerkpi.locations import parse_location
from partnerkpi.settings import DEFAULT_DB, Settings
from partnerkpi.store.backup import StoreFile, check_store, copy_file, install, new_file, partial

ForceOption = Annotated[bool, typer.Option("--force", help="Replace a file that is already there")]


def _database_file(db: str | None) -> Path:
    """The DuckDB file of --db; PostgreSQL and lakes have their own tools."""
    location = parse_location(Settings.from_env(db).db)
    if not location.is_file:
        raise UsageError(f"backup and restore copy a DuckDB file, and {location.text} is not one",
                         hint="back up PostgreSQL with pg_dump, a lake by copying its directory")
    return Path(location.target)


def _summary(done: str, info: StoreFile) -> str:
    counts = ", ".join(f"{n:,} {table}" for table, n in info.counts.items())
    return f"{done} ({counts})"


def backup(
    db: DbOption = None,
    out_path: Annotated[Path, typer.Option("--out", help="The backup file to write (a DuckDB file)")] = Path(
        "partnerkpi-backup.duckdb"),
    force: ForceOption = False,
) -> None:
    """Copy the database to --out in one transaction; works while `partnerkpi serve` runs (the server makes the
    copy, so no import is half in it)."""
    source = _database_file(db)
    if not source.is_file():
        raise NoDatabaseError(str(source), DEFAULT_DB)
    target = out_path.resolve()
    if target == source.resolve():
        raise UsageError("--out is the database itself", hint="give another path")
    new_file(target, force, "backup")
    server = read_marker(source)
    staged = partial(target)
    staged.unlink(missing_ok=True)
    try:
        if server is None:
            copy_file(source, staged)
        else:
            with snapshot_from(server, str(source)) as copy:
                shutil.copyfile(copy, staged)  # the snapshot sits in a temporary directory, maybe another disk
        install(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    via = f" (a snapshot by the server at {server.url})" if server else ""
    err.print(_summary(f"backed up {source} to {target}{via}", check_store(target)), highlight=False)


def restore(
    from_path: Annotated[Path, typer.Option("--from", help="A file `partnerkpi backup` wrote")],
    db: DbOption = None,
    force: ForceOption = False,
) -> None:
    """Put a backup in place as the database --db; an existing database is replaced only with --force, and never
    while a server owns it."""
    info = check_store(from_path.resolve())
    target = _database_file(db).resolve()
    if target == info.path:
        raise UsageError("--from is the database itself", hint="give the backup file's path")
    server = read_marker(target)
    if server is not None:
        raise StoreError(f"the partnerkpi server at {server.url} (pid {server.pid}) owns {target}",
                         hint=f"stop the server (`kill {server.pid}`), restore, and start it again")
    if target.exists() and not force:
        raise UsageError(f"{target} exists; restore does not overwrite a database",
                         hint="add --force to replace it (back it up first), or restore to a new --db")
    staged = partial(target)
    staged.unlink(missing_ok=True)
    try:
        copy_file(info.path, staged)  # a copy, not the file itself: a WAL beside the backup is applied, not lost
        install(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    err.print(_summary(f"restored {info.path} to {target}", check_store(target)), highlight=False)


def register(app: typer.Typer) -> None:
    """Add `backup` and `restore` to `app`."""
    app.command()(backup)
    app.command()(restore)
