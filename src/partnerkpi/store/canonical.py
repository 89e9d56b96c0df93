"""The canonical tables (KPI-SPEC §2): partners, users, events, rejected rows and the import log.

Timestamps are stored as naive TIMESTAMP columns holding UTC
instants. Each typed property of the tracking plan has its own column `p_<name>` beside the raw JSON, so
every backend reads them without JSON functions.
"""

from __future__ import annotations

from partnerkpi.catalog.plan import PropertyType, TrackingPlan

# Fixed columns of the entity tables; any further column of a partners file is a trait (VARCHAR).
PARTNER_COLUMNS: dict[str, str] = {
    "partner_id": "VARCHAR",
    "name": "VARCHAR",
    "type": "VARCHAR",
    "tier": "VARCHAR",
    "region": "VARCHAR",
    "onboarded_at": "TIMESTAMP",
    "offboarded_at": "TIMESTAMP",
}
USER_COLUMNS: dict[str, str] = {
    "user_id": "VARCHAR",
    "partner_id": "VARCHAR",
    "email": "VARCHAR",
    "role": "VARCHAR",
    "created_at": "TIMESTAMP",
    "deactivated_at": "TIMESTAMP",
}
EVENT_COLUMNS: dict[str, str] = {
    "seq": "BIGINT",  # arrival order across all imports: breaks ties of equal ts ("first" = earliest ts, then seq)
    "event_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "event": "VARCHAR",
    "partner_id": "VARCHAR",
    "user_id": "VARCHAR",
    "object_id": "VARCHAR",
    "properties": "VARCHAR",  # the raw JSON object, as text
    "import_id": "BIGINT",
}
PROPERTY_SQL_TYPES: dict[PropertyType, str] = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
}
REJECTED_COLUMNS: dict[str, str] = {
    "import_id": "BIGINT",
    "source": "VARCHAR",  # the file (or collector request) the row came from
    "kind": "VARCHAR",  # partners | users | events | segment
    "row_number": "BIGINT",  # 1-based data row (CSV: the header is row 0), or the line of a JSONL file
    "field": "VARCHAR",
    "reason": "VARCHAR",  # what is wrong and how to fix it
    "raw": "VARCHAR",  # the row as it came, as JSON text
    "rejected_at": "TIMESTAMP",
}
IMPORT_COLUMNS: dict[str, str] = {
    "import_id": "BIGINT",
    "source": "VARCHAR",
    "kind": "VARCHAR",
    "fingerprint": "VARCHAR",  # sha256 of the file and the mapping: the same import twice adds nothing
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
    "rows_read": "BIGINT",
    "accepted": "BIGINT",
    "duplicates": "BIGINT",
    "rejected": "BIGINT",
    "ignored_columns": "VARCHAR",  # the file's columns that no field takes, comma-separated (NULL: none)
}


def property_column(name: str) -> str:
    """The typed column that holds plan property `name`."""
    return f"p_{name}"


def event_columns(plan: TrackingPlan) -> dict[str, str]:
    """All columns of `events` for a plan: the fixed ones, then one typed column per plan property."""
    cols = dict(EVENT_COLUMNS)
    for prop, kind in plan.typed_properties.items():
        cols[property_column(prop)] = PROPERTY_SQL_TYPES[kind]
    return cols


def create_table_sql(table: str, columns: dict[str, str]) -> str:
    """CREATE TABLE IF NOT EXISTS for `table` with `columns` (name -> SQL type)."""
    body = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({body})'
