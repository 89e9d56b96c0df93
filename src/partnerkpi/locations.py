"""Where the data lives, given as `--db` / `$PARTNERKPI_DB`: a DuckDB file, a PostgreSQL database or Spark
over a lake.

    partnerkpi.duckdb                        a DuckDB file (the default)
    duckdb:///var/lib/partnerkpi/hub.duckdb  the same, as a URL (three slashes and an absolute path)
    postgresql://user:pw@host:5432/dbname    a PostgreSQL database holding the store (postgres:// too)
    spark:local[*]?lake=/data/lake           Spark in this process over the Parquet tables under /data/lake
    sc://host:15002?lake=/data/lake          Spark Connect
    spark://host:7077?lake=/data/lake        a Spark standalone cluster

A Spark location also takes `state=PATH-or-URL`: the small DuckDB file or PostgreSQL database that holds
the product's own tables (users, tokens, alerts, overrides) beside the lake; `$PARTNERKPI_LAKE` and
`$PARTNERKPI_STATE` give the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from partnerkpi.errors import UsageError

LocationKind = Literal["duckdb", "postgres", "spark"]
FORMS = (
    "a DuckDB file path or duckdb:///absolute/path, postgresql://user@host:port/dbname, "
    "spark:local[*]?lake=PATH, spark://host:7077?lake=PATH or sc://host:15002?lake=PATH"
)
DEFAULT_STATE = "partnerkpi-state.duckdb"  # a lake's product tables, beside it when no state is given


@dataclass(frozen=True)
class Location:
    """One parsed `--db`: its kind and target (a file path, a PostgreSQL URL, or a Spark master), and for
    Spark the lake (where the canonical tables are read in place) and the state store."""

    kind: LocationKind
    target: str
    text: str  # as the user wrote it, for messages
    lake: str | None = None
    state: str | None = None

    @property
    def is_file(self) -> bool:
        """True for a DuckDB file (not `:memory:`): what the local-server marker and snapshots work with."""
        return self.kind == "duckdb" and self.target != ":memory:"

    @property
    def spark_connect(self) -> bool:
        """True when the Spark target is a Spark Connect server (`sc://`)."""
        return self.kind == "spark" and self.target.startswith("sc://")


def parse_location(text: str | os.PathLike[str]) -> Location:
    """The location `text` names (UsageError, with the accepted forms, for an unknown scheme or a Spark
    location without a lake)."""
    raw = os.fspath(text).strip()
    if not raw:
        raise UsageError("--db is empty", hint=f"give {FORMS}")
    scheme, sep, rest = raw.partition(":")
    scheme = scheme.lower()
    if not sep or len(scheme) == 1 or scheme not in ("duckdb", "postgresql", "postgres", "spark", "sc"):
        if sep and rest.startswith("//") and len(scheme) > 1:
            raise UsageError(f"unknown database URL scheme '{scheme}://' in --db {raw}", hint=f"give {FORMS}")
        return Location("duckdb", raw, raw)  # a path (C:\... style drive letters included)
    if scheme == "duckdb":
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise UsageError(f"no file in --db {raw}", hint="write duckdb:///absolute/path/hub.duckdb")
        return Location("duckdb", path, raw)
    if scheme in ("postgresql", "postgres"):
        if not urlsplit(raw).hostname and "host=" not in raw:
            raise UsageError(f"no host in --db {raw}", hint="write postgresql://user:password@host:5432/dbname")
        return Location("postgres", raw, raw)
    target, _, query = raw.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - {"lake", "state"})
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)} in --db {raw}",
                         hint="a Spark URL takes lake= and state=")
    master = target.removeprefix("spark:") if scheme == "spark" and not target.startswith("spark://") else target
    lake = options.get("lake") or os.environ.get("PARTNERKPI_LAKE")
    if not lake:
        raise UsageError(
            f"no lake for --db {raw}: Spark reads the canonical tables in place from a lake",
            hint=f"add ?lake=PATH (a folder with partners, users and events as Parquet) or set PARTNERKPI_LAKE, "
            f"e.g. {target}?lake=/data/partnerkpi-lake",
        )
    state = options.get("state") or os.environ.get("PARTNERKPI_STATE") or str(Path(lake) / DEFAULT_STATE)
    return Location("spark", master, raw, lake=lake, state=state)
