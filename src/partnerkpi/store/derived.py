"""The materialized rollups (`derived_*`, built from SQL the engine compiles) and `derived_state`, the data
fingerprint each was built from."""

from __future__ import annotations

import duckdb

TABLE = "derived_state"


class DerivedTables:
    """The rollups' bookkeeping. Created by the first refresh, so a store that never had rollups has none."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self) -> None:
        """Create `derived_state` when missing."""
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR, fingerprint VARCHAR)")

    def exists(self) -> bool:
        """True once a refresh has run on this store."""
        return bool(self.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                     [TABLE]).fetchall()[0][0])

    def fingerprints(self) -> dict[str, str]:
        """Rollup name -> the fingerprint it was built from."""
        return dict(self.con.execute(f"SELECT name, fingerprint FROM {TABLE}").fetchall())

    def fresh(self, fingerprint: str) -> set[str]:
        """The rollups built from data with `fingerprint`."""
        return {r[0] for r in self.con.execute(f"SELECT name FROM {TABLE} WHERE fingerprint = ?",
                                               [fingerprint]).fetchall()}

    def rebuild(self, name: str, select_sql: str) -> None:
        """Replace rollup `name` by the rows of `select_sql` (inside the caller's transaction)."""
        self.con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {select_sql}')

    def mark(self, name: str, fingerprint: str) -> None:
        """Record that rollup `name` now matches `fingerprint` (inside the rebuild's transaction)."""
        self.con.execute(f"DELETE FROM {TABLE} WHERE name = ?", [name])
        self.con.execute(f"INSERT INTO {TABLE} VALUES (?, ?)", [name, fingerprint])
