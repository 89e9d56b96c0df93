"""Engines that run the KPI expressions: DuckDB (the store itself), PostgreSQL and Spark.

The engine is written once with ibis; a `Backend` hands it the canonical tables of one engine.
The loaders copy a DuckDB store into PostgreSQL or Spark with the same column names and types;
timestamps stay naive and hold UTC wall-clock values everywhere.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import ibis
import pandas as pd

from partnerkpi.errors import StoreError
from partnerkpi.store import Store

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend
    from pyspark.sql import SparkSession

BackendName = Literal["duckdb", "postgres", "spark"]

CANONICAL_TABLES: tuple[str, ...] = ("partners", "users", "events", "rejected_rows", "imports")

POSTGRES_TYPES: dict[str, str] = {
    "VARCHAR": "text",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
}
SPARK_TYPES: dict[str, str] = {
    "VARCHAR": "STRING",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "BIGINT": "BIGINT",
    "INTEGER": "INT",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP_NTZ",
}


@dataclass
class Backend:
    """An ibis connection to one engine holding the canonical tables."""

    name: BackendName
    con: BaseBackend
    database: str | None = None

    def table(self, name: str) -> ir.Table:
        """One canonical table as an ibis expression."""
        if self.database is None:
            return self.con.table(name)
        return self.con.table(name, database=self.database)

    def execute(self, expr: ir.Expr) -> pd.DataFrame:
        """Run an expression on this engine and return its result as a DataFrame."""
        result = self.con.execute(expr)
        if isinstance(result, pd.DataFrame):
            return result
        if isinstance(result, pd.Series):
            return result.to_frame()
        return pd.DataFrame({"value": [result]})

    def close(self) -> None:
        """Close what this backend opened (the PostgreSQL connection); the store and Spark session stay."""
        if self.name == "postgres":
            self.con.disconnect()


def duckdb_backend(store: Store) -> Backend:
    """The store's DuckDB database via a cursor of its connection (opening the file again would clash)."""
    # A cursor shares the database but not the session: ibis' settings stay off the store's connection.
    return Backend("duckdb", ibis.duckdb.from_connection(store.con.cursor()))


def postgres_backend(url: str, schema: str = "public") -> Backend:
    """A PostgreSQL database holding tables loaded by `load_into_postgres`."""
    import psycopg

    try:
        con = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(
            f"cannot connect to PostgreSQL: {exc}",
            hint="check the URL (postgresql://user@host:port/dbname) and that the server is running",
        ) from exc
    con.execute("SET TIME ZONE 'UTC'")
    return Backend("postgres", ibis.postgres.from_connection(con), database=schema)


def spark_backend(session: SparkSession, database: str = "partnerkpi") -> Backend:
    """A Spark session holding tables loaded by `load_into_spark`."""
    return Backend("spark", ibis.pyspark.connect(session), database=database)


def spark_session(app: str = "partnerkpi", *, warehouse_dir: str | os.PathLike[str] | None = None,
                  master: str = "local[2]") -> SparkSession:
    """A quiet Spark session (local[2] unless told) with UTC time; tables go to `warehouse_dir` (default: a
    temp dir)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise StoreError(
            "the Spark backend needs pyspark", hint="pip install 'partnerkpi[spark]' (and a Java 17+ runtime)"
        ) from exc
    if warehouse_dir is None:
        warehouse_dir = tempfile.mkdtemp(prefix="partnerkpi-spark-")
        # Spark's default is ./spark-warehouse in the working directory; tables die with the session anyway.
        atexit.register(shutil.rmtree, warehouse_dir, True)
    session = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
        .config("spark.sql.warehouse.dir", str(Path(warehouse_dir).absolute()))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _target_types(store: Store, table: str, mapping: dict[str, str], engine: str) -> dict[str, str]:
    """Column name -> the engine's type for each column of a store table, in order."""
    rows = store.con.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
        [table],
    ).fetchall()
    unknown = {c: t for c, t in rows if t not in mapping}
    if unknown:
        raise StoreError(
            f"table {table}: no {engine} type for columns {unknown}",
            hint=f"add the DuckDB type to partnerkpi.backends' {engine} type map",
        )
    return {c: mapping[t] for c, t in rows}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_into_postgres(store: Store, url: str, schema: str = "public") -> dict[str, int]:
    """Copy the canonical tables into PostgreSQL in one transaction, replacing them; returns row counts."""
    import psycopg

    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="partnerkpi-pg-") as tmp, psycopg.connect(url) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
        for table in CANONICAL_TABLES:
            types = _target_types(store, table, POSTGRES_TYPES, "PostgreSQL")
            target = f"{_quote(schema)}.{_quote(table)}"
            body = ", ".join(f"{_quote(c)} {t}" for c, t in types.items())
            con.execute(f"DROP TABLE IF EXISTS {target}")
            con.execute(f"CREATE TABLE {target} ({body})")
            # DuckDB writes NULL as an empty field and '' as "", exactly what PostgreSQL's CSV COPY expects.
            csv_path = os.path.join(tmp, f"{table}.csv")
            store.con.execute(f"COPY {_quote(table)} TO {_literal(csv_path)} (FORMAT csv, HEADER false)")
            with con.cursor() as cur:
                with cur.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy, open(csv_path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
                counts[table] = cur.rowcount
    return counts


def load_into_spark(store: Store, session: SparkSession, database: str = "partnerkpi") -> dict[str, int]:
    """Copy the canonical tables into Spark tables `database.<table>`, replacing them; returns row counts."""
    counts: dict[str, int] = {}
    session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    with tempfile.TemporaryDirectory(prefix="partnerkpi-spark-load-") as tmp:
        for table in CANONICAL_TABLES:
            types = _target_types(store, table, SPARK_TYPES, "Spark")
            path = os.path.join(tmp, f"{table}.parquet")
            store.con.execute(f"COPY {_quote(table)} TO {_literal(path)} (FORMAT parquet)")
            # DuckDB writes naive TIMESTAMP as parquet isAdjustedToUTC=false; reading it as TIMESTAMP_NTZ
            # keeps the wall-clock value whatever the session time zone or inferTimestampNTZ setting.
            schema = ", ".join(f"`{c}` {t}" for c, t in types.items())
            df = session.read.schema(schema).parquet(path)
            df.write.mode("overwrite").format("parquet").saveAsTable(f"`{database}`.`{table}`")
            counts[table] = session.table(f"`{database}`.`{table}`").count()
    return counts
