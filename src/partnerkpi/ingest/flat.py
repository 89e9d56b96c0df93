"""Flat files (CSV, JSON Lines, Parquet) of partners, users or events as canonical relations."""

from __future__ import annotations

from dataclasses import dataclass, field

from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.errors import InputFileError
from partnerkpi.ingest.mapping import Mapping
from partnerkpi.ingest.rules import FIELDS, REQUIRED, TIME, Canon
from partnerkpi.ingest.sources import Source, sql_str

NO_PRE = ("NULL::VARCHAR AS _pre_code, NULL::VARCHAR AS _pre_field, NULL::VARCHAR AS _pre_reason, "
          "NULL::TIMESTAMP AS _recv")


@dataclass
class Layout:
    """Where each of our fields comes from in a file, and what else the file holds."""

    fields: dict[str, str] = field(default_factory=dict)  # our field -> source column
    traits: dict[str, str] = field(default_factory=dict)  # partner trait column -> source column
    folds: dict[str, str] = field(default_factory=dict)  # property name -> source column
    ignored: list[str] = field(default_factory=list)


def layout(source: Source, kind: str, mapping: Mapping, partner_columns: list[str]) -> Layout:
    """Resolve a file's columns (after the mapping's renames, case-insensitively) to fields and traits."""
    ours = set(FIELDS[kind]) | ({"properties"} if kind == "events" else set())
    existing = {c.lower(): c for c in partner_columns}
    out = Layout()
    claimed: dict[str, str] = {}
    for col in source.columns:
        if kind == "events" and col in mapping.properties:
            out.folds[mapping.properties[col]] = col
            continue
        name = mapping.columns.get(col, col)
        target = name.lower() if name.lower() in ours else name
        if kind == "partners" and target not in ours:
            target = existing.get(target.lower(), target)
        if target.lower() in claimed:
            raise InputFileError(f"the columns '{claimed[target.lower()]}' and '{col}' both give '{target}'",
                                 file=source.path, field=col, hint="drop one of them or rename it in a mapping file")
        claimed[target.lower()] = col
        if target in ours:
            out.fields[target] = col
        elif kind == "partners":
            out.traits[target] = col
        else:
            out.ignored.append(col)
    empty_jsonl = source.fmt == "jsonl" and not source.columns
    for need in REQUIRED[kind]:
        if need not in out.fields and not empty_jsonl:
            raise InputFileError(
                f"the file has no '{need}' column (it has: {', '.join(source.columns) or 'none'})",
                file=source.path, field=need,
                hint=f"add the column, or map yours in a mapping file: columns: {{your_column: {need}}}")
    for f, col in out.fields.items():
        source.check_type(col, "properties" if f == "properties" else ("time" if FIELDS[kind].get(f) == TIME
                                                                         else "text"))
    for col in out.traits.values():
        source.check_type(col, "text")
    return out


def _props(source: Source, lay: Layout, plan: TrackingPlan) -> tuple[str, str]:
    col = lay.fields.get("properties")
    text, state = source.properties(col) if col else ("NULL::VARCHAR", "NULL::VARCHAR")
    if not lay.folds:
        return text, state
    pieces = []
    for prop, src in lay.folds.items():
        value = source.json_value(src, plan.typed_properties.get(prop))
        pieces.append(f"CASE WHEN ({value}) IS NOT NULL THEN {sql_str(_json_key(prop))} || ':' || ({value}) END")
    patch = "'{' || concat_ws(',', " + ", ".join(pieces) + ") || '}'"
    merged = f"CAST(json_merge_patch(COALESCE({text}, '{{}}'), {patch}) AS VARCHAR)"
    return f"CASE WHEN ({state}) IS NULL OR ({state}) = 'ok' THEN {merged} ELSE {text} END", state


def _json_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def event_name(expr: str, mapping: Mapping) -> str:
    """SQL renaming a source's event names to the plan's."""
    if not mapping.events:
        return expr
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.events.items())
    return f"CASE {expr} {whens} ELSE {expr} END"


def flat_canon(source: Source, kind: str, mapping: Mapping, plan: TrackingPlan,
               partner_columns: list[str]) -> tuple[Canon, Layout]:
    """The canonical relation of a flat file of partners, users or events."""
    lay = layout(source, kind, mapping, partner_columns)
    cols = [f"_row, {line_checks(source)}"]
    for f, typ in FIELDS[kind].items():
        src = lay.fields.get(f)
        if typ == TIME:
            ts, text = source.time(src) if src else ("NULL::TIMESTAMP", "NULL::VARCHAR")
            cols.append(f"{ts} AS {f}, {text} AS {f}__text")
        elif src is None:
            cols.append(f"NULL::VARCHAR AS {f}")
        elif kind == "events" and f == "event":
            cols.append(f"{event_name(source.text(src), mapping)} AS event")
        else:
            cols.append(f"{source.text(src)} AS {f}")
    traits: dict[str, str] = {}
    for i, (trait, src) in enumerate(lay.traits.items()):
        traits[trait] = f"_t{i}"
        cols.append(f"{source.text(src)} AS _t{i}")
    if kind == "events":
        text, state = _props(source, lay, plan)
        cols.append(f"{text} AS _props, {state} AS _props_state")
    names = {f: c for f, c in lay.fields.items()}
    sql = f"SELECT {', '.join(cols)} FROM {source.relation}"
    present = [f for f in FIELDS[kind] if f in lay.fields]
    return Canon(kind, sql, names, present, traits), lay


def line_checks(source: Source) -> str:
    """The early rejections of a flat file: a JSON Lines line that holds no object, or the last line of a
    file cut mid-object (nothing for CSV and Parquet)."""
    if source.fmt != "jsonl":
        return NO_PRE
    cut = f"_row = {int(source.cut_row)}" if source.cut_row is not None else "false"
    bad = ("'the line is not a JSON object; write one object per line, e.g. {\"event_id\": \"e1\", ...}, "
           "or remove the line'")
    truncated = ("'the file ends inside this line, before its JSON object closes: the file was cut off "
                 "(during copy or export); copy or export it again'")
    return (f"CASE WHEN _j IS NULL THEN CASE WHEN {cut} THEN 'truncated_line' ELSE 'invalid_json_line' END END "
            f"AS _pre_code, NULL::VARCHAR AS _pre_field, CASE WHEN _j IS NULL THEN CASE WHEN {cut} THEN {truncated} "
            f"ELSE {bad} END END AS _pre_reason, NULL::TIMESTAMP AS _recv")
