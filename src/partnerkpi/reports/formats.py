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
    """The rows as CSV with the §6 columns; `segment` is written as trait=value (empty for the program)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = row.to_json()
        record["segment"] = ";".join(f"{k}={v}" for k, v in record["segment"].items())
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return out.getvalue()
