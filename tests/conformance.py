"""What the API-conformance proofs share (tests/test_api_conformance.py and reliability/schemathesis_run.py): the
tiny program with an admin's API token and a write key, the served OpenAPI document, and schemathesis' settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.test_serve import start_server, stop
from tests.web_fixtures import ADMIN, add_users, build_program

RESPONSE_LIMIT = 60  # seconds: the first report of a quarter renders in ~25 s on a loaded 2-core machine


@dataclass(frozen=True)
class Program:
    """The tiny program's database and the secrets schemathesis authenticates with."""

    db: Path
    admin_token: str
    write_key: str


def conformance_program(directory: Path) -> Program:
    """The tiny program of tests/web_fixtures.py with its users, an admin's API token and a Segment write key."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    db = build_program(directory)
    add_users(db)
    with Hub.open(db) as hub:
        creds = Credentials(hub.store)
        return Program(db, creds.create_token(ADMIN[0]), creds.create_write_key("schemathesis", None))


def served_document(url: str, token: str) -> dict[str, Any]:
    """The OpenAPI document a running server publishes (to signed-in callers only)."""
    response = httpx.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=120)
    response.raise_for_status()
    return response.json()


def schemathesis_settings(program: Program, *, max_examples: int, seed: int | None = None) -> str:
    """schemathesis.toml: every check, each security scheme of the document with its real secret, the hooks of
    tests/conformance_hooks.py, and time limits a loaded 2-core machine can meet."""
    seeded = f"seed = {seed}\n" if seed is not None else ""
    return f"""{seeded}request-timeout = 120
hooks = "tests.conformance_hooks"

[generation]
max-examples = {max_examples}

[checks]
enabled = true
max_response_time = {RESPONSE_LIMIT}

[auth.openapi.apiToken]
bearer = "{program.admin_token}"

[auth.openapi.writeKey]
username = "{program.write_key}"
password = ""

# The files' contents and names decide what an import accepts (a file it cannot read is a 422 naming the row
# and field); no schema can say which bytes those are, so valid-looking uploads may be refused.
[[operations]]
include-path = "/api/v1/imports"
checks.positive_data_acceptance.enabled = false
"""


def st_run(examples: int, *, seed: int = 11, workers: int = 1,
           max_time: int | None = None) -> tuple[dict[str, Any], str]:
    """`st run` with every check over the whole document of a real `partnerkpi serve` of the tiny program: the
    figures of the run (cases, failures by kind, errors, seconds) and schemathesis' report as text."""
    with tempfile.TemporaryDirectory(prefix="partnerkpi-st-") as tmp:
        directory = Path(tmp)
        program = conformance_program(directory)
        proc, url = start_server(program.db, quiet=True)
        try:
            document, config, report = directory / "openapi.json", directory / "schemathesis.toml", directory / "r.json"
            document.write_text(json.dumps(served_document(url, program.admin_token)))
            config.write_text(schemathesis_settings(program, max_examples=examples, seed=seed))
            command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "--no-color", "run",
                       str(document), "--url", url, "--workers", str(workers),
                       *(["--max-time", str(max_time)] if max_time else []),
                       "--report", "json", "--report-json-path", str(report)]
            started = time.monotonic()
            root = Path(__file__).resolve().parents[1]  # the hooks module (tests/) and the source the server runs
            path = os.pathsep.join(filter(None, [str(root), str(root / "src"), os.environ.get("PYTHONPATH")]))
            done = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                                  env={**os.environ, "PYTHONPATH": path},
                                  timeout=(max_time or 3600) + 600)
            seconds = round(time.monotonic() - started, 1)
            summary = json.loads(report.read_text())
        finally:
            stop(proc)
    failures = {f"{f['code']} {f['title']}": f["count"] for f in summary["failures"]}
    figures = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schemathesis": summary["schemathesis_version"],
        "examples": examples,
        "seed": seed,
        "operations": summary["operations"]["tested"],
        "phases": {name: phase["status"] for name, phase in summary["phases"].items()},
        "cases": summary["test_cases"]["generated"],
        "failures": sum(failures.values()),
        "failure_kinds": failures,
        "errors": sum(e["count"] for e in summary["errors"]),
        "exit_code": done.returncode,
        "seconds": seconds,
    }
    return figures, done.stdout + done.stderr
