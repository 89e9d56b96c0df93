"""Alerts: hand-computed rules on tiny programs, stored state, and delivery to a real SMTP server and a real
HTTP receiver on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from partnerkpi.clock import FixedClock
from partnerkpi.engine.periods import Grain
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import (
    AlertRulesError,
    AlertScheduler,
    current_period,
    evaluate,
    list_alerts,
    list_deliveries,
    load_rules,
    run_alerts,
)
from tests.kpi_fixtures import Fixture, iso

AUG_5 = datetime(2026, 8, 5, 9, 0)
SEP_2 = datetime(2026, 9, 2, 9, 0)


def four_partners(tmp_path: Path) -> Fixture:
    """A and B resellers, C and D referral partners, one user each (uA .. uD)."""
    fx = Fixture(tmp_path)
    for p in "ABCD":
        fx.partner(p, type="reseller" if p in "AB" else "referral")
        fx.user(f"u{p}", p)
    return fx


CHECKPOINT = "Data Checkpoint"  # an event no KPI counts: it only makes the data reach its day


def at(fx: Fixture, when: datetime) -> Hub:
    """The fixture's hub at clock `when`, its data reaching the day before `when` (so the period before
    `when` is complete, and the data is not stale)."""
    if fx._hub is None:
        fx.event(CHECKPOINT, iso(when - timedelta(days=1)))
    hub = fx.hub()
    hub.clock = FixedClock(when)
    return hub


def reach(hub: Hub, tmp_path: Path, when: datetime) -> None:
    """Move the clock to `when` with data reaching the day before it (a fresh feed)."""
    hub.clock.now = when
    add_events(hub, tmp_path, (CHECKPOINT, when - timedelta(days=1), None))


def add_events(hub: Hub, tmp_path: Path, *events: tuple[str, str, str]) -> None:
    """Import more (event, ts, user) rows into an existing hub."""
    path = tmp_path / f"more-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps({"event_id": f"x{time.monotonic_ns()}-{i}", "ts": iso(ts), "event": name,
                                        "user_id": user, "properties": {}}) + "\n"
                            for i, (name, ts, user) in enumerate(events)))
    (summary,) = hub.import_files([path], kind="events")
    assert summary.accepted == len(events)


def rules(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def keys(conditions) -> set[tuple[str, str, str]]:
    return set(conditions)


# -- the current period --------------------------------------------------------------------------------
def test_rules_judge_the_last_complete_period():
    assert current_period(Grain.MONTH, datetime(2026, 8, 5, 9)).label == "2026-07"
    assert current_period(Grain.MONTH, datetime(2026, 8, 1)).label == "2026-07"  # July is complete at Aug 1 00:00
    assert current_period(Grain.WEEK, datetime(2026, 7, 1)).label == "2026-W26"  # a Wednesday: the week before
    assert current_period(Grain.QUARTER, datetime(2026, 7, 1)).label == "2026-Q2"


# -- threshold: fires once, holds, resolves, fires again ------------------------------------------------
THRESHOLD = """
rules:
  - {id: few-active, kind: threshold, kpi: active_partner_rate, op: below, value: 50}
  - {id: few-active-incl, kind: threshold, kpi: active_partner_rate, op: below, value: 50, inclusive: true}
