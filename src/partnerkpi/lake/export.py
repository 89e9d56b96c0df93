"""`export_lake`: a DuckDB store's canonical tables written as a lake (the layout of `partnerkpi.lake`), so a
program can move to Spark and tests can build lakes from hand-computed fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from partnerkpi.backends import _literal, _quote
from partnerkpi.errors import UsageError
from partnerkpi.lake.layout import LAKE_TABLES
from partnerkpi.store import Store

Partition = Literal["month"]
PARTITIONS: dict[str, str] = {"month": "strftime(ts, '%Y-%m')"}  # the events' partition column, from ts


def export_lake(store: Store, out: str | Path, *, partition: Partition | None = None, replace: bool = False
                ) -> dict[str, int]:
    """Write partners, users and events of `store` under `out` as Parquet (events in hive partitions by
    `partition` when given); returns the rows written per table. UsageError when `out` already holds one of
    them, unless `replace`."""
    root = Path(out)
    if partition is not None and partition not in PARTITIONS:
        raise UsageError(f"unknown partition '{partition}'", hint=f"partition by one of: {', '.join(PARTITIONS)}")
    existing = [p for name in LAKE_TABLES for p in (root / name, root / f"{name}.parquet") if p.exists()]
    if existing and not replace:
        raise UsageError(f"{root} already holds {', '.join(p.name for p in existing)}",
                         hint="export into an empty folder, or add --replace to overwrite those tables")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    counts: dict[str, int] = {}
    with store.con.cursor() as cur:
        for name in LAKE_TABLES:
            folder = root / name
            folder.mkdir(parents=True)
            counts[name] = cur.execute(f"SELECT count(*) FROM {_quote(name)}").fetchall()[0][0]
            if name == "events" and partition is not None and counts[name]:
                key = _quote(partition)
                cur.execute(f"COPY (SELECT *, {PARTITIONS[partition]} AS {key} FROM events) TO "
                            f"{_literal(str(folder))} (FORMAT parquet, PARTITION_BY ({key}))")
            else:
                cur.execute(f"COPY {_quote(name)} TO {_literal(str(folder / f'{name}.parquet'))} (FORMAT parquet)")
    return counts
