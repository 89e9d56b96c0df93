"""The partner view and its walls: a partner user sees their own partner, peers only as anonymous
figures, and nothing else, by any page, API route, filter, export or id in the URL.

The program (July 2026, month grain): seven resellers P-ALPHA ... P-GOLF and one agency P-HOTEL, one
user each, logging in 3 (ALPHA), 1, 2, 4, 5, 6, 8 (BRAVO ... GOLF) and 100 (HOTEL) times.
Login frequency = logins / users who logged in = the login count. ALPHA's user is the partner user.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings
from partnerkpi.web import create_app
from partnerkpi.web.routes import admin, data, insights, kpis, partners, scorecard, subscriptions, tokens
from tests.kpi_fixtures import Fixture
from tests.web_fixtures import ANALYST, sign_in

ME = "P-ALPHA"
OTHERS = ["P-BRAVO", "P-CHARLIE", "P-DELTA", "P-ECHO", "P-FOXTROT", "P-GOLF", "P-HOTEL"]
LOGINS = {ME: 3, "P-BRAVO": 1, "P-CHARLIE": 2, "P-DELTA": 4, "P-ECHO": 5, "P-FOXTROT": 6, "P-GOLF": 8, "P-HOTEL": 100}
PARTNER_USER = ("me@alpha.example", "partner-pass")
JULY = {"from": "2026-07-01", "to": "2026-08-01"}
NOW = datetime(2026, 8, 1, 12)


def secret_names(pid: str) -> list[str]:
    return [pid, f"Company {pid[2:].title()}"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    fx = Fixture(root)
    for pid, logins in LOGINS.items():
        fx.partner(pid, type="agency" if pid == "P-HOTEL" else "reseller", name=f"Company {pid[2:].title()}")
        fx.user(f"u-{pid}", pid)
        for i in range(logins):
            fx.event("Logged In", f"2026-07-{1 + i % 28:02d} 09:{i // 28:02d}", user=f"u-{pid}")
    # Tasks: ALPHA has one overdue (due 2026-07-20) and one open not yet due; BRAVO has one overdue.
    fx.event("Task Assigned", "2026-07-01 10:00", partner=ME, object="t-alpha-1", kind="compliance",
             due_at="2026-07-20T00:00:00Z")
    fx.event("Task Assigned", "2026-07-15 10:00", partner=ME, object="t-alpha-2", kind="general")  # due 08-14
    fx.event("Task Assigned", "2026-07-01 10:00", partner="P-BRAVO", object="t-bravo-1", kind="compliance",
             due_at="2026-07-10T00:00:00Z")
    # A required policy: BRAVO acknowledged it, ALPHA did not.
    fx.event("Policy Published", "2026-07-02 08:00", object="pol-1", required=True)
    fx.event("Policy Acknowledged", "2026-07-03 08:00", user="u-P-BRAVO", object="pol-1")
    fx.event("Data Checkpoint", "2026-07-31 12:00")  # the data covers July (no KPI counts this event)
    hub = fx.hub()
    creds = Credentials(hub.store)
    creds.add_user(*PARTNER_USER, "partner", ME)
    creds.add_user(*ANALYST, "analyst")
    hub.close()
    return root / "hub.duckdb"


@pytest.fixture(scope="module")
def app(db):
    hub = Hub.open(db, clock=FixedClock(NOW))
    yield create_app(Settings(db=str(db)), hub=hub)
    hub.close()


@pytest.fixture(scope="module")
def partner(app):
    with TestClient(app) as client:
        assert sign_in(client, *PARTNER_USER).headers["location"] == f"/partners/{ME}"
        yield client


@pytest.fixture(scope="module")
def analyst(app):
    with TestClient(app) as client:
        sign_in(client, *ANALYST)
        yield client


def leaks(text: str) -> list[str]:
    """Other partners' ids or names found in a response."""
    return [s for pid in OTHERS for s in secret_names(pid) if s in text]


