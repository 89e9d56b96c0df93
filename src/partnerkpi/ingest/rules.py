"""The ingest rules of KPI-SPEC §2, set-based in DuckDB: checks, dedupe, upserts, typed properties.

Every path (flat files, Segment) first builds a canonical relation (`Canon`); the same checks then
give each row at most one rejection reason, and the same writers store the accepted rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.ingest.bounds import Window
from partnerkpi.ingest.sources import Col, Source, ident, message, sql_str, utc
from partnerkpi.store import property_column

TEXT, TIME = "text", "time"
FIELDS: dict[str, dict[str, str]] = {
    "partners": {"partner_id": TEXT, "name": TEXT, "type": TEXT, "tier": TEXT, "region": TEXT,
                 "onboarded_at": TIME, "offboarded_at": TIME},
    "users": {"user_id": TEXT, "partner_id": TEXT, "email": TEXT, "role": TEXT,
              "created_at": TIME, "deactivated_at": TIME},
    "events": {"event_id": TEXT, "ts": TIME, "event": TEXT, "partner_id": TEXT, "user_id": TEXT,
               "object_id": TEXT},
}
REQUIRED = {"partners": ("partner_id", "onboarded_at"), "users": ("user_id", "partner_id", "created_at"),
            "events": ("event_id", "ts", "event")}
ID = {"partners": "partner_id", "users": "user_id"}
START_END = {"partners": ("onboarded_at", "offboarded_at"), "users": ("created_at", "deactivated_at")}
ISO_HINT = "write ISO-8601 such as 2026-07-01T10:00:00Z (an offset such as +02:00 is converted to UTC)"
MISSING_FIX = {
    "event_id": "give every event a unique id",
    "event": "name the event, e.g. Logged In",
    "ts": f"give the time of the event; {ISO_HINT}",
    "partners.partner_id": "give every partner a unique id",
    "users.partner_id": "name the partner the user belongs to",
    "user_id": "give every user a unique id",
    "onboarded_at": f"add when the partner joined the program; {ISO_HINT}",
    "created_at": f"add when the user was provisioned on the hub; {ISO_HINT}",
}
PROPS_EXAMPLE = 'a JSON object such as {"path": "/home"}'


@dataclass(frozen=True)
class Check:
    """One rejection rule: its summary category, the field it blames, when it fails, and the reason text."""

    code: str
    field: str
    when: str
    reason: str


@dataclass
class Canon:
    """A canonical relation: `_row`, the kind's fields, and the adapter's own early rejections
    (`_pre_code`, `_pre_field`, `_pre_reason`)."""

    kind: str
    sql: str
    names: dict[str, str]
    present: list[str]
    traits: dict[str, str] = field(default_factory=dict)
    merge: bool = False
    corrected_ts: bool = False  # event times corrected for the sender's clock: a resend differs by latency

    def name(self, f: str) -> str:
        return self.names.get(f, f)


@dataclass
class Outcome:
    """What one flow did: rows it read, stored, counted as duplicates, and rejections by category."""

    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, other: Outcome) -> None:
        self.rows += other.rows
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.update(other.rejected)


def _time_checks(canon: Canon, f: str, window: Window, *, end: bool = False) -> list[Check]:
    n = canon.name(f)
    return [Check(f"bad_{f}", n, f"{f}__text IS NOT NULL AND {f} IS NULL",
                  message(f"{n} '", Col(f"{f}__text"), f"' is not a timestamp; {ISO_HINT}")),
            *(Check(*c) for c in window.checks(f, n, end=end))]


def _missing(canon: Canon, f: str, fix_key: str | None = None) -> Check:
    n = canon.name(f)
    col = f"{f}__text" if FIELDS[canon.kind][f] == TIME else f
    return Check(f"missing_{f}", n, f"{col} IS NULL", message(f"{n} is missing; {MISSING_FIX[fix_key or f]}"))


def entity_checks(canon: Canon, window: Window) -> list[Check]:
    """The checks of a partners or users row, in the order they are tried."""
    kind = canon.kind
    start, end = START_END[kind]
    checks = [_missing(canon, ID[kind], f"{kind}.partner_id" if kind == "partners" else None)]
    if kind == "users":
        missing = _missing(canon, "partner_id", "users.partner_id")
        if canon.merge:  # a later identify call need not repeat the partner
            missing = Check(missing.code, missing.field, "partner_id IS NULL AND _x_partner IS NULL AND "
                            "_file_partner IS NULL", missing.reason)
        checks.append(missing)
    if canon.merge:
        s = canon.name(start)
        checks.append(Check(f"missing_{start}", s,
                            f"{start}__text IS NULL AND _first_seen IS NULL AND _x_start IS NULL",
                            message(f"neither {s} nor the message timestamp is given; {ISO_HINT}")))
    else:
        checks.append(_missing(canon, start))
    if canon.merge:  # the message's own time stands in for a missing start instant
        checks += [Check(*c) for c in window.checks("_first_seen", "timestamp")]
    checks += _time_checks(canon, start, window) + _time_checks(canon, end, window, end=True)
    s, e = canon.name(start), canon.name(end)
    checks.append(Check(f"{end}_before_{start}", e, f"{end} < {start}",
                        message(f"{e} ", Col(end), f" is before {s} ", Col(start), "; fix one of the two dates")))
    return checks


def event_checks(canon: Canon, window: Window) -> list[Check]:
    """The checks of an event row, in the order they are tried (duplicates are decided after them)."""
    p, u, props = canon.name("partner_id"), canon.name("user_id"), canon.name("properties")
    return [
        _missing(canon, "event_id"), _missing(canon, "event"), _missing(canon, "ts"),
        *_time_checks(canon, "ts", window),
        Check("invalid_properties", props, "_props_state = 'invalid'",
              message(f"{props} is not valid JSON; write {PROPS_EXAMPLE}")),
        Check("properties_not_object", props, "_props_state = 'not_object'",
              message(f"{props} must be {PROPS_EXAMPLE}, not a list, number or text")),
        Check("unknown_user_id", u, "user_id IS NOT NULL AND _u_id IS NULL",
              message(f"{u} '", Col("user_id"), "' is not a known user; import the users file first or fix the id")),
        Check("unknown_partner_id", p, "partner_id IS NOT NULL AND _p_id IS NULL",
              message(f"{p} '", Col("partner_id"),
                      "' is not a known partner; import the partners file first or fix the id")),
        Check("partner_mismatch", p, "partner_id IS NOT NULL AND _u_partner IS NOT NULL AND _u_partner <> partner_id",
              message(f"{p} '", Col("partner_id"), "' differs from the partner '", Col("_u_partner"),
                      f"' of {u} '", Col("user_id"), f"'; leave {p} empty to use the user's partner, or fix it")),
    ]


def joined_sql(canon: Canon) -> str:
    """The canonical relation beside what the checks compare it with (the stored users, partners)."""
    joins = extra = ""
    if canon.kind == "events":
        joins = ("LEFT JOIN (SELECT user_id AS _u_id, any_value(partner_id) AS _u_partner FROM users "
                 "GROUP BY user_id) u ON u._u_id = c.user_id "
                 "LEFT JOIN (SELECT DISTINCT partner_id AS _p_id FROM partners) p ON p._p_id = c.partner_id")
    elif canon.merge:
        key, start = ID[canon.kind], START_END[canon.kind][0]
        users = canon.kind == "users"
        joins = (f"LEFT JOIN (SELECT {key} AS _x_id, any_value({start}) AS _x_start"
                 + (", any_value(partner_id) AS _x_partner" if users else "")
                 + f" FROM {canon.kind} GROUP BY {key}) x ON x._x_id = c.{key}")
        extra = ", max(c.partner_id) OVER (PARTITION BY c.user_id) AS _file_partner" if users else ""
    return f"(SELECT *{extra} FROM ({canon.sql}) c {joins})"


def checked_sql(canon: Canon, checks: list[Check]) -> str:
    """The canonical relation with `_code`: the first failing check's category, NULL for a good row."""
    whens = " ".join(f"WHEN {ch.when} THEN {sql_str(ch.code)}" for ch in checks)
    return f"(SELECT *, CASE WHEN _pre_code IS NOT NULL THEN _pre_code {whens} END AS _code FROM {joined_sql(canon)})"


