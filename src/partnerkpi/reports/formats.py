"""JSON and CSV renderings of KPI-SPEC §6 rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from partnerkpi.engine.result import KpiRow

CSV_COLUMNS = [
    "kpi", "period", "period_start", "period_end", "segment", "value", "numerator", "denominator", "n",
    "unit", "band", "previous", "change", "status", "status_basis",
]


def rows_to_json(rows: Sequence[KpiRow], indent: int | None = None) -> str:
    """One JSON array of the rows."""
    return json.dumps([r.to_json() for r in rows], indent=indent, allow_nan=False)


def rows_to_csv(rows: Sequence[KpiRow]) -> str:
    """The rows as CSV with the §6 columns, then any further fields of the rows; `segment` is written as
    trait=value (empty for the program)."""
    out = io.StringIO()
    records = [row.to_json() for row in rows]
    # fields a row gains beyond §6's (e.g. its status) follow them, in the row's order
    extra = [k for k in (records[0] if records else {}) if k not in CSV_COLUMNS]
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS + extra, lineterminator="\n")
    writer.writeheader()
    for record in records:
        record["segment"] = ";".join(f"{k}={v}" for k, v in record["segment"].items())
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return out.getvalue()
