"""The Spark side of a lake: one session per process for the location's master, and per lake a Spark
database whose views read the lake's files in place with the canonical columns and types.

The views are SQL over the files (`parquet.`path``), so each query lists the files again: a lake that
grows under a running server is read whole, with no session restart.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from partnerkpi.backends import SPARK_TYPES, Backend, spark_session
from partnerkpi.errors import StoreError
from partnerkpi.lake.layout import LakeTable
from partnerkpi.locations import Location

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from pyspark.sql import SparkSession

# Spark runs a KPI's query while the next ones are planned; more threads than cores still help, as much of a
# small query's time is spent in planning and scheduling, not in the cores.
SPARK_THREADS = 4

_sessions: dict[str, SparkSession] = {}
# Sessions replaced in `_sessions` are kept, never collected: a Connect session's finalizer closes its client,
# which shuts the client library's shared release pool down under the queries other threads still run
# ("cannot schedule new futures after shutdown").
_replaced: list[SparkSession] = []
_opening = threading.Lock()


def lake_session(location: Location) -> SparkSession:
    """The process' Spark session for the location's master: `local[*]` and `spark://` start one here, `sc://`
    connects to a Spark Connect server. Later opens in the same process reuse it (JVM start-up takes seconds)."""
    if location.spark_connect:
        # ibis hands its in-memory tables (e.g. the periods) to createDataFrame with verifySchema, which the
        # Connect client ignores with a UserWarning on every query; set on each open, as a caller's
        # warnings.catch_warnings (a test's) drops it at exit.
        warnings.filterwarnings("ignore", message="'verifySchema' is ignored", category=UserWarning)
    with _opening:
        return _session(location)


def _session(location: Location) -> SparkSession:
    session = _sessions.get(location.target)
    if session is not None and _alive(session):
        return session
    if session is not None:
        _replaced.append(session)
    if location.spark_connect:
        session = _connect(location.target)
    else:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()  # e.g. the test run's, or the one a notebook started
        session = active if active is not None else spark_session(master=location.target)
    _sessions[location.target] = session
    return session


def _alive(session: SparkSession) -> bool:
    try:
        session.sql("SELECT 1").collect()
    except Exception:  # a stopped session or a Connect server gone away
        return False
    return True


def _connect(url: str) -> SparkSession:
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.builder.remote(url).getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
    except ImportError as exc:
        raise StoreError("Spark Connect needs pyspark's connect client",
                         hint="pip install 'pyspark[connect]'") from exc
    except Exception as exc:
        raise StoreError(f"cannot reach the Spark Connect server {url}: {exc}",
                         hint="start it (sbin/start-connect-server.sh) or check host and port") from exc
    return session


@dataclass
class LakeSource(Backend):
    """Spark over one lake's views; each table's ibis expression is looked up once (a lookup asks Spark for the
    view's schema, which reads the files' footers)."""

    _tables: dict[str, ir.Table] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> ir.Table:
        """One canonical table of the lake as an ibis expression."""
        if name not in self._tables:
            self._tables[name] = super().table(name)
        return self._tables[name]


def lake_source(session: SparkSession, database: str) -> LakeSource:
    """The backend the KPI expressions of a lake run on."""
    return LakeSource("spark", ibis.pyspark.connect(session), database=database)


def lake_database(lake: str | Path) -> str:
    """The Spark database holding a lake's views: one per lake folder, so lakes side by side do not clash."""
    return "partnerkpi_lake_" + hashlib.sha256(str(Path(lake).absolute()).encode()).hexdigest()[:12]


def register_lake(session: SparkSession, lake: str | Path, tables: dict[str, LakeTable],
                  columns: dict[str, dict[str, str]], present: dict[str, set[str]]) -> str:
    """(Re)create the views of a lake's tables in its Spark database, with `columns` (name -> DuckDB type: the
    state store's views' own) of which the files hold those in `present`; returns the database."""
    database = lake_database(lake)
    session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    for name, table in tables.items():
        # An absent column reads as NULL; a present one is cast (a TIMESTAMP with zone to UTC wall-clock time,
        # the session zone being UTC).
        select = ", ".join(
            f"CAST({f'`{c}`' if c in present[name] else 'NULL'} AS {SPARK_TYPES[t]}) AS `{c}`"
            for c, t in columns[name].items()
        )
        source = f"{table.format}.`{_path(table)}`"
        try:
            session.sql(f"CREATE OR REPLACE VIEW `{database}`.`{name}` AS SELECT {select} FROM {source}")
        except Exception as exc:  # pyspark's AnalysisException and friends: the files cannot be read
            raise StoreError(f"Spark cannot read the lake's {name} table at {table.path}: {exc}",
                             hint="check that the files are Parquet (or Delta/Iceberg with their readers)") from exc
    return database


def _path(table: LakeTable) -> str:
    return str(table.path.absolute()).replace("`", "``")

