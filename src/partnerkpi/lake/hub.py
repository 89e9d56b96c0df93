"""`open_lake_hub`: the hub of `--db spark:…?lake=PATH`, its KPIs run by Spark on the lake's files and its own
tables in the state store beside the lake."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from partnerkpi.backends import Backend
from partnerkpi.catalog import load_catalog
from partnerkpi.catalog.plan import load_plan
from partnerkpi.clock import Clock
from partnerkpi.engine.compute import Engine
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.lake.layout import find_tables
from partnerkpi.lake.spark import SPARK_THREADS, lake_session, lake_source, register_lake
from partnerkpi.lake.state import LakeStore
from partnerkpi.locations import Location
from partnerkpi.settings import TimeBounds


@dataclass
class LakeHub(Hub):
    """A hub over a lake: the lake is read in place, so nothing is imported into it and it has no rollups
    (Spark computes the KPIs from the events themselves). Spark starts on the first KPI computed: the small
    reads and the product's own tables need only the state store."""

    location: Location | None = None
    _starting: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The Spark source, made once and shared by this hub's snapshots (`replace` hands them this very dict): the
    # server reads through a snapshot per request, and re-registering the lake's views while other requests'
    # queries read them is both slow and a race on the Spark server.
    _spark: dict[str, Backend] = field(default_factory=dict, repr=False)

    @property
    def engine(self) -> Engine:
        """The engine on Spark over the lake (the session and the lake's views made on first use)."""
        with self._starting:
            if self.source is None and self.location is not None and isinstance(self.store, LakeStore):
                if "source" not in self._spark:
                    session = lake_session(self.location)
                    database = register_lake(session, self.location.lake or "", self.store.tables,
                                             self.store.lake_columns, self.store.file_columns)
                    self._spark["source"] = lake_source(session, database)
                self.source = self._spark["source"]
        engine = super().engine
        engine.fork, engine.threads = (lambda: engine.execute), SPARK_THREADS
        return engine

    def import_files(self, paths: Sequence[str | os.PathLike[str]], **options: object):
        """Refused: a lake is read in place (UsageError saying how to add data)."""
        lake = self.store.tables["events"].path.parent if isinstance(self.store, LakeStore) else "the lake"
        raise UsageError(
            f"this hub reads the lake {lake} in place: it imports nothing",
            hint=f"write new Parquet files into {lake} (events/ takes more files, e.g. a new month=YYYY-MM/ folder), "
            "or import into a DuckDB store and `partnerkpi lake export` it",
        )

    def prepare(self, *, progress: bool = False, full: bool = False) -> None:
        """Nothing to prepare: a lake has no rollups; Spark reads the events themselves."""

    def stale_rollups(self) -> list[str]:
        """None: a lake has no rollups."""
        return []


def open_lake_hub(
    cls: type[Hub],
    location: Location,
    *,
    catalog_paths: Sequence[Path] = (),
    plan_path: Path | None = None,
    clock: Clock,
    read_only: bool = False,
    memory_limit: str | None = None,
    targets_path: str | os.PathLike[str] | None = None,
    bounds: TimeBounds | None = None,
) -> Hub:
    """The hub of a Spark location: the lake's tables as views in the state store (a DuckDB file, for the small
    reads and the product's own tables) and, from the first KPI on, in a Spark database (the KPI expressions
    run there)."""
    from partnerkpi.insights.targets import TargetBook

    if location.lake is None or location.state is None:
        raise UsageError(f"no lake in --db {location.text}", hint="add ?lake=PATH")
    if "://" in location.state:
        raise UsageError(f"the state store of --db {location.text} must be a DuckDB file for now",
                         hint="give state=/path/partnerkpi-state.duckdb (or leave it out: it goes beside the lake)")
    plan = load_plan(plan_path)
    catalog = load_catalog(tuple(catalog_paths), plan=plan)
    book = TargetBook.load(Path(targets_path), catalog=catalog) if targets_path is not None else None
    tables = find_tables(location.lake)
    store = LakeStore.beside(tables, location.state, plan, read_only=read_only, memory_limit=memory_limit)
    hub_cls = cls if issubclass(cls, LakeHub) else LakeHub
    return hub_cls(store=store, plan=plan, catalog=catalog, clock=clock, targets=book,
                   bounds=bounds or TimeBounds(), location=location)
