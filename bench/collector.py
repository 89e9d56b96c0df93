"""Drive `partnerkpi serve`'s collector over loopback HTTP: acknowledged and stored events/s, and latency.

    python bench/collector.py                       # 15 s at full rate, 15 s at half that rate, 15 s at 5,000/s
    python bench/collector.py --seconds 5 --procs 2 --threads 4

The server runs as a subprocess on a fresh DuckDB file. Client processes (each with a few threads and one
keep-alive connection per thread) post batches of `--batch` events with unique messageIds. Full rate: every
thread sends as fast as it is answered. Stored events/s: acknowledged events over the time until the
collector's /v1/backlog says none is pending (the store's event count, read through /api/v1/data, is kept
beside it). Half rate: each thread paces its sends so that all together offer half the acknowledged full
rate; p50/p99 are of those requests. Half the target: the same pacing at half the issue's 10,000 events/s target
(`--target-half`, 5,000 events/s), the rate the latency target is judged at. Results are appended to
bench/results/collector.jsonl. The client shares the machine with the server: on 2 cores it takes a part.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUP = [{"type": "group", "groupId": f"p{p}", "userId": f"u{p}", "traits": {"name": f"Partner {p}"}}
         for p in range(10)] + [{"type": "identify", "userId": f"u{u}", "traits": {"partner_id": f"p{u % 10}"}}
                                for u in range(100)]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(db: Path) -> tuple[str, str]:
    """A fresh store with a write key and an admin's API token."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    with Hub.open(db) as hub:
        creds = Credentials(hub.store, clock=hub.clock)
        creds.add_user("bench@example.com", "bench-password-1", "admin")
        return creds.create_write_key("bench"), creds.create_token("bench@example.com")


def start_server(db: Path, port: int, alerts: Path | None) -> subprocess.Popen[bytes]:
    """`partnerkpi serve` on `port` (with the alert rules of `alerts`, else the built-in ones), once it answers."""
    env = {k: v for k, v in os.environ.items() if k != "PARTNERKPI_DB"}
    if alerts is not None:
        env["PARTNERKPI_ALERTS"] = str(alerts)
    proc = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "serve", "--db", str(db), "--port", str(port)],
                            stdout=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/signin")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def body(prefix: str, n: int, batch: int) -> bytes:
    """One batch of `batch` track events with unique messageIds."""
    return json.dumps({"batch": [
        {"type": "track", "userId": f"u{i % 100}", "event": "Logged In", "messageId": f"{prefix}-{n}-{i}",
         "properties": {"method": "sso"}} for i in range(batch)]}).encode()


def client(args: tuple) -> list[tuple[float, float, int]]:
    """One thread's (start, latency, status) per request: as fast as answered, or every `interval` seconds."""
    port, key, prefix, seconds, batch, interval = args
    headers = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
               "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out, n = [], 0
    start = time.monotonic()
    end = start + seconds
    while (now := time.monotonic()) < end:
        if interval:
            due = start + n * interval
            if due > now:
                time.sleep(due - now)
        payload = body(prefix, n, batch)
        t0 = time.monotonic()
        conn.request("POST", "/v1/batch", payload, headers)
        response = conn.getresponse()
        response.read()
        out.append((t0, time.monotonic() - t0, response.status))
        n += 1
    conn.close()
    return out


def process(args: tuple) -> list[tuple[float, float, int]]:
    """A client process running `threads` client threads."""
    from concurrent.futures import ThreadPoolExecutor

    port, key, prefix, seconds, batch, interval, threads = args
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(client, [(port, key, f"{prefix}-{t}", seconds, batch, interval) for t in range(threads)])
        return [r for part in parts for r in part]


def drive(port: int, key: str, label: str, seconds: float, batch: int, procs: int, threads: int,
          interval: float) -> list[tuple[float, float, int]]:
    """All clients' requests."""
    jobs = [(port, key, f"{label}-{p}", seconds, batch, interval, threads) for p in range(procs)]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        return [r for part in pool.map(process, jobs) for r in part]


def stored(port: int, token: str) -> int:
    """Events in the store, read through the API."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/api/v1/data", headers={"Authorization": f"Bearer {token}"})
    return json.loads(conn.getresponse().read())["counts"]["events"]


def pending(port: int, key: str) -> int:
    """Events the collector acknowledged and has not loaded yet (its cheap /v1/backlog)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    conn.request("GET", "/v1/backlog", headers={"Authorization": auth})
    return json.loads(conn.getresponse().read())["pending"]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def summary(results: list[tuple[float, float, int]], batch: int, seconds: float) -> dict:
    """Acknowledged events/s, statuses and latency of one phase."""
    ok = [lat for _, lat, status in results if status == 200]
    statuses: dict[str, int] = {}
    for _, _, status in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {"requests": len(results), "statuses": statuses, "acked_events": len(ok) * batch,
            "acked_per_s": round(len(ok) * batch / seconds), "p50_ms": round(percentile(ok, 0.5) * 1000, 1),
            "p99_ms": round(percentile(ok, 0.99) * 1000, 1)}


def main() -> None:
    """Run both phases and print and keep their figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="client threads per process")
    parser.add_argument("--alerts", type=Path, default=None,
                        help="alert rules file for the server (default: the built-in rules, which run after new "
                        "data under the write lock the loader also takes)")
    parser.add_argument("--target-half", type=float, default=5000.0,
                        help="events/s offered in the third phase: half the 10,000 events/s target (0: skip)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "collector.jsonl")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="partnerkpi-bench-") as tmp:
        db = Path(tmp) / "hub.duckdb"
        key, token = prepare(db)
        port = free_port()
        proc = start_server(db, port, args.alerts)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
            conn.request("POST", "/v1/batch", json.dumps({"batch": SETUP}).encode(), auth)
            assert conn.getresponse().status == 200
            t0 = time.monotonic()
            full = summary(drive(port, key, "full", args.seconds, args.batch, args.procs, args.threads, 0.0),
                           args.batch, args.seconds)
            while pending(port, key) > 0:
                time.sleep(0.02)
            full["stored_per_s"] = round(full["acked_events"] / (time.monotonic() - t0))
            full["stored_events"] = stored(port, token)  # checked: every acknowledged event is there
            offered = full["acked_per_s"] / 2
            interval = args.batch * args.procs * args.threads / offered if offered else 1.0
            half = summary(drive(port, key, "half", args.seconds, args.batch, args.procs, args.threads, interval),
                           args.batch, args.seconds)
            half["offered_per_s"] = round(offered)
            target_half = None
            if args.target_half:
                interval = args.batch * args.procs * args.threads / args.target_half
                target_half = summary(drive(port, key, "target-half", args.seconds, args.batch, args.procs,
                                            args.threads, interval), args.batch, args.seconds)
                target_half["offered_per_s"] = round(args.target_half)
        finally:
            proc.terminate()
            proc.wait(120)
    record = {"bench": "collector", "at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "batch": args.batch, "clients": args.procs * args.threads, "seconds": args.seconds,
              "alerts": str(args.alerts) if args.alerts else "built-in", "load_average": os.getloadavg()[0],
              "full": full, "half": half, "target_half": target_half,
              "targets": {"acked_per_s": 10_000, "stored_per_s": 10_000, "half_rate_p99_ms": 100}}
    print(json.dumps(record, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
