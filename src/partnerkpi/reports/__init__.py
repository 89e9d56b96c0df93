"""Renderings of KPI rows: Rich tables for people, JSON and CSV for tools (the same rows underneath)."""

from partnerkpi.reports.formats import rows_to_csv, rows_to_json
from partnerkpi.reports.numbers import format_change, format_value
from partnerkpi.reports.table import scorecard_tables, trend_arrow

__all__ = ["format_change", "format_value", "rows_to_csv", "rows_to_json", "scorecard_tables", "trend_arrow"]