def reject_rows(con: duckdb.DuckDBPyConnection, checked: str, checks: list[Check]) -> Counter[str]:
    """Set aside the rows of `checked` that failed a check, with field and reason; counts by category."""
    fields = " ".join(f"WHEN {sql_str(ch.code)} THEN {sql_str(ch.field)}" for ch in checks) or "WHEN NULL THEN NULL"
    reasons = " ".join(f"WHEN {sql_str(ch.code)} THEN {ch.reason}" for ch in checks) or "WHEN NULL THEN NULL"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ingest_rej_part AS SELECT _row, _code, "
        f"CASE WHEN _pre_code IS NOT NULL THEN _pre_field ELSE CASE _code {fields} END END AS _field, "
        f"CASE WHEN _pre_code IS NOT NULL THEN _pre_reason ELSE CASE _code {reasons} END END AS _reason "
        f"FROM {checked} WHERE _code IS NOT NULL"
    )
    counts = Counter(dict(con.execute("SELECT _code, count(*) FROM _ingest_rej_part GROUP BY _code").fetchall()))
    con.execute("INSERT INTO _ingest_rej SELECT * FROM _ingest_rej_part")
    con.execute("DROP TABLE _ingest_rej_part")
    return counts


def begin_rejections(con: duckdb.DuckDBPyConnection) -> None:
    """A fresh scratch table for this file's rejected rows."""
    con.execute("CREATE OR REPLACE TEMP TABLE _ingest_rej (_row BIGINT, _code VARCHAR, _field VARCHAR, "
                "_reason VARCHAR)")


