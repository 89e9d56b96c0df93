"""Browser fixtures: Debian's chromium driven by Playwright, and the app served by uvicorn on loopback.

Never `playwright install` (it downloads browsers); `.ci/run` installs Debian's `chromium` package.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/lib/chromium/chromium")  # the binary itself: /usr/bin/chromium is a wrapper script
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch options: headless Debian chromium by its executable path."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it); never `playwright install`")
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    """A desktop-sized viewport, so screenshots look like a partner manager's screen."""
    return {"viewport": {"width": 1360, "height": 900}}


BROWSER_ANALYST = ("ana@demo.test", "analyst-pass")
BROWSER_PARTNER = ("pat@demo.test", "partner-pass")
BROWSER_ADMIN = ("root@demo.test", "admin-pass1")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """A small demo program (40 partners, 6 months) imported into a DuckDB file, with an analyst and a
    partner user of the first reseller still in the program."""
    from partnerkpi.credentials import Credentials
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub
    from partnerkpi.insights.watch import run_watch
    from partnerkpi.settings import Settings

    directory = tmp_path_factory.mktemp("demo")
    files = generate(directory / "files", partners=40, months=6)
    db = directory / "demo.duckdb"
    with Hub.open(db) as hub:
        hub.import_files([files.partners, files.users, files.events])
        reseller = next(p for p in hub.partners() if p["type"] == "reseller" and p["offboarded_at"] is None)
        creds = Credentials(hub.store)
        creds.add_user(*BROWSER_ANALYST, "analyst")
        creds.add_user(*BROWSER_ADMIN, "admin")
        creds.add_user(*BROWSER_PARTNER, "partner", reseller["partner_id"])
        run_watch(hub, Settings(db=str(db)))  # the alerts an import would have fired
    (directory / "partner_id.txt").write_text(reseller["partner_id"])
    return db


@pytest.fixture(scope="session")
def demo_partner(demo_db: Path) -> str:
    """The partner id of the demo's partner user (the live server holds the DB open, so not read from it)."""
    return (demo_db.parent / "partner_id.txt").read_text()


def sign_in(page: Any, base: str, user: tuple[str, str]) -> None:
    """Sign in through the real form and wait until the landing page has loaded."""
    page.goto(base + "/signin")
    page.fill("input[name=email]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("form.signin button[type=submit]")
    page.wait_for_load_state()
    assert "/signin" not in page.url, page.content()


@contextmanager
def serve(db: Path, hub: Any = None) -> Iterator[str]:
    """The app over `db` (or over an open `hub`), served by uvicorn in a thread on a free loopback port;
    yields its base URL."""
    import uvicorn

    from partnerkpi.settings import Settings
    from partnerkpi.web import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(db=str(db)), hub=hub)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def live_server(demo_db: Path) -> Iterator[str]:
    """The app over the demo DB on a free loopback port; yields its base URL."""
    with serve(demo_db) as base:
        yield base
