"""The state store beside a lake: a DuckDB file with the product's own tables (users, tokens, alerts, overrides,
the import log) and, in place of the canonical tables, views over the lake's files.

The views let the hub's small reads (the watermark, the partner list and names, traits, plan coverage, counts)
run in DuckDB on the same files Spark reads, without a copy and without a round trip to Spark; the KPI
expressions run on Spark. Each view carries a comment with the fingerprint of its definition, so a read-only
open can tell whether the views still match the lake (a moved lake, a plan with new properties) and rewrites
them through a short writable open only when they do not.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from partnerkpi.backends import _literal, _quote
from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.errors import StoreError
from partnerkpi.lake.layout import LakeTable, canonical_columns
from partnerkpi.store import Store

# The DuckDB function that scans each table format; delta and iceberg need DuckDB's extensions of that name.
SCANS = {"delta": "delta_scan", "iceberg": "iceberg_scan"}


def scan_sql(table: LakeTable) -> str:
    """The DuckDB table function call reading `table` in place."""
    if table.format != "parquet":
        return f"{SCANS[table.format]}({_literal(str(table.path.absolute()))})"
    path = table.path.absolute()
    files = f"{path}/**/*.parquet" if table.is_folder else str(path)
    return f"read_parquet({_literal(files)}, hive_partitioning = true, union_by_name = true)"


@dataclass
class LakeStore(Store):
    """A Store whose partners, users and events are views over a lake (`tables`); `lake_columns` holds each
    view's columns (name -> DuckDB type), the same the Spark views give, and `file_columns` those the files hold."""

    tables: dict[str, LakeTable] = field(default_factory=dict)
    lake_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    file_columns: dict[str, set[str]] = field(default_factory=dict)  # the columns the files themselves hold

    @classmethod
    def beside(cls, tables: dict[str, LakeTable], path: str | os.PathLike[str], plan: TrackingPlan, *,
               read_only: bool = False, memory_limit: str | None = None) -> LakeStore:
        """Open (creating when new) the state store at `path` with views over `tables`."""
        if read_only and not Path(path).is_file():
            cls.beside(tables, path, plan, memory_limit=memory_limit).close()  # a first read creates it
        store = cls(os.fspath(path), plan, read_only, memory_limit, tables=tables)
        store._connect()
        if read_only and not store.views_current():
            store.close()
            cls.beside(tables, path, plan, memory_limit=memory_limit).close()
            store = cls(os.fspath(path), plan, read_only, memory_limit, tables=tables)
            store._connect()
        return store

    def _view_sql(self) -> dict[str, str]:
        """CREATE VIEW statements for the three tables, from the columns their files hold."""
        statements = {}
        for name, table in self.tables.items():
            scan = scan_sql(table)
            try:
                found = dict(self.con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {scan})"
                                              ).fetchall())
            except Exception as exc:  # duckdb.Error, or an extension that cannot load
                raise StoreError(f"cannot read the lake's {name} table at {table.path}: {exc}",
                                 hint="check that the files are Parquet (or Delta/Iceberg with their readers)"
                                 ) from exc
            self.file_columns[name] = set(found)
            self.lake_columns[name] = columns = canonical_columns(name, self.plan, list(found))
            select = ", ".join(f"{_cast(c, t, found.get(c))} AS {_quote(c)}" for c, t in columns.items())
            statements[name] = f"CREATE OR REPLACE VIEW {_quote(name)} AS SELECT {select} FROM {scan}"
        return statements

    def views_current(self) -> bool:
        """True when each view's comment is the fingerprint of the definition the lake asks for now."""
        wanted = {name: _fingerprint(sql) for name, sql in self._view_sql().items()}
        have = dict(self.con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        return all(have.get(name) == mark for name, mark in wanted.items())

    def ensure_schema(self) -> None:
        """Views over the lake in place of the canonical tables (replacing tables an earlier store held only
        when they are empty), then the product's own tables."""
        kinds = dict(self.con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        for name, sql in self._view_sql().items():
            if kinds.get(name) == "BASE TABLE":
                if self.con.execute(f"SELECT count(*) FROM {_quote(name)}").fetchall()[0][0]:
                    raise StoreError(f"the state store {self.path} holds a {name} table with rows, not a lake view",
                                     hint="give ?state= a file of its own (not a partnerkpi store with data)")
                self.con.execute(f"DROP TABLE {_quote(name)}")
            self.con.execute(sql)
            self.con.execute(f"COMMENT ON VIEW {_quote(name)} IS {_literal(_fingerprint(sql))}")
        super().ensure_schema()  # the store makes only missing tables: the views stay


def _fingerprint(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def _cast(column: str, sql_type: str, found: str | None) -> str:
    """The expression giving `column` as `sql_type`: NULL when the files lack it; an instant with a zone as
    its UTC wall-clock time whatever the session zone."""
    if found is None:
        return f"CAST(NULL AS {sql_type})"
    if sql_type == "TIMESTAMP" and found.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('UTC', {_quote(column)})"
    return f"CAST({_quote(column)} AS {sql_type})"
