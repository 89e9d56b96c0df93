"""Where a lake's canonical tables are and which columns they give, for Spark and for DuckDB alike.

Each of `partners`, `users` and `events` sits under the lake as `<name>/` (a folder of Parquet files, hive
partitions such as `month=2026-07/` allowed), `<name>.parquet` or `<name>` (one Parquet file), or a folder
holding a Delta (`_delta_log/`) or Iceberg (`metadata/`) table. Columns follow the canonical tables; a
column the files lack reads as NULL, one they add is left out (a partners column is a trait).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.errors import StoreError
from partnerkpi.store import PARTNER_COLUMNS, USER_COLUMNS, event_columns

LAKE_TABLES: tuple[str, ...] = ("partners", "users", "events")
TableFormat = Literal["parquet", "delta", "iceberg"]

# What a Delta or Iceberg table needs, beside pyspark, before Spark (and DuckDB, for the small reads) can read it.
READERS: dict[TableFormat, tuple[str, str]] = {
    "delta": ("delta", "pip install delta-spark (Spark's Delta reader) and give DuckDB its delta extension"),
    "iceberg": ("pyiceberg", "pip install pyiceberg and add the iceberg-spark-runtime jar to Spark "
                             "(spark.jars.packages) and DuckDB's iceberg extension"),
}


@dataclass(frozen=True)
class LakeTable:
    """One canonical table of a lake: its name, where it is and its format."""

    name: str
    path: Path
    format: TableFormat = "parquet"

    @property
    def is_folder(self) -> bool:
        """True when the table is a folder (of Parquet files, or a Delta or Iceberg table)."""
        return self.path.is_dir()


def _format(path: Path) -> TableFormat:
    if (path / "_delta_log").is_dir():
        return "delta"
    if (path / "metadata").is_dir() and any((path / "metadata").glob("*.metadata.json")):
        return "iceberg"
    return "parquet"


def find_table(lake: Path, name: str) -> LakeTable:
    """The table `name` of the lake at `lake` (StoreError saying where it was looked for when missing, or what
    to install when its format has no reader here)."""
    for path in (lake / name, lake / f"{name}.parquet"):
        if path.is_dir():
            table = LakeTable(name, path, _format(path))
            if table.format == "parquet" and not any(path.rglob("*.parquet")):
                raise StoreError(f"the lake's {name} folder {path} holds no Parquet file",
                                 hint=f"write {name} there as Parquet (e.g. `partnerkpi lake export --out {lake}`)")
            module, install = READERS.get(table.format, (None, ""))
            if module is not None and importlib.util.find_spec(module) is None:
                raise StoreError(f"the lake's {name} table at {path} is a {table.format.title()} table and "
                                 f"this installation cannot read {table.format.title()}", hint=install)
            return table
        if path.is_file():
            return LakeTable(name, path)
    raise StoreError(
        f"the lake {lake} has no {name} table (looked for {lake / name}/ and {lake / name}.parquet)",
        hint="a lake holds partners, users and events as Parquet; write one from a DuckDB store with "
        f"`partnerkpi lake export --db hub.duckdb --out {lake}`",
    )


def find_tables(lake: str | Path) -> dict[str, LakeTable]:
    """The three canonical tables of a lake (StoreError when the lake or one of them is missing)."""
    root = Path(lake)
    if not root.is_dir():
        raise StoreError(f"the lake {root} does not exist or is not a folder",
                         hint="give ?lake= the folder holding partners, users and events as Parquet")
    return {name: find_table(root, name) for name in LAKE_TABLES}


def canonical_columns(name: str, plan: TrackingPlan, found: list[str]) -> dict[str, str]:
    """The columns (name -> DuckDB type) the lake table `name` gives, given the columns `found` in its files:
    the canonical ones, and for partners every further column as a VARCHAR trait."""
    if name == "events":
        return event_columns(plan)
    if name == "users":
        return dict(USER_COLUMNS)
    traits = [c for c in found if c not in PARTNER_COLUMNS]
    return {**PARTNER_COLUMNS, **dict.fromkeys(traits, "VARCHAR")}
