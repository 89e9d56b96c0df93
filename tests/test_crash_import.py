"""Importer crash proof (issue 11): `partnerkpi import` killed -9 at a random moment, then run again to the end.

Each run writes partners, users and a few thousand events (with exact repeats, conflicting repeats and
invalid rows) in one format, starts the import as a process, kills it after a seeded random delay that
spans the whole import (before, during and after its commits), and imports the same files again. Then the
database opens, the stored event ids are exactly the distinct valid input ids (none lost, none twice), the
rejected rows are those of one import, and the scorecard equals the one of a clean single import: the
rollups are fresh. A failure names its seed; `replay_seed` runs one seed again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partnerkpi.clock import FixedClock
from partnerkpi.hub import Hub
from tests.kpi_fixtures import AUGUST, JULY, RECEIVED
from tests.scale import scaled

pytestmark = [pytest.mark.reliability, pytest.mark.slow]  # two imports and a scorecard per run

RUNS = scaled(quick=3, full=50)
EVENTS = 3000
FORMATS = ("csv", "jsonl", "parquet")
NAMES = ("Logged In", "Page Viewed", "Document Viewed", "Task Assigned", "Task Completed", "Support Requested",
         "Survey Responded", "Approval Requested")
EVENT_FIELDS = ("event_id", "ts", "event", "partner_id", "user_id", "object_id", "properties")


@dataclass
class Inputs:
    """The files of one program in one format, and the ids an import must end up storing."""

    files: list[Path]
    valid_ids: set[str]
    rows: int


def program(seed: int) -> tuple[list[dict], list[dict], list[dict], set[str]]:
    """Partners, users, event rows (valid, exact repeats, conflicting repeats, invalid) and the valid ids."""
    rng = random.Random(seed)
    partners = [{"partner_id": f"P{p}", "name": f"Partner {p}", "type": ("reseller", "agency")[p % 2],
                 "tier": ("gold", "silver", "bronze")[p % 3], "region": "emea",
                 "onboarded_at": "2026-01-01T00:00:00Z"} for p in range(6)]
    users = [{"user_id": f"u{u}", "partner_id": f"P{u % 6}", "email": f"u{u}@example.com", "role": "member",
              "created_at": "2026-02-01T00:00:00Z"} for u in range(30)]
    start = datetime(2026, 6, 1)
    events: list[dict] = []
    valid: set[str] = set()
    for i in range(EVENTS):
        user = rng.randrange(30)
        row = {"event_id": f"e-{i}", "ts": (start + timedelta(seconds=rng.randrange(90 * 86400))).isoformat() + "Z",
               "event": rng.choice(NAMES), "partner_id": f"P{user % 6}", "user_id": f"u{user}",
               "object_id": f"o-{rng.randrange(200)}", "properties": json.dumps({"score": rng.randrange(11)})}
        kind = rng.random()
        if kind < 0.05:
            row["user_id"] = "ghost"  # unknown user: rejected
        elif kind < 0.08:
            row["ts"] = "not a time"  # rejected
        else:
            valid.add(row["event_id"])
        events.append(row)
        if rng.random() < 0.06:  # a repeat of an earlier row: identical, or with other content
            repeat = dict(rng.choice(events))
            if rng.random() < 0.3:
                repeat["object_id"] = "changed"
            events.append(repeat)
    return partners, users, events, valid


def write_inputs(directory: Path, fmt: str, seed: int) -> Inputs:
    """The program of `seed` as partners, users and events files in `fmt`."""
    directory.mkdir(parents=True, exist_ok=True)
    partners, users, events, valid = program(seed)
    files = []
    for kind, rows in (("partners", partners), ("users", users), ("events", events)):
        path = directory / f"{kind}.{fmt}"
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        elif fmt == "csv":
            table = pa.Table.from_pylist(rows)
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        else:
            pq.write_table(pa.Table.from_pylist(rows), path)
        files.append(path)
    return Inputs(files, valid, len(events))


def import_command(db: Path, files: list[Path]) -> list[str]:
    return [sys.executable, "-m", "partnerkpi.cli", "import", "--db", str(db), *map(str, files)]


def run_import(db: Path, files: list[Path]) -> float:
    """Import to the end (as a process); returns how long it took."""
    env = {k: v for k, v in os.environ.items() if k not in ("PARTNERKPI_DB", "PARTNERKPI_TOKEN")}
    t0 = time.perf_counter()
    done = subprocess.run(import_command(db, files), capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.perf_counter() - t0


def kill_import_at(db: Path, files: list[Path], delay: float) -> int | None:
    """Start the import and kill -9 it after `delay` seconds; the exit code when it finished first."""
    env = {k: v for k, v in os.environ.items() if k not in ("PARTNERKPI_DB", "PARTNERKPI_TOKEN")}
    proc = subprocess.Popen(import_command(db, files), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.wait(delay)
        return proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return None


def observed(db: Path) -> tuple[list[str], int, str]:
    """Stored event ids (with repeats), rejected event rows, and the July scorecard as JSON, after an open."""
    with Hub.open(db, clock=FixedClock(RECEIVED)) as hub:
        con = hub.store.con
        ids = [r[0] for r in con.execute("SELECT event_id FROM events").fetchall()]
        rejected = con.execute("SELECT count(*) FROM rejected_rows WHERE kind = 'events'").fetchall()[0][0]
        rows = hub.scorecard(grain="month", start=JULY, end=AUGUST)
    return ids, rejected, json.dumps([rounded(r.to_json()) for r in rows], sort_keys=True)


def rounded(value: object) -> object:
    """`value` with every float to 12 significant digits: a parallel sum adds in no fixed order."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