# -- the partner view ------------------------------------------------------------------------------------
def test_partner_page_shows_own_figures_and_anonymous_peer_figures(partner):
    body = partner.get(f"/api/v1/partners/{ME}", params=JULY).json()
    assert body["partner"]["partner_id"] == ME and body["peer_group"] == "type = reseller"
    tile = next(t for c in body["categories"] for t in c["tiles"] if t["tile"]["kpi"] == "login_frequency")
    assert tile["tile"]["value"] == 3.0
    # Peers: the six other resellers, 1 2 4 5 6 8: median (4 + 5) / 2 = 4.5; top quartile (higher is
    # better: the inclusive 75th percentile) at rank 0.75 × 5 = 3.75: 5 + 0.75 × (6 − 5) = 5.75.
    assert tile["peers"]["n"] == 6 and tile["peers"]["median"] == 4.5 and tile["peers"]["top_quartile"] == 5.75
    assert tile["peers"]["position"] == "below median"
    assert leaks(str(body)) == []
    assert {r["segment"]["partner_id"] for r in body["rows"]} == {ME}


def test_peers_can_be_the_whole_program(partner):
    body = partner.get(f"/api/v1/partners/{ME}", params={**JULY, "peers_by": ""}).json()
    tile = next(t for c in body["categories"] for t in c["tiles"] if t["tile"]["kpi"] == "login_frequency")
    # All seven others: 1 2 4 5 6 8 100: median 5; rank 0.75 × 6 = 4.5: 6 + 0.5 × (8 − 6) = 7.
    assert body["peer_group"] == "all partners"
    assert (tile["peers"]["n"], tile["peers"]["median"], tile["peers"]["top_quartile"]) == (7, 5.0, 7.0)


def test_agency_alone_in_its_type_gets_no_peer_figures(analyst):
    body = analyst.get("/api/v1/partners/P-HOTEL", params=JULY).json()
    tile = next(t for c in body["categories"] for t in c["tiles"] if t["tile"]["kpi"] == "login_frequency")
    assert tile["tile"]["value"] == 100.0
    assert tile["peers"] == {"n": 0, "median": None, "top_quartile": None, "median_display": "–",
                             "top_quartile_display": "–", "position": None}


def test_partner_sees_own_open_tasks_and_unacknowledged_policies(partner):
    body = partner.get(f"/api/v1/partners/{ME}", params=JULY).json()
    # At 2026-08-01 12:00: t-alpha-1 is 12 whole days past its 07-20 due; t-alpha-2 is due 08-14.
    assert [(t["task"], t["overdue"], t["days_overdue"]) for t in body["tasks"]] == [
        ("t-alpha-1", True, 12), ("t-alpha-2", False, 0)]
    assert body["overdue_tasks"] == 1
    assert [p["policy"] for p in body["policies"]] == ["pol-1"]
    page = partner.get(f"/partners/{ME}", params=JULY)
    assert "t-alpha-1" in page.text and "t-bravo-1" not in page.text and "pol-1" in page.text


def test_partner_users_see_fewer_kpis_than_staff(partner, analyst):
    def kpis(client):
        body = client.get(f"/api/v1/partners/{ME}", params=JULY).json()
        return {t["tile"]["kpi"] for c in body["categories"] for t in c["tiles"]}

    theirs, ours = kpis(partner), kpis(analyst)
    assert "cost_to_serve" in ours and "cost_to_serve" not in theirs
    assert theirs < ours and "login_frequency" in theirs
    assert {"portal_usage_rate", "active_users_per_partner"} <= theirs  # their own users, active or not
    assert "active_partner_rate" not in ours  # a share of partners means nothing for one partner


# -- the walls ---------------------------------------------------------------------------------------------
def _same_answer(client: TestClient, template: str, **headers: str) -> None:
    other = client.get(template.format("P-BRAVO"), headers=headers)
    missing = client.get(template.format("P-NOPE"), headers=headers)
    assert other.status_code == missing.status_code == 404
    assert other.text.replace("P-BRAVO", "X") == missing.text.replace("P-NOPE", "X")
    assert dict(other.headers).keys() == dict(missing.headers).keys()


@pytest.mark.parametrize("template", [
    "/api/v1/partners/{}", "/api/v1/partners/{}?peers_by=type", "/partners/{}", "/partners/{}?kpi=login_frequency",
])
def test_another_partner_answers_exactly_like_no_partner(partner, template):
    _same_answer(partner, template)
    _same_answer(partner, template, accept="text/html")


