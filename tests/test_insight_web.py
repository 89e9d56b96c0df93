"""The insight pages and their JSON twins through the real app, signed in as an analyst, on the tiny programs of
the insight libraries' own tests, with the same hand-computed figures: at-risk and inactive partners
(test_health / test_risk), alerts (test_alerts), targets and the quarterly review (test_review), impact
(test_impact), the partner page's health score, and the errors of the insight routes."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings
from partnerkpi.web import create_app
from tests.kpi_fixtures import Fixture
from tests.test_alerts import AUG_5, add_events, four_partners
from tests.test_health import AS_OF, CONFIG
from tests.test_health import build as health_program
from tests.test_impact import build_program as impact_program
from tests.test_lifecycle import build_lifecycle_program
from tests.test_review import build_review_program
from tests.web_fixtures import ANALYST, form_token, sign_in

PARTNER_A = ("pat@a.example", "partner-pass")  # a partner user of the health program's partner A
NO_SCHEDULE = 3600.0  # the app's own alert schedule never runs during a test: the tests run the watch themselves


def served(db: Path, clock: datetime, **settings) -> tuple[Hub, TestClient]:
    """An app over the DB file with a fixed clock, not yet started; the analyst is added."""
    hub = Hub.open(db, clock=FixedClock(clock))
    Credentials(hub.store).add_user(*ANALYST, "analyst")
    app = create_app(Settings(db=str(db), alert_interval=NO_SCHEDULE, **settings), hub=hub)
    return hub, TestClient(app)


def signed_in(client: TestClient, user: tuple[str, str] = ANALYST) -> TestClient:
    assert sign_in(client, *user).status_code == 303
    return client


def table(html: str, table_id: str) -> str:
    """The HTML of one table of a page (by its id)."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, table_id
    return match.group(0)


def rows(html: str) -> list[str]:
    return re.findall(r"<tr\b.*?</tr>", html, re.S)


# -- at-risk and inactive partners, and the partner page's health: the program of test_health ---------------
# A: 48 (watch); B: 35 (at_risk, silent since Jan 15: 167 days before July 1); C: 64 (watch, never active);
# D offboarded, E onboarded exactly at July 1: not scored. The clock stands at July 1, 00:00, before the
# midnight after the last event (July 2's task completion), so health is judged at July 1 as in the library.
@pytest.fixture(scope="module")
def health_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("health-web")
    health_program(root).hub().close()
    config = root / "health.yaml"
    config.write_text(CONFIG)
    hub, client = served(root / "hub.duckdb", AS_OF, health=config)
    Credentials(hub.store).add_user(*PARTNER_A, "partner", "A")
    with client:
        yield client
    hub.close()


@pytest.fixture(scope="module")
def health_analyst(health_app):
    return signed_in(health_app)


def test_at_risk_json_lists_the_partner_with_score_level_reason_and_trend(health_analyst):
    body = health_analyst.get("/api/v1/at-risk").json()
    assert body["as_of"] == "2026-07-01T00:00:00Z" and body["days"] == 30
    (b,) = body["at_risk"]  # only B is at risk (35 < 40); A (48) and C (64) are on watch
    assert b["partner_id"] == "B" and b["level"] == "at_risk"
    # (40 × 0 [167 days silent] + 20 × 50 + 20 × 50 + 10 × 100 + 10 × 50) / 100 = 35
    assert b["score"] == pytest.approx(35.0, abs=1e-6) and b["computed_score"] == pytest.approx(35.0, abs=1e-6)
    assert b["reasons"] == ["no activity for 167 days"]
    assert b["last_active"] == "2026-01-15T00:00:00Z" and b["days_inactive"] == pytest.approx(167.0, abs=1e-6)
    # recency is 0 from 40 days on: 35 at each of May 2, June 1 and July 1
    assert [(p["as_of"], round(p["score"], 6)) for p in b["trend"]] == [
        ("2026-05-02", 35.0), ("2026-06-01", 35.0), ("2026-07-01", 35.0)]
    assert b["levers"] and b["override_reason"] is None


