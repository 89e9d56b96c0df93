"""A DuckDB-shaped connection over psycopg, so the store's table classes run unchanged on PostgreSQL.

The table classes write `?` placeholders and a few DuckDB spellings; `dialect` turns them into PostgreSQL.
Each `cursor()` borrows a connection of its own from a small pool (pages and the scheduler use the store from
several threads, and a transaction must not mix their statements); `execute` on the connection itself runs on
one shared session under a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from partnerkpi.errors import StoreError

# DuckDB spellings the store's SQL uses, and their PostgreSQL forms.
REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bDOUBLE\b(?!\s+PRECISION)"), "DOUBLE PRECISION"),
    (re.compile(r"list_contains\(\?, (\w+)\)"), r"(\1 = ANY(?))"),
    (re.compile(r"\bIN \(SELECT unnest\(\?\)\)"), "= ANY(?)"),  # the array's type then comes from the column
)


def dialect(sql: str, with_params: bool) -> str:
    """`sql` as PostgreSQL: DuckDB spellings rewritten, `?` made `%s` (and a literal `%` doubled) when it
    takes parameters."""
    for pattern, replacement in REWRITES:
        sql = pattern.sub(replacement, sql)
    if with_params:
        sql = sql.replace("%", "%%").replace("?", "%s")
    return sql


def connect(url: str) -> psycopg.Connection:
    """An autocommit session in UTC that binds parameters on the client (DuckDB-like typing of `?`)."""
    try:
        con = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    except psycopg.OperationalError as exc:
        raise StoreError(
            f"cannot connect to PostgreSQL: {str(exc).strip()}",
            hint="check the URL (postgresql://user:password@host:port/dbname), that the server runs and that "
            "the database exists (createdb NAME)",
        ) from exc
    con.execute("SET TIME ZONE 'UTC'")
    return con


class PgCursor:
    """One psycopg session used like a DuckDB cursor: `execute` returns the cursor, `begin/commit/rollback`."""

    def __init__(self, session: psycopg.Connection, release: Any = None) -> None:
        self.session = session
        self._cur = session.cursor()
        self._release = release

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PgCursor:
        """Run one statement (DuckDB spelling) with its parameters."""
        params = list(params) if params else None
        self._cur.execute(dialect(sql, params is not None), params)  # type: ignore[arg-type]
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        """Run one statement once per parameter row."""
        if rows:
            self._cur.executemany(dialect(sql, True), [list(r) for r in rows])  # type: ignore[arg-type]
        return self

    def fetchall(self) -> list[tuple]:
        """The remaining rows (none for a statement that returns none)."""
        return self._cur.fetchall() if self._cur.description is not None else []

    def fetchone(self) -> tuple | None:
        """The next row, or None."""
        return self._cur.fetchone() if self._cur.description is not None else None

    def copy(self, statement: str) -> Any:
        """A COPY ... FROM STDIN / TO STDOUT in progress (psycopg's `Copy`: write chunks, or iterate them)."""
        return self._cur.copy(statement)  # type: ignore[arg-type]

    @property
    def description(self) -> Any:
        """Column descriptions of the last result (each indexable: `d[0]` is the name)."""
        return self._cur.description

    def begin(self) -> None:
        """Start a transaction on this cursor's session."""
        self._cur.execute("BEGIN")

    def commit(self) -> None:
        """Commit this session's transaction."""
        self._cur.execute("COMMIT")

    def rollback(self) -> None:
        """Roll this session's transaction back."""
        self._cur.execute("ROLLBACK")

    def close(self) -> None:
        """Give the session back to the pool (rolling back a transaction left open)."""
        if self._release is not None:
            self._cur.close()
            if self.session.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.session.execute("ROLLBACK")
            self._release(self.session)
            self._release = None

    def __enter__(self) -> PgCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PgConnection:
    """The store's connection to one PostgreSQL database, shaped like a DuckDB connection."""

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self._lock = threading.RLock()
        self._idle: list[psycopg.Connection] = []
        self._main = PgCursor(connect(url))

    def cursor(self) -> PgCursor:
        """A cursor on a session of its own (from the pool)."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
        return PgCursor(session or connect(self.url), release=self._give_back)

    def _give_back(self, session: psycopg.Connection) -> None:
        with self._lock:
            if len(self._idle) < self.pool_size and not session.closed:
                self._idle.append(session)
                return
        session.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PgCursor:
        """Run one statement on the shared session; its result is read from the returned cursor."""
        with self._lock:
            return self._main.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        """Run one statement once per parameter row on the shared session."""
        with self._lock:
            return self._main.executemany(sql, rows)

    def begin(self) -> None:
        """Start a transaction on the shared session."""
        self._main.begin()

    def commit(self) -> None:
        """Commit the shared session's transaction."""
        self._main.commit()

    def rollback(self) -> None:
        """Roll the shared session's transaction back."""
        self._main.rollback()

    def close(self) -> None:
        """Close every session."""
        with self._lock:
            for session in [self._main.session, *self._idle]:
                session.close()
            self._idle.clear()
