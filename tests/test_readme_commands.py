"""Every `partnerkpi ...` command in README.md's code blocks runs as written, in order.

They run through bash (so `;`, `>` and quotes mean what they mean to a reader) in a temporary directory
holding a small demo program as ./partnerkpi.duckdb (what `make demo` leaves), and the files a user would
bring (the demo's partners and users as CSV, its events.parquet, and a Segment export with its mapping).
Exceptions, each stated: commands that serve or need a running server are skipped (tests/test_serve.py
and tests/test_snapshot.py run those against a real server), and the README's demo runs at a smaller size.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "ingest"
SMALL_DEMO = ["--partners", "24", "--months", "8"]
SKIPPED = {
    "partnerkpi serve": "serves until stopped",
    "--server": "needs a running server (tests/test_serve.py imports through one)",
}


def readme_commands() -> list[str]:
    """The lines of README.md's sh code blocks that run partnerkpi, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("partnerkpi ")]


def skip_reason(line: str) -> str | None:
    return next((reason for marker, reason in SKIPPED.items() if marker in line), None)


def test_the_readme_has_commands_and_only_serving_ones_are_skipped():
    lines = readme_commands()
    assert len(lines) >= 25
    skipped = [line for line in lines if skip_reason(line)]
    assert all(line.startswith("partnerkpi serve") or "--server" in line for line in skipped)
    assert len(skipped) <= 4


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A directory with a small demo as ./partnerkpi.duckdb, a user's files, and `partnerkpi` on the PATH."""
    work = tmp_path_factory.mktemp("readme")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "partnerkpi"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m partnerkpi.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "100", "TOKEN": "unused"}
    for name in ("PARTNERKPI_DB", "PARTNERKPI_TOKEN", "PARTNERKPI_TARGETS", "PARTNERKPI_ALERTS"):
        env.pop(name, None)
    made = subprocess.run(["partnerkpi", "demo", "--no-serve", *SMALL_DEMO, "--out", "demo-data"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stderr
    import duckdb

    for kind in ("partners", "users"):  # the demo's program, as a user's CSV export
        duckdb.sql(f"COPY (SELECT * FROM '{work / 'demo-data' / kind}.parquet') TO '{work / kind}.csv' (HEADER)")
    for source, name in ((work / "demo-data" / "events.parquet", "events.parquet"),
                         (DATA / "mapping.yaml", "ours.yaml"), (DATA / "hub.segment.jsonl", "export.jsonl")):
        shutil.copy(source, work / name)
    return work, env


@pytest.mark.slow
def test_every_readme_command_runs_as_written(workdir):
    work, env = workdir
    ran, failures = [], []
    for line in readme_commands():
        if skip_reason(line):
            continue
        command = re.sub(r"--partners \d+ --months \d+", " ".join(SMALL_DEMO), line)
        stdin = "a-long-password-1\na-long-password-1\n" if " users add " in f" {command} " else ""
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], cwd=work, env=env, input=stdin,
                                capture_output=True, text=True, timeout=900)
        ran.append(line)
        if result.returncode != 0:
            failures.append(f"{line}\n  exit {result.returncode}: {result.stderr.strip()[-600:]}")
    assert not failures, "\n".join(failures)
    assert len(ran) >= 20
    # what the commands made is there: the templates, the user's database
    assert (work / "targets.yaml").read_text().startswith("# partnerkpi targets")
    assert "rules:" in (work / "alerts.yaml").read_text()
    assert (work / "hub.duckdb").is_file() and (work / "demo.duckdb").is_file()