@pytest.fixture(scope="module", params=FORMATS)
def clean(request, tmp_path_factory) -> tuple[str, Path, Inputs, float, tuple[list[str], int, str]]:
    """One clean import per format: its files, how long it takes, and what it stores."""
    fmt = request.param
    directory = tmp_path_factory.mktemp(f"clean-{fmt}")
    inputs = write_inputs(directory / "in", fmt, seed=11)
    seconds = run_import(directory / "hub.duckdb", inputs.files)
    return fmt, directory, inputs, seconds, observed(directory / "hub.duckdb")


def crash_and_recover(tmp: Path, inputs: Inputs, seconds: float, seed: int) -> tuple[list[str], int, str, str]:
    """One run: kill -9 the import after a random delay within its usual time, import again, observe."""
    delay = random.Random(seed).uniform(0, seconds * 1.1)
    db = tmp / f"run-{seed}.duckdb"
    finished = kill_import_at(db, inputs.files, delay)
    run_import(db, inputs.files)
    moment = f"finished with {finished}" if finished is not None else f"killed after {delay:.2f} s"
    return (*observed(db), moment)


def test_an_import_killed_at_random_moments_loses_nothing_and_stores_nothing_twice(clean, tmp_path):
    fmt, _, inputs, seconds, (clean_ids, clean_rejected, clean_card) = clean
    assert sorted(clean_ids) == sorted(inputs.valid_ids)  # the clean import itself is right
    assert 0 < clean_rejected < inputs.rows - len(inputs.valid_ids)  # invalid rows and conflicts, repeats apart
    killed = 0
    for run in range(RUNS):
        seed = 1000 * FORMATS.index(fmt) + run
        ids, rejected, card, moment = crash_and_recover(tmp_path, inputs, seconds, seed)
        why = f"{fmt} seed {seed} ({moment}; replay: replay_seed('{fmt}', {seed}))"
        assert len(ids) == len(set(ids)), f"duplicated event ids, {why}"
        assert set(ids) == inputs.valid_ids, (f"lost {len(inputs.valid_ids - set(ids))}, "
                                              f"unexpected {len(set(ids) - inputs.valid_ids)}, {why}")
        assert rejected == clean_rejected, f"rejected rows {rejected} != {clean_rejected}, {why}"
        assert card == clean_card, f"the scorecard differs from a clean import's, {why}"
        killed += moment.startswith("killed")
    print(f"\n{fmt}: {RUNS} runs, {killed} killed mid-import, clean import {seconds:.2f} s")


def replay_seed(fmt: str, seed: int, directory: Path) -> tuple[list[str], int, str, str]:
    """Replay one run by hand (python -c "from tests.test_crash_import import replay_seed; ...")."""
    clean_inputs = write_inputs(directory / "in", fmt, seed=11)
    seconds = run_import(directory / "clean.duckdb", clean_inputs.files)
    return crash_and_recover(directory, clean_inputs, seconds, seed)
