"""Subscriptions, bursting and SMTP delivery: a real local SMTP server (aiosmtpd), a real DuckDB file, real PDFs
(WeasyPrint, read back with pdftotext); schedules under an injected clock, DST edges included."""

from __future__ import annotations

import socket
import subprocess
from collections import defaultdict
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape

import pytest
from aiosmtpd.controller import Controller

from partnerkpi.clock import FixedClock
from partnerkpi.delivery import Retry, Subscriptions, due_fires, next_fire, period_at
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.settings import MailSettings
from tests.kpi_fixtures import Fixture

CANARIES = ("Bravo Kanarienvogel GmbH", "CANARY-TASK-7Q", "canary-region-7q")  # partner B's name, task, trait
MAILBOX = {"A": "ua@alpha.example", "B": "ub@bravo.example", "C": "uc@charlie.example"}
START = datetime(2027, 1, 1)  # a Friday; subscriptions are added at this instant


# -- a real SMTP server -------------------------------------------------------------------------------
class Mailboxes:
    """An aiosmtpd handler that keeps each accepted message per recipient; it answers 550 for the addresses
    in `refuse` and 451 for the next `flaky[address]` tries of an address."""

    def __init__(self) -> None:
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self.refuse: set[str] = set()
        self.flaky: dict[str, int] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if self.flaky.get(address, 0) > 0:
            self.flaky[address] -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        for rcpt in envelope.rcpt_tos:
            self.received[rcpt].append(envelope.content)
        return "250 Message accepted for delivery"

    def counts(self) -> dict[str, int]:
        return {address: len(messages) for address, messages in self.received.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    """A real SMTP server on a free loopback port; yields (mailboxes, mail settings pointing at it)."""
    boxes = Mailboxes()
    controller = Controller(boxes, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield boxes, MailSettings(host="127.0.0.1", port=controller.port, sender="reports@hub.example", timeout=10,
                                  base_url="https://kpi.hub.example")
    finally:
        controller.stop()


# -- a tiny program and a real (small) renderer ----------------------------------------------------------
def build(tmp_path) -> Hub:
    """Partners A, B (the canary) and C (an agency), one user each at their own domain, a task each."""
    fx = Fixture(tmp_path)
    fx.partner("A", name="Alpha Reseller", region="north")
    fx.partner("B", name=CANARIES[0], region=CANARIES[2])
    fx.partner("C", name="Charlie Agency", type="agency", region="south")
    for pid, email in MAILBOX.items():
        fx.user(f"u{pid}", pid)
        fx.users[-1]["email"] = email
        fx.event("Task Assigned", "2026-08-01 09:00", partner=pid, object=f"t{pid}", kind="general",
                 title=CANARIES[1] if pid == "B" else f"Quarterly plan of {pid}")
    fx.user("gone", "A", deactivated="2026-02-01")  # a deactivated user gets nothing
    fx.users[-1]["email"] = "gone@alpha.example"
    return fx.hub()


def pdf_renderer(hub: Hub, calls: list[str] | None = None, crash_on: str | None = None):
    """A WeasyPrint PDF of a partner's own rows (name, region, task titles), read by SQL for that partner only;
    the internal edition lists every partner's name. `crash_on` simulates a crash (not an error) there."""
    from weasyprint import HTML

    con = hub.store.con

    def render(period: str, audience: str, fmt: str) -> bytes:
        assert fmt == "pdf"
        if calls is not None:
            calls.append(audience)
        if audience == crash_on:
            raise KeyboardInterrupt
        if audience == "internal":
            names = [r[0] for r in con.execute("SELECT name FROM partners ORDER BY partner_id").fetchall()]
            body = f"<h1>Program report {period}</h1><p>{escape(', '.join(names))}</p>"
        else:
            pid = audience.removeprefix("partner:")
            ((name, region),) = con.execute("SELECT name, region FROM partners WHERE partner_id = ?", [pid]).fetchall()
            titles = [r[0] for r in con.execute(
                "SELECT json_extract_string(properties, '$.title') FROM events WHERE partner_id = ? "
                "AND event = 'Task Assigned' ORDER BY ts", [pid]).fetchall()]
            items = "".join(f"<li>{escape(t)}</li>" for t in titles)
            body = f"<h1>{escape(name)}</h1><p>Period {period}, region {escape(region)}</p><ul>{items}</ul>"
        return HTML(string=f"<html><body>{body}</body></html>").write_pdf()

    return render


def subscriptions(hub: Hub, mail: MailSettings, render, *, clock: FixedClock | None = None,
                  sleeps: list[float] | None = None, retry: Retry | None = None) -> Subscriptions:
    tables = hub.store.subscriptions
    sleeper = sleeps.append if sleeps is not None else (lambda s: pytest.fail(f"slept {s}s with nothing to retry"))
    return Subscriptions(tables, render, mail, clock or FixedClock(START), sleeper, retry or Retry(3, 10.0))


def every_text(raw: bytes) -> str:
    """All a message says: its headers, every decoded text part, and the text of every PDF (pdftotext)."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    texts = [f"{k}: {v}" for k, v in msg.items()]
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        payload = part.get_payload(decode=True)
        if part.get_content_type() == "application/pdf":
            texts.append(subprocess.run(["pdftotext", "-", "-"], input=payload, capture_output=True,
                                        check=True).stdout.decode())
        else:
            texts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(texts)


def statuses(subs: Subscriptions, name: str) -> dict[str, tuple[str, int]]:
    """recipient -> (status, attempts) of every fire of `name`."""
    return {r.recipient: (r.status, r.attempts) for r in subs.tables.log(name)}


# -- schedules ----------------------------------------------------------------------------------------
def test_weekly_schedule_in_berlin_fires_at_local_seven_winter_and_summer():
    # Mondays 07:00 in Berlin: 06:00 UTC in winter (CET), 05:00 UTC in summer (CEST).
    assert next_fire("0 7 * * 1", "Europe/Berlin", START) == datetime(2027, 1, 4, 6, 0)
    assert next_fire("0 7 * * 1", "Europe/Berlin", datetime(2027, 1, 4, 6, 0)) == datetime(2027, 1, 11, 6, 0)
    assert next_fire("0 7 * * 1", "Europe/Berlin", datetime(2027, 7, 1)) == datetime(2027, 7, 5, 5, 0)
    assert next_fire("0 7 * * 1", "UTC", START) == datetime(2027, 1, 4, 7, 0)


def test_daily_0230_berlin_on_spring_forward_day_fires_once_just_after_the_gap():
    # 2027-03-28 02:00 CET jumps to 03:00 CEST: 02:30 does not exist; Debian cron runs it at 03:00 CEST.
    fires = due_fires("30 2 * * *", "Europe/Berlin", datetime(2027, 3, 27, 12, 0), datetime(2027, 3, 29, 12, 0))
    assert fires == [datetime(2027, 3, 28, 1, 0), datetime(2027, 3, 29, 0, 30)]


def test_daily_0230_berlin_on_fall_back_day_fires_once_on_the_first_0230():
    # 2027-10-31 03:00 CEST falls back to 02:00 CET: 02:30 happens twice (00:30 and 01:30 UTC); it fires once.
    fires = due_fires("30 2 * * *", "Europe/Berlin", datetime(2027, 10, 30, 12, 0), datetime(2027, 11, 1, 12, 0))
    assert fires == [datetime(2027, 10, 31, 0, 30), datetime(2027, 11, 1, 1, 30)]
    # Asked from inside the repeated hour (02:00 CET = 01:00 UTC), the next fire is the next day's, not 01:30.
    assert next_fire("30 2 * * *", "Europe/Berlin", datetime(2027, 10, 31, 1, 0)) == datetime(2027, 11, 1, 1, 30)


def test_relative_periods_follow_the_fire_local_date():
    # 2027-03-31 23:30 UTC is already 1 April in Berlin: last quarter there is Q1, in UTC still Q4 2026.
    fire = datetime(2027, 3, 31, 23, 30)
    assert period_at("last-quarter", fire, "Europe/Berlin") == "2027-Q1"
    assert period_at("last-quarter", fire, "UTC") == "2026-Q4"
    assert period_at("last-month", fire, "Europe/Berlin") == "2027-03"
    assert period_at("2026-Q3", fire, "UTC") == "2026-Q3"


def test_run_due_fires_at_the_right_instants_under_an_injected_clock(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    clock = FixedClock(datetime(2027, 3, 27, 12, 0))
    subs = subscriptions(hub, mail, pdf_renderer(hub), clock=clock)
    subs.add("nightly", "30 2 * * *", tz="Europe/Berlin", period="last-quarter", audience="internal",
             to=("boss@corp.example",))
    assert subs.run_due(datetime(2027, 3, 28, 0, 59)) == []  # 00:59 UTC is 01:59 CET; 02:30 is skipped to 03:00 CEST
    (first,) = subs.run_due(datetime(2027, 3, 28, 1, 0))
    assert (first.fire_at, first.counts, first.skipped) == (datetime(2027, 3, 28, 1, 0), {"sent": 1}, 0)
    assert subs.run_due(datetime(2027, 3, 28, 23, 0)) == []  # already fired today
    # Left off for three days: the latest fire is sent once, the two missed ones are skipped.
    (late,) = subs.run_due(datetime(2027, 3, 31, 6, 0))
    assert (late.fire_at, late.skipped) == (datetime(2027, 3, 31, 0, 30), 2)
    assert boxes.counts() == {"boss@corp.example": 2}
    periods = {r.fire_at: r.period for r in subs.tables.log("nightly")}
    assert periods == {datetime(2027, 3, 28, 1, 0): "2026-Q4", datetime(2027, 3, 31, 0, 30): "2026-Q4"}


def test_bad_schedules_are_refused_with_a_hint(tmp_path, smtp):
    _, mail = smtp
    hub = build(tmp_path)
    subs = subscriptions(hub, mail, pdf_renderer(hub))
    cases = [({"cron": "0 7 * *"}, "five fields"), ({"cron": "0 25 * * *"}, "not a valid cron"),
             ({"tz": "Mars/Olympus"}, "not a time zone"), ({"period": "last-decade"}, "not a period"),
             ({"period": "last-month"}, "not a quarter"), ({"period": "2026-07"}, "not a quarter"),
             ({"segment": "colour=red"}, "no trait 'colour'")]
    for change, message in cases:
        args = {"cron": "0 7 * * 1", "tz": "UTC", "period": "last-quarter", "audience": "partners", **change}
        with pytest.raises(UsageError, match=message) as info:
            subs.add("s", args.pop("cron"), **args)
        assert info.value.hint
    assert subs.tables.all() == []


# -- bursting -----------------------------------------------------------------------------------------
def test_bursting_sends_each_partner_only_its_own_edition(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    calls: list[str] = []
    subs = subscriptions(hub, mail, pdf_renderer(hub, calls))
    subs.add("partners", "0 7 * * 1", tz="Europe/Berlin", period="last-quarter", audience="partners")
    summary = subs.run_once("partners")
    assert summary.counts == {"sent": 3}
    assert sorted(calls) == ["partner:A", "partner:B", "partner:C"]  # each edition rendered once
    assert boxes.counts() == {MAILBOX["A"]: 1, MAILBOX["B"]: 1, MAILBOX["C"]: 1}  # not the deactivated user
    texts = {pid: every_text(boxes.received[address][0]) for pid, address in MAILBOX.items()}
    for canary in CANARIES:
        assert canary in texts["B"]  # the canary is really in B's report ...
        for pid in ("A", "C"):
            assert canary not in texts[pid] and canary.lower() not in texts[pid].lower()  # ... and nowhere else
    assert "Quarterly plan of A" in texts["A"] and "Alpha Reseller" in texts["A"]
    assert "Period 2026-Q4" in texts["A"]  # last quarter as of 2027-01-01 in Berlin
    msg = message_from_bytes(boxes.received[MAILBOX["A"]][0], policy=policy.default)
    assert msg["To"] == MAILBOX["A"] and msg["From"] == "reports@hub.example"
    assert "https://kpi.hub.example/reports?period=2026-Q4&amp;audience=partner%3AA" in texts["A"]
    (pdf,) = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "partnerkpi-2026-Q4-partner-A.pdf"
    assert pdf.get_payload(decode=True).startswith(b"%PDF")
    logged = {r.recipient: r for r in subs.tables.log("partners")}
    assert logged[MAILBOX["A"]].message_id == msg["Message-ID"]
    assert {r.edition for r in logged.values()} == {"partner:A", "partner:B", "partner:C"}
    assert all(r.sent_at == START and r.attempts == 1 for r in logged.values())


def test_a_segment_bursts_only_its_partners(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    subs = subscriptions(hub, mail, pdf_renderer(hub))
    subs.add("resellers", "0 7 * * 1", period="last-quarter", audience="partners", segment="type=reseller")
    assert subs.run_once("resellers").counts == {"sent": 2}
    assert boxes.counts() == {MAILBOX["A"]: 1, MAILBOX["B"]: 1}  # C is an agency


def test_an_address_outside_the_partner_domains_is_refused_and_logged_not_sent(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    subs = subscriptions(hub, mail, pdf_renderer(hub))
    subs.tables.set_address("A", "ana@alpha-typo.example")  # default allow-list: A's users' domain alpha.example
    subs.tables.set_address("A", "lead@alpha.example")
    subs.add("partners", "0 7 * * 1", period="last-quarter", audience="partners", segment="region=north")
    assert subs.run_once("partners").counts == {"sent": 2, "refused": 1}
    assert boxes.counts() == {MAILBOX["A"]: 1, "lead@alpha.example": 1}
    (refused,) = subs.tables.log("partners", statuses=("refused",))
    assert (refused.recipient, refused.attempts, refused.sent_at) == ("ana@alpha-typo.example", 0, None)
    assert "alpha-typo.example is not in its users' domains" in refused.last_error
    # A configured allow-list replaces the default: now only partner.example addresses pass, users included.
    subs.tables.set_domain("A", "partner.example")
    subs.add("again", "0 7 * * 1", period="last-quarter", audience="partners", segment="region=north")
    assert subs.run_once("again").counts == {"refused": 3}
    assert boxes.counts() == {MAILBOX["A"]: 1, "lead@alpha.example": 1}
    assert all("not in the partner's allow-list (partner.example)" in r.last_error for r in subs.tables.log("again"))


# -- failures, retries, resends -------------------------------------------------------------------------
def test_failures_are_retried_with_backoff_logged_as_failed_and_a_resend_sends_only_those(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    boxes.refuse.add(MAILBOX["B"])  # 550 on every try
    boxes.flaky[MAILBOX["C"]] = 1  # 451 on the first try only
    sleeps: list[float] = []
    subs = subscriptions(hub, mail, pdf_renderer(hub), sleeps=sleeps, retry=Retry(attempts=3, backoff=10.0))
    subs.add("partners", "0 7 * * 1", period="last-quarter", audience="partners")
    assert subs.run_once("partners").counts == {"sent": 2, "failed": 1}
    assert sleeps == [10.0, 20.0]  # after try 1 (B, C failed) and try 2 (B failed)
    assert statuses(subs, "partners") == {MAILBOX["A"]: ("sent", 1), MAILBOX["B"]: ("failed", 3),
                                          MAILBOX["C"]: ("sent", 2)}
    (failed,) = subs.tables.log("partners", statuses=("failed",))
    assert failed.sent_at is None and "550" in failed.last_error and "mailbox unavailable" in failed.last_error
    assert boxes.counts() == {MAILBOX["A"]: 1, MAILBOX["C"]: 1}

    boxes.refuse.clear()
    (after,) = subs.resend("partners")
    assert after.counts == {"sent": 3}
    assert boxes.counts() == {MAILBOX["A"]: 1, MAILBOX["B"]: 1, MAILBOX["C"]: 1}  # nothing went twice
    assert statuses(subs, "partners")[MAILBOX["B"]] == ("sent", 4)
    assert subs.resend("partners") == [] and boxes.counts()[MAILBOX["A"]] == 1
    # Firing the same instant again (a retried cron) does not send again either.
    fire = subs.tables.log("partners")[0].fire_at
    assert subs.fire("partners", fire).counts == {"sent": 3}
    assert sum(boxes.counts().values()) == 3


def test_a_server_that_is_down_fails_every_try_and_says_why(tmp_path, smtp):
    _, mail = smtp
    hub = build(tmp_path)
    down = MailSettings(host="127.0.0.1", port=free_port(), sender="reports@hub.example", timeout=5)
    sleeps: list[float] = []
    subs = subscriptions(hub, down, pdf_renderer(hub), sleeps=sleeps, retry=Retry(attempts=2, backoff=1.5))
    subs.add("internal", "0 7 * * 1", period="last-quarter", audience="internal", to=("boss@corp.example",))
    assert subs.run_once("internal").counts == {"failed": 1}
    assert sleeps == [1.5]
    (row,) = subs.tables.log("internal")
    assert (row.status, row.attempts, row.sent_at) == ("failed", 2, None)
    assert "ConnectionRefusedError" in row.last_error


def test_a_crash_mid_run_leaves_pending_rows_that_a_resend_delivers(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    crashing = subscriptions(hub, mail, pdf_renderer(hub, crash_on="partner:B"))
    crashing.add("partners", "0 7 * * 1", period="last-quarter", audience="partners")
    with pytest.raises(KeyboardInterrupt):
        crashing.run_once("partners")
    assert statuses(crashing, "partners") == {MAILBOX["A"]: ("sent", 1), MAILBOX["B"]: ("pending", 0),
                                              MAILBOX["C"]: ("pending", 0)}
    calls: list[str] = []
    (after,) = subscriptions(hub, mail, pdf_renderer(hub, calls)).resend("partners")
    assert after.counts == {"sent": 3}
    assert sorted(calls) == ["partner:B", "partner:C"]  # A is neither rendered nor sent again
    assert boxes.counts() == {MAILBOX["A"]: 1, MAILBOX["B"]: 1, MAILBOX["C"]: 1}


def test_a_rendering_error_fails_that_edition_with_its_reason(tmp_path, smtp):
    boxes, mail = smtp
    hub = build(tmp_path)
    good = pdf_renderer(hub)

    def render(period: str, audience: str, fmt: str) -> bytes:
        if audience == "partner:C":
            raise ValueError("no data for C")
        return good(period, audience, fmt)

    sleeps: list[float] = []
    subs = subscriptions(hub, mail, render, sleeps=sleeps, retry=Retry(attempts=1))
    subs.add("partners", "0 7 * * 1", period="last-quarter", audience="partners")
    assert subs.run_once("partners").counts == {"sent": 2, "failed": 1}
    (row,) = subs.tables.log("partners", statuses=("failed",))
    assert row.recipient == MAILBOX["C"]
    assert row.last_error == "the report could not be rendered: ValueError: no data for C"
    assert MAILBOX["C"] not in boxes.counts() and sleeps == []


# -- the admin page and its JSON twin --------------------------------------------------------------------
def test_admin_page_and_json_twin_show_failed_as_failed_and_the_button_resends_only_those(tmp_path, smtp):
    from fastapi.testclient import TestClient

    from partnerkpi.credentials import Credentials
    from partnerkpi.settings import Settings
    from partnerkpi.web import create_app
    from partnerkpi.web.routes import subscriptions as routes
    from tests.web_fixtures import ADMIN, form_token, sign_in

    boxes, mail = smtp
    hub = build(tmp_path)
    Credentials(hub.store).add_user(*ADMIN, "admin")
    Credentials(hub.store).add_user("pat@alpha.example", "partner-pass", "partner", "A")
    boxes.refuse.add(MAILBOX["B"])
    sleeps: list[float] = []
    subs = subscriptions(hub, mail, pdf_renderer(hub), sleeps=sleeps)
    subs.add("partners", "0 7 * * 1", tz="Europe/Berlin", period="last-quarter", audience="partners")
    subs.tables.set_address("C", "typo@charly.example")
    subs.run_once("partners")

    app = create_app(Settings(db=hub.store.path, mail=mail), hub=hub)
    app.dependency_overrides[routes.subscriptions] = lambda: subscriptions(hub, mail, pdf_renderer(hub), sleeps=sleeps)
    with TestClient(app, follow_redirects=False) as client:
        assert sign_in(client, "pat@alpha.example", "partner-pass").status_code == 303
        assert client.get("/api/v1/subscriptions").status_code == 403  # a partner user is no admin
        client.cookies.clear()
        assert sign_in(client, *ADMIN).status_code == 303
        (twin,) = client.get("/api/v1/subscriptions").json()
        assert twin["next_fire_at"] == "2027-01-04T06:00:00Z"  # Monday 07:00 in Berlin, in UTC
        assert twin["last_run"]["counts"] == {"sent": 2, "failed": 1, "refused": 1, "pending": 0}
        rows = {r["recipient"]: r for r in twin["last_run"]["recipients"]}
        assert (rows[MAILBOX["B"]]["status"], rows[MAILBOX["B"]]["sent_at"]) == ("failed", None)
        assert "550" in rows[MAILBOX["B"]]["error"]
        assert rows["typo@charly.example"]["status"] == "refused"
        page = client.get("/admin/subscriptions")
        assert page.status_code == 200
        row = page.text.split(f"<td>{MAILBOX['B']}</td>", 1)[1].split("</tr>", 1)[0]
        assert "<td>failed</td>" in row and "mailbox unavailable" in row
        assert '<td class="status-failed">1</td>' in page.text and "Resend failed" in page.text

        assert client.post("/admin/subscriptions/resend", data={"name": "partners"}).status_code == 403  # no CSRF
        boxes.refuse.clear()
        done = client.post("/admin/subscriptions/resend",
                           data={"name": "partners", "csrf_token": form_token(page.text)})
        assert done.status_code == 303 and done.headers["location"] == "/admin/subscriptions?resent=partners"
        (twin,) = client.get("/api/v1/subscriptions").json()
        assert twin["last_run"]["counts"] == {"sent": 3, "failed": 0, "refused": 1, "pending": 0}
        assert "Resend failed" not in client.get("/admin/subscriptions").text
        bearer = {"Authorization": f"Bearer {Credentials(hub.store).create_token(ADMIN[0])}"}
        assert client.post("/api/v1/subscriptions/nope/resend", headers=bearer).status_code == 404
        assert client.post("/api/v1/subscriptions/partners/resend", headers=bearer).json() == []  # nothing open
    assert boxes.counts() == {MAILBOX["A"]: 1, MAILBOX["B"]: 1, MAILBOX["C"]: 1}


# -- the command line -----------------------------------------------------------------------------------
def test_cli_adds_lists_runs_logs_and_removes_subscriptions(tmp_path):
    import json
    import os
    import sys

    build(tmp_path).close()
    db = str(tmp_path / "hub.duckdb")
    env = {**os.environ, "COLUMNS": "200", "PARTNERKPI_SMTP_HOST": "127.0.0.1",
           "PARTNERKPI_SMTP_PORT": str(free_port()), "PARTNERKPI_SMTP_ATTEMPTS": "1"}  # nothing listens: sends fail

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "partnerkpi.cli", "subscriptions", *args, "--db", db],
                              capture_output=True, text=True, env=env, timeout=300)

    added = cli("add", "--name", "weekly", "--cron", "0 7 * * 1", "--tz", "Europe/Berlin", "--period",
                "last-quarter", "--audience", "internal", "--to", "Boss@Corp.example", "--to", "cfo@corp.example")
    assert added.returncode == 0, added.stderr
    assert "added weekly: next fire" in added.stdout
    bad = cli("add", "--name", "x", "--cron", "0 7 * *", "--period", "last-quarter", "--audience", "partners")
    assert bad.returncode == 2 and "five fields" in bad.stderr and "how to fix" in bad.stderr
    assert cli("allow", "A", "@Alpha.example").returncode == 0
    (listed,) = json.loads(cli("list", "--json").stdout)
    assert (listed["name"], listed["to"], listed["last_fire_at"]) == ("weekly", ["boss@corp.example",
                                                                                 "cfo@corp.example"], None)
    assert cli("run", "--now", "--at", "2000-01-01T00:00:00Z").stdout.strip() == "nothing is due"

    ran = cli("run", "weekly", "--once")
    assert ran.returncode == 1 and "0 sent, 2 failed" in ran.stdout
    assert "`partnerkpi subscriptions resend weekly` sends only those" in " ".join(ran.stderr.split())
    log = json.loads(cli("log", "weekly", "--format", "json").stdout)
    assert [(r["recipient"], r["status"], r["attempts"], r["sent_at"]) for r in log] == [
        ("boss@corp.example", "failed", 1, None), ("cfo@corp.example", "failed", 1, None)]
    assert all(r["last_error"] for r in log)
    table = cli("log", "--status", "failed").stdout
    assert "boss@corp.example" in table and "failed" in table

    assert cli("remove", "weekly").returncode == 0
    assert json.loads(cli("list", "--json").stdout) == []
    gone = cli("remove", "weekly")
    assert gone.returncode == 2 and "there is no subscription 'weekly'" in gone.stderr


def test_bursting_with_the_products_renderer_keeps_each_partner_in_its_scope(tmp_path, smtp):
    """The real partner edition (partnerkpi.reports.render, built from hub.scoped): B's canaries reach B's
    mailbox and nothing A or C receives."""
    from partnerkpi.delivery.runs import report_renderer

    boxes, mail = smtp
    fx = Fixture(tmp_path)
    fx.partner("A", name="Alpha Reseller", region="north")
    fx.partner("B", name=CANARIES[0], region=CANARIES[2])
    fx.partner("C", name="Charlie Agency", type="agency", region="south")
    for pid, email in MAILBOX.items():
        fx.user(f"u{pid}", pid)
        fx.users[-1]["email"] = email
        fx.event("Portal Login", "2026-07-03 09:00", partner=pid, user=f"u{pid}")
        fx.event("Task Assigned", "2026-08-01 09:00", partner=pid, object=f"t{pid}", kind="general",
                 due_at="2026-08-15T00:00:00Z",
                 title=CANARIES[1] if pid == "B" else f"Quarterly plan of {pid}")
    fx.event("Data Checkpoint", "2026-10-02 00:00")  # the data covers 2026-Q3 whole
    hub = fx.hub()
    subs = subscriptions(hub, mail, report_renderer(hub), sleeps=[])
    subs.add("partners", "0 7 * * 1", tz="UTC", period="last-quarter", audience="partners")
    summary = subs.fire("partners", datetime(2026, 10, 5, 7, 0))  # last quarter: 2026-Q3
    assert summary.counts == {"sent": 3}
    texts = {pid: every_text(boxes.received[address][0]) for pid, address in MAILBOX.items()}
    assert CANARIES[0] in texts["B"] and CANARIES[1] in texts["B"]  # B's own name and task are in its edition
    for canary in CANARIES:
        for pid in ("A", "C"):
            assert canary.lower() not in texts[pid].lower()
    assert "Alpha Reseller" in texts["A"] and "Quarterly plan of A" in texts["A"] and "2026-Q3" in texts["A"]