def test_at_risk_days_changes_the_inactive_list(health_analyst):
    def inactive(days: int) -> list[tuple[str, float | None]]:
        body = health_analyst.get("/api/v1/at-risk", params={"days": days}).json()
        assert body["days"] == days
        return [(e["partner_id"], e["days_inactive"]) for e in body["inactive"]]

    # never active first (C), then the longest idle: B (167 days); A was last active June 21: 10 days before
    assert inactive(30) == [("C", None), ("B", pytest.approx(167.0))]
    assert [p for p, _ in inactive(10)] == ["C", "B"]  # June 21 is exactly 10 days back: not before the cutoff
    assert inactive(9) == [("C", None), ("B", pytest.approx(167.0)), ("A", pytest.approx(10.0))]
    assert [p for p, _ in inactive(168)] == ["C"]  # B's 167 days are fewer than 168
    assert health_analyst.get("/api/v1/at-risk", params={"days": 0}).status_code == 422


def test_at_risk_page_shows_the_partner_and_its_reason(health_analyst):
    page = health_analyst.get("/at-risk", params={"days": 9})
    assert page.status_code == 200
    risky = table(page.text, "at-risk")
    assert re.findall(r'data-partner="([^"]+)"', risky) == ["B"]
    (row,) = rows(risky)[1:]
    assert "<li>no activity for 167 days</li>" in row and ">35<" in row and "at risk" in row
    assert "35 → 35 → 35" in row
    assert re.findall(r'data-partner="([^"]+)"', table(page.text, "inactive")) == ["C", "B", "A"]
    assert "Inactive for 9 days or more" in page.text


def test_partner_json_carries_health_for_the_analyst(health_analyst):
    body = health_analyst.get("/api/v1/partners/A").json()
    health = body["health"]
    assert isinstance(health, dict)
    # recency 30 + logins 5 + tasks 5 + overdue 0 + satisfaction 8 = 48: watch (40 <= 48 < 70)
    assert health["score"] == pytest.approx(48.0, abs=1e-6) and health["level"] == "watch"
    got = {c["name"]: (c["measured"], c["score"], c["contribution"]) for c in health["components"]}
    assert got["recency"] == pytest.approx((10.0, 75.0, 30.0))  # 10 days -> 100 − 10 × 100 / 40 = 75 -> 40 × 0.75
    assert got["logins"] == pytest.approx((-75.0, 25.0, 5.0))  # 1 vs 4 logins: −75 %
    assert health["reasons"] == [
        "logins down 75 % over 30 days (1 in the last 30 days vs 4 per 30 days before)",
        "1 of 4 tasks due in the last 90 days done on time (25 %)",
        "2 overdue compliance tasks",
    ]
    b = health_analyst.get("/api/v1/partners/B").json()["health"]
    assert b["score"] == pytest.approx(35.0, abs=1e-6) and b["level"] == "at_risk"


def test_partner_json_has_no_health_for_the_partners_own_user(health_app):
    client = TestClient(health_app.app)  # the running app (its lifespan already entered), another browser
    assert sign_in(client, *PARTNER_A).headers["location"] == "/partners/A"
    r = client.get("/api/v1/partners/A")
    assert r.status_code == 200 and r.json()["partner"]["partner_id"] == "A"
    assert "health" in r.json() and r.json()["health"] is None
    assert client.get("/api/v1/at-risk").status_code == 403

    page = client.get("/partners/A")
    forged = client.post("/partners/A/health-override", data={
        "csrf_token": form_token(page.text), "level": "healthy", "reason": "me", "expires_at": "2026-12-31"})
    assert forged.status_code == 403  # partner users cannot override their own health


