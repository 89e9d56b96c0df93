"""One writer: `partnerkpi serve` owns its DuckDB file, and imports go through it (POST /api/v1/imports).

The slow tests start the real server as a process and run the real CLI against it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.web_fixtures import ADMIN, ANALYST, add_users, build_program, client_for

PARTNERS_NEW = """partner_id,name,type,tier,region,onboarded_at
N1,New One,reseller,gold,emea,2026-01-01T00:00:00Z
N2,New Two,agency,silver,amer,2026-02-01T00:00:00Z
"""
PARTNERS_MORE = """partner_id,name,type,tier,region,onboarded_at
N3,New Three,reseller,gold,emea,2026-03-01T00:00:00Z
"""


def cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PARTNERKPI_DB", None)
    env.pop("PARTNERKPI_TOKEN", None)
    if token is not None:
        env["PARTNERKPI_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "partnerkpi.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def flat(text: str) -> str:
    """Text with Rich's line wrapping undone."""
    return " ".join(text.split())


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tokens(db: Path) -> tuple[str, str]:
    """The users of the tiny program, and an API token for its admin and one for its analyst."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    add_users(db)
    with Hub.open(db) as hub:
        creds = Credentials(hub.store)
        return creds.create_token(ADMIN[0]), creds.create_token(ANALYST[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db: Path, *, quiet: bool = False) -> tuple[subprocess.Popen[str], str]:
    """`partnerkpi serve` on a free port, once it answers; `quiet` drops its output (a server under a long
    load would fill a pipe nobody reads)."""
    port = free_port()
    env = {**os.environ}
    env.pop("PARTNERKPI_DB", None)
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "serve", "--db", str(db), "--port", str(port)],
                            stdout=output, stderr=output, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server stopped: {proc.communicate()}")
        try:
            if httpx.get(f"{url}/signin", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not answer within 120 s")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def counts(url: str, token: str) -> dict[str, int]:
    response = httpx.get(f"{url}/api/v1/data", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["counts"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The tiny program served by a real `partnerkpi serve`: (db, url, pid, admin token, analyst token)."""
    directory = tmp_path_factory.mktemp("served")
    db = build_program(directory)
    admin, analyst = tokens(db)
    proc, url = start_server(db)
    yield db, url, proc.pid, admin, analyst
    stop(proc)


@pytest.mark.slow
def test_the_server_names_itself_in_a_marker_beside_the_db(served):
    db, url, pid, _, _ = served
    marker = json.loads(Path(f"{db}.server").read_text())
    assert (marker["url"], marker["pid"]) == (url, pid)
    assert datetime.fromisoformat(marker["started_at"]).tzinfo is not None


@pytest.mark.slow
def test_a_local_import_fails_fast_naming_the_server_and_writes_nothing(served, tmp_path):
    db, url, pid, admin, _ = served
    before = counts(url, admin)
    started = time.monotonic()
    result = cli("import", "--db", str(db), str(write(tmp_path / "partners_new.csv", PARTNERS_NEW)))
    assert time.monotonic() - started < 60
    assert result.returncode == 5, result.stderr
    message = flat(result.stderr)
    assert f"the partnerkpi server at {url} (pid {pid}) owns {db}" in message
    assert f"partnerkpi import --server {url} --token" in message and f"{url}/admin/tokens" in message
    assert counts(url, admin) == before


@pytest.mark.slow
def test_import_through_the_server_makes_the_rows_visible(served, tmp_path):
    _, url, _, admin, _ = served
    before = counts(url, admin)
    result = cli("import", "--server", url, "--token", admin, str(write(tmp_path / "partners_new.csv", PARTNERS_NEW)))
    assert result.returncode == 0, result.stderr
    assert re.search(r"partners_new\.csv\s+│\s+partners\s+│\s+2\s+│\s+2\s+│\s+0\s+│\s+0", result.stdout)
    after = counts(url, admin)
    assert after["partners"] == before["partners"] + 2 and after["imports"] == before["imports"] + 1

    # the token from $PARTNERKPI_TOKEN; the same file again adds nothing
    again = cli("import", "--server", url, str(tmp_path / "partners_new.csv"), token=admin)
    assert again.returncode == 0, again.stderr
    assert "already imported" in again.stdout
    assert counts(url, admin) == after


