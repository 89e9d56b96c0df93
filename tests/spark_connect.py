"""A throwaway Spark Connect server for the test run: `spark_connect_url` starts one on a free loopback port
(pyspark's own `spark-submit` with the `SparkConnectServer` class, as `sbin/start-connect-server.sh --wait`
does) and stops it at session end, so every `--db 'sc://127.0.0.1:PORT?lake=…'` of the run shares one JVM.

The server is tuned for the fixtures' few rows: one shuffle partition, no adaptive re-planning and no
whole-stage code generation, and a JIT that stops at C1 (on tiny data the C2 compiler spent more CPU than
the queries themselves).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 240  # seconds; a JVM start on two busy cores
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
SMALL_DATA_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
GIVEN_ENV = "PARTNERKPI_TEST_SPARK_CONNECT"  # a server already running, e.g. while working on these tests
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Duser.timezone=UTC"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_connect_server(log: Path, master: str = "local[2]") -> tuple[subprocess.Popen[bytes], str]:
    """A Spark Connect server on a free loopback port, once it accepts connections; returns it and its
    `sc://` URL (AssertionError with the log's tail when it stops or does not answer in time)."""
    import pyspark

    home = Path(pyspark.__file__).parent
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    port = _free_port()
    conf = {**SMALL_DATA_CONF, "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(port), "spark.log.level": "WARN"}
    command = [str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--name", "partnerkpi-tests-connect",
               "--master", master, "--driver-java-options", JAVA_OPTIONS,
               *[a for k, v in conf.items() for a in ("--conf", f"{k}={v}")]]
    with log.open("wb") as out:
        # A session of its own, so that stopping it reaches the JVM that spark-submit's shell starts.
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the Spark Connect server stopped ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if _answers(port):
            return proc, f"sc://127.0.0.1:{port}"
        time.sleep(0.5)
    stop_connect_server(proc)
    raise AssertionError(f"the Spark Connect server did not answer within {START_TIMEOUT} s:\n"
                         f"{log.read_text()[-3000:]}")


def stop_connect_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (spark-submit and its JVM): TERM, then KILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def spark_connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`sc://127.0.0.1:PORT` of a Spark Connect server started for the session, or the running one that
    $PARTNERKPI_TEST_SPARK_CONNECT names (skips without pyspark's connect client or a Java runtime)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'partnerkpi[spark]')")
    for module in ("grpc", "grpc_status", "zstandard", "google.rpc"):
        pytest.importorskip(module, reason="Spark Connect's client needs pip install 'pyspark[connect]'")
    if given := os.environ.get(GIVEN_ENV, "").strip():
        yield given
        return
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (java not on PATH, JAVA_HOME unset)")
    proc, url = start_connect_server(tmp_path_factory.mktemp("spark-connect") / "server.log")
    try:
        yield url
    finally:
        stop_connect_server(proc)
