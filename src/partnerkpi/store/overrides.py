"""`health_overrides`: manual overrides of a partner's health level or score."""

from __future__ import annotations

from datetime import datetime

import duckdb

TABLE = "health_overrides"
COLUMNS = ("override_id BIGINT, partner_id VARCHAR, level VARCHAR, score DOUBLE, reason VARCHAR, "
           "expires_at TIMESTAMP, created_by VARCHAR, created_at TIMESTAMP")
SELECT = ("SELECT override_id, partner_id, level, score, reason, expires_at, created_by, created_at "
          "FROM health_overrides")
OverrideRow = tuple[int, str, str | None, float | None, str, datetime, str, datetime]


class OverrideTables:
    """Overrides as rows, in the column order of `SELECT`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self) -> None:
        """Create the table when missing."""
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({COLUMNS})")

    def exists(self) -> bool:
        """False on a read-only store made before overrides existed."""
        return bool(self.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                     [TABLE]).fetchall()[0][0])

    def next_id(self) -> int:
        """The id the next override gets."""
        return int(self.con.execute(f"SELECT coalesce(max(override_id), 0) + 1 FROM {TABLE}").fetchall()[0][0])

    def insert(self, row: OverrideRow) -> None:
        """Store one override."""
        self.con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(row))

    def newest_first(self) -> list[OverrideRow]:
        """Every override, newest first."""
        if not self.exists():
            return []
        return self.con.execute(f"{SELECT} ORDER BY created_at DESC, override_id DESC").fetchall()

    def delete(self, override_id: int) -> bool:
        """Delete an override; False when there was none with that id."""
        if not self.exists():
            return False
        found = self.con.execute(f"SELECT count(*) FROM {TABLE} WHERE override_id = ?", [override_id]).fetchall()
        self.con.execute(f"DELETE FROM {TABLE} WHERE override_id = ?", [override_id])
        return bool(found[0][0])
