"""How far the collector's loader got in its spool: one row, written in the transaction of the rows it loaded."""

from __future__ import annotations

from datetime import datetime

import duckdb

CREATE = (
    "CREATE TABLE IF NOT EXISTS collector_checkpoint (stream VARCHAR PRIMARY KEY, segment BIGINT NOT NULL, "
    "byte_offset BIGINT NOT NULL, import_id BIGINT, loaded_at TIMESTAMP NOT NULL)"
)


class CheckpointTables:
    """Reads and writes of `collector_checkpoint` on the store's connection; `advance` joins the caller's open
    transaction, so the checkpoint commits with the rows or not at all."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self) -> None:
        """Create the table when missing."""
        self.con.execute(CREATE)

    def position(self, stream: str = "collector") -> tuple[int, int] | None:
        """(segment, byte offset) the loader has loaded up to, or None before its first load."""
        with self.con.cursor() as cur:
            rows = cur.execute("SELECT segment, byte_offset FROM collector_checkpoint WHERE stream = ?",
                               [stream]).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def advance(self, segment: int, offset: int, import_id: int | None, at: datetime,
                stream: str = "collector") -> None:
        """Record that everything before (segment, offset) is loaded."""
        self.con.execute("INSERT OR REPLACE INTO collector_checkpoint VALUES (?, ?, ?, ?, ?)",
                         [stream, segment, offset, import_id, at])
