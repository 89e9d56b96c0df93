"""Segment-spec JSON Lines (one message per line) as canonical partners, users and events.

identify → users, group → partners, track → events, page → "Page Viewed" events. A message's time is
`receivedAt − (sentAt − timestamp)` when all three are given (clock-skew correction), else
`timestamp`, else `originalTimestamp`. The common fields of every message are extracted and parsed
once into `_ingest_msg`; traits are read only from the (few) identify and group calls.
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
MESSAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "_type": ("type",), "_message_id": ("messageId",), "_event": ("event",), "_user_id": ("userId",),
    "_group_id": ("groupId",), "_context_group": ("context", "groupId"), "_name": ("name",),
    "_object_id": ("properties", "object_id"), **{f"_t_{k}": (k,) for k in TIME_FIELDS},
}
MSG = "_ingest_msg"


def stage_messages(con: duckdb.DuckDBPyConnection) -> None:
    """Extract and parse the fields every message may carry, in one pass over the loaded lines."""
    paths = ", ".join(json_path(*p) for p in MESSAGE_FIELDS.values())
    values = ", ".join(f"{blank_null(f'_v[{i}]')} AS {name}" for i, name in enumerate(MESSAGE_FIELDS, 1))
    us = {k: f"epoch_us(_p_{k})" for k in TIME_FIELDS}
    all_three = " AND ".join(f"_p_{k} IS NOT NULL" for k in ("timestamp", "sentAt", "receivedAt"))
    bad = " ".join(f"WHEN _t_{k} IS NOT NULL AND _p_{k} IS NULL THEN {sql_str(k)}" for k in TIME_FIELDS)
    bad_text = " ".join(f"WHEN {sql_str(k)} THEN _t_{k}" for k in TIME_FIELDS)
    parsed = ", ".join(f"{utc(f'_t_{k}')} AS _p_{k}" for k in TIME_FIELDS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {MSG} AS SELECT *, "
        f"CASE WHEN {all_three} THEN make_timestamp({us['receivedAt']} - ({us['sentAt']} - {us['timestamp']})) "
        "ELSE COALESCE(_p_timestamp, _p_originalTimestamp) END AS _ts, "
        "COALESCE(_t_timestamp, _t_originalTimestamp) AS _ts_text, "
        f"CASE {bad} END AS _bad_time, CASE CASE {bad} END {bad_text} END AS _bad_text, "
        "json_type(_pj) AS _props_type, CAST(_pj AS VARCHAR) AS _props_json "
        f"FROM (SELECT *, {parsed} FROM (SELECT _row, _j, {values}, json_extract(_j, '$.properties') AS _pj "
        f"FROM (SELECT _row, _j, json_extract_string(_j, [{paths}]) AS _v FROM _ingest_src)))"
    )


def _trait(key: str) -> str:
    return blank_null(f"json_extract_string(_j, {json_path('traits', key)})")


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
        f"SELECT k FROM (SELECT unnest(json_keys(_j, '$.traits')) AS k, _row FROM {MSG} "
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
    """Build the canonical relations over the staged messages."""
    pre = ("CASE WHEN _bad_time IS NOT NULL THEN 'bad_timestamp' END AS _pre_code, _bad_time AS _pre_field, "
           f"concat(_bad_time, ' ''', _bad_text, ''' is not a timestamp; ', {sql_str(ISO_HINT)}) AS _pre_reason, "
           "_p_receivedAt AS _recv")
    base = f"_row, {pre}, _ts AS _first_seen"

    def entity_cols(kind: str, given: dict[str, list[str]]) -> str:
        cols = []
        for f, typ in FIELDS[kind].items():
            exprs = given.get(f, [_trait(_trait_key(mapping, f))])
            text = f"COALESCE({', '.join(exprs)})" if len(exprs) > 1 else exprs[0]
            cols.append(f"{utc(text)} AS {f}, {text} AS {f}__text" if typ == "time" else f"{text} AS {f}")
        return ", ".join(cols)

    partner_cols = entity_cols("partners", {"partner_id": ["_group_id"]})
    trait_cols = "".join(f", {_trait(key)} AS _t{i}" for i, key in enumerate(traits.values()))
    partners = Canon(
        "partners", f"SELECT {base}, {partner_cols}{trait_cols} FROM {MSG} WHERE _type = 'group'",
        {"partner_id": "groupId", **{f: f"traits.{_trait_key(mapping, f)}" for f in FIELDS["partners"]
                                     if f != "partner_id"}},
        list(FIELDS["partners"]), {t: f"_t{i}" for i, t in enumerate(traits)}, merge=True)

    user_cols = entity_cols("users", {
        "user_id": ["_user_id"],
        "partner_id": [_trait(_trait_key(mapping, "partner_id")), "_context_group", "_group_id"],
        "created_at": [_trait(_trait_key(mapping, "created_at")), _trait("createdAt")],
    })
    users = Canon(
        "users", f"SELECT {base}, {user_cols} FROM {MSG} WHERE _type = 'identify'",
        {"user_id": "userId", "partner_id": "traits.partner_id (or context.groupId)",
         **{f: f"traits.{_trait_key(mapping, f)}" for f in ("email", "role", "created_at", "deactivated_at")}},
        list(FIELDS["users"]), merge=True)

    props = "CASE WHEN _props_type = 'OBJECT' THEN _props_json END"
    state = ("CASE WHEN _props_type IS NULL OR _props_type = 'NULL' THEN NULL WHEN _props_type = 'OBJECT' THEN 'ok' "
             "ELSE 'not_object' END")
    page_path = (f"CASE WHEN _type = 'page' AND _name IS NOT NULL AND ({state}) IS DISTINCT FROM 'not_object' "
                 f"AND json_extract(_props_json, '$.path') IS NULL "
                 f"THEN CAST(json_merge_patch(COALESCE({props}, '{{}}'), json_object('path', _name)) AS VARCHAR) "
                 f"ELSE {props} END")
    event = f"CASE WHEN _type = 'page' THEN 'Page Viewed' ELSE {event_name('_event', mapping)} END"
    events = Canon(
        "events",
        f"SELECT _row, {pre}, _message_id AS event_id, {event} AS event, _ts AS ts, _ts_text AS ts__text, "
        f"_context_group AS partner_id, _user_id AS user_id, _object_id AS object_id, "
        f"{page_path} AS _props, {state} AS _props_state FROM {MSG} WHERE _type IN ('track', 'page')",
        {"event_id": "messageId", "event": "event", "ts": "timestamp", "partner_id": "context.groupId",
         "user_id": "userId", "properties": "properties"},
        list(FIELDS["events"]), corrected_ts=True)

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
        f"SELECT _row, {other_code} AS _pre_code, CASE WHEN _j IS NOT NULL THEN 'type' END AS _pre_field, "
        f"{other_reason} AS _pre_reason FROM {MSG} WHERE _j IS NULL OR _type IS NULL OR _type NOT IN ({supported})",
        {}, [])
    return SegmentCanons(partners, users, events, other)