"""


def test_threshold_fires_once_resolves_when_cleared_and_fires_again_as_a_new_alert(tmp_path):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")  # July: 1 of 4 partners active = 25 %
    hub = at(fx, AUG_5)
    path = rules(tmp_path, THRESHOLD)

    first = run_alerts(hub, path)
    assert {(a.rule_id, a.value, a.period) for a in first.fired} == {("few-active", 25.0, "2026-07"),
                                                                      ("few-active-incl", 25.0, "2026-07")}
    assert first.fired[0].fired_at == AUG_5 and first.active == 2

    again = run_alerts(hub, path)  # still 25 %: nothing new
    assert (again.fired, again.resolved, again.active, again.still_active) == ((), (), 2, 2)
    assert len(list_alerts(hub, "all")) == 2

    hub.clock.now = datetime(2026, 8, 6, 9, 0)
    add_events(hub, tmp_path, ("Logged In", "2026-07-20 10:00", "uB"))  # July: 2 of 4 = 50 %, not below 50
    cleared = run_alerts(hub, path)
    assert [a.rule_id for a in cleared.resolved] == ["few-active"]
    assert cleared.resolved[0].resolved_at == datetime(2026, 8, 6, 9, 0)
    assert [a.rule_id for a in list_alerts(hub, "active")] == ["few-active-incl"]  # at or below 50 still holds

    reach(hub, tmp_path, SEP_2)  # the data covers August, which has no activity: 0 %, the condition is back
    back = run_alerts(hub, path)
    assert [(a.rule_id, a.value, a.period) for a in back.fired] == [("few-active", 0.0, "2026-08")]
    history = [a for a in list_alerts(hub, "all") if a.rule_id == "few-active"]
    assert [a.status for a in history] == ["active", "resolved"]  # newest first
    assert history[0].alert_id != history[1].alert_id


def test_the_running_period_is_not_judged(tmp_path):
    fx = four_partners(tmp_path)
    for u in ("uA", "uB", "uC"):
        fx.event("Logged In", "2026-07-03 10:00", user=u)  # July 75 %; August (running on Aug 5) has nothing
    hub = at(fx, AUG_5)
    assert run_alerts(hub, rules(tmp_path, THRESHOLD)).fired == ()


# -- band change ------------------------------------------------------------------------------------------
def test_band_change_fires_on_a_move_and_respects_to(tmp_path):
    fx = four_partners(tmp_path)
    for u in ("uA", "uB", "uC"):
        fx.event("Logged In", "2026-06-03 10:00", user=u)  # June 75 %: strong
    fx.event("Logged In", "2026-07-03 10:00", user="uA")  # July 25 %: low
    hub = at(fx, AUG_5)
    found = evaluate(hub, load_rules(rules(tmp_path, """
rules:
  - {id: any-move, kind: band_change, kpi: active_partner_rate}
  - {id: into-low, kind: band_change, kpi: active_partner_rate, to: [low]}
  - {id: into-moderate, kind: band_change, kpi: active_partner_rate, to: [moderate]}
"""), hub), AUG_5)
    assert keys(found) == {("any-move", "", "active_partner_rate"), ("into-low", "", "active_partner_rate")}
    assert "from strong to low" in found[("into-low", "", "active_partner_rate")].message


# -- change against the previous period -----------------------------------------------------------------
def test_change_pct_minus_50_fires_above_30_not_above_60(tmp_path):
    fx = Fixture(tmp_path)
    for p in "ABCDE":
        fx.partner(p)
        fx.user(f"u{p}", p)
    fx.event("Logged In", "2026-06-03 10:00", user="uA")
    fx.event("Logged In", "2026-06-04 10:00", user="uB")  # June: 2 active users / 5 partners = 40
    fx.event("Logged In", "2026-07-03 10:00", user="uA")  # July: 1 / 5 = 20, a change of -50 %
    hub = at(fx, AUG_5)
    found = evaluate(hub, load_rules(rules(tmp_path, """
rules:
  - {id: moved-30, kind: change_pct, kpi: portal_usage_rate, more_than: 30}
  - {id: moved-60, kind: change_pct, kpi: portal_usage_rate, more_than: 60}
  - {id: worse-30, kind: change_pct, kpi: portal_usage_rate, more_than: 30, direction: worse}
  - {id: edge-50, kind: change_pct, kpi: portal_usage_rate, more_than: 50}
