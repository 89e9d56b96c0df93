"""`import_files`: each file lands whole in one transaction, or not at all, and only once."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from partnerkpi.clock import Clock, utc_now
from partnerkpi.errors import InputFileError, UsageError
from partnerkpi.ingest.bounds import Window
from partnerkpi.ingest.flat import flat_canon
from partnerkpi.ingest.mapping import Mapping, load_mapping
from partnerkpi.ingest.report import Phases, progress_bar
from partnerkpi.ingest.rules import (
    Canon,
    Outcome,
    apply_entities,
    apply_events,
    begin_rejections,
    checked_sql,
    reject_rows,
    store_rejections,
)
from partnerkpi.ingest.segment import group_traits, segment_canons, stage_messages
from partnerkpi.ingest.sources import KIND_HINT, KINDS, Source, detect_format, infer_kind, open_source
from partnerkpi.settings import TimeBounds
from partnerkpi.store import Store


@dataclass
class ImportSummary:
    """What one file's import did. rows_read = accepted + duplicates + rejected."""

    source: str
    kind: str
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_same_file: bool = False
    import_id: int | None = None
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def fingerprint(path: str, kind: str, mapping: Mapping) -> str:
    """sha256 of the kind, the mapping and the file's bytes: the same import twice has the same one."""
    h = hashlib.sha256(f"{kind}\n{mapping.canonical_text()}\n".encode())
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise InputFileError(f"cannot read the file: {exc.strerror or exc}", file=path,
                             hint="check the path and that the file is readable") from exc
    return h.hexdigest()


def import_files(
    store: Store,
    paths: Sequence[Path | str],
    *,
    kind: str | None = None,
    mapping: Path | None = None,
    progress: bool = False,
    clock: Clock | None = None,
    bounds: TimeBounds | None = None,
    in_transaction: Callable[[int], None] | None = None,
) -> list[ImportSummary]:
    """Import files in order, each in its own transaction; a bad file raises InputFileError (files before it stay).
    Instants outside `bounds` (the floor, and the import's clock plus the allowed skew) are rejected.
    `in_transaction(import_id)` runs inside each file's transaction, before it commits."""
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown kind '{kind}'", hint=KIND_HINT)
    maps = load_mapping(mapping)
    store.use_utc()  # the zone may have been changed on the connection since it was opened
    summaries = []
    with progress_bar(progress) as bar:
        for path in paths:
            summaries.append(_import_one(store, os.fspath(path), kind, maps, Phases(bar, Path(path).name),
                                         clock or utc_now, bounds or TimeBounds(), in_transaction))
    return summaries


def _import_one(store: Store, path: str, kind: str | None, maps: Mapping, phases: Phases,
                clock: Clock, bounds: TimeBounds, in_transaction: Callable[[int], None] | None = None,
                ) -> ImportSummary:
    started, t0 = clock(), time.perf_counter()
    if not os.path.isfile(path):
        raise InputFileError("the file does not exist", file=path, hint="check the path")
    kind = kind or infer_kind(path)
    fmt = detect_format(path)
    if kind == "segment" and fmt != "jsonl":
        raise InputFileError("Segment messages are read from JSON Lines files", file=path,
                             hint="export the messages one JSON object per line, in a .jsonl file")
    phases.phase("fingerprint")
    fp = fingerprint(path, kind, maps)
    con = store.con
    prev = store.imports.previous(fp)
    if prev is not None:
        phases.finish("already imported")
        return ImportSummary(path, kind, skipped_same_file=True, import_id=prev, seconds=time.perf_counter() - t0)
    phases.phase("read")
    try:
        source = open_source(con, path, fmt, stage=not (kind == "events" and fmt == "parquet"),
                             segment=kind == "segment")
    except BaseException:
        con.execute("DROP TABLE IF EXISTS _ingest_src")
        raise
    try:
        flows, new_traits, ignored = _flows(store, source, kind, maps)
        for trait in new_traits:  # DDL stays outside the data transaction
            store.add_trait(trait)
        phases.phase("check and write")
        import_id, outcome = _write(store, source, kind, flows, fp, Window(started, bounds), clock, ignored,
                                    in_transaction)
    finally:
        _cleanup(con, source)
    rejected = sum(outcome.rejected.values())
    phases.finish(f"{outcome.accepted} accepted, {rejected} rejected")
    return ImportSummary(
        path, kind, rows_read=outcome.rows, accepted=outcome.accepted, duplicates=outcome.duplicates,
        rejected=rejected, rejected_by_reason=dict(sorted(outcome.rejected.items())), import_id=import_id,
        ignored_columns=ignored, seconds=time.perf_counter() - t0,
    )


def _flows(store: Store, source: Source, kind: str, maps: Mapping) -> tuple[list[Canon], list[str], list[str]]:
    """The canonical relations of a file in the order they are applied, new partner traits, ignored columns."""
    partner_columns = store.columns("partners")
    if kind == "segment":
        stage_messages(store.con)
        traits = group_traits(store.con, maps, partner_columns)
        c = segment_canons(maps, traits)
        return [c.partners, c.users, c.events, c.other], list(traits), []
    canon, lay = flat_canon(source, kind, maps, store.plan, partner_columns)
    return [canon], list(lay.traits), lay.ignored


def _write(store: Store, source: Source, kind: str, flows: list[Canon], fp: str, window: Window,
           clock: Clock, ignored: list[str], in_transaction: Callable[[int], None] | None = None,
           ) -> tuple[int, Outcome]:
    """Apply the flows, keep the rejected rows and log the import, all in one transaction."""
    con = store.con
    con.begin()
    try:
        import_id = store.imports.next_id()
        begin_rejections(con)
        outcome = Outcome()
        for canon in flows:
            if canon.kind == "events":
                outcome.add(apply_events(con, canon, store.plan, window, import_id=import_id))
            elif canon.kind in ("partners", "users"):
                outcome.add(apply_entities(con, canon, window))
            else:
                rows = con.execute(f"SELECT count(*) FROM ({canon.sql})").fetchall()[0][0]
                outcome.add(Outcome(rows=rows, rejected=reject_rows(con, checked_sql(canon, []), [])))
        finished = clock()
        store_rejections(con, source, import_id=import_id, kind=kind, rejected_at=finished)
        store.imports.record(
            import_id, source=source.path, kind=kind, fingerprint=fp, started_at=window.now, finished_at=finished,
            rows_read=outcome.rows, accepted=outcome.accepted, duplicates=outcome.duplicates,
            rejected=sum(outcome.rejected.values()), ignored_columns=", ".join(ignored) or None,
        )
        if in_transaction is not None:
            in_transaction(import_id)
        con.commit()
    except BaseException as exc:
        con.rollback()
        # a Parquet file read in place shows damage as a bare duckdb.Error ("don't know what type")
        if isinstance(exc, duckdb.IOException | duckdb.InvalidInputException) or type(exc) is duckdb.Error:
            raise InputFileError(f"cannot read the file: {str(exc).splitlines()[0]}", file=source.path,
                                 hint="the file may be truncated or corrupt; export it again") from exc
        raise
    return import_id, outcome


def _cleanup(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    source.drop(con)
    for table in ("_ingest_rej", "_ingest_rej_part", "_ingest_up", "_ingest_dup", "_ingest_msg", "_ingest_cand",
                  "_ingest_conflict"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
