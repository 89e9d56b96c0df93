"""Benchmark: dashboard reads while data streams in, against a real `partnerkpi serve`.

    python bench/dashboard.py --events 1000000             # 1M events, with a 1,000 events/s stream
    python bench/dashboard.py --events 10000000 --rate 0   # 10M events, no stream

Builds (or reuses) the bench data under bench/data/<size>/ (`partnerkpi.demo.generate`, as bench/run.py),
starts the server as a subprocess, optionally streams events into /v1/batch (a write key made with
`partnerkpi keys create`), and times repeated GETs of the scorecard, a KPI page, the partner list, a partner
page (as an admin and as that partner's user) and at-risk. As a load balancer would, it sends the views once
/readyz says the server is ready (the default views are warmed after the start: `ready_s`); the first view
counts too. Only the public HTTP API is used. Results are appended to bench/results/dashboard.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from partnerkpi.cli import app; app()"]
PASSWORD = "bench-password-1"
P95_TARGET_MS, RSS_TARGET_MIB = 200.0, 2048.0


def build(root: Path, events: int, partners: int) -> Path:
    """The bench database of `events` events (generated, imported and prepared when missing)."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub
    from partnerkpi.ingest import import_files

    data, db = root / "data", root / "hub.duckdb"
    if db.exists():
        return db
    if not (data / "events.parquet").exists():
        generate(data, partners=partners, months=24, seed=7, events_target=events, progress=True)
    with Hub.open(db) as hub:
        import_files(hub.store, [data / name for name in ("partners.parquet", "users.parquet", "events.parquet")],
                     progress=True)
        hub.prepare(progress=True)
    return db


def cli(db: Path, *args: str) -> str:
    """Run a partnerkpi command on `db` and return what it printed."""
    return subprocess.run([*CLI, *args, "--db", str(db)], check=True, capture_output=True, text=True).stdout