"""), hub), AUG_5)
    assert {k[0] for k in found} == {"moved-30", "worse-30"}  # exactly -50 % is not more than 50 %
    assert "-50.0%" in found[("moved-30", "", "portal_usage_rate")].message
    assert found[("moved-30", "", "portal_usage_rate")].value == 20.0


def test_change_pct_worse_respects_a_down_kpi(tmp_path):
    fx = Fixture(tmp_path).partner("A").user("uA", "A")
    fx.event("Support Requested", "2026-06-03 10:00", user="uA", object="t1", topic="x")
    fx.event("Support Requested", "2026-06-04 10:00", user="uA", object="t2", topic="y")  # June 2 per partner
    fx.event("Support Requested", "2026-07-03 10:00", user="uA", object="t3", topic="z")  # July 1: -50 %, better
    hub = at(fx, AUG_5)
    found = evaluate(hub, load_rules(rules(tmp_path, """
rules:
  - {id: worse, kind: change_pct, kpi: support_requests_per_partner, more_than: 30, direction: worse}
  - {id: any, kind: change_pct, kpi: support_requests_per_partner, more_than: 30}
"""), hub), AUG_5)
    assert {k[0] for k in found} == {"any"}


# -- worsening ------------------------------------------------------------------------------------------
def test_worsening_two_periods_on_an_up_and_on_a_down_kpi(tmp_path):
    fx = Fixture(tmp_path).partner("A").user("uA", "A")
    logins = {"2026-05": 3, "2026-06": 2, "2026-07": 1}  # login_frequency (up): 3 -> 2 -> 1, worse twice
    requests = {"2026-05": 1, "2026-06": 2, "2026-07": 3}  # support_requests_per_partner (down): 1 -> 2 -> 3
    for month, n in logins.items():
        for i in range(n):
            fx.event("Logged In", f"{month}-0{i + 1} 10:00", user="uA")
    for month, n in requests.items():
        for i in range(n):
            fx.event("Support Requested", f"{month}-1{i} 10:00", user="uA", object=f"{month}-{i}", topic="t")
    hub = at(fx, AUG_5)
    found = evaluate(hub, load_rules(rules(tmp_path, """
rules:
  - {id: logins-2, kind: worsening, kpi: login_frequency, periods: 2}
  - {id: logins-3, kind: worsening, kpi: login_frequency, periods: 3}
  - {id: support-2, kind: worsening, kpi: support_requests_per_partner, periods: 2}
  - {id: tasks-2, kind: worsening, kpi: task_completion_rate, periods: 2}
"""), hub), AUG_5)
    # logins-3 needs April -> May worse too (April has no logins: no value); tasks have no value at all
    assert keys(found) == {("logins-2", "", "login_frequency"), ("support-2", "", "support_requests_per_partner")}
    assert "3 logins per user → 2 logins per user → 1 logins per user" in found[
        ("logins-2", "", "login_frequency")].message


def test_worsening_stops_when_a_period_improves(tmp_path):
    fx = Fixture(tmp_path).partner("A").user("uA", "A")
    for month, n in {"2026-05": 1, "2026-06": 3, "2026-07": 2}.items():  # up, then down: not two in a row
        for i in range(n):
            fx.event("Support Requested", f"{month}-1{i} 10:00", user="uA", object=f"{month}-{i}", topic="t")
    hub = at(fx, AUG_5)
    path = rules(tmp_path, "rules: [{id: s, kind: worsening, kpi: support_requests_per_partner, periods: 2}]")
    assert evaluate(hub, load_rules(path, hub), AUG_5) == {}


# -- scopes ---------------------------------------------------------------------------------------------
def test_segment_and_partner_scopes_get_separate_alerts(tmp_path):
    fx = four_partners(tmp_path)
    fx.partner("E", type="distributor").user("uE", "E")
    fx.event("Logged In", "2026-07-03 10:00", user="uA")  # resellers: A of A, B active = 50 %
    fx.event("Logged In", "2026-07-03 10:00", user="uC")  # referral: C of C, D = 50 %
    for d in (4, 5, 6):
        fx.event("Logged In", f"2026-07-0{d} 10:00", user="uE")  # distributor: 100 %; E: 3 logins per user
    hub = at(fx, AUG_5)
    path = rules(tmp_path, """