@pytest.mark.parametrize("path", [
    "/", "/?by=type", "/kpis/login_frequency", "/data", "/data?kind=events", "/api/v1/scorecard",
    "/api/v1/scorecard?by=type", "/api/v1/kpis/login_frequency?by=type", "/api/v1/data", "/api/v1/rejected",
    "/api/v1/rejected.csv", "/api/v1/users", "/admin/users", "/api/v1/tokens", "/admin/tokens", "/at-risk",
    "/api/v1/at-risk", "/alerts", "/api/v1/alerts", "/targets", "/api/v1/targets", "/impact", "/api/v1/impact",
    "/lifecycle", "/api/v1/lifecycle",
])
def test_program_wide_pages_and_exports_are_refused(partner, path):
    r = partner.get(path, follow_redirects=False)
    assert r.status_code == 403
    assert leaks(r.text) == []


@pytest.mark.parametrize("params", [{}, {"q": "Bravo"}, {"q": "reseller"}, {"sort": "login_frequency", "order": "desc"},
                                    {"sort": "name"}, JULY])
def test_the_partner_list_holds_only_the_partner(partner, params):
    body = partner.get("/api/v1/partners", params=params).json()
    assert {p["partner_id"] for p in body["partners"]} <= {ME}
    assert leaks(str(body)) == []
    page = partner.get("/partners", params=params)
    assert page.status_code == 200 and leaks(page.text) == []


def test_what_an_internal_user_had_computed_is_never_served_to_a_partner(partner, analyst):
    for path in ("/api/v1/at-risk", "/at-risk", "/api/v1/partners", "/partners"):  # now in the shared cache
        assert analyst.get(path).status_code == 200
    assert len(analyst.get("/api/v1/partners").json()["partners"]) > 1
    for path in ("/api/v1/at-risk", "/at-risk"):
        assert partner.get(path, follow_redirects=False).status_code == 403
    assert {p["partner_id"] for p in partner.get("/api/v1/partners").json()["partners"]} == {ME}


def test_peers_by_cannot_name_a_partner_column(partner):
    for trait in ("partner_id", "name"):
        r = partner.get(f"/api/v1/partners/{ME}", params={"peers_by": trait})
        assert r.status_code == 400 and "unknown partner trait" in r.json()["error"]


def test_every_api_route_of_a_partner_token_is_scoped_too(app, db):
    """A Bearer API token of the partner user, over every GET route of the API."""
    with TestClient(app) as client:
        token = app.state.partnerkpi.credentials.create_token(PARTNER_USER[0])
        headers = {"Authorization": f"Bearer {token}"}
        routers = [*(m.api for m in (scorecard, kpis, partners, data, insights)), admin.router, tokens.router,
                   subscriptions.router, data.uploads]
        routes = [r for router in routers for r in router.routes if "GET" in getattr(r, "methods", ())]
        assert len(routes) >= 10
        for route in routes:
            path = route.path.replace("{kpi_id}", "login_frequency").replace("{email}", ANALYST[0])
            for pid in (ME, "P-BRAVO"):
                r = client.get(path.replace("{partner_id}", pid), headers=headers)
                assert r.status_code in (200, 403, 404), (path, r.status_code)
                assert leaks(r.text.replace(f"no partner '{pid}'", "")) == [], (path, pid)  # only the echo
                assert r.status_code != 200 or ME in r.text or "partner" not in path


def test_staff_see_every_partner(analyst):
    body = analyst.get("/api/v1/partners", params=JULY).json()
    assert [p["partner_id"] for p in body["partners"]] == sorted([ME, *OTHERS])
    by_logins = analyst.get("/api/v1/partners", params={**JULY, "sort": "login_frequency", "order": "desc"}).json()
    assert [p["partner_id"] for p in by_logins["partners"]][:3] == ["P-HOTEL", "P-GOLF", "P-FOXTROT"]
    assert by_logins["partners"][0]["kpis"]["login_frequency"]["value"] == 100.0
    found = analyst.get("/api/v1/partners", params={"q": "company bravo"}).json()
    assert [p["partner_id"] for p in found["partners"]] == ["P-BRAVO"]
    assert analyst.get("/api/v1/partners/P-BRAVO", params=JULY).status_code == 200


def test_anonymous_requests_reach_nothing(app):
    with TestClient(app) as client:
        for path in ("/api/v1/partners", f"/api/v1/partners/{ME}", "/api/v1/scorecard", "/api/v1/kpis"):
            assert client.get(path).status_code == 401
        for path in ("/partners", f"/partners/{ME}", "/", "/catalog", "/data"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")


def test_partner_page_html_has_no_other_partner(partner):
    page = partner.get(f"/partners/{ME}", params=JULY)
    assert page.status_code == 200
    assert re.search(r"peers: median <b>4.50</b>", page.text)
    assert leaks(page.text) == []
