"""Backend fixtures: a throwaway PostgreSQL server and a local-mode Spark session, one per test session.

Tests that use `postgres_url` or `spark` (directly or through another fixture) are marked
`postgres`/`spark` and `slow` automatically, so `-m "not slow"` skips them without starting anything.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_START_TIMEOUT = 60
INITDB_OPTIONS = (
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
    "--no-instructions",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that need a server or a JVM, before `-m` selection runs."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "postgres_url" in names:
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.slow)
        if "spark" in names:
            item.add_marker(pytest.mark.spark)
            item.add_marker(pytest.mark.slow)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _pg_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version(Path(p).parent.name))
    for found in reversed(candidates):
        if (Path(found) / "initdb").exists() and (Path(found) / "pg_ctl").exists():
            return Path(found)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The unprivileged user to run PostgreSQL as when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return user
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


def _run(user: str | None, args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    if user is None:
        command = args
    elif runuser := shutil.which("runuser"):
        command = [runuser, "-u", user, "--", *args]
    else:
        command = ["su", "-s", "/bin/sh", "-c", shlex.join(args), user]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=2 * PG_START_TIMEOUT)


def _wait_ready(url: str, log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + PG_START_TIMEOUT
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as con:
                con.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections:\n{log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL to a throwaway PostgreSQL server on a free loopback port, stopped at session end."""
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (install Debian's `postgresql` package)")
    user = _server_user()
    # Not under pytest's tmp dir: that one is private to root and the server user could not enter it.
    root = tempfile.mkdtemp(prefix="partnerkpi-pg-")
    data, log = Path(root) / "data", Path(root) / "server.log"
    if user is not None:
        os.chown(root, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    started = False
    try:
        init = _run(
            user,
            [str(bin_dir / "initdb"), "-D", str(data), *INITDB_OPTIONS],
            cwd=root,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        for _attempt in range(3):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = _run(
                user,
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
                cwd=root,
            )
            if start.returncode == 0:
                started = True
                break
        if not started:
            raise RuntimeError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log.read_text()}")
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_ready(url, log)
        yield url
    finally:
        if started:
            _run(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A local-mode SparkSession (UTC, quiet), stopped at session end."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'partnerkpi[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (java not on PATH, JAVA_HOME unset)")
    from partnerkpi.backends import spark_session

    session = spark_session("partnerkpi-tests", warehouse_dir=tmp_path_factory.mktemp("spark-warehouse"))
    yield session
    session.stop()
