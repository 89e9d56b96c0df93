"""Load proofs on loopback: the collector at a fixed rate, then at 5x that rate, then dashboard users browsing
while imports run. Starts its own `partnerkpi serve` on 127.0.0.1 over a fresh demo database, bounded in time,
and appends one JSON line of figures per scenario to reliability/results/load.jsonl.

    python reliability/load.py --seconds 60 --rate 20 --users 50
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results" / "load.jsonl"
ANALYST = ("load-analyst@example.com", "load-analyst-pass")
KPIS = ("active_partner_rate", "portal_usage_rate")
RETRYABLE = (429, 503)


@dataclass
class Program:
    """The served database: where it is, the collector's write key, an admin's API token, and partner users
    (user id, partner id) the collected events name."""

    db: Path
    key: str
    admin_token: str
    users: list[tuple[str, str]]


@dataclass
class Server:
    """A running `partnerkpi serve` on loopback."""

    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> int:
        """Stop it gracefully (it loads what is spooled first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=300)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@dataclass
class Answers:
    """What one scenario's requests got: latencies (ms), statuses, and the events the collector acknowledged."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    missing_retry_after: int = 0
    sent_events: int = 0
    acked_events: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # transport errors by kind (status 0)

    def note(self, status: int, ms: float, headers: httpx.Headers | None = None, events: int = 0) -> None:
        """Record one answer."""
        self.latencies.append(ms)
        self.statuses[status] += 1
        self.sent_events += events
        if status == 200:
            self.acked_events += events
        elif status in RETRYABLE and headers is not None and not headers.get("retry-after"):
            self.missing_retry_after += 1

    @property
    def errors(self) -> int:
        """Answers that are neither 200 nor a retryable 429/503 (transport failures count as status 0)."""
        return sum(n for status, n in self.statuses.items() if status not in (200, *RETRYABLE))


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) of `values`, in ms rounded to 0.1; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))], 1)


def prepare(directory: Path, partners: int = 20, months: int = 6) -> Program:
    """A demo program in `directory`, an analyst, an admin token and a write key."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    files = generate(directory / "demo", partners=partners, months=months, seed=11)
    db = directory / "load.duckdb"
    with Hub.open(db) as hub:
        hub.import_files([files.partners, files.users, files.events])
        creds = Credentials(hub.store, clock=hub.clock)
        creds.add_user(*ANALYST, "analyst")
        creds.add_user("load-admin@example.com", "load-admin-pass", "admin")
        token = creds.create_token("load-admin@example.com", name="load")
        key = creds.create_write_key("load")
        users = hub.store.con.execute("SELECT user_id, partner_id FROM users ORDER BY user_id LIMIT 7").fetchall()
    return Program(db, key, token, [(u, p) for u, p in users])


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(db: Path, collector: dict[str, str] | None = None) -> Server:
    """`partnerkpi serve` on a free loopback port with the collector settings given (as environment), once
    /healthz answers."""
    port = free_port()
    env = {**os.environ, **{f"PARTNERKPI_COLLECTOR_{k.upper()}": v for k, v in (collector or {}).items()}}
    env.pop("PARTNERKPI_DB", None)
    proc = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "serve", "--db", str(db), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    server = Server(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped with {proc.returncode}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("the server did not answer within 180 s")


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def stored_events(url: str, token: str) -> int:
    """Events in the store, by the API."""
    response = httpx.get(f"{url}/api/v1/data", headers={"Authorization": f"Bearer {token}"}, timeout=120)
    response.raise_for_status()
    return int(response.json()["counts"]["events"])


def wait_loaded(url: str, key: str, timeout: float = 600) -> float:
    """Wait until the collector has loaded everything it acknowledged; returns the seconds waited."""
    started = time.monotonic()
    while httpx.get(f"{url}/v1/backlog", headers=_basic(key), timeout=60).json()["pending"]:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the collector did not catch up within {timeout} s")
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def _batch(prefix: str, n: int, size: int, users: list[tuple[str, str]]) -> dict[str, Any]:
    return {"batch": [{"type": "track", "userId": users[j % len(users)][0], "event": "Logged In",
                       "context": {"groupId": users[j % len(users)][1]}, "messageId": f"{prefix}-{n}-{j}"}
                      for j in range(size)]}


async def send_at_rate(url: str, key: str, rate: float, seconds: float, size: int, prefix: str,
                       users: list[tuple[str, str]]) -> Answers:
    """Post `rate` batches of `size` events a second for `seconds`, on a fixed schedule (open loop: a slow
    answer does not slow the sender)."""
    answers = Answers()
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them under a request in flight.
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, headers=_basic(key), timeout=60, limits=limits) as client:

        async def one(n: int) -> None:
            started = time.perf_counter()
            try:
                response = await client.post("/v1/batch", json=_batch(prefix, n, size, users))
            except httpx.TransportError as exc:
                answers.failures[type(exc).__name__] += 1
                answers.note(0, (time.perf_counter() - started) * 1000, None, size)
                return
            answers.note(response.status_code, (time.perf_counter() - started) * 1000, response.headers, size)

        t0, tasks = time.perf_counter(), []
        for n in range(int(rate * seconds)):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return answers


