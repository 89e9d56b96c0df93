"""`partnerkpi lake export`: write a DuckDB store's canonical tables as a lake that `--db spark:…?lake=` reads."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from partnerkpi.cli.common import DbOption, _reader, out

lake_app = typer.Typer(help="Lakes: the canonical tables as Parquet files, read in place by Spark.",
                       no_args_is_help=True)


class Partition(StrEnum):
    month = "month"


@lake_app.command("export")
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="The lake folder to write (partners/, users/, events/)")],
    db: DbOption = None,
    partition: Annotated[Partition | None, typer.Option(
        help="Split events into hive partitions (month=YYYY-MM/)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite tables the folder already holds")] = False,
) -> None:
    """Write partners, users and events as Parquet under --out; then read them in place with
    --db 'spark:local[*]?lake=OUT'."""
    from partnerkpi.lake import export_lake

    with _reader(db) as hub:
        counts = export_lake(hub.store, out_dir, partition=partition.value if partition else None, replace=replace)
    written = ", ".join(f"{n} {name}" for name, n in counts.items())
    out.print(f"{written} written to {out_dir}", highlight=False)
    out.print(f"read them with --db 'spark:local[*]?lake={out_dir.absolute()}'", highlight=False, soft_wrap=True)