def test_staff_override_a_level_with_a_reason_until_a_date_and_remove_it(health_analyst):
    page = health_analyst.get("/partners/B")
    assert 'class="pickers override-add"' in page.text and '<option value="at_risk">' in page.text
    made = health_analyst.post("/partners/B/health-override", data={
        "csrf_token": form_token(page.text), "level": "watch", "reason": "renewal signed on 30 June",
        "expires_at": "2026-09-30"}, follow_redirects=False)
    assert made.status_code == 303
    health = health_analyst.get("/api/v1/partners/B").json()["health"]
    # B computes 35 (at_risk); the override sets its level until September 30, with who and why
    assert (health["level"], health["computed_level"], round(health["computed_score"], 6)) == ("watch", "at_risk", 35)
    assert health["override"]["reason"] == "renewal signed on 30 June"
    assert health["override"]["created_by"] == ANALYST[0]
    assert "B" not in {r["partner_id"] for r in health_analyst.get("/api/v1/at-risk").json()["at_risk"]}
    page = health_analyst.get("/partners/B")
    assert "renewal signed on 30 June" in page.text
    removed = health_analyst.post("/partners/B/health-override/remove", data={
        "csrf_token": form_token(page.text), "override_id": health["override"]["override_id"]},
        follow_redirects=False)
    assert removed.status_code == 303
    assert health_analyst.get("/api/v1/partners/B").json()["health"]["level"] == "at_risk"
    assert "B" in {r["partner_id"] for r in health_analyst.get("/api/v1/at-risk").json()["at_risk"]}
    page = health_analyst.get("/partners/B")
    past = health_analyst.post("/partners/B/health-override", data={
        "csrf_token": form_token(page.text), "level": "watch", "reason": "x", "expires_at": "2026-06-30"})
    assert past.status_code == 400 and "not in the future" in past.text


# -- alerts: the four partners of test_alerts ------------------------------------------------------------
RULES = """
rules:
  - {id: few-active, kind: threshold, kpi: active_partner_rate, op: below, value: 50, severity: critical}
"""


@pytest.fixture
def alerts_app(tmp_path):
    fx = four_partners(tmp_path)
    fx.event("Logged In", "2026-07-03 10:00", user="uA")  # July: 1 of 4 partners active = 25 %
    fx.event("Data Checkpoint", "2026-08-04 12:00")  # the data covers July
    fx.hub().close()
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    hub, client = served(tmp_path / "hub.duckdb", AUG_5, alerts=rules)
    with client:
        yield hub, signed_in(client)
    hub.close()


def test_alert_fires_once_is_acknowledged_through_the_form_and_resolves(alerts_app, tmp_path):
    hub, client = alerts_app
    watch = client.app.state.partnerkpi.watch
    assert client.get("/api/v1/alerts").json() == {"status": "active", "alerts": [],  # nothing ran yet
                                                   "data_as_of": "2026-08-05T00:00:00Z"}
    watch()
    watch()  # the condition still holds: no second alert
    (alert,) = client.get("/api/v1/alerts").json()["alerts"]
    assert (alert["rule_id"], alert["scope_key"], alert["kpi"], alert["severity"]) == (
        "few-active", "", "active_partner_rate", "critical")
    assert (alert["period"], alert["value"], alert["status"]) == ("2026-07", 25.0, "active")  # 1 / 4 = 25 %
    assert alert["message"] == "whole program: Active Partner Rate is 25% in 2026-07, below 50"
    assert alert["fired_at"] == "2026-08-05T09:00:00Z" and alert["acknowledged_by"] is None
    assert alert["deliveries"] == []  # no channel: the dashboard only
    alert_id = alert["alert_id"]

    page = client.get("/alerts")
    assert f'action="/alerts/{alert_id}/acknowledge"' in page.text and alert["message"] in page.text
    token = form_token(page.text)
    forged = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token[::-1]}, follow_redirects=False)
    assert forged.status_code == 403
    missing = client.post(f"/alerts/{alert_id}/acknowledge", data={}, follow_redirects=False)
    assert missing.status_code == 403
    assert client.get("/api/v1/alerts").json()["alerts"][0]["acknowledged_by"] is None

    done = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/alerts"
    (seen,) = client.get("/api/v1/alerts").json()["alerts"]
    assert (seen["acknowledged_by"], seen["acknowledged_at"]) == (ANALYST[0], "2026-08-05T09:00:00Z")
    assert f"seen by {ANALYST[0]}" in client.get("/alerts").text
    unknown = client.post("/api/v1/alerts/999/acknowledge", headers={"X-CSRF-Token": token})
    assert unknown.status_code == 404 and "no alert #999" in unknown.json()["error"]

    # B and C log in in July too: 3 of 4 = 75 %, not below 50; the next watch resolves the alert
    hub.clock.now = datetime(2026, 8, 5, 10, 0)  # an hour later (the session stays signed in: 8 idle hours)
    add_events(hub, tmp_path, ("Logged In", "2026-07-20 10:00", "uB"), ("Logged In", "2026-07-21 10:00", "uC"))
    assert client.get("/api/v1/alerts").json()["alerts"][0]["status"] == "active"  # until the watch runs
    watch()
    assert client.get("/api/v1/alerts").json()["alerts"] == []
    (resolved,) = client.get("/api/v1/alerts", params={"status": "resolved"}).json()["alerts"]
    assert (resolved["alert_id"], resolved["status"], resolved["resolved_at"]) == (
        alert_id, "resolved", "2026-08-05T10:00:00Z")
    assert resolved["acknowledged_by"] == ANALYST[0] and resolved["value"] == 25.0  # as it was when it fired
    assert [a["alert_id"] for a in client.get("/api/v1/alerts", params={"status": "all"}).json()["alerts"]] == [
        alert_id]
    page = client.get("/alerts", params={"status": "resolved"})
    assert f'data-alert="{alert_id}"' in page.text and 'class="alert-resolved"' in page.text