def store_rejections(con: duckdb.DuckDBPyConnection, source: Source, *, import_id: int, kind: str,
                     rejected_at: object) -> None:
    """Copy this file's rejected rows, with their original content, into `rejected_rows` in file order."""
    if not con.execute("SELECT count(*) FROM _ingest_rej").fetchall()[0][0]:
        return
    con.execute(
        "INSERT INTO rejected_rows (import_id, source, kind, row_number, field, reason, raw, rejected_at) "
        f"SELECT ?, ?, ?, r._row, r._field, r._reason, {source.raw('s')}, ? FROM _ingest_rej r "
        f"JOIN {source.relation} s ON s._row = r._row ORDER BY r._row",
        [import_id, source.path, kind, rejected_at],
    )


def apply_entities(con: duckdb.DuckDBPyConnection, canon: Canon, window: Window) -> Outcome:
    """Reject bad partner/user rows and upsert the rest (a later row for the same id updates it)."""
    table, key = canon.kind, ID[canon.kind]
    checks = entity_checks(canon, window)
    checked = checked_sql(canon, checks)
    rows = con.execute(f"SELECT count(*) FROM ({canon.sql})").fetchall()[0][0]
    rejected = reject_rows(con, checked, checks)
    start = START_END[table][0]
    # stored column -> canon column
    cols = {f: f for f in canon.present if f != key} | canon.traits
    if canon.merge:
        aggs = ", ".join(f"arg_max({ident(c)}, _row) FILTER (WHERE {ident(c)} IS NOT NULL) AS {ident(c)}"
                         for c in cols.values())
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ingest_up AS SELECT {key}, min(_row) AS _row, {aggs}, "
                    "min(_first_seen) AS _first_seen "
                    f"FROM {checked} WHERE _code IS NULL GROUP BY {key}")
        sets = ", ".join(f"{ident(t)} = COALESCE(u.{ident(c)}, {table}.{ident(t)}"
                         + (", u._first_seen)" if t == start else ")") for t, c in cols.items())
        values = [f"COALESCE(u.{ident(c)}, u._first_seen)" if t == start else f"u.{ident(c)}"
                  for t, c in cols.items()]
    else:
        picked = ", ".join(ident(c) for c in cols.values())
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ingest_up AS SELECT {key}, _row, {picked} FROM {checked} "
                    f"WHERE _code IS NULL QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _row DESC) = 1")
        sets = ", ".join(f"{ident(t)} = u.{ident(c)}" for t, c in cols.items())
        values = [f"u.{ident(c)}" for c in cols.values()]
    if sets:
        con.execute(f"UPDATE {table} SET {sets} FROM _ingest_up u WHERE {table}.{key} = u.{key}")
    targets = ", ".join([key, *(ident(t) for t in cols)])
    con.execute(f"INSERT INTO {table} ({targets}) SELECT {', '.join([f'u.{key}', *values])} FROM _ingest_up u "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = u.{key}) ORDER BY u._row")
    con.execute("DROP TABLE _ingest_up")
    bad = sum(rejected.values())
    return Outcome(rows=rows, accepted=rows - bad, rejected=rejected)


def plan_struct(plan: TrackingPlan) -> str:
    """The from_json structure pulling every typed plan property out as a JSON value in one parse."""
    return sql_str("{" + ", ".join(f'"{p}": "JSON"' for p in plan.typed_properties) + "}")