rules:
  - {id: seg, kind: threshold, kpi: active_partner_rate, scope: segment, by: type, op: below, value: 60}
  - {id: per-partner, kind: threshold, kpi: login_frequency, scope: partner, op: below, value: 2}
""")
    run = run_alerts(hub, path)
    assert {(a.rule_id, a.scope_key) for a in run.fired} == {
        ("seg", "type=referral"), ("seg", "type=reseller"),  # the program's row is not in a segment scope
        ("per-partner", "partner_id=A"), ("per-partner", "partner_id=C"),
    }
    assert "partner A (Partner A)" in next(a.message for a in run.fired if a.scope_key == "partner_id=A")

    hub.clock.now = datetime(2026, 8, 6)
    add_events(hub, tmp_path, ("Logged In", "2026-07-21 10:00", "uA"), ("Logged In", "2026-07-22 10:00", "uA"))
    later = run_alerts(hub, path)  # A now has 3 logins: only A's alert resolves
    assert [(a.rule_id, a.scope_key) for a in later.resolved] == [("per-partner", "partner_id=A")]
    assert later.fired == () and later.active == 3


# -- at risk --------------------------------------------------------------------------------------------
def test_at_risk_uses_the_injected_provider_and_is_left_alone_without_one(tmp_path):
    fx = four_partners(tmp_path)
    hub = at(fx, AUG_5)
    path = rules(tmp_path, "rules: [{id: risky, kind: at_risk, severity: critical}]")
    flagged = {"B": "no logins for 60 days"}
    calls = []

    def provider(h: Hub, now: datetime) -> dict[str, str]:
        calls.append(now)
        return dict(flagged)

    run = run_alerts(hub, path, at_risk=provider)
    (alert,) = run.fired
    assert (alert.rule_id, alert.scope_key, alert.kpi, alert.severity) == ("risky", "partner_id=B", "", "critical")
    assert "no logins for 60 days" in alert.message
    assert calls == [datetime(2026, 8, 5)]  # the data's now (the watermark), not the clock's 09:00

    skipped = run_alerts(hub, path)  # no provider: the rule is skipped, and B's alert is not resolved
    assert skipped.skipped == ("risky",) and skipped.resolved == () and skipped.active == 1

    flagged.clear()
    assert [a.scope_key for a in run_alerts(hub, path, at_risk=provider).resolved] == ["partner_id=B"]


# -- rule files -----------------------------------------------------------------------------------------
def test_bad_rule_files_list_every_problem_with_file_and_rule(tmp_path):
    hub = four_partners(tmp_path).hub()
    path = rules(tmp_path, """
channels:
  slack: {webhook: {url: "http://127.0.0.1:1/x"}}
  broken: {email: {to: [a@example.com], host: smtp.example.com}}
rules:
  - {id: typo, kind: threshold, kpi: portal_usage_rat, op: below, value: 50}
  - {id: no-op, kind: threshold, kpi: portal_usage_rate, value: 50}
  - {id: no-bands, kind: band_change, kpi: login_frequency}
  - {id: lagging, kind: worsening, kpi: partner_churn_rate, periods: 2}
  - {id: unknown-channel, kind: threshold, kpi: portal_usage_rate, op: above, value: 1, channels: [teams]}
  - {id: seg-no-by, kind: threshold, kpi: portal_usage_rate, scope: segment, op: above, value: 1}
  - {id: odd, kind: crosses, kpi: portal_usage_rate}
  - {id: typo, kind: at_risk}