def _figures(scenario: str, answers: Answers, elapsed: float, **more: Any) -> dict[str, Any]:
    requests = sum(answers.statuses.values())
    return {"scenario": scenario, "ts": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "requests": requests, "requests_per_s": round(requests / elapsed, 1) if elapsed else None,
            "p50_ms": percentile(answers.latencies, 50), "p90_ms": percentile(answers.latencies, 90),
            "p95_ms": percentile(answers.latencies, 95), "p99_ms": percentile(answers.latencies, 99),
            "statuses": {str(k): v for k, v in sorted(answers.statuses.items())}, "errors": answers.errors,
            "transport_errors": dict(answers.failures), **more}


def collector_scenarios(program: Program, seconds: float, rate: float, size: int, factor: float,
                        max_backlog: int) -> list[dict[str, Any]]:
    """The collector at `rate` batches/s for `seconds` (stored == sent), then at `factor` x that rate (only
    429/503 with Retry-After, never another error) and the time until a normal batch is accepted again."""
    server = start(program.db, {"max_backlog": str(max_backlog)})
    try:
        before = stored_events(server.url, program.admin_token)
        started = time.perf_counter()
        steady = asyncio.run(send_at_rate(server.url, program.key, rate, seconds, size, "steady",
                                       program.users))
        elapsed = time.perf_counter() - started
        catch_up = wait_loaded(server.url, program.key)
        stored = stored_events(server.url, program.admin_token) - before
        first = _figures("collector_steady", steady, elapsed, seconds=seconds, rate_batches_per_s=rate,
                         batch_events=size, events_per_s=round(steady.acked_events / elapsed, 1),
                         sent_events=steady.sent_events, acked_events=steady.acked_events, stored_events=stored,
                         stored_equals_sent=stored == steady.sent_events,
                         stored_equals_acked=stored == steady.acked_events, catch_up_s=catch_up)

        before = stored_events(server.url, program.admin_token)
        burst_seconds = max(2.0, seconds / 4)
        started = time.perf_counter()
        burst = asyncio.run(send_at_rate(server.url, program.key, rate * factor, burst_seconds, size, "burst",
                                    program.users))
        elapsed = time.perf_counter() - started
        ended = time.monotonic()
        recovery, probes = None, Counter()
        while time.monotonic() - ended < 300:
            batch = _batch("recovery", sum(probes.values()), size, program.users)
            response = httpx.post(f"{server.url}/v1/batch", json=batch, headers=_basic(program.key), timeout=60)
            probes[response.status_code] += 1
            if response.status_code in RETRYABLE and not response.headers.get("retry-after"):
                burst.missing_retry_after += 1
            if response.status_code == 200:
                recovery = round(time.monotonic() - ended, 2)
                break
            time.sleep(0.1)
        recovered_events = size if recovery is not None else 0
        drain = wait_loaded(server.url, program.key)
        stored = stored_events(server.url, program.admin_token) - before
        second = _figures("collector_overload", burst, elapsed, seconds=burst_seconds,
                          rate_batches_per_s=rate * factor, factor=factor, batch_events=size,
                          max_backlog=max_backlog, acked_events=burst.acked_events + recovered_events,
                          stored_events=stored, stored_equals_acked=stored == burst.acked_events + recovered_events,
                          retryable=sum(burst.statuses[s] for s in RETRYABLE),
                          recovery_probes={str(k): v for k, v in sorted(probes.items())},
                          probe_errors=sum(n for s, n in probes.items() if s not in (200, *RETRYABLE)),
                          missing_retry_after=burst.missing_retry_after, recovery_s=recovery, drain_s=drain)
    finally:
        server.stop()
    return [first, second]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', html)
    if not match:
        raise RuntimeError("the sign-in page has no CSRF token")
    return match.group(1)


async def sign_in(client: httpx.AsyncClient) -> bool:
    """Sign in as the analyst through the real form."""
    form = await client.get("/signin")
    signed = await client.post("/signin", data={"email": ANALYST[0], "password": ANALYST[1], "next": "/",
                                                "csrf_token": _csrf(form.text)})
    return signed.status_code == 303


