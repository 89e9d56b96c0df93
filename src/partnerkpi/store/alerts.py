"""`alerts` (one row per firing), `alert_deliveries` (one per alert, channel and event) and `alert_ids`.

Each method takes a cursor of its own: the scheduler runs alerts on its thread beside the pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import duckdb

SCHEMA = (
    "CREATE SEQUENCE IF NOT EXISTS alert_ids START 1",
    "CREATE TABLE IF NOT EXISTS alerts (alert_id BIGINT PRIMARY KEY DEFAULT nextval('alert_ids'), "
    "rule_id VARCHAR NOT NULL, scope_key VARCHAR NOT NULL, kpi VARCHAR NOT NULL, fired_at TIMESTAMP NOT NULL, "
    "resolved_at TIMESTAMP, period VARCHAR, value DOUBLE, message VARCHAR NOT NULL, severity VARCHAR NOT NULL, "
    "acknowledged_by VARCHAR, acknowledged_at TIMESTAMP)",
    "CREATE TABLE IF NOT EXISTS alert_deliveries (alert_id BIGINT NOT NULL, channel VARCHAR NOT NULL, "
    "event VARCHAR NOT NULL, status VARCHAR NOT NULL, attempts INTEGER NOT NULL, last_attempt_at TIMESTAMP, "
    "delivered_at TIMESTAMP, error VARCHAR, PRIMARY KEY (alert_id, channel, event))",
)
ALERT_COLUMNS = ("alert_id, rule_id, scope_key, kpi, fired_at, resolved_at, period, value, message, severity, "
                 "acknowledged_by, acknowledged_at")
WHERE_STATUS = {"active": "resolved_at IS NULL", "resolved": "resolved_at IS NOT NULL", "all": "TRUE"}
Key = tuple[str, str, str]  # (rule id, scope key, kpi)
NewFiring = tuple[str, str, str, str | None, float | None, str, str]  # rule, scope, kpi, period, value, text, severity
Decide = Callable[[dict[Key, int]], tuple[list[tuple[int, Sequence[str]]], list[tuple[NewFiring, Sequence[str]]]]]


class AlertTables:
    """Alert state and pending deliveries; alerts come back as rows in the order of `ALERT_COLUMNS`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self) -> None:
        """Create the sequence and the tables when missing (DDL in its own transaction)."""
        with self.con.cursor() as cur:
            for ddl in SCHEMA:
                cur.execute(ddl)

    def exists(self) -> bool:
        """False on a read-only store made before alerts existed."""
        with self.con.cursor() as cur:
            n = cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                            "('alerts', 'alert_deliveries')").fetchall()[0][0]
        return n == 2

    def rows(self, status: str = "all", ids: Sequence[int] | None = None) -> list[tuple]:
        """Alerts with `status` (active, resolved, all), only `ids` when given, by id."""
        if not self.exists():
            return []
        where, params = WHERE_STATUS[status], []
        if ids is not None:
            where, params = f"{where} AND alert_id IN (SELECT unnest(?))", [list(ids)]
        with self.con.cursor() as cur:
            return cur.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {where} ORDER BY alert_id",
                               params).fetchall()

    def apply(self, decide: Decide, now: datetime) -> tuple[list[int], list[int]]:
        """In one transaction: read the active alerts, let `decide` say which to resolve and what fires anew
        (each with its channels), store both with a pending delivery per channel; returns (fired ids, resolved
        ids)."""
        fired_ids, resolved_ids = [], []
        with self.con.cursor() as cur:
            cur.begin()
            try:
                active = {(r, s, k): a for a, r, s, k in cur.execute(
                    "SELECT alert_id, rule_id, scope_key, kpi FROM alerts WHERE resolved_at IS NULL").fetchall()}
                resolve, fire = decide(active)
                for alert_id, channels in resolve:
                    cur.execute("UPDATE alerts SET resolved_at = ? WHERE alert_id = ?", [now, alert_id])
                    _queue(cur, alert_id, channels, "resolved")
                    resolved_ids.append(alert_id)
                for (rule_id, scope, kpi, period, value, message, severity), channels in fire:
                    (alert_id,) = cur.execute(
                        "INSERT INTO alerts (rule_id, scope_key, kpi, fired_at, period, value, message, severity) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING alert_id",
                        [rule_id, scope, kpi, now, period, value, message, severity],
                    ).fetchone()
                    _queue(cur, alert_id, channels, "fired")
                    fired_ids.append(alert_id)
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
        return fired_ids, resolved_ids

    def acknowledge(self, alert_id: int, by: str, at: datetime) -> None:
        """Mark an alert as seen (the first acknowledgement stays)."""
        with self.con.cursor() as cur:
            cur.execute("UPDATE alerts SET acknowledged_by = COALESCE(acknowledged_by, ?), "
                        "acknowledged_at = COALESCE(acknowledged_at, ?) WHERE alert_id = ?", [by, at, alert_id])

    def pending_deliveries(self) -> list[tuple[int, str, str]]:
        """(alert id, channel, event) of every delivery not yet ok, a firing before its resolve."""
        with self.con.cursor() as cur:
            return cur.execute(
                "SELECT alert_id, channel, event FROM alert_deliveries WHERE status <> 'ok' "
                "ORDER BY alert_id, channel, event = 'resolved'").fetchall()

    def record_attempt(self, alert_id: int, channel: str, event: str, at: datetime, error: str | None) -> None:
        """Count one delivery attempt: ok when `error` is None, failed with it otherwise."""
        with self.con.cursor() as cur:
            cur.execute(
                "UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, last_attempt_at = ?, "
                "delivered_at = ?, error = ? WHERE alert_id = ? AND channel = ? AND event = ?",
                ["failed" if error else "ok", at, None if error else at, error, alert_id, channel, event])

    def deliveries(self, alert_id: int | None = None) -> list[dict[str, Any]]:
        """Delivery rows as column -> value, by alert, channel and event."""
        if not self.exists():
            return []
        where, params = ("WHERE alert_id = ?", [alert_id]) if alert_id is not None else ("", [])
        with self.con.cursor() as cur:
            res = cur.execute(f"SELECT * FROM alert_deliveries {where} ORDER BY alert_id, channel, event", params)
            names = [d[0] for d in res.description]
            return [dict(zip(names, row, strict=True)) for row in res.fetchall()]


def _queue(cur: Any, alert_id: int, channels: Sequence[str], event: str) -> None:
    for channel in channels:
        cur.execute("INSERT INTO alert_deliveries (alert_id, channel, event, status, attempts) "
                    "VALUES (?, ?, ?, 'pending', 0)", [alert_id, channel, event])
