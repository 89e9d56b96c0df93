"""`PostgresStore`: the store's tables in a PostgreSQL database, behind the same attributes as the DuckDB `Store`.

The subject classes (`imports`, `credentials`, `alerts`, ...) are the DuckDB store's own, run over a
`PgConnection`; only opening, the catalog queries and the bulk moves of an import differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from partnerkpi.pg.connection import PgConnection
from partnerkpi.store import Store


@dataclass
class PostgresStore(Store):
    """The canonical and the product's tables in the PostgreSQL database `path` (a postgresql:// URL)."""

    con: PgConnection = field(init=False, repr=False)  # type: ignore[assignment]

    def _connect(self) -> None:
        self.con = PgConnection(self.path)
        self._bind()  # the DuckDB store's own table classes, over the adapter
        if not self.read_only:
            self.ensure_schema()

    def use_utc(self) -> None:
        """Every session of the store is opened in UTC already."""

    def columns(self, table: str) -> list[str]:
        """Column names of a table of the store's schema, in order."""
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema() ORDER BY ordinal_position", [table]).fetchall()
        return [r[0] for r in rows]

    def tables(self) -> set[str]:
        """Names of the tables in the store's schema."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()
        return {r[0] for r in rows}

    def lock_key(self, name: str) -> int:
        """A stable 63-bit advisory lock key for `name` (an import, a job run)."""
        return int(self.con.execute("SELECT hashtextextended(?, 0)", [name]).fetchall()[0][0])

    def close(self) -> None:
        """Close every session."""
        self.con.close()


def quoted(names: Iterable[str]) -> str:
    """`names` as a comma-separated list of quoted identifiers."""
    return ", ".join('"' + n.replace('"', '""') + '"' for n in names)