def typed_property(value: str, kind: str) -> str:
    """SQL typing one property's minified JSON value: strings, numbers, booleans only as such; else NULL."""
    string, value = f"({value} ->> '$')", f"CAST({value} AS VARCHAR)"
    if kind == "string":
        return f"CASE WHEN starts_with({value}, '\"') THEN {string} END"
    if kind == "number":
        return f"CASE WHEN contains('-0123456789', left({value}, 1)) THEN try_cast({value} AS DOUBLE) END"
    if kind == "bool":
        return f"CASE {value} WHEN 'true' THEN true WHEN 'false' THEN false END"
    return f"CASE WHEN starts_with({value}, '\"') THEN {utc(string)} END"


def apply_events(con: duckdb.DuckDBPyConnection, canon: Canon, plan: TrackingPlan, window: Window, *,
                 import_id: int) -> Outcome:
    """Reject bad event rows, drop repeated event_ids (first stored row wins) and insert the rest.

    A cheap first pass lists the ids that occur twice in the file or are stored already; rows without
    such an id are checked and inserted in one pass, the (usually few) others in a second one.
    """
    from partnerkpi.ingest.conflicts import reject_conflicts  # it builds on this module

    checks = event_checks(canon, window)
    checked = checked_sql(canon, checks)
    rows = con.execute(f"SELECT count(*) FROM ({canon.sql})").fetchall()[0][0]
    stored = con.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").fetchall()[0][0]
    old = ("LEFT JOIN events e ON e.event_id = c.event_id" if stored
           else "LEFT JOIN (SELECT NULL AS event_id) e ON false")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ingest_cand AS SELECT c.event_id AS _cand_id, count(*) AS _n, "
        f"count(e.event_id) > 0 AS _old FROM (SELECT event_id FROM ({canon.sql})) c {old} "
        "WHERE c.event_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1 OR count(e.event_id) > 0"
    )
    base = con.execute("SELECT COALESCE(max(seq), 0) FROM events").fetchall()[0][0]
    typed = {property_column(p): typed_property(f"_pv.{ident(p)}", k) for p, k in plan.typed_properties.items()}
    typed = {c: window.clamp(v) if plan.typed_properties[p] == "timestamp" else v
             for (p, _), (c, v) in zip(plan.typed_properties.items(), typed.items(), strict=True)}
    targets = ["seq", "event_id", "ts", "event", "partner_id", "user_id", "object_id", "properties", "import_id",
               *typed]
    values = [f"{int(base)} + _row", "event_id", "ts", "event", "COALESCE(partner_id, _u_partner)", "user_id",
              "object_id", "COALESCE(_props, '{}')", str(int(import_id)), *typed.values()]
    pv = f", from_json(_props, {plan_struct(plan)}) AS _pv" if typed else ""
    insert = (f"INSERT INTO events ({', '.join(ident(t) for t in targets)}) SELECT {', '.join(values)} FROM "
              f"(SELECT *{pv} FROM {checked} c ")
    held = con.execute("SELECT COALESCE(sum(_n), 0) FROM _ingest_cand").fetchall()[0][0]
    unique = "ANTI JOIN _ingest_cand k ON k._cand_id = c.event_id " if held else ""
    inserted = con.execute(insert + unique + "WHERE _code IS NULL)").fetchall()[0][0]
    valid_held = first_stored = 0
    if held:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ingest_dup AS SELECT event_id AS _dup_id, min(_row) AS _first, "
            f"count(*) AS _valid FROM {checked} WHERE _code IS NULL "
            "AND event_id IN (SELECT _cand_id FROM _ingest_cand) GROUP BY 1"
        )
        valid_held = con.execute("SELECT COALESCE(sum(_valid), 0) FROM _ingest_dup").fetchall()[0][0]
        first_stored = con.execute(
            insert + "JOIN _ingest_dup d ON d._dup_id = c.event_id AND d._first = c._row "
            "JOIN _ingest_cand k ON k._cand_id = c.event_id WHERE NOT k._old)"
        ).fetchall()[0][0]
    bad = (rows - held - inserted) + (held - valid_held)
    rejected = reject_rows(con, checked, checks) if bad else Counter()
    assert sum(rejected.values()) == bad, "rejected rows and their count disagree"
    conflicts = reject_conflicts(con, canon, checked, import_id=import_id, base=base) if held else 0
    if conflicts:
        rejected["conflict"] += conflicts
    return Outcome(rows=rows, accepted=inserted + first_stored, duplicates=valid_held - first_stored - conflicts,
                   rejected=rejected)