def secret(printed: str) -> str:
    """The longest word a `tokens create` / `keys create` printed (the secret, shown once)."""
    return max(printed.split(), key=len)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """The resident set of a process now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib(pid: int) -> float:
    """The peak resident set (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stream(base: str, key: str, users: list[tuple[str, str]], rate: int, stop: threading.Event,
           sent: list[int]) -> None:
    """Send `rate` Page Viewed events a second (ten batches a second) until `stop`; `sent` counts the events
    acknowledged and the requests that failed."""
    import httpx

    batch, n = max(1, rate // 10), 0
    with httpx.Client(base_url=base, auth=(key, ""), timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            messages = []
            for _ in range(batch):
                user, partner = users[n % len(users)]
                messages.append({"type": "track", "event": "Page Viewed", "userId": user,
                                 "messageId": f"bench-{os.getpid()}-{time.time_ns()}-{n}", "timestamp": now,
                                 "context": {"groupId": partner}, "properties": {"path": "/bench"}})
                n += 1
            try:
                response = client.post("/v1/batch", json={"batch": messages})
            except httpx.TransportError:  # a slow collector: count it and keep streaming
                sent[1] += 1
                continue
            if response.status_code == 200:
                sent[0] += batch
            else:
                sent[1] += 1
            stop.wait(max(0.0, 0.1 - (time.perf_counter() - started)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="bench data size (default 10M)")
    parser.add_argument("--partners", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=1000, help="events/s streamed into /v1/batch (0: none)")
    parser.add_argument("--repeats", type=int, default=20, help="GETs of each view after the first")
    parser.add_argument("--warm-wait", type=float, default=0.0,
                        help="seconds to wait after start before the first view (0: ask at once)")
    args = parser.parse_args()

    import httpx

    root = HERE / "data" / f"{args.events // 1_000_000}M"
    db = build(root, args.events, args.partners)
    partner_id = "P00001"
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        partner_id = con.execute("SELECT min(partner_id) FROM partners WHERE offboarded_at IS NULL").fetchall()[0][0]
        users = con.execute("SELECT user_id, partner_id FROM users WHERE deactivated_at IS NULL "
                            "ORDER BY user_id LIMIT 500").fetchall()
    tag = str(time.time_ns())
    admin, partner_user = f"admin-{tag}@bench.example", f"partner-{tag}@bench.example"
    cli(db, "users", "add", admin, "--role", "admin", "--password", PASSWORD)
    cli(db, "users", "add", partner_user, "--role", "partner", "--partner", partner_id, "--password", PASSWORD)
    token = secret(cli(db, "tokens", "create", admin, "--name", "bench"))
    key = secret(cli(db, "keys", "create", f"bench-{tag}"))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*CLI, "serve", "--db", str(db), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop, sent = threading.Event(), [0, 0]  # events acknowledged, requests failed
    try:
        with httpx.Client(base_url=base, timeout=120) as probe:
            for _ in range(600):
                try:
                    probe.get("/signin")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=120) as probe:  # as a load balancer: traffic once it is ready
            while probe.get("/readyz").status_code != 200 and time.monotonic() - started < 3600:
                time.sleep(0.5)
        ready_s = time.monotonic() - started
        time.sleep(args.warm_wait)
        if args.rate:
            threading.Thread(target=stream, args=(base, key, users, args.rate, stop, sent), daemon=True).start()
        api = httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"})
        pages = {}
        for who in (admin, partner_user):
            client = httpx.Client(base_url=base, timeout=300, headers={"Accept": "text/html"})
            form = client.get("/signin").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            signin = {"email": who, "password": PASSWORD, "csrf_token": csrf.group(1) if csrf else ""}
            client.post("/signin", data=signin, follow_redirects=False)
            pages[who] = client
        views = {
            "scorecard": (api, "/api/v1/scorecard"),
            "kpi_page": (pages[admin], "/kpis/portal_usage_rate"),
            "partners": (api, "/api/v1/partners"),
            "partner_page": (pages[admin], f"/partners/{partner_id}"),
            "partner_page_as_partner": (pages[partner_user], f"/partners/{partner_id}"),
            "at_risk": (api, "/api/v1/at-risk"),
        }
        timings: dict[str, list[float]] = {name: [] for name in views}
        statuses: dict[str, set[int]] = {name: set() for name in views}
        peak = 0.0
        for _ in range(args.repeats + 1):
            for name, (client, path) in views.items():
                started = time.perf_counter()
                try:
                    statuses[name].add(client.get(path).status_code)
                except httpx.TimeoutException:  # counted at the timeout, as status 0
                    statuses[name].add(0)
                timings[name].append((time.perf_counter() - started) * 1000)
                peak = max(peak, rss_mib(server.pid))
        peak = max(peak, peak_rss_mib(server.pid))
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    record = {"at": datetime.now(UTC).isoformat(), "events_target": args.events, "partners": args.partners,
              "stream_rate": args.rate, "streamed": sent[0], "stream_failures": sent[1], "repeats": args.repeats,
              "peak_rss_mib": round(peak), "ready_s": round(ready_s, 1), "views": {},
              "settings": {k: v for k, v in os.environ.items() if k.startswith("PARTNERKPI_")}}  # the server's
    print(f"{args.events:,} events, stream {args.rate}/s ({sent[0]:,} acknowledged, {sent[1]} requests failed); "
          f"ready {ready_s:.0f} s after the start; p95 target {P95_TARGET_MS:.0f} ms")
    for name, ms in timings.items():
        ordered = sorted(ms)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        figures = {"first_ms": round(ms[0], 1), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1),
                   "statuses": sorted(statuses[name])}
        record["views"][name] = figures
        print(f"  {name:<24} first {ms[0]:8.1f} ms  p50 {figures['p50_ms']:8.1f} ms  p95 {p95:8.1f} ms  "
              f"{'ok' if p95 < P95_TARGET_MS else 'MISSED'}  {sorted(statuses[name])}")
    print(f"  peak RSS {peak:.0f} MiB (target {RSS_TARGET_MIB:.0f}): {'ok' if peak <= RSS_TARGET_MIB else 'MISSED'}")
    (HERE / "results").mkdir(exist_ok=True)
    with (HERE / "results" / "dashboard.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
