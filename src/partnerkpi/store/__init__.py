"""The canonical store (KPI-SPEC §2) and the product's own tables, each subject in its own module."""

from partnerkpi.store.canonical import (
    EVENT_COLUMNS,
    IMPORT_COLUMNS,
    PARTNER_COLUMNS,
    PROPERTY_SQL_TYPES,
    REJECTED_COLUMNS,
    USER_COLUMNS,
    create_table_sql,
    event_columns,
    property_column,
)
from partnerkpi.store.database import Store

__all__ = [
    "EVENT_COLUMNS",
    "IMPORT_COLUMNS",
    "PARTNER_COLUMNS",
    "PROPERTY_SQL_TYPES",
    "REJECTED_COLUMNS",
    "USER_COLUMNS",
    "Store",
    "create_table_sql",
    "event_columns",
    "property_column",
]
