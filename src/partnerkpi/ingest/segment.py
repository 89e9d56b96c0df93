"""Segment-spec JSON Lines (one message per line) as canonical partners, users and events.

identify → users, group → partners, track → events, page → "Page Viewed" events. A message's time is
`receivedAt − (sentAt − timestamp)` when all three are given (clock-skew correction), else
`timestamp`, else `originalTimestamp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from partnerkpi.ingest.flat import event_name
from partnerkpi.ingest.mapping import Mapping
from partnerkpi.ingest.rules import FIELDS, ISO_HINT, Canon
from partnerkpi.ingest.sources import blank_null, json_path, sql_str, utc

TYPES = ("identify", "group", "track", "page")
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
MSGS = "(SELECT _row, _line, _j, json_extract_string(_j, '$.type') AS _type FROM _ingest_src)"


def _text(*keys: str) -> str:
    return blank_null(f"json_extract_string(_j, {json_path(*keys)})")


def _time_sql() -> tuple[str, str, str]:
    """(the message time, its text, the pre-check CASE branches for unparseable time fields)."""
    t = {k: _text(k) for k in TIME_FIELDS}
    us = {k: f"epoch_us({utc(t[k])})" for k in TIME_FIELDS}
    corrected = f"make_timestamp({us['receivedAt']} - ({us['sentAt']} - {us['timestamp']}))"
    when_all = " AND ".join(f"{t[k]} IS NOT NULL" for k in ("timestamp", "sentAt", "receivedAt"))
    ts = (f"CASE WHEN {when_all} THEN {corrected} WHEN {t['timestamp']} IS NOT NULL THEN {utc(t['timestamp'])} "
          f"ELSE {utc(t['originalTimestamp'])} END")
    bad = " ".join(f"WHEN {t[k]} IS NOT NULL AND {utc(t[k])} IS NULL THEN {sql_str(k)}" for k in TIME_FIELDS)
    return ts, f"COALESCE({t['timestamp']}, {t['originalTimestamp']})", bad


def _pre(bad_when: str) -> str:
    """The early rejection of a message whose time fields do not parse."""
    field = f"CASE {bad_when} END"
    value = "CASE " + " ".join(f"WHEN ({field}) = {sql_str(k)} THEN {_text(k)}" for k in TIME_FIELDS) + " END"
    reason = f"concat({field}, ' ''', {value}, ''' is not a timestamp; ', {sql_str(ISO_HINT)})"
    return (f"CASE WHEN ({field}) IS NOT NULL THEN 'bad_timestamp' END AS _pre_code, {field} AS _pre_field, "
            f"{reason} AS _pre_reason")


def _trait_key(mapping: Mapping, ours: str) -> str:
    for their, target in mapping.columns.items():
        if target.lower() == ours:
            return their
    return ours


@dataclass
class SegmentCanons:
    """The canonical relations of one Segment file, and the Canon of lines no flow takes."""

    partners: Canon
    users: Canon
    events: Canon
    other: Canon


def group_traits(con: duckdb.DuckDBPyConnection, mapping: Mapping, partner_columns: list[str]) -> dict[str, str]:
    """Partner trait column -> the `traits` key it comes from, for every further trait of the group calls."""
    keys = [r[0] for r in con.execute(
        f"SELECT k FROM (SELECT unnest(json_keys(_j, '$.traits')) AS k, _row FROM {MSGS} "
        "WHERE _type = 'group' AND json_type(_j, '$.traits') = 'OBJECT') GROUP BY k ORDER BY min(_row), k"
    ).fetchall()]
    fixed = set(FIELDS["partners"])
    existing = {c.lower(): c for c in partner_columns}
    out: dict[str, str] = {}
    for key in keys:
        name = mapping.columns.get(key, key)
        if name.lower() in fixed or not name.strip() or name.lower() in {k.lower() for k in out}:
            continue
        out[existing.get(name.lower(), name)] = key
    return out


def segment_canons(mapping: Mapping, traits: dict[str, str]) -> SegmentCanons:
    """Build the canonical relations over the loaded lines (`_ingest_src`)."""
    ts, ts_text, bad = _time_sql()
    pre = _pre(bad)
    base = f"_row, {pre}, {ts} AS _first_seen"

    def entity_cols(kind: str, sources: dict[str, list[tuple[str, ...]]]) -> str:
        cols = []
        for f, typ in FIELDS[kind].items():
            paths = sources.get(f, [("traits", _trait_key(mapping, f))])
            text = "COALESCE(" + ", ".join(_text(*p) for p in paths) + ")" if len(paths) > 1 else _text(*paths[0])
            cols.append(f"{utc(text)} AS {f}, {text} AS {f}__text" if typ == "time" else f"{text} AS {f}")
        return ", ".join(cols)

    partner_cols = entity_cols("partners", {"partner_id": [("groupId",)]})
    trait_cols = "".join(f", {_text('traits', key)} AS _t{i}" for i, key in enumerate(traits.values()))
    partners = Canon(
        "partners", f"SELECT {base}, {partner_cols}{trait_cols} FROM {MSGS} WHERE _type = 'group'",
        {"partner_id": "groupId", **{f: f"traits.{_trait_key(mapping, f)}" for f in FIELDS["partners"]
                                     if f != "partner_id"}},
        list(FIELDS["partners"]), {t: f"_t{i}" for i, t in enumerate(traits)}, merge=True)

    created = _trait_key(mapping, "created_at")
    user_cols = entity_cols("users", {
        "user_id": [("userId",)],
        "partner_id": [("traits", _trait_key(mapping, "partner_id")), ("context", "groupId"), ("groupId",)],
        "created_at": [("traits", created), ("traits", "createdAt")],
    })
    users = Canon(
        "users", f"SELECT {base}, {user_cols} FROM {MSGS} WHERE _type = 'identify'",
        {"user_id": "userId", "partner_id": "traits.partner_id (or context.groupId)",
         **{f: f"traits.{_trait_key(mapping, f)}" for f in ("email", "role", "created_at", "deactivated_at")}},
        list(FIELDS["users"]), merge=True)

    props_v = "json_extract(_j, '$.properties')"
    props_text = f"CASE WHEN json_type({props_v}) = 'OBJECT' THEN CAST({props_v} AS VARCHAR) END"
    state = (f"CASE WHEN {props_v} IS NULL OR json_type({props_v}) = 'NULL' THEN NULL "
             f"WHEN json_type({props_v}) = 'OBJECT' THEN 'ok' ELSE 'not_object' END")
    page_path = (f"CASE WHEN _type = 'page' AND ({state}) IS DISTINCT FROM 'not_object' "
                 f"AND json_extract(_j, '$.properties.path') IS NULL AND {_text('name')} IS NOT NULL "
                 f"THEN CAST(json_merge_patch(COALESCE({props_text}, '{{}}'), json_object('path', {_text('name')})) "
                 f"AS VARCHAR) ELSE {props_text} END")
    event = f"CASE WHEN _type = 'page' THEN 'Page Viewed' ELSE {event_name(_text('event'), mapping)} END"
    events = Canon(
        "events",
        f"SELECT _row, {pre}, {_text('messageId')} AS event_id, {event} AS event, "
        f"{ts} AS ts, {ts_text} AS ts__text, {_text('context', 'groupId')} AS partner_id, "
        f"{_text('userId')} AS user_id, {_text('properties', 'object_id')} AS object_id, "
        f"{page_path} AS _props, {state} AS _props_state FROM {MSGS} WHERE _type IN ('track', 'page')",
        {"event_id": "messageId", "event": "event", "ts": "timestamp", "partner_id": "context.groupId",
         "user_id": "userId", "properties": "properties"},
        list(FIELDS["events"]))

    supported = ", ".join(sql_str(t) for t in TYPES)
    other_code = ("CASE WHEN _j IS NULL THEN 'invalid_json_line' WHEN _type IS NULL THEN 'missing_type' "
                  "ELSE 'unsupported_type' END")
    other_reason = (
        "CASE WHEN _j IS NULL THEN 'the line is not a JSON object; fix the line or remove it' "
        "WHEN _type IS NULL THEN 'type is missing; a Segment message has type identify, group, track or page' "
        f"ELSE concat('Segment message type ''', _type, ''' is not imported (only {', '.join(TYPES)} are); "
        "remove the line if it is not needed') END")
    other = Canon(
        "other",
        f"SELECT _row, {other_code} AS _pre_code, "
        "CASE WHEN _j IS NOT NULL THEN 'type' END AS _pre_field, "
        f"{other_reason} AS _pre_reason FROM {MSGS} WHERE _j IS NULL OR _type IS NULL OR _type NOT IN ({supported})",
        {}, [])
    return SegmentCanons(partners, users, events, other)
