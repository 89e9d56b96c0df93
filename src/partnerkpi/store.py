"""The canonical store (KPI-SPEC §2): partners, users, events, rejected rows and the import log.

One DuckDB file by default. The schema is created on first open. Timestamps are stored as naive
TIMESTAMP columns holding UTC instants. Each typed property of the tracking plan has its own column
`p_<name>` beside the raw JSON, so every backend reads them without JSON functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from partnerkpi.catalog.plan import PropertyType, TrackingPlan
from partnerkpi.errors import StoreError

# Fixed columns of the entity tables; any further column of a partners file is a trait (VARCHAR).
PARTNER_COLUMNS: dict[str, str] = {
    "partner_id": "VARCHAR",
    "name": "VARCHAR",
    "type": "VARCHAR",
    "tier": "VARCHAR",
    "region": "VARCHAR",
    "onboarded_at": "TIMESTAMP",
    "offboarded_at": "TIMESTAMP",
}
USER_COLUMNS: dict[str, str] = {
    "user_id": "VARCHAR",
    "partner_id": "VARCHAR",
    "email": "VARCHAR",
    "role": "VARCHAR",
    "created_at": "TIMESTAMP",
    "deactivated_at": "TIMESTAMP",
}
EVENT_COLUMNS: dict[str, str] = {
    "seq": "BIGINT",  # arrival order across all imports: breaks ties of equal ts ("first" = earliest ts, then seq)
    "event_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "event": "VARCHAR",
    "partner_id": "VARCHAR",
    "user_id": "VARCHAR",
    "object_id": "VARCHAR",
    "properties": "VARCHAR",  # the raw JSON object, as text
    "import_id": "BIGINT",
}
PROPERTY_SQL_TYPES: dict[PropertyType, str] = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
}
REJECTED_COLUMNS: dict[str, str] = {
    "import_id": "BIGINT",
    "source": "VARCHAR",  # the file (or collector request) the row came from
    "kind": "VARCHAR",  # partners | users | events | segment
    "row_number": "BIGINT",  # 1-based data row (CSV: the header is row 0), or the line of a JSONL file
    "field": "VARCHAR",
    "reason": "VARCHAR",  # what is wrong and how to fix it
    "raw": "VARCHAR",  # the row as it came, as JSON text
    "rejected_at": "TIMESTAMP",
}
IMPORT_COLUMNS: dict[str, str] = {
    "import_id": "BIGINT",
    "source": "VARCHAR",
    "kind": "VARCHAR",
    "fingerprint": "VARCHAR",  # sha256 of the file and the mapping: the same import twice adds nothing
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
    "rows_read": "BIGINT",
    "accepted": "BIGINT",
    "duplicates": "BIGINT",
    "rejected": "BIGINT",
    "ignored_columns": "VARCHAR",  # the file's columns that no field takes, comma-separated (NULL: none)
}


def property_column(name: str) -> str:
    """The typed column that holds plan property `name`."""
    return f"p_{name}"


def event_columns(plan: TrackingPlan) -> dict[str, str]:
    """All columns of `events` for a plan: the fixed ones, then one typed column per plan property."""
    cols = dict(EVENT_COLUMNS)
    for prop, kind in plan.typed_properties.items():
        cols[property_column(prop)] = PROPERTY_SQL_TYPES[kind]
    return cols


def _ddl(table: str, columns: dict[str, str]) -> str:
    body = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({body})'


@dataclass
class Store:
    """A DuckDB file holding the canonical tables. `Store.open(path)` creates the schema when new."""

    path: str
    plan: TrackingPlan
    read_only: bool = False
    memory_limit: str | None = None  # DuckDB's cap (e.g. "2GB"); past it, big work spills to disk
    con: duckdb.DuckDBPyConnection = field(init=False, repr=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        plan: TrackingPlan,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
    ) -> Store:
        """Open (creating when new) the DuckDB file at `path`."""
        store = cls(os.fspath(path), plan, read_only, memory_limit)
        store._connect()
        return store

    def _connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path, read_only=self.read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(
                    f"the database {self.path} is in use by another process (DuckDB allows one writer per file)",
                    hint="stop the other process (e.g. a running `partnerkpi serve`) or send the work to it",
                ) from exc
            raise StoreError(f"cannot open the database {self.path}: {exc}") from exc
        self.use_utc()
        self.con.execute("SET enable_progress_bar = false")  # ours (Rich) show progress; DuckDB's would interleave
        if self.memory_limit:
            try:
                self.con.execute(f"SET memory_limit = '{self.memory_limit}'")
            except duckdb.Error as exc:
                raise StoreError(
                    f"invalid memory limit '{self.memory_limit}': {exc}", hint="write it like 2GB or 512MB"
                ) from exc
        if not self.read_only:
            self.ensure_schema()

    def use_utc(self) -> None:
        """Make the session zone UTC: casts between TIMESTAMPTZ and TIMESTAMP use it, and it defaults to
        the machine's zone."""
        try:
            self.con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error:  # without ICU DuckDB has no zones and works in UTC already
            pass

    def ensure_schema(self) -> None:
        """Create missing tables and add typed property columns the plan gained since."""
        self.con.execute(_ddl("partners", PARTNER_COLUMNS))
        self.con.execute(_ddl("users", USER_COLUMNS))
        self.con.execute(_ddl("events", event_columns(self.plan)))
        self.con.execute(_ddl("rejected_rows", REJECTED_COLUMNS))
        self.con.execute(_ddl("imports", IMPORT_COLUMNS))
        for table, columns in (("events", event_columns(self.plan)), ("imports", IMPORT_COLUMNS)):
            have = set(self.columns(table))
            for col, sql_type in columns.items():
                if col not in have:  # a plan that gained properties, a store made by an earlier version
                    self.con.execute(f'ALTER TABLE {table} ADD COLUMN "{col}" {sql_type}')

    def columns(self, table: str) -> list[str]:
        """Column names of a table, in order."""
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return [r[0] for r in rows]

    def tables(self) -> set[str]:
        """Names of the tables in the store."""
        return {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}

    def trait_columns(self) -> list[str]:
        """Segment dimensions: type, tier, region and every further partner trait."""
        fixed = {"partner_id", "name", "onboarded_at", "offboarded_at"}
        return [c for c in self.columns("partners") if c not in fixed]

    def add_trait(self, name: str) -> None:
        """Add a partner trait column (VARCHAR) if it is not there yet."""
        if name not in self.columns("partners"):
            self.con.execute(f'ALTER TABLE partners ADD COLUMN "{name}" VARCHAR')

    def counts(self) -> dict[str, int]:
        """Row counts of the canonical tables."""
        tables = ("partners", "users", "events", "rejected_rows", "imports")
        return {t: self.con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}

    def close(self) -> None:
        self.con.close()