""", name="team-alerts.yaml")
    with pytest.raises(AlertRulesError) as caught:
        load_rules(path, hub)
    text = str(caught.value)
    problems = caught.value.problems
    assert all(p.startswith(f"{path}: ") for p in problems)
    expected = [
        ("rule 'typo'", "did you mean portal_usage_rate"),
        ("rule 'no-op'", "op: Field required"),
        ("rule 'no-bands'", "login_frequency has no bands"),
        ("rule 'lagging'", "not a leading indicator"),
        ("rule 'unknown-channel'", "'teams' is not defined"),
        ("rule 'seg-no-by'", "needs `by: TRAIT`"),
        ("rule 'odd'", "'crosses' is not one of"),
        ("rule 'typo'", "ids must be unique"),
        ("channel 'broken'", "from: Field required"),
    ]
    for where, what in expected:
        assert any(where in p and what in p for p in problems), (where, what, text)
    assert len(problems) == len(expected)


def test_unreadable_and_unparsable_rule_files(tmp_path):
    hub = four_partners(tmp_path).hub()
    with pytest.raises(AlertRulesError, match="broken.yaml: not valid YAML"):
        load_rules(rules(tmp_path, "rules: [ {id: x", name="broken.yaml"), hub)
    with pytest.raises(AlertRulesError, match="expected a mapping with a `rules:` list"):
        load_rules(rules(tmp_path, "- just a list", name="list.yaml"), hub)
    with pytest.raises(UsageError, match="cannot read the alert rules file"):
        load_rules(tmp_path / "missing.yaml", hub)


def test_the_default_rules_load_and_run(tmp_path):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")
    hub = at(fx, AUG_5)
    default = load_rules(None, hub)
    assert {r.kind for r in default.rules} == {"threshold", "band_change", "change_pct", "worsening", "at_risk",
                                               "stale_data"}
    run = run_alerts(hub)
    assert "usage-rate-below-50" in {a.rule_id for a in run.fired}  # July: 1 active user / 4 partners = 25
    assert run.skipped == ("partner-at-risk",)


# -- delivery through a real SMTP server and a real HTTP receiver ---------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"


class Receiver:
    """A webhook receiver: collects JSON bodies and answers with `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.answered: list[int] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(json.loads(body))
                outer.answered.append(outer.status)
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def delivered(self) -> list[dict]:
        return [b for b, s in zip(self.bodies, self.answered, strict=True) if s < 300]


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def delivery_rules(tmp_path: Path, inbox: Inbox, receiver: Receiver) -> Path:
    return rules(tmp_path, f"""
channels:
  hook: {{webhook: {{url: "{receiver.url}", timeout: 5}}}}
  mail: {{email: {{to: [ops@example.com, lead@example.com], from: partnerkpi@example.com, host: 127.0.0.1,
                  port: {inbox.port}}}}}
rules:
  - {{id: few-active, kind: threshold, kpi: active_partner_rate, op: below, value: 50, severity: critical,
      channels: [hook, mail]}}
""")


def test_fired_and_resolved_messages_arrive_once_each(tmp_path, inbox, receiver):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")
    hub = at(fx, AUG_5)
    path = delivery_rules(tmp_path, inbox, receiver)

    first = run_alerts(hub, path)
    assert (first.deliveries_ok, first.deliveries_failed) == (2, 0)
    (mail,) = inbox.messages
    assert mail["Subject"] == "[partnerkpi] CRITICAL: few-active (whole program)"
    assert mail["To"] == "ops@example.com, lead@example.com" and mail["From"] == "partnerkpi@example.com"
    assert "Active Partner Rate is 25% in 2026-07, below 50" in mail.get_content()
    (body,) = receiver.bodies
    assert "few-active" in body["text"] and "25%" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]

    assert run_alerts(hub, path).deliveries_ok == 0  # holds: nothing is sent again
    assert (len(inbox.messages), len(receiver.bodies)) == (1, 1)

    add_events(hub, tmp_path, ("Logged In", "2026-07-20 10:00", "uB"), ("Logged In", "2026-07-20 11:00", "uC"))
    resolved = run_alerts(hub, path)
    assert len(resolved.resolved) == 1 and resolved.deliveries_ok == 2
    assert inbox.messages[1]["Subject"] == "[partnerkpi] RESOLVED: few-active (whole program)"
    assert "the condition no longer holds" in inbox.messages[1].get_content()
    assert receiver.bodies[1]["text"].startswith("[partnerkpi] RESOLVED")

    assert run_alerts(hub, path).deliveries_ok == 0
    assert (len(inbox.messages), len(receiver.bodies)) == (2, 2)
    assert {(d["channel"], d["event"], d["status"], d["attempts"]) for d in list_deliveries(hub)} == {
        ("hook", "fired", "ok", 1), ("mail", "fired", "ok", 1), ("hook", "resolved", "ok", 1),
        ("mail", "resolved", "ok", 1)}


def test_a_failed_webhook_is_retried_without_resending_the_email(tmp_path, inbox, receiver):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")
    hub = at(fx, AUG_5)
    path = delivery_rules(tmp_path, inbox, receiver)
    receiver.status = 500

    first = run_alerts(hub, path)
    assert (first.deliveries_ok, first.deliveries_failed) == (1, 1)
    hook = next(d for d in list_deliveries(hub) if d["channel"] == "hook")
    assert (hook["status"], hook["delivered_at"]) == ("failed", None) and hook["error"].startswith("HTTP 500")

    receiver.status = 200
    hub.clock.now = datetime(2026, 8, 5, 9, 5)
    second = run_alerts(hub, path)
    assert (second.fired, second.deliveries_ok, second.deliveries_failed) == ((), 1, 0)
    assert receiver.answered == [500, 200] and len(receiver.delivered()) == 1
    assert len(inbox.messages) == 1  # the email went out on the first run and is not sent again
    hook = next(d for d in list_deliveries(hub) if d["channel"] == "hook")
    assert (hook["status"], hook["attempts"], hook["delivered_at"], hook["error"]) == (
        "ok", 2, datetime(2026, 8, 5, 9, 5), None)


def test_an_unreachable_smtp_server_and_missing_credentials_are_failed_deliveries(tmp_path, monkeypatch):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")
    hub = at(fx, AUG_5)
    monkeypatch.delenv("ALERTS_SMTP_USER", raising=False)
    path = rules(tmp_path, f"""
channels:
  down: {{email: {{to: [ops@example.com], from: a@example.com, host: 127.0.0.1, port: {free_port()}, timeout: 2}}}}
  secret: {{email: {{to: [ops@example.com], from: a@example.com, host: 127.0.0.1, port: 25,
                     username_env: ALERTS_SMTP_USER, password_env: ALERTS_SMTP_PASSWORD}}}}
rules:
  - {{id: few-active, kind: threshold, kpi: active_partner_rate, op: below, value: 50, channels: [down, secret]}}
""")
    run = run_alerts(hub, path)
    assert (run.deliveries_ok, run.deliveries_failed) == (0, 2)
    errors = {d["channel"]: d["error"] for d in list_deliveries(hub)}
    assert "ConnectionRefusedError" in errors["down"]
    assert "ALERTS_SMTP_USER" in errors["secret"]


# -- scheduler and CLI ------------------------------------------------------------------------------------
def test_the_scheduler_runs_repeatedly_survives_errors_and_stops():
    calls: list[float] = []

    def run() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("boom")

    scheduler = AlertScheduler(0.02, run).start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()
    assert len(calls) >= 3 and scheduler.errors == 1 and str(scheduler.last_error) == "boom"
    assert not scheduler.alive
    done = len(calls)
    time.sleep(0.1)
    assert len(calls) == done


def test_pokes_run_soon_but_at_most_once_per_gap():
    calls: list[float] = []
    scheduler = AlertScheduler(3600, lambda: calls.append(time.monotonic()), min_gap_seconds=0.3).start()
    poked = time.monotonic()
    scheduler.poke()  # new data: a run without waiting for the hour
    deadline = poked + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(5):  # a burst of flushes right after the run: one more run, not five
        scheduler.poke()
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    scheduler.stop()
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.3  # the burst waited for the gap


def test_cli_alerts_run_and_list(tmp_path):
    from partnerkpi.cli import alerts as cli_alerts

    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")
    fx.event(CHECKPOINT, "2026-08-04 12:00")  # the data covers July
    fx.hub().close()
    db = str(tmp_path / "hub.duckdb")
    path = rules(tmp_path, THRESHOLD)
    app = typer.Typer()
    cli_alerts.register(app)
    runner = CliRunner()

    ran = runner.invoke(app, ["alerts", "run", "--db", db, "--rules", str(path), "--now", "2026-08-05T09:00:00Z"])
    assert ran.exit_code == 0, ran.output
    assert "2 fired" in ran.output and "few-active" in ran.output

    listed = runner.invoke(app, ["alerts", "list", "--db", db, "--status", "active", "--json"])
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.output)
    assert {(a["rule_id"], a["period"], a["status"]) for a in alerts} == {
        ("few-active", "2026-07", "active"), ("few-active-incl", "2026-07", "active")}

    again = runner.invoke(app, ["alerts", "run", "--db", db, "--rules", str(path), "--now", "2026-08-05"])
    assert again.exit_code == 0 and "0 fired" in again.output and "2 still active" in again.output


def test_cli_rejects_an_unknown_status_and_a_bad_now():
    from partnerkpi.cli import alerts as cli_alerts

    app = typer.Typer()
    cli_alerts.register(app)
    assert CliRunner().invoke(app, ["alerts", "list", "--status", "open"]).exit_code == 2
    with pytest.raises(UsageError, match="--now 'yesterday' is not a date"):
        cli_alerts._parse_now("yesterday")
    assert cli_alerts._parse_now("2026-08-05T11:00:00+02:00") == datetime(2026, 8, 5, 9, 0)


def test_the_scheduler_runs_alerts_on_its_thread_and_fires_once(tmp_path):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")
    hub = at(fx, AUG_5)
    path = rules(tmp_path, THRESHOLD)
    runs = []
    scheduler = AlertScheduler(0.05, lambda: runs.append(run_alerts(hub, path))).start()
    deadline = time.monotonic() + 30
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert scheduler.errors == 0 and len(runs) >= 3
    assert [len(r.fired) for r in runs[:3]] == [2, 0, 0]
    assert len(list_alerts(hub, "all")) == 2


def test_smtp_credentials_come_from_the_named_environment_variables(tmp_path, monkeypatch):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else None)
        return AuthResult(success=auth_data == LoginPassword(b"alerts", b"s3cret"))

    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        fx = four_partners(tmp_path)
        fx.event("Logged In", "2026-07-03 10:00", user="uA")
        hub = at(fx, AUG_5)
        monkeypatch.setenv("ALERTS_SMTP_USER", "alerts")
        monkeypatch.setenv("ALERTS_SMTP_PASSWORD", "s3cret")
        path = rules(tmp_path, f"""
channels:
  mail: {{email: {{to: [ops@example.com], from: a@example.com, host: 127.0.0.1, port: {controller.port},
                   username_env: ALERTS_SMTP_USER, password_env: ALERTS_SMTP_PASSWORD}}}}
rules:
  - {{id: few-active, kind: threshold, kpi: active_partner_rate, op: below, value: 50, channels: [mail]}}
""")
        assert run_alerts(hub, path).deliveries_ok == 1
    finally:
        controller.stop()
    assert seen == [(b"alerts", b"s3cret")] and len(handler.messages) == 1


# -- completeness: the data's now, and a stopped feed ---------------------------------------------------------
STALE = """
channels:
  hook: {webhook: {url: "%s", timeout: 5}}
rules:
  - {id: few-active, kind: threshold, kpi: active_partner_rate, op: below, value: 50}
  - {id: feed, kind: stale_data, severity: critical, channels: [hook]}
"""


def test_a_stopped_feed_raises_one_stale_alert_delivered_once_and_resolved_when_data_arrives(tmp_path, receiver):
    fx = four_partners(tmp_path)
    for u in ("uA", "uB", "uC"):
        fx.event("Logged In", "2026-07-03 10:00", user=u)  # July: 75 %, the rule holds back
    hub = at(fx, AUG_5)  # the data reaches 4 August (watermark 5 August 00:00)
    path = rules(tmp_path, STALE % receiver.url)
    assert run_alerts(hub, path).fired == ()  # 9 hours past the watermark: fresh

    hub.clock.now = datetime(2026, 8, 8, 0, 0)  # exactly 3 days past: not yet stale (more than 3 days is)
    assert run_alerts(hub, path).fired == ()
    hub.clock.now = datetime(2026, 10, 20, 9, 0)  # the feed stopped: August and September were never covered
    stale = run_alerts(hub, path)
    (alert,) = stale.fired  # one alert, no "0 % in 2026-09" beside it
    assert (alert.rule_id, alert.scope_key, alert.severity, alert.period) == ("feed", "", "critical", "2026-08-05")
    assert "no new data since 2026-08-04" in alert.message and "76.38 days ago" in alert.message
    assert alert.fired_at == datetime(2026, 10, 20, 9, 0)  # stamped by the wall clock
    assert (stale.deliveries_ok, len(receiver.bodies)) == (1, 1)

    hub.clock.now = datetime(2026, 10, 21, 9, 0)
    again = run_alerts(hub, path)
    assert (again.fired, again.resolved, again.active, again.deliveries_ok) == ((), (), 1, 0)
    assert len(receiver.bodies) == 1  # not delivered twice

    reach(hub, tmp_path, datetime(2026, 10, 22, 9, 0))  # data arrives again (no activity since July)
    back = run_alerts(hub, path)
    assert [a.rule_id for a in back.resolved] == ["feed"]
    assert [(a.rule_id, a.period, a.value) for a in back.fired] == [("few-active", "2026-09", 0.0)]
    assert [b["text"].split("\n")[0] for b in receiver.bodies][-1].startswith("[partnerkpi] RESOLVED: feed")


def test_nothing_refers_to_a_period_after_the_watermark_on_data_that_ended_long_ago(tmp_path):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-06-10 10:00", user="uA")
    fx.event("Logged In", "2026-07-31 23:59:59", user="uA")  # the data ends with July
    hub = fx.hub()
    hub.clock = FixedClock(datetime(2026, 12, 5, 19, 0))
    when = []

    def provider(h: Hub, now: datetime) -> dict[str, str]:
        when.append(now)
        return {"B": "no activity"}

    run = run_alerts(hub, None, at_risk=provider)
    assert when == [datetime(2026, 8, 1)]  # the watermark, not the December clock
    periods = {a.rule_id: a.period for a in run.fired}
    assert periods["data-stale"] == "2026-08-01"
    assert all(p <= "2026-07" for rule, p in periods.items() if rule != "data-stale"), periods
    assert periods["usage-rate-below-50"] == "2026-07" and periods["partner-at-risk"] == "2026-07"
    assert len([a for a in run.fired if a.rule_id == "data-stale"]) == 1


def test_without_data_no_rule_judges_a_period(tmp_path):
    fx = four_partners(tmp_path)
    hub = at_no_data = fx.hub()
    at_no_data.clock = FixedClock(AUG_5)
    run = run_alerts(hub, None, at_risk=lambda h, now: {"A": "never active"})
    assert run.fired == ()
