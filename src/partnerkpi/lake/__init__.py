"""Spark over a lake: `--db 'spark:local[*]?lake=PATH'` reads the canonical tables in place and runs the KPI
expressions on Spark.

The lake layout, under PATH:

    partners/   or partners.parquet   the partners (canonical columns; any further column is a trait)
    users/      or users.parquet      the partner users
    events/     or events.parquet     the events; a folder may hold hive partitions, e.g. month=2026-07/

Each folder holds Parquet files (or a Delta or Iceberg table, read when their readers are installed), with the
columns of the canonical tables (`partnerkpi.store.canonical`); timestamps are UTC (naive, or with a zone:
read as UTC). `partnerkpi lake export` writes this layout from a DuckDB store.

Beside the lake, the state store (`state=`, by default `PATH/partnerkpi-state.duckdb`) is a small DuckDB file
with the product's own tables (users, tokens, alerts, overrides) and views over the same files for the small
reads that do not need Spark (watermark, partner list, traits, counts). Nothing is imported into a lake.
"""

from partnerkpi.lake.export import export_lake
from partnerkpi.lake.hub import LakeHub, open_lake_hub

__all__ = ["LakeHub", "export_lake", "open_lake_hub"]
