"""Where things are: resolved once, in main, and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = "partnerkpi.duckdb"
DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB would take 80 % of the machine's memory; this keeps a laptop usable


def resolve_db(db: str | os.PathLike[str] | None) -> str:
    """`--db` if given, else `PARTNERKPI_DB`, else ./partnerkpi.duckdb."""
    if db:
        return os.fspath(db)
    return os.environ.get("PARTNERKPI_DB") or DEFAULT_DB


@dataclass(frozen=True)
class Settings:
    """Settings of one run of the product."""

    db: str = DEFAULT_DB
    catalog_paths: tuple[Path, ...] = ()
    memory_limit: str = DEFAULT_MEMORY_LIMIT

    @classmethod
    def from_env(cls, db: str | None = None, catalog_paths: tuple[Path, ...] = ()) -> Settings:
        """--db / $PARTNERKPI_DB, extra catalogs from $PARTNERKPI_CATALOG, $PARTNERKPI_MEMORY_LIMIT."""
        extra = tuple(Path(p) for p in os.environ.get("PARTNERKPI_CATALOG", "").split(os.pathsep) if p)
        memory = os.environ.get("PARTNERKPI_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
        return cls(db=resolve_db(db), catalog_paths=extra + tuple(catalog_paths), memory_limit=memory)