async def browse(client: httpx.AsyncClient, user: int, until: float, pages: list[str], answers: Answers) -> None:
    """One signed-in user fetching the pages in turn until `until`."""
    n = user
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await client.get(pages[n % len(pages)], headers={"Accept": "text/html"})
            answers.note(response.status_code, (time.perf_counter() - started) * 1000)
        except httpx.TransportError as exc:
            answers.failures[type(exc).__name__] += 1
            answers.note(0, (time.perf_counter() - started) * 1000)
        n += 1


def _import_file(path: Path, partner_ids: list[str], rows: int, round_: int) -> Path:
    lines = (json.dumps({"event_id": f"load-import-{round_}-{i}", "ts": "2026-05-15T10:00:00Z",
                         "event": "Logged In", "partner_id": partner_ids[i % len(partner_ids)]})
             for i in range(rows))
    path.write_text("\n".join(lines) + "\n")
    return path


def dashboard_scenario(program: Program, users: int, seconds: float, import_rows: int) -> dict[str, Any]:
    """`users` signed-in analysts browsing scorecard, partners, a partner's page and KPI pages for `seconds`
    while `partnerkpi import --server` imports files one after another."""
    server = start(program.db)
    try:
        token = {"Authorization": f"Bearer {program.admin_token}"}
        partner_ids = [p["partner_id"] for p in httpx.get(f"{server.url}/api/v1/partners", headers=token,
                                                           timeout=120).json()["partners"]][:5]
        pages = ["/", "/partners", *[f"/partners/{p}" for p in partner_ids[:3]], *[f"/kpis/{k}" for k in KPIS]]
        answers, imports = Answers(), Counter[bool]()
        clients = [httpx.AsyncClient(base_url=server.url, timeout=120, limits=httpx.Limits(keepalive_expiry=2.0))
                   for _ in range(users)]
        signed = 0
        until = 0.0

        async def run() -> None:
            nonlocal signed, until
            signed = sum(await asyncio.gather(*(sign_in(c) for c in clients)))
            until = time.monotonic() + seconds  # the clock starts once everyone is signed in
            await asyncio.gather(*(browse(c, u, until, pages, answers) for u, c in enumerate(clients)))
            await asyncio.gather(*(c.aclose() for c in clients))

        env = {**os.environ}
        env.pop("PARTNERKPI_DB", None)
        importer: subprocess.Popen[bytes] | None = None
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="partnerkpi-load-") as scratch:
            browsing = asyncio.new_event_loop()
            task = browsing.create_task(run())
            while not task.done():
                if importer is not None and importer.poll() is not None:
                    imports[importer.returncode == 0] += 1
                    importer = None
                if importer is None and (until == 0.0 or time.monotonic() < until):
                    n = sum(imports.values())
                    path = _import_file(Path(scratch) / f"events-{n}.jsonl", partner_ids, import_rows, n)
                    importer = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "import", "--server",
                                                 server.url, "--token", program.admin_token, str(path)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                browsing.run_until_complete(asyncio.sleep(0.2))
            browsing.run_until_complete(task)
            browsing.close()
            if importer is not None:
                imports[importer.wait(300) == 0] += 1
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    return _figures("dashboard", answers, min(elapsed, seconds), seconds=seconds, users=users, signed_in=signed,
                    pages=pages, imports_done=imports[True], imports_failed=imports[False],
                    import_rows=import_rows)


def record(figures: dict[str, Any], results: Path = RESULTS) -> None:
    """Append one JSON line of figures."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as fh:
        fh.write(json.dumps(figures) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and append their figures; exit 1 when a promise failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of the steady collector run (default 60)")
    parser.add_argument("--rate", type=float, default=10, help="batch requests a second in the steady run")
    parser.add_argument("--batch", type=int, default=50, help="events in one batch")
    parser.add_argument("--factor", type=float, default=5, help="the overload, as a multiple of --rate")
    parser.add_argument("--max-backlog", type=int, default=20_000, help="the server's collector backlog bound")
    parser.add_argument("--users", type=int, default=50, help="dashboard users browsing at once")
    parser.add_argument("--browse-seconds", type=float, default=None, help="how long they browse (default --seconds)")
    parser.add_argument("--import-rows", type=int, default=20_000, help="events in each file imported meanwhile")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file to append to")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="partnerkpi-load-") as directory:
        program = prepare(Path(directory))
        found = collector_scenarios(program, args.seconds, args.rate, args.batch, args.factor, args.max_backlog)
        found.append(dashboard_scenario(program, args.users, args.browse_seconds or args.seconds, args.import_rows))
    ok = True
    for figures in found:
        record(figures, args.results)
        print(json.dumps(figures))
        ok &= figures["errors"] == 0 and figures.get("missing_retry_after", 0) == 0
    ok &= found[2]["signed_in"] == args.users and found[2]["requests"] > 0 and found[2]["imports_failed"] == 0
    ok &= found[0]["stored_equals_sent"] and found[1]["stored_equals_acked"] and found[1]["recovery_s"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
