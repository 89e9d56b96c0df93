"""Where things are: resolved once, in main, and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = "partnerkpi.duckdb"


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

    @classmethod
    def from_env(cls, db: str | None = None, catalog_paths: tuple[Path, ...] = ()) -> Settings:
        extra = tuple(Path(p) for p in os.environ.get("PARTNERKPI_CATALOG", "").split(os.pathsep) if p)
        return cls(db=resolve_db(db), catalog_paths=extra + tuple(catalog_paths))