# -- targets and the quarterly review: the program of test_review --------------------------------------------
# Q2 2026: only A active (1 of 4 = 25 %); Q3: A, B and C (3 of 4 = 75 %); one user per partner, so portal usage
# has the same numbers. The targets file: portal usage 80 from 2026-07-01 ("stretch", beside the default 75 from
# 2026-01-01); active partners 70 from 2026-04-01 (beside the default 75 from 2026-01-01); support requests per
# partner 0.8 from 2026-07-02 (no default). Program Q3: portal usage 75 < 80 missed (gap −5); active partners
# 75 >= 70 met (gap +5); support: its target starts after Jul 1, none in force.
@pytest.fixture(scope="module")
def review_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-web")
    db = build_review_program(root)
    targets = root / "targets.yaml"
    hub, client = served(db, datetime(2026, 8, 2, 12), targets=targets)
    with client:
        yield signed_in(client)
    hub.close()


def test_targets_json_review_counts_met_and_missed(review_app):
    body = review_app.get("/api/v1/targets", params={"quarter": "2026-Q3"}).json()
    review = body["review"]
    assert (review["quarter"], review["previous_quarter"]) == ("2026-Q3", "2026-Q2")
    met = [(t["kpi"], t["segment"], t["target"], t["value"]) for t in review["targets_met"]]
    missed = [(t["kpi"], t["segment"], t["target"], t["value"]) for t in review["targets_missed"]]
    assert met == [("active_partner_rate", {}, 70.0, pytest.approx(75.0))]
    assert missed == [("portal_usage_rate", {}, 80.0, pytest.approx(75.0))]
    assert review["targets_missed"][0]["gap"] == pytest.approx(-5.0)
    assert review["counts"]["targets_met"] == 1 and review["counts"]["targets_missed"] == 1
    listed = {(t["kpi"], tuple(t["segment"].items()), t["effective_from"], t["value"]) for t in body["targets"]}
    assert {("portal_usage_rate", (), "2026-07-01", 80.0), ("portal_usage_rate", (), "2026-01-01", 75.0),
            ("active_partner_rate", (("type", "agency"),), "2026-01-01", 50.0),
            ("support_requests_per_partner", (), "2026-07-02", 0.8)} <= listed
    # without a quarter: the last complete one; the data ends on 2026-08-01, so Q2 (against Q1)
    assert review_app.get("/api/v1/targets").json()["review"]["quarter"] == "2026-Q2"


