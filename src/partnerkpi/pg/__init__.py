"""PostgreSQL as the store: `--db postgresql://…` keeps every table in one PostgreSQL database.

`open_postgres_hub` builds a `PostgresHub`: its store (`PostgresStore`) runs the DuckDB store's table classes
over a psycopg adapter, the KPI expressions run on PostgreSQL through ibis (`hub.source`), and imports are
checked in a DuckDB staging store and moved with COPY. There are no rollups on PostgreSQL: the engine reads
the raw tables, so `prepare` and `heal` have nothing to do.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from partnerkpi.backends import postgres_backend
from partnerkpi.catalog import load_catalog
from partnerkpi.catalog.plan import load_plan
from partnerkpi.hub import Hub
from partnerkpi.locations import Location
from partnerkpi.pg.store import PostgresStore
from partnerkpi.settings import TimeBounds

if TYPE_CHECKING:
    from partnerkpi.ingest import ImportSummary

__all__ = ["PostgresHub", "PostgresStore", "open_postgres_hub"]


class PostgresHub(Hub):
    """A hub whose data and own tables live in PostgreSQL; KPIs run there, imports arrive by COPY."""

    store: PostgresStore

    def snapshot(self) -> Hub:
        """This hub: each of its statements already runs on a pooled session of its own and sees committed data
        only."""
        return self

    def close_snapshot(self) -> None:
        """Nothing to close: the pool is the hub's own (`close` ends it)."""

    # `Hub.data_version` and `Hub.appended` in PostgreSQL's words: a row hash is `hashtext` of its text.
    VERSION_SQL: ClassVar[str] = (
        "SELECT (SELECT count(*) FROM events), (SELECT coalesce(max(seq), 0) FROM events), "
        "(SELECT concat(count(*), ':', sum(hashtext(p::text)::bigint)) FROM partners p), "
        "(SELECT concat(count(*), ':', sum(hashtext(u::text)::bigint)) FROM users u)")
    APPENDED_SQL: ClassVar[str] = (
        "SELECT count(*), min(ts), max(ts), min(ts) FILTER (WHERE event = ANY(?) OR "
        "(user_id IS NOT NULL AND NOT event = ANY(?))), "
        "bool_or(partner_id IS NULL OR object_id IS NOT NULL), array_agg(DISTINCT partner_id) "
        "FROM events WHERE seq > ?")

    def import_files(self, paths: Sequence[str | os.PathLike[str]], *, kind: str | None = None,
                     mapping: str | os.PathLike[str] | None = None, progress: bool = False
                     ) -> list[ImportSummary]:
        """Import files (each checked by the usual rules, then written in one PostgreSQL transaction)."""
        from partnerkpi.pg.importer import import_into_postgres

        return import_into_postgres(self.store, paths, kind=kind, mapping=Path(mapping) if mapping else None,
                                    progress=progress, clock=self.clock, bounds=self.bounds)

    def prepare(self, *, progress: bool = False, full: bool = False) -> None:
        """Nothing to prepare: PostgreSQL has no rollups, the engine reads the raw tables."""

    def stale_rollups(self) -> list[str]:
        """None: there are no rollups on PostgreSQL."""
        return []

    def spool_dir(self) -> Path:
        """The collector's spool: a folder of the machine's temp dir named after the database."""
        digest = hashlib.sha256(self.store.path.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"partnerkpi-pg-{digest}.spool"

    @contextmanager
    def job_lock(self, name: str) -> Iterator[bool]:
        """Hold PostgreSQL's advisory lock for one run of job `name` across every process of the server: yields
        False (and holds nothing) when another process runs it now."""
        key = self.store.lock_key(name)
        with self.store.con.cursor() as cur:
            got = bool(cur.execute("SELECT pg_try_advisory_lock(?)", [key]).fetchall()[0][0])
            try:
                yield got
            finally:
                if got:
                    cur.execute("SELECT pg_advisory_unlock(?)", [key])

    def close(self) -> None:
        """Close the engine's connection and the store's sessions."""
        if self.source is not None:
            self.source.close()
        self.store.close()


def open_postgres_hub(cls: type[Hub], location: Location, *, catalog_paths: Sequence[Path] = (),
                      plan_path: Path | None = None, read_only: bool = False, targets_path: Any = None,
                      bounds: TimeBounds | None = None, **options: Any) -> Hub:
    """The hub of the PostgreSQL database at `location` (its tables created when missing, unless read-only).
    `memory_limit` is DuckDB's and has no meaning here."""
    from partnerkpi.insights.targets import TargetBook

    options.pop("memory_limit", None)
    plan = load_plan(plan_path)
    catalog = load_catalog(tuple(catalog_paths), plan=plan)
    book = TargetBook.load(Path(targets_path), catalog=catalog) if targets_path is not None else None
    store = PostgresStore.open(location.target, plan, read_only=read_only)
    try:
        source = postgres_backend(location.target)
    except BaseException:
        store.close()
        raise
    hub_class = PostgresHub if cls is Hub else type(f"Postgres{cls.__name__}", (PostgresHub, cls), {})
    return hub_class(store=store, plan=plan, catalog=catalog, targets=book, bounds=bounds or TimeBounds(),
                     source=source, **options)