@pytest.mark.slow
def test_the_server_refuses_non_admins_and_bad_files_and_writes_nothing(served, tmp_path):
    _, url, _, admin, analyst = served
    before = counts(url, admin)
    more = write(tmp_path / "partners_more.csv", PARTNERS_MORE)
    refused = cli("import", "--server", url, "--token", analyst, str(more))
    assert refused.returncode == 3
    assert "(403)" in refused.stderr and "admin" in refused.stderr

    unknown = cli("import", "--server", url, "--token", "pk_api_not-a-token", str(more))
    assert unknown.returncode == 3 and "(401)" in unknown.stderr

    # a file whose kind cannot be told: nothing of the batch is written, and the error names the file as sent
    notes = write(tmp_path / "notes.csv", "x\n1\n")
    bad = cli("import", "--server", url, "--token", admin, str(more), str(notes))
    assert bad.returncode == 3
    assert "notes.csv: cannot tell from the file name" in flat(bad.stderr)
    assert "partnerkpi-upload" not in bad.stderr
    assert counts(url, admin) == before


@pytest.mark.slow
def test_an_unreachable_server_is_exit_code_5(tmp_path):
    result = cli("import", "--server", f"http://127.0.0.1:{free_port()}", "--token", "pk_api_x",
                 str(write(tmp_path / "partners_new.csv", PARTNERS_NEW)))
    assert result.returncode == 5
    assert "cannot reach the partnerkpi server" in flat(result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_after_the_server_stops_the_marker_is_gone_and_local_imports_work(tmp_path, sig):
    db = build_program(tmp_path)
    proc, _ = start_server(db)
    marker = Path(f"{db}.server")
    assert marker.exists()
    assert stop(proc, sig) == 0
    assert not marker.exists()
    result = cli("import", "--db", str(db), str(write(tmp_path / "partners_new.csv", PARTNERS_NEW)))
    assert result.returncode == 0, result.stderr
    from partnerkpi.hub import Hub

    with Hub.open(db, read_only=True) as hub:
        assert hub.store.counts()["partners"] == 6


@pytest.mark.slow
def test_a_stale_marker_does_not_blame_a_server(tmp_path):
    db = build_program(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    Path(f"{db}.server").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": int(dead.stdout)}))
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('locked', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = cli("import", "--db", str(db), str(write(tmp_path / "partners_new.csv", PARTNERS_NEW)))
    finally:
        holder.kill()
        holder.communicate()
    assert result.returncode == 5
    assert "in use by another process" in flat(result.stderr) and "partnerkpi server at" not in result.stderr


# -- the upload route, in process ---------------------------------------------------------------------
@pytest.fixture
def app_client(tmp_path):
    db = build_program(tmp_path)
    admin, analyst = tokens(db)
    for client in client_for(db):
        yield client, admin, analyst


def upload(client, token: str, *files: tuple[str, str], **form: str):
    return client.post("/api/v1/imports", headers={"Authorization": f"Bearer {token}"}, data=form,
                       files=[("files", (name, text.encode(), "text/csv")) for name, text in files])


def test_the_upload_route_imports_and_answers_with_the_summaries(app_client):
    client, admin, _ = app_client
    response = upload(client, admin, ("partners_new.csv", PARTNERS_NEW), ("partners_more.csv", PARTNERS_MORE))
    assert response.status_code == 200, response.text
    first, second = response.json()["imports"]
    assert (first["file"], first["kind"], first["rows_read"], first["accepted"], first["rejected"]) == (
        "partners_new.csv", "partners", 2, 2, 0)
    assert (second["file"], second["accepted"], second["skipped_same_file"]) == ("partners_more.csv", 1, False)
    assert client.get("/api/v1/data", headers={"Authorization": f"Bearer {admin}"}).json()["counts"]["partners"] == 7


def test_the_upload_route_takes_a_kind_and_rejects_rows_with_reasons(app_client):
    client, admin, _ = app_client
    text = "partner_id,name,type,tier,region,onboarded_at\nN1,One,reseller,gold,emea,2026-01-01T00:00:00Z\n" \
           "N2,Two,reseller,gold,emea,not a time\n"
    response = upload(client, admin, ("export.csv", text), kind="partners")
    assert response.status_code == 200, response.text
    (summary,) = response.json()["imports"]
    assert (summary["kind"], summary["accepted"], summary["rejected"]) == ("partners", 1, 1)


def test_the_upload_route_refuses_non_admins_and_unguessable_names_without_writing(app_client):
    client, admin, analyst = app_client
    assert upload(client, analyst, ("partners_new.csv", PARTNERS_NEW)).status_code == 403
    assert upload(client, "pk_api_nope", ("partners_new.csv", PARTNERS_NEW)).status_code == 401
    bad = upload(client, admin, ("partners_new.csv", PARTNERS_NEW), ("notes.csv", "x\n1\n"))
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("notes.csv: ") and "kind" in bad.json()["hint"]
    twice = upload(client, admin, ("partners_new.csv", PARTNERS_NEW), ("partners_new.csv", PARTNERS_NEW))
    assert twice.status_code == 400 and "partners_new.csv" in twice.json()["error"]
    data = client.get("/api/v1/data", headers={"Authorization": f"Bearer {admin}"}).json()
    assert data["counts"]["partners"] == 4 and len(data["imports"]) == 3  # the program's own three files


def test_the_openapi_document_describes_the_upload(app_client):
    client, _, _ = app_client
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/api/v1/imports"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ImportsOut"}
    summary = doc["components"]["schemas"]["ImportSummaryOut"]["properties"]
    assert {"file", "source", "kind", "rows_read", "accepted", "duplicates", "rejected", "rejected_by_reason",
            "skipped_same_file", "import_id", "ignored_columns", "seconds"} <= set(summary)


# -- the demo's sign-in -------------------------------------------------------------------------------
def test_demo_prints_sign_ins_that_work_and_new_passwords_each_run(tmp_path):
    from partnerkpi.credentials import Credentials
    from partnerkpi.hub import Hub

    db = tmp_path / "demo.duckdb"

    def run_demo() -> tuple[dict[str, tuple[str, str]], str]:
        result = cli("demo", "--db", str(db), "--partners", "20", "--months", "3", "--no-serve",
                     "--out", str(tmp_path / "demo-data"))
        assert result.returncode == 0, result.stderr
        assert "http://127.0.0.1:8000/signin" in result.stdout
        found = re.findall(r"│ (admin|analyst|partner)\s+(\S+@\S+)\s+(\S+)\s", result.stdout)
        (token,) = re.findall(r"pk_api_\S+", result.stdout)
        return {role: (email, password) for role, email, password in found}, token

    first, first_token = run_demo()
    second, second_token = run_demo()
    assert set(first) == {"admin", "analyst", "partner"}
    assert first["admin"][0] == "admin@demo.partnerkpi" and first["analyst"][0] == "analyst@demo.partnerkpi"
    assert re.fullmatch(r"partner@p-\d+\.demo\.partnerkpi", first["partner"][0])
    with Hub.open(db, read_only=True) as hub:
        creds = Credentials(hub.store)
        signed_in = {role: creds.verify_password(email, password) for role, (email, password) in second.items()}
        assert {role: p.role for role, p in signed_in.items() if p} == {r: r for r in ("admin", "analyst", "partner")}
        partner_type = hub.store.con.execute("SELECT type FROM partners WHERE partner_id = ?",
                                             [signed_in["partner"].partner_id]).fetchone()[0]
        assert partner_type == "reseller"
        assert all(creds.verify_password(email, password) is None for email, password in first.values())
        assert len(creds.list_users()) == 3
        assert creds.verify_api_token(first_token) is None
    # verify_api_token records its use, which needs a writable store
    with Hub.open(db) as hub:
        assert Credentials(hub.store).verify_api_token(second_token).email == "admin@demo.partnerkpi"
