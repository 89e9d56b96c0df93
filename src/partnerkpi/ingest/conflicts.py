"""Repeated event ids: an identical repeat is a duplicate, a repeat whose content differs is a conflict.

A conflicting repeat is kept as a rejected row (kind "conflict") whose reason names each differing
field with both values, so nothing is lost silently and the sender can tell which version is right.
"""

from __future__ import annotations

import duckdb

from partnerkpi.ingest.rules import Canon
from partnerkpi.ingest.sources import sql_str

# What makes two versions of one event the same: the stored column, and the canon's value for it.
COMPARED = {
    "ts": "c.ts",
    "event": "c.event",
    "partner_id": "COALESCE(c.partner_id, c._u_partner)",
    "user_id": "c.user_id",
    "object_id": "c.object_id",
    "properties": "CAST(json(COALESCE(c._props, '{}')) AS VARCHAR)",
}
RESEND_TOLERANCE_MS = 5 * 60 * 1000


def _shown(expr: str) -> str:
    return f"COALESCE('''' || CAST({expr} AS VARCHAR) || '''', 'empty')"


def reject_conflicts(con: duckdb.DuckDBPyConnection, canon: Canon, checked: str, *, import_id: int,
                     base: int) -> int:
    """Set aside (in `_ingest_rej`) the valid repeats of held event ids (`_ingest_dup`) whose content differs
    from the version stored (earlier, or by this import: its row `seq - base`); returns how many."""
    stored = {f: "CAST(json(s.properties) AS VARCHAR)" if f == "properties" else f"s.{f}" for f in COMPARED}
    apart = {f: f"{ours} IS DISTINCT FROM {stored[f]}" for f, ours in COMPARED.items()}
    if canon.corrected_ts:  # a resent message's corrected time moves by the network's latency
        apart["ts"] = f"abs(epoch_ms(c.ts) - epoch_ms(s.ts)) > {RESEND_TOLERANCE_MS}"
    where = (f"CASE WHEN s.import_id = {int(import_id)} THEN 'row ' || (s.seq - {int(base)}) || ' of this file' "
             "ELSE 'the event stored by import ' || s.import_id END")
    diffs = ", ".join(
        f"CASE WHEN {apart[f]} THEN concat({sql_str(canon.name(f) + ' ')}, "
        f"{_shown(ours)}, ' here, ', {_shown(stored[f])}, ' there') END"
        for f, ours in COMPARED.items())
    first_diff = " ".join(f"WHEN {apart[f]} THEN {sql_str(canon.name(f))}" for f in COMPARED)
    differs = " OR ".join(apart.values())
    quoted_id = "'''' || c.event_id || ''''"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ingest_conflict AS SELECT c._row, 'conflict' AS _code, "
        f"CASE {first_diff} END AS _field, concat({sql_str(canon.name('event_id') + ' ')}, {quoted_id}, "
        f"' repeats ', {where}, ' with different content: ', concat_ws('; ', {diffs}), "
        "'; keep one version: correct this row, or give it its own id if it is another event') AS _reason "
        f"FROM {checked} c JOIN _ingest_dup d ON d._dup_id = c.event_id JOIN events s ON s.event_id = c.event_id "
        f"WHERE c._code IS NULL AND s.seq <> {int(base)} + c._row AND ({differs})"
    )
    n = con.execute("SELECT count(*) FROM _ingest_conflict").fetchall()[0][0]
    con.execute("INSERT INTO _ingest_rej SELECT * FROM _ingest_conflict")
    con.execute("DROP TABLE _ingest_conflict")
    return n