def test_targets_page_marks_the_missed_target(review_app):
    page = review_app.get("/targets", params={"quarter": "2026-Q3"})
    assert page.status_code == 200
    checks = {re.search(r'class="target-([a-z-]+)[ "]', r).group(1): r
              for r in rows(table(page.text, "target-checks"))[1:]}
    assert set(checks) == {"missed", "met"}
    # coloured by status: the missed usage rate (75 vs 80, within 10 %) is watch, the met target good
    assert 'status-watch' in checks["missed"] and 'status-good' in checks["met"]
    assert "Portal Usage Rate" in checks["missed"] and "<td>missed</td>" in checks["missed"]
    assert "Active Partner Rate" in checks["met"] and "<td>met</td>" in checks["met"]
    assert "Portal Usage Rate" not in checks["met"]


def test_kpi_json_lists_the_target_in_force_per_period(review_app):
    def targets(kpi: str, start: str, end: str) -> list[tuple[str, float, str | None]]:
        # the data reaches 2026-08-01: August is the running month, shown when asked
        body = review_app.get(f"/api/v1/kpis/{kpi}", params={"from": start, "to": end, "partial": 1}).json()
        return [(t["period"], t["value"], t["label"]) for t in body["targets"]]

    # support: 0.8 from July 2: July (starting July 1) has none yet, August has it
    assert targets("support_requests_per_partner", "2026-06-01", "2026-09-01") == [("2026-08", 0.8, None)]
    # portal usage: the default 75 until June, the file's 80 ("stretch") from July 1 on
    portal = targets("portal_usage_rate", "2026-06-01", "2026-09-01")
    assert [(p, v) for p, v, _ in portal] == [("2026-06", 75.0), ("2026-07", 80.0), ("2026-08", 80.0)]
    assert [label for _, _, label in portal][1:] == ["stretch", "stretch"]
    # active partners: the default 75 in March, the file's 70 from April 1 on
    assert [(p, v) for p, v, _ in targets("active_partner_rate", "2026-03-01", "2026-05-01")] == [
        ("2026-03", 75.0), ("2026-04", 70.0)]
    assert targets("portal_usage_rate", "2025-11-01", "2026-01-01") == []  # before any target


# -- impact: the program of test_impact ------------------------------------------------------------------
# Around 2026-08-01, month grain, the data's range June .. September: two whole months on each side. Revenue per
# partner-month in the population: before 4600 / 16 = 287.5, after 7500 / 16 = 468.75: +63.04 %
# (= 7500 / 4600 − 1 = 3750 / 2300 − 1). Risers (R1 +50 %, R2 +100 %) − fallers (F1 −20 %, F2 0 %) = 0.75 + 0.1.
@pytest.fixture(scope="module")
def impact_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("impact-web")
    impact_program(Fixture(root)).hub().close()
    hub, client = served(root / "hub.duckdb", datetime(2026, 10, 1))
    with client:
        yield signed_in(client)
    hub.close()


AROUND = {"kpi": "active_partner_rate", "on": "partner_revenue", "around": "2026-08-01"}


def test_impact_json_matches_the_hand_computed_before_after(impact_app):
    r = impact_app.get("/api/v1/impact", params=AROUND)
    assert r.status_code == 200
    body = r.json()
    assert (body["kpi"], body["on"], body["around"], body["grain"]) == (
        "active_partner_rate", "partner_revenue", "2026-08-01", "month")
    views = {b["on"]: b for b in body["before_after"]}
    assert list(views) == ["active_partner_rate", "partner_revenue"]
    revenue = views["partner_revenue"]
    assert revenue["mean_before"] == pytest.approx(4600 / 16) and revenue["mean_after"] == pytest.approx(7500 / 16)
    assert revenue["relative_change"] == pytest.approx((7500 / 16) / (4600 / 16) - 1)
    assert revenue["interval"]["low"] <= revenue["relative_change"] <= revenue["interval"]["high"]
    rvf = body["risers_vs_fallers"]
    assert (rvf["risers"]["n"], rvf["fallers"]["n"]) == (2, 2)
    assert rvf["difference"] == pytest.approx((0.5 + 1.0) / 2 - (-0.2 + 0.0) / 2)  # 0.85


