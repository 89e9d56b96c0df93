"""Write a demo partner program as partners.parquet, users.parquet and events.parquet."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from partnerkpi.demo import governance, operations, story
from partnerkpi.demo.activity import DOCUMENTS, Volume, month_sessions, plan_sessions
from partnerkpi.demo.events import EVENTS_SCHEMA, PAGE_PROPS, Batch, Chunk, Ops, Props
from partnerkpi.demo.world import Calendar, build_world

PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["event", "partner_id", "user_id", "object_id", "properties"],
}


@dataclass(frozen=True)
class DemoFiles:
    """The files a demo run wrote, how many rows each holds, and the story's dates."""

    partners: Path
    users: Path
    events: Path
    partner_count: int
    user_count: int
    event_count: int
    start: date
    end: date
    revamp: date


def generate(
    out_dir: Path | str,
    *,
    partners: int = 300,
    months: int = 24,
    seed: int = 7,
    end: date | None = None,
    events_target: int | None = None,
    progress: bool = False,
) -> DemoFiles:
    """Generate a partner program of `months` months before `end`; the same arguments give the same bytes.

    `events_target` scales the volume of hub sessions so that the events file holds about that many
    events (the program's own events, such as tasks and grants, do not scale).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    end = end or story.DEFAULT_END
    cal = Calendar.build(end, months)
    rng = np.random.default_rng(seed)
    with _progress(progress) as advance:
        world = build_world(rng, cal, partners)
        props = Props()
        for text in ("{}", *PAGE_PROPS):
            props.const(text)
        ops = Ops(world, props)
        shown = governance.announcements(rng, world, ops)
        governance.policies(rng, world, ops)
        grants = governance.access(rng, world, ops)
        governance.incidents(rng, world, ops)
        governance.audits(rng, world, ops, grants)
        operations.tasks(rng, world, ops)
        operations.approvals(rng, world, ops)
        tickets = operations.support(rng, world, ops)
        touches = operations.coordination(rng, world, ops)
        operations.costs(rng, world, ops, tickets, touches)
        operations.deals(rng, world, ops)
        operations.surveys(rng, world, ops)
        program = ops.finish()
        plan = plan_sessions(rng, world)
        volume = Volume() if events_target is None else plan.volume_for(events_target - len(program))
        advance(0, cal.months)

        pq.write_table(world.partner_table, out / "partners.parquet")
        pq.write_table(world.user_table, out / "users.parquet")
        chunk = Chunk(world, props, {**ops.object_counts, "doc": DOCUMENTS})
        cut = np.searchsorted(program.ts, cal.bounds[1:-1])
        bounds = np.concatenate([[0], cut, [len(program)]])
        written = 0
        # One month at a time; writing a month (which releases the GIL) overlaps generating the next.
        writer = pq.ParquetWriter(out / "events.parquet", EVENTS_SCHEMA, **PARQUET_OPTIONS)
        with writer, ThreadPoolExecutor(max_workers=1) as background:
            pending: Future | None = None
            for m in range(cal.months):
                month_rng = np.random.default_rng([seed, 1, m])
                sessions = month_sessions(month_rng, world, plan, m, volume, props, shown)
                table = chunk.table(Batch.concat([program.take(slice(bounds[m], bounds[m + 1])), sessions]))
                written += table.num_rows
                if pending is not None:
                    pending.result()
                    advance(m, cal.months)
                pending = background.submit(writer.write_table, table)
            if pending is not None:
                pending.result()
            advance(cal.months, cal.months)
    return DemoFiles(
        partners=out / "partners.parquet",
        users=out / "users.parquet",
        events=out / "events.parquet",
        partner_count=world.partner_table.num_rows,
        user_count=world.user_table.num_rows,
        event_count=written,
        start=_day(cal.start),
        end=end,
        revamp=story.revamp_date(end, months),
    )


def _day(us: np.int64) -> date:
    return date.fromisoformat(str(np.datetime64(int(us), "us").astype("datetime64[D]")))


@contextlib.contextmanager
def _progress(show: bool) -> Iterator:
    """Yield advance(done, total): a Rich progress bar over the months when `show`, else a no-op."""
    if not show:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]demo data"), BarColumn(), MofNCompleteColumn(), TextColumn("months"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("demo", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
