"""Import into PostgreSQL: the DuckDB import checks each file in a staging store, then COPY moves its result.

Per file: the staging store (DuckDB in memory) receives what the rules compare against (partners, users, the
events held and the import log), `ingest.import_files` runs there with its rules, messages and rejected rows
unchanged, and one PostgreSQL transaction then replaces partners and users and appends the file's events,
rejected rows and log entry. An advisory lock keeps two imports into one database from interleaving; a failure
anywhere leaves PostgreSQL as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from partnerkpi.clock import Clock
from partnerkpi.ingest import ImportSummary, import_files
from partnerkpi.pg.connection import PgCursor
from partnerkpi.pg.store import PostgresStore, quoted
from partnerkpi.settings import TimeBounds
from partnerkpi.store import Store

ENTITIES = ("partners", "users")  # replaced whole: an import may update rows it does not add
LOGGED = ("events", "rejected_rows", "imports")  # appended: the rows of the new import id
IMPORT_LOCK = "partnerkpi import"


def import_into_postgres(store: PostgresStore, paths: Sequence[str | os.PathLike[str]], *, kind: str | None,
                         mapping: Path | None, progress: bool, clock: Clock, bounds: TimeBounds
                         ) -> list[ImportSummary]:
    """Import files in order, each checked in a staging store and written in one PostgreSQL transaction."""
    summaries = []
    with tempfile.TemporaryDirectory(prefix="partnerkpi-pg-import-") as tmp, store.con.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(?)", [store.lock_key(IMPORT_LOCK)])
        try:
            for path in paths:
                summaries.append(_import_one(store, cur, Path(path), Path(tmp), kind=kind, mapping=mapping,
                                             progress=progress, clock=clock, bounds=bounds))
        finally:
            cur.execute("SELECT pg_advisory_unlock(?)", [store.lock_key(IMPORT_LOCK)])
    return summaries


def _import_one(store: PostgresStore, cur: PgCursor, path: Path, tmp: Path, *, kind: str | None,
                mapping: Path | None, progress: bool, clock: Clock, bounds: TimeBounds) -> ImportSummary:
    staging = Store.open(":memory:", store.plan)
    try:
        for trait in store.trait_columns():
            staging.add_trait(trait)
        for table in (*ENTITIES, *LOGGED):
            _pull(cur, staging, table, tmp)
        (summary,) = import_files(staging, [path], kind=kind, mapping=mapping, progress=progress, clock=clock,
                                  bounds=bounds)
        if not summary.skipped_same_file:
            _push(store, cur, staging, summary.import_id, tmp)
        return summary
    finally:
        staging.close()


def _pull(cur: PgCursor, staging: Store, table: str, tmp: Path) -> None:
    """Copy a PostgreSQL table into the staging store's table of the same name."""
    columns = quoted(staging.columns(table))
    csv_path = tmp / f"pull-{table}.csv"
    with open(csv_path, "wb") as f, cur.copy(f"COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT csv)"
                                                   ) as copy:
        for chunk in copy:
            f.write(chunk)
    if csv_path.stat().st_size:
        # PostgreSQL writes NULL as an empty field and '' as "": keep the two apart.
        staging.con.execute(f"COPY {table} ({columns}) FROM '{_literal(csv_path)}' (FORMAT csv, HEADER false, "
                            "DELIM ',', QUOTE '\"', ESCAPE '\"', allow_quoted_nulls false)")
    csv_path.unlink()


def _push(store: PostgresStore, cur: PgCursor, staging: Store, import_id: int | None, tmp: Path) -> None:
    """In one transaction: new trait columns, partners and users replaced, the import's own rows appended."""
    cur.begin()
    try:
        for trait in set(staging.trait_columns()) - set(store.trait_columns()):
            cur.execute(f"ALTER TABLE partners ADD COLUMN {quoted([trait])} VARCHAR")
        for table in ENTITIES:
            cur.execute(f"DELETE FROM {table}")
            _push_rows(cur, staging, table, "TRUE", tmp)
        for table in LOGGED:
            _push_rows(cur, staging, table, f"import_id = {int(import_id or 0)}", tmp)
        cur.commit()
    except BaseException:
        cur.rollback()
        raise


def _push_rows(cur: PgCursor, staging: Store, table: str, where: str, tmp: Path) -> None:
    columns = quoted(staging.columns(table))
    csv_path = tmp / f"push-{table}.csv"
    # DuckDB writes NULL as an empty field and '' as "", exactly what PostgreSQL's CSV COPY expects.
    staging.con.execute(f"COPY (SELECT {columns} FROM {table} WHERE {where}) TO '{_literal(csv_path)}' "
                        "(FORMAT csv, HEADER false)")
    with open(csv_path, "rb") as f, cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    csv_path.unlink()


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