def test_impact_page_renders_both_chart_specs(impact_app):
    page = impact_app.get("/impact", params=AROUND)
    assert page.status_code == 200
    assert 'data-spec="spec-before-after"' in page.text and 'data-spec="spec-risers"' in page.text

    def spec(spec_id: str) -> dict:
        match = re.search(rf'<script type="application/json" id="{spec_id}">(.*?)</script>', page.text, re.S)
        assert match, spec_id
        return json.loads(match.group(1))

    before_after = spec("spec-before-after")
    assert sorted(layer["mark"]["type"] for layer in before_after["layer"]) == ["bar", "line"]
    # program revenue: June 1000 + 1000 + 1000 + 250 + 100 = 3350, July 1000 + 250 = 1250
    points = {(p["period"], p["side"]): p["value"] for p in before_after["layer"][0]["data"]["values"]}
    assert points[("2026-06", "before")] == pytest.approx(3350.0)
    assert points[("2026-07", "before")] == pytest.approx(1250.0)
    assert {side for _, side in points} == {"before", "after"}
    risers = spec("spec-risers")
    assert risers["mark"]["type"] == "bar"
    changes = {v["group"]: (v["partners"], v["change"]) for v in risers["data"]["values"]}
    assert changes == {"risers": (2, pytest.approx(75.0)), "fallers": (2, pytest.approx(-10.0))}
    assert "+63.0 %" in page.text  # 7500 / 4600 − 1 = 0.6304


# -- errors ----------------------------------------------------------------------------------------------
def test_unknown_kpi_bad_status_and_bad_quarter_are_client_errors(review_app):
    r = review_app.get("/api/v1/impact", params={"kpi": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = review_app.get("/api/v1/impact", params={"kpi": "active_partner_rate", "on": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = review_app.get("/api/v1/alerts", params={"status": "bogus"})
    assert r.status_code == 400 and "bogus" in r.json()["error"] and "active" in r.json()["hint"]
    r = review_app.get("/api/v1/targets", params={"quarter": "2026-Q9"})
    assert r.status_code == 400 and "2026-Q9" in r.json()["error"]
    assert r.json()["hint"]
    r = review_app.get("/api/v1/impact", params={**AROUND, "around": "August"})
    assert r.status_code == 400 and "write around as YYYY-MM-DD" in r.json()["hint"]


# -- lifecycle: the program of test_lifecycle ----------------------------------------------------------------
def test_lifecycle_twin_and_page(tmp_path):
    fx = build_lifecycle_program(Fixture(tmp_path))
    fx.event("Data Checkpoint", "2026-10-31 12:00")  # the data covers October
    fx.hub().close()
    hub, client = served(tmp_path / "hub.duckdb", datetime(2026, 11, 20, 12))
    with client:
        signed_in(client)
        body = client.get("/api/v1/lifecycle", params={"from": "2026-06-01", "to": "2026-11-01"}).json()
        program = [(r["period"], r["new"], r["returning"], r["resurrecting"], r["dormant"])
                   for r in body["lifecycle"]["rows"] if not r["segment"]]
        # by hand in tests/test_lifecycle.py: June A new, B and D returning; July D dormant; August C and H
        # new, A dormant; September H dormant; October A and H resurrecting, C dormant
        assert program == [("2026-06", 1, 2, 0, 0), ("2026-07", 0, 2, 0, 1), ("2026-08", 2, 1, 0, 1),
                           ("2026-09", 0, 2, 0, 1), ("2026-10", 0, 1, 2, 1)]
        page = client.get("/lifecycle", params={"from": "2026-06-01", "to": "2026-11-01"})
        assert page.status_code == 200
        assert len(rows(table(page.text, "lifecycle"))) == 1 + 5  # the header and one row a month
        assert 'data-spec="spec-lifecycle"' in page.text and 'data-spec="spec-stickiness"' in page.text
    hub.close()
