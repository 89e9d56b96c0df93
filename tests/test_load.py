"""The load proofs of reliability/load.py at a quick scale: the collector at a fixed rate stores exactly what it
was sent with no error; at 5x it answers only 200 or 503 with Retry-After and recovers; signed-in users browse
without an error while imports run."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import pytest

from tests.scale import scaled

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SECONDS = scaled(quick=5, full=60)
USERS = scaled(quick=10, full=50)


def _load_module():
    path = Path(__file__).parents[1] / "reliability" / "load.py"
    spec = importlib.util.spec_from_file_location("partnerkpi_reliability_load", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _off_loop(work, *args, **kwargs):
    """`work(*args, **kwargs)` on a thread of its own: the load generator runs its own asyncio loop, which
    cannot start in a thread where an earlier test (Playwright's sync API) left one running."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="load-generator")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture(scope="module")
def load():
    return _load_module()


@pytest.fixture(scope="module")
def program(load, tmp_path_factory):
    return _off_loop(load.prepare, tmp_path_factory.mktemp("load"), partners=10, months=4)


def test_the_collector_stores_what_it_was_sent_and_sheds_overload_with_retry_after(load, program):
    steady, burst = _off_loop(load.collector_scenarios, program, SECONDS, rate=5, size=20, factor=5,
                              max_backlog=400)
    assert steady["statuses"] == {"200": steady["requests"]} and steady["requests"] == 5 * SECONDS
    assert steady["errors"] == 0 and steady["transport_errors"] == {}
    assert steady["stored_events"] == steady["sent_events"] == 5 * SECONDS * 20

    assert set(burst["statuses"]) <= {"200", "429", "503"} and burst["errors"] == 0
    assert set(burst["recovery_probes"]) <= {"200", "429", "503"} and burst["probe_errors"] == 0
    assert burst["retryable"] + burst["recovery_probes"].get("503", 0) > 0  # the bound was reached
    assert burst["missing_retry_after"] == 0
    assert burst["recovery_s"] is not None and burst["recovery_probes"]["200"] == 1
    assert burst["stored_events"] == burst["acked_events"]  # every acknowledged event, nothing else


def test_users_browse_without_errors_while_imports_run(load, program):
    figures = _off_loop(load.dashboard_scenario, program, users=USERS, seconds=SECONDS, import_rows=2000)
    assert figures["signed_in"] == USERS
    assert figures["requests"] > 0 and figures["errors"] == 0 and figures["transport_errors"] == {}
    assert figures["statuses"] == {"200": figures["requests"]}
    assert figures["imports_done"] >= 1 and figures["imports_failed"] == 0
    assert figures["p95_ms"] >= figures["p50_ms"] > 0
