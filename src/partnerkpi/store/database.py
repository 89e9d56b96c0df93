"""The store: one DuckDB file (by default) holding the canonical tables and the product's own tables.

The schema is created on first open. Each subject's tables sit behind a small class on the store
(`store.imports`, `store.credentials`, `store.alerts`, ...): other modules ask it, they do not write SQL
against the product's tables themselves.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.errors import StoreError
from partnerkpi.store.alerts import AlertTables
from partnerkpi.store.canonical import (
    IMPORT_COLUMNS,
    PARTNER_COLUMNS,
    REJECTED_COLUMNS,
    USER_COLUMNS,
    create_table_sql,
    event_columns,
)
from partnerkpi.store.checkpoints import CheckpointTables
from partnerkpi.store.credentials import CredentialTables
from partnerkpi.store.derived import DerivedTables
from partnerkpi.store.imports import ImportTables
from partnerkpi.store.overrides import OverrideTables
from partnerkpi.store.subscriptions import SubscriptionTables


@dataclass
class Store:
    """A DuckDB file holding the canonical tables and the product's own, each subject behind its attribute
    (`imports`, `credentials`, `alerts`, `overrides`, `derived`). `Store.open(path)` creates the schema."""

    path: str
    plan: TrackingPlan
    read_only: bool = False
    memory_limit: str | None = None  # DuckDB's cap (e.g. "2GB"); past it, big work spills to disk
    con: duckdb.DuckDBPyConnection = field(init=False, repr=False)
    imports: ImportTables = field(init=False, repr=False)
    credentials: CredentialTables = field(init=False, repr=False)
    alerts: AlertTables = field(init=False, repr=False)
    overrides: OverrideTables = field(init=False, repr=False)
    derived: DerivedTables = field(init=False, repr=False)
    subscriptions: SubscriptionTables = field(init=False, repr=False)
    checkpoints: CheckpointTables = field(init=False, repr=False)

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
        self._bind()
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

    def _bind(self) -> None:
        self.imports = ImportTables(self.con)
        self.credentials = CredentialTables(self.con)
        self.alerts = AlertTables(self.con)
        self.overrides = OverrideTables(self.con)
        self.derived = DerivedTables(self.con)
        self.subscriptions = SubscriptionTables(self.con)
        self.checkpoints = CheckpointTables(self.con)

    def cursor_view(self) -> Store:
        """This store through a connection of its own to the same database (`con.cursor()`): its statements
        see committed data only, so a reader on another thread never waits for, nor sees, a writer's
        transaction. Close its `con` when done; the store's own stays open."""
        view = copy.copy(self)
        view.con = self.con.cursor()
        view._bind()
        view.use_utc()
        return view

    def use_utc(self) -> None:
        """Make the session zone UTC: casts between TIMESTAMPTZ and TIMESTAMP use it, and it defaults to
        the machine's zone."""
        try:
            self.con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error:  # without ICU DuckDB has no zones and works in UTC already
            pass

    def ensure_schema(self) -> None:
        """Create missing tables and add typed property columns the plan gained since. `derived_state` is the
        one exception: the first refresh creates it (a store that never had rollups has nothing to heal)."""
        self.con.execute(create_table_sql("partners", PARTNER_COLUMNS))
        self.con.execute(create_table_sql("users", USER_COLUMNS))
        self.con.execute(create_table_sql("events", event_columns(self.plan)))
        self.con.execute(create_table_sql("rejected_rows", REJECTED_COLUMNS))
        self.con.execute(create_table_sql("imports", IMPORT_COLUMNS))
        self.credentials.create()
        self.alerts.create()
        self.overrides.create()
        self.subscriptions.create()
        self.checkpoints.create()
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

    def ping(self) -> None:
        """Ask the database a trivial question on a connection of its own (it raises when the database does not
        answer); never waits for a writer's transaction."""
        with self.con.cursor() as cur:
            cur.execute("SELECT 1").fetchall()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()
