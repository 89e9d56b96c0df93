"""The import log: one row per file import or collector batch (columns in `canonical.IMPORT_COLUMNS`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

INSERT_IMPORT = (
    "INSERT INTO imports (import_id, source, kind, fingerprint, started_at, finished_at, rows_read, "
    "accepted, duplicates, rejected, ignored_columns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_REJECTED = (
    "INSERT INTO rejected_rows (import_id, source, kind, row_number, field, reason, raw, rejected_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class ImportTables:
    """Reads and writes of `imports` (and the rejected rows an import keeps itself) on the store's connection;
    writes join the caller's open transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def previous(self, fingerprint: str) -> int | None:
        """The first import of the same file and mapping, or None."""
        return self.con.execute("SELECT min(import_id) FROM imports WHERE fingerprint = ?",
                                [fingerprint]).fetchall()[0][0]

    def next_id(self) -> int:
        """The id the next import gets (call inside the import's transaction)."""
        return self.con.execute("SELECT COALESCE(max(import_id), 0) + 1 FROM imports").fetchall()[0][0]

    def record(self, import_id: int, *, source: str, kind: str, fingerprint: str, started_at: datetime,
               finished_at: datetime, rows_read: int, accepted: int, duplicates: int, rejected: int,
               ignored_columns: str | None = None) -> None:
        """Log one import."""
        self.con.execute(INSERT_IMPORT, [import_id, source, kind, fingerprint, started_at, finished_at, rows_read,
                                         accepted, duplicates, rejected, ignored_columns])

    def reject(self, rows: Sequence[Sequence[Any]]) -> None:
        """Keep rejected rows given whole: (import_id, source, kind, row_number, field, reason, raw, rejected_at)."""
        self.con.executemany(INSERT_REJECTED, [list(r) for r in rows])

    def log_refused(self, source: str, kind: str, fingerprint: str, started_at: datetime, finished_at: datetime,
                    refused: Sequence[tuple[str | None, str, str]]) -> int:
        """In a transaction of its own: one import that accepted nothing, keeping each refused (field, reason,
        raw) as a rejected row numbered from 1; returns its id."""
        self.con.begin()
        try:
            import_id = self.next_id()
            self.reject([(import_id, source, kind, line, field, reason, raw, finished_at)
                         for line, (field, reason, raw) in enumerate(refused, 1)])
            self.record(import_id, source=source, kind=kind, fingerprint=fingerprint, started_at=started_at,
                        finished_at=finished_at, rows_read=len(refused), accepted=0, duplicates=0,
                        rejected=len(refused))
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        return import_id

    def newest_first(self) -> list[dict[str, Any]]:
        """Every import, newest first, as column -> value."""
        cur = self.con.execute("SELECT * FROM imports ORDER BY import_id DESC")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def rejected(self, *, kind: str | None = None, field: str | None = None, import_id: int | None = None,
                 text: str | None = None, limit: int | None = 200, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Rejected rows matching the filters (newest import first, then file order), and how many match;
        `text` looks in the reason and the source."""
        where, args = ["TRUE"], []
        for column, value in (("kind", kind), ("field", field), ("import_id", import_id)):
            if value not in (None, ""):
                where.append(f"{column} = ?")
                args.append(value)
        if text:
            where.append("(reason ILIKE ? OR source ILIKE ?)")
            args += [f"%{text}%", f"%{text}%"]
        condition = " AND ".join(where)
        total = self.con.execute(f"SELECT count(*) FROM rejected_rows WHERE {condition}", args).fetchall()[0][0]
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        cur = self.con.execute(
            f"SELECT import_id, source, kind, row_number, field, reason, raw, rejected_at FROM rejected_rows "
            f"WHERE {condition} ORDER BY import_id DESC, row_number{page}",
            args,
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()], total
